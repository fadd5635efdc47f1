"""Run the parallel suite under mpirun with one readable report.

Rank 0 prints pytest's report; the other ranks write theirs to a file and print it
only when their run failed (their failures also fail rank 0, see conftest.py).
Usage: mpirun -n P python tests/parallel/run_pytest.py [pytest args]
"""

import contextlib
import os
import sys
import tempfile

import pytest
from mpi4py import MPI

rank = MPI.COMM_WORLD.Get_rank()
args = ["-p", "no:cacheprovider", *sys.argv[1:]]
if rank == 0:
    code = pytest.main(args)
else:
    fd, path = tempfile.mkstemp(prefix=f"hpcspin-pytest-rank{rank}-", suffix=".log")
    with os.fdopen(fd, "w") as fh, contextlib.redirect_stdout(fh):
        code = pytest.main(["-q", *args])
    if code not in (0, 5):
        with open(path) as fh:
            sys.stderr.write(f"---- pytest report of rank {rank} ----\n{fh.read()}")
    os.remove(path)
sys.exit(int(code))
