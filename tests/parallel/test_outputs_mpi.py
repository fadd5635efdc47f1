"""hpcspin.run under mpirun: the outputs (positions, wall centres, per-wall velocities,
ParaView sidecar) at P ranks equal those of one rank."""

import os
import shutil
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

import hpcspin
from hpcspin.io.trajectory import read_trajectory

DECK = {
    "run": {"task": "dynamics"},
    "lattice": {"kind": "triangular", "length": 48, "width": 4},
    "spins": {"walls": 2, "K_perp": 0.5, "B": [0.0, 0.0, 0.01], "noise": 0.05},
    "dynamics": {"forces": "none", "relax": False, "t_end": 4.0, "dt": 0.1},
    "output": {"every": 5, "plots": False},
}


@pytest.fixture
def workdir():
    comm = MPI.COMM_WORLD
    path = comm.bcast(tempfile.mkdtemp() if comm.rank == 0 else None)
    yield path
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def test_outputs_equal_serial(workdir):
    comm = MPI.COMM_WORLD
    par = {**DECK, "output": {**DECK["output"], "dir": os.path.join(workdir, "par")}}
    r = hpcspin.run(par, comm=comm, log_level="WARNING")
    serial = None
    if comm.rank == 0:
        ser = {**DECK, "output": {**DECK["output"], "dir": os.path.join(workdir, "ser")}}
        serial = hpcspin.run(ser, comm=MPI.COMM_SELF, log_level="WARNING")
    comm.Barrier()
    if comm.rank != 0:
        return
    a, b = read_trajectory(r.files["trajectory"]), read_trajectory(serial.files["trajectory"])
    for key in ("positions", "wall_centres", "time"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_allclose(a["spins"], b["spins"], atol=1e-12)
    assert a["wall_centres"].shape[1] == 2
    assert r.summary["n_walls_start"] == 2 and len(r.summary["wall_velocities"]) == 2
    np.testing.assert_allclose(
        r.summary["wall_velocities"], serial.summary["wall_velocities"], rtol=1e-9
    )
    assert os.path.isfile(r.files["vtkhdf"])
