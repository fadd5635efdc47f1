"""ML dynamics of a strip with the columns design and the drive symmetry: every rank
count gives the serial trajectory to round-off."""

import os
import shutil
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

from hpcspin.deck import parse_deck
from hpcspin.io.trajectory import read_trajectory
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.modelfile import save_model
from hpcspin.parallel.context import ParallelContext
from hpcspin.tasks import dynamics

DECK = """
[run]
task = "dynamics"
seed = 5
[lattice]
kind = "square"
length = 16
width = 4
[electrons]
bias = 0.5
[spins]
initial = "wall"
noise = 0.3
[model]
file = "{model}"
[dynamics]
forces = "ml"
integrator = "rk4"
dt = 0.1
t_end = 0.6
relax = false
[output]
dir = "{out}"
every = 2
checkpoint_every = 5
plots = false
"""


def _run(comm, d, tag):
    text = DECK.format(model=os.path.join(d, "model.pt"), out=os.path.join(d, tag))
    cfg = parse_deck(text, n_ranks=comm.Get_size())
    ctx = ParallelContext(comm=comm.Dup())
    try:
        dynamics.run(cfg, ctx)
    finally:
        ctx.free()
    return os.path.join(d, tag, "trajectory.h5")


@pytest.mark.mpi
def test_columns_drive_model_equal_at_every_rank_count():
    world = MPI.COMM_WORLD
    d = world.bcast(tempfile.mkdtemp(prefix="hpcspin-strip-") if world.rank == 0 else None)
    if world.rank == 0:
        spec = ModelSpec(
            head="E+vector",
            kind="square",
            radius=3,
            design="columns",
            rows=3,
            hidden=(8,),
            globals=("bias",),
            bias_gate=True,
            drive_symmetry=True,
            eq_radius=2,
        )
        save_model(
            os.path.join(d, "model.pt"), build_model(spec, seed=3), make_lattice("square", 16, 4)
        )
    world.Barrier()
    ref = read_trajectory(_run(MPI.COMM_SELF, d, "serial")) if world.rank == 0 else None
    for p in range(2, world.size + 1):
        sub = world.Split(0 if world.rank < p else MPI.UNDEFINED, world.rank)
        if sub != MPI.COMM_NULL:
            path = _run(sub, d, f"p{p}")
            sub.Free()
            if world.rank == 0:
                got = read_trajectory(path)
                np.testing.assert_allclose(got["spins"], ref["spins"], rtol=0, atol=1e-12)
        world.Barrier()
    if world.rank == 0:
        assert np.abs(ref["spins"][-1] - ref["spins"][0]).max() > 1e-4
        shutil.rmtree(d, ignore_errors=True)
