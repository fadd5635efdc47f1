"""Collective verdicts for tests run under mpirun.

Every rank runs the same pytest session. A test that fails on one rank must
fail on all ranks, or the others would wait in the next collective forever:
the hook below reduces the per-rank outcome of each test's call phase and
turns a remote failure into a local one.
"""

import pytest
from mpi4py import MPI


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    comm = MPI.COMM_WORLD
    excinfo = outcome.excinfo
    local_ok = excinfo is None or excinfo[0] is pytest.skip.Exception
    all_ok = comm.allreduce(local_ok, op=MPI.LAND)
    if local_ok and not all_ok:
        outcome.force_exception(
            AssertionError(f"test failed on another rank (this is rank {comm.rank})")
        )


@pytest.fixture
def comm():
    """A duplicate of COMM_WORLD for one test, freed afterwards."""
    c = MPI.COMM_WORLD.Dup()
    yield c
    c.Free()
