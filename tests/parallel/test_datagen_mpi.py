"""datagen at P ranks writes the same dataset as one rank, bit for bit.

The serial reference is computed on rank 0 alone (a size-1 communicator) in the same
session; the parallel run shares the configurations dynamically, so which rank computes
which configuration differs from run to run, and the data must not.
"""

import os
import time
from types import SimpleNamespace

import numpy as np
import pytest

from hpcspin.deck.load import parse_deck
from hpcspin.io import dataset as ds
from hpcspin.parallel.context import ParallelContext
from hpcspin.tasks import datagen

pytestmark = pytest.mark.mpi

DECK = """
[run]
task = "datagen"
seed = 21
[lattice]
kind = "chain"
length = 12
[electrons]
J = 2.0
mu = -1.0
temperature = 0.1
[negf]
tol = 1e-4
[datagen]
n_configs = {n}
biases = [-0.5, 0.5]
mix = [0.5, 0.3, 0.2]
flush_every = 2
[output]
dir = "{dir}"
progress_interval = 0
"""


class UnevenEngine:
    """Stand-in engine whose cost varies per configuration (exercises load balance)."""

    tol = 1e-6  # datagen compares each configuration's error estimate with it

    def compute(self, spins, bias=None, mu=None):
        time.sleep(0.002 * (1 + int(abs(spins[0, 0]) * 5)))
        s = np.roll(spins, 1, 0) - 0.3 * bias * np.cross(spins, np.roll(spins, -1, 0))
        return SimpleNamespace(spin_density=s, field=2.0 * s, current=0.1 * bias)


def shared_dir(comm, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("dg")) if comm.rank == 0 else None
    return comm.bcast(d, root=0)


def generate(comm, out, n, engine=None, collective="auto"):
    cfg = parse_deck(DECK.format(dir=out, n=n), "test.toml")
    ctx = ParallelContext(comm=comm)
    saved = datagen.negf_engine_from, datagen.COLLECTIVE_IO
    if engine is not None:
        datagen.negf_engine_from = lambda cfg, lat, comm=None: engine
    datagen.COLLECTIVE_IO = collective
    try:
        datagen.run(cfg, ctx)
    finally:
        datagen.negf_engine_from, datagen.COLLECTIVE_IO = saved
        ctx.node_comm.Free()
    return os.path.join(out, "dataset.h5")


def serial_and_parallel(comm, tmp_path_factory, n, engine=None, collective="auto"):
    root = shared_dir(comm, tmp_path_factory)
    serial, failure = None, None
    solo = comm.Split(0 if comm.rank == 0 else 1, key=comm.rank)
    if comm.rank == 0:
        try:
            serial = generate(solo, os.path.join(root, "serial"), n, engine)
        except Exception as exc:  # every rank must learn of it, or the others wait forever
            failure = exc
    solo.Free()
    if not all(comm.allgather(failure is None)):
        raise failure if failure is not None else AssertionError("serial run failed on rank 0")
    par = generate(comm, os.path.join(root, "par"), n, engine, collective)
    return serial, par


def assert_same(serial, par, n_ranks):
    a, b = ds.read_dataset(serial, only_done=False), ds.read_dataset(par, only_done=False)
    assert a["done"].all() and b["done"].all()
    names = [x for x in a if isinstance(a[x], np.ndarray) and x != "index"]
    assert set(names) >= {"spins", "field", "field_eq", "spin_density", "current", "done"}
    for name in names:
        assert np.array_equal(a[name], b[name], equal_nan=True), name
    assert a["attrs"]["n_ranks"] == 1 and b["attrs"]["n_ranks"] == n_ranks
    assert a["attrs"]["fingerprint"] == b["attrs"]["fingerprint"]


@pytest.mark.parametrize("collective", [True, False], ids=["collective", "independent"])
def test_uneven_costs_same_dataset(comm, tmp_path_factory, collective):
    serial, par = serial_and_parallel(
        comm, tmp_path_factory, 13 * comm.size, UnevenEngine(), collective
    )
    if comm.rank == 0:
        assert_same(serial, par, comm.size)


def test_negf_same_dataset(comm, tmp_path_factory):
    serial, par = serial_and_parallel(comm, tmp_path_factory, 3 * comm.size + 1)
    if comm.rank == 0:
        assert_same(serial, par, comm.size)
        d = ds.read_dataset(par)
        # Field = J s (docs/physics.md) and the equilibrium field is a different calculation.
        np.testing.assert_allclose(d["field"], 2.0 * d["spin_density"], rtol=0, atol=1e-12)
        driven = d["bias"] != 0
        assert np.abs(d["field"][driven] - d["field_eq"][driven]).max() > 1e-6
        # Landauer: T(E) >= 0 and f_L - f_R has the sign of V, so I V >= 0 (docs/physics.md).
        assert np.all(d["current"][driven] * d["bias"][driven] > -1e-12)


def test_groups_of_ranks_per_configuration_same_dataset(comm, tmp_path_factory):
    """[datagen] ranks_per_config = 2: each configuration's energy points are split over
    a pair of ranks; the dataset equals the serial one bit for bit."""
    if comm.size % 2:
        pytest.skip("needs an even rank count")
    root = shared_dir(comm, tmp_path_factory)
    n = 2 * comm.size + 1
    serial = None
    solo = comm.Split(0 if comm.rank == 0 else 1, key=comm.rank)
    if comm.rank == 0:
        serial = generate(solo, os.path.join(root, "serial"), n)
    solo.Free()
    comm.Barrier()
    out = os.path.join(root, "pairs")
    cfg = parse_deck(
        DECK.format(dir=out, n=n),
        "test.toml",
        n_ranks=comm.size,
        overrides={"datagen.ranks_per_config": 2},
    )
    ctx = ParallelContext(comm=comm)
    try:
        datagen.run(cfg, ctx)
    finally:
        ctx.node_comm.Free()
    if comm.rank == 0:
        assert_same(serial, os.path.join(out, "dataset.h5"), comm.size)
