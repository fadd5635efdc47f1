"""ML-driven dynamics at 1, 2, 3 and 4 ranks equals the serial run to round-off."""

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
kind = "{kind}"
length = {length}
width = {width}
periodic = {periodic}
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
t_end = 1.0
relax = false
[output]
dir = "{out}"
every = 2
checkpoint_every = 5
plots = false
[parallel]
grid = {grid}
"""

CASES = {
    "chain": dict(kind="chain", length=24, width=1, periodic="false"),
    "square": dict(kind="square", length=12, width=6, periodic="true"),
}


def _setup(world, case):
    d = world.bcast(tempfile.mkdtemp(prefix="hpcspin-dyn-") if world.rank == 0 else None)
    model_path = os.path.join(d, "model.pt")
    if world.rank == 0:
        c = CASES[case]
        lat = make_lattice(c["kind"], c["length"], c["width"], c["periodic"] == "true")
        spec = ModelSpec(
            head="E+vector", kind=c["kind"], radius=2.0, hidden=(8,), globals=("bias",)
        )
        save_model(model_path, build_model(spec, seed=3), lat)
    world.Barrier()
    return d, model_path


def _run_deck(comm, template, out, **fmt):
    """Run the dynamics task of a deck template on ``comm``; the trajectory path."""
    cfg = parse_deck(template.format(out=out, **fmt), n_ranks=comm.Get_size())
    ctx = ParallelContext(comm=comm.Dup())
    try:
        dynamics.run(cfg, ctx)
    finally:
        ctx.free()
    return os.path.join(out, "trajectory.h5")


def _serial_and_world(template, prefix):
    """Trajectories of a deck run serially and on all ranks (rank 0; None elsewhere)."""
    world = MPI.COMM_WORLD
    d = world.bcast(tempfile.mkdtemp(prefix=prefix) if world.rank == 0 else None)
    ref = _run_deck(MPI.COMM_SELF, template, os.path.join(d, "serial")) if world.rank == 0 else None
    path = _run_deck(world, template, os.path.join(d, f"p{world.size}"))
    if world.rank != 0:
        return None, None
    out = read_trajectory(ref), read_trajectory(path)
    shutil.rmtree(d, ignore_errors=True)
    return out


def _run(comm, case, d, model_path, tag, grid="[]"):
    out = os.path.join(d, tag)
    return _run_deck(comm, DECK, out, model=model_path, grid=grid, **CASES[case])


@pytest.mark.mpi
@pytest.mark.parametrize("case", ["chain", "square"])
def test_ml_dynamics_equal_at_every_rank_count(case):
    world = MPI.COMM_WORLD
    d, model_path = _setup(world, case)
    ref = None
    if world.rank == 0:
        ref = read_trajectory(_run(MPI.COMM_SELF, case, d, model_path, "serial"))
    for p in range(2, world.size + 1):
        sub = world.Split(0 if world.rank < p else MPI.UNDEFINED, world.rank)
        if sub != MPI.COMM_NULL:
            grid = "[2, 2]" if (case == "square" and p == 4) else "[]"
            path = _run(sub, case, d, model_path, f"p{p}", grid)
            sub.Free()
            if world.rank == 0:
                got = read_trajectory(path)
                assert got["spins"].shape == ref["spins"].shape
                np.testing.assert_allclose(got["spins"], ref["spins"], rtol=0, atol=1e-12)
                np.testing.assert_allclose(got["wall_x"], ref["wall_x"], rtol=0, atol=1e-10)
        world.Barrier()
    if world.rank == 0:
        # The run did something: the spins moved.
        assert np.abs(ref["spins"][-1] - ref["spins"][0]).max() > 1e-4
        shutil.rmtree(d, ignore_errors=True)


NEGF_DECK = """
[run]
task = "dynamics"
[lattice]
length = 12
[electrons]
bias = 0.5
[spins]
initial = "wall"
noise = 0.2
[negf]
tol = 1e-4
[dynamics]
forces = "negf"
integrator = "rk4"
dt = 0.2
t_end = 0.8
relax = false
[output]
dir = "{out}"
every = 2
plots = false
"""


@pytest.mark.mpi
def test_negf_dynamics_equal_at_every_rank_count():
    """Energy points split over the ranks: the trajectory is bit-identical to serial."""
    ref, got = _serial_and_world(NEGF_DECK, "hpcspin-negf-")
    if ref is not None:
        assert np.array_equal(got["spins"], ref["spins"])
        assert np.array_equal(got["current"], ref["current"])
        assert np.all(np.isfinite(ref["current"])) and ref["current"][0] > 0
        assert np.abs(ref["spins"][-1] - ref["spins"][0]).max() > 1e-6


THERMAL_DECK = """
[run]
task = "dynamics"
seed = 9
[lattice]
kind = "square"
length = 12
width = 4
periodic = true
[spins]
initial = "wall"
[dynamics]
forces = "none"
integrator = "heun"
temperature = 0.2
dt = 0.05
t_end = 1.0
relax = false
[output]
dir = "{out}"
every = 4
plots = false
"""


@pytest.mark.mpi
def test_stochastic_dynamics_equal_at_every_rank_count():
    """The thermal field depends on (seed, step, global site) only: same noise, any P."""
    ref, got = _serial_and_world(THERMAL_DECK, "hpcspin-therm-")
    if ref is not None:
        np.testing.assert_allclose(got["spins"], ref["spins"], rtol=0, atol=1e-12)
        # The noise acted: the texture is rough, far from the smooth initial wall.
        assert np.abs(ref["spins"][-1] - ref["spins"][0]).max() > 0.05
