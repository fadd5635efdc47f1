"""The negf task on all ranks: energy points split (rgf), or one PETSc system shared
by a group of ranks ([negf] ranks_per_solve), equals the serial result."""

import os
import shutil
import tempfile

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from hpcspin.deck import parse_deck
from hpcspin.parallel.context import ParallelContext
from hpcspin.tasks import negf

DECK = """
[run]
task = "negf"
[lattice]
length = 16
[electrons]
bias = 0.5
[spins]
noise = 0.3
[negf]
solver = "{solver}"
ranks_per_solve = {rps}
transmission = true
transmission_points = 21
[output]
dir = "{out}"
"""


def _run(comm, d, tag, solver, rps):
    out = os.path.join(d, tag)
    cfg = parse_deck(DECK.format(out=out, solver=solver, rps=rps), n_ranks=comm.Get_size())
    ctx = ParallelContext(comm=comm.Dup())
    try:
        negf.run(cfg, ctx)
    finally:
        ctx.free()
    return os.path.join(out, "negf.h5")


@pytest.mark.mpi
@pytest.mark.parametrize("solver, rps", [("rgf", 1), ("petsc", 2)])
def test_negf_task_parallel_equals_serial(solver, rps):
    if solver == "petsc":
        pytest.importorskip("petsc4py")
    world = MPI.COMM_WORLD
    if world.size % rps:
        pytest.skip(f"{rps} ranks per solve do not divide {world.size}")
    d = world.bcast(tempfile.mkdtemp(prefix="hpcspin-negft-") if world.rank == 0 else None)
    ref = _run(MPI.COMM_SELF, d, "serial", "rgf", 1) if world.rank == 0 else None
    got = _run(world, d, "par", solver, rps)
    if world.rank == 0:
        with h5py.File(ref) as a, h5py.File(got) as b:
            for key in ("spin_density", "field", "charge_density", "transmission"):
                np.testing.assert_allclose(b[key][()], a[key][()], rtol=0, atol=1e-10)
            assert abs(b["current"][()] - a["current"][()]) < 1e-10
            assert b.attrs["n_ranks"] == world.size
        shutil.rmtree(d, ignore_errors=True)
