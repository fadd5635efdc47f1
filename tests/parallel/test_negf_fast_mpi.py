"""Scheme "fast" over ranks: warm-started sequences bit-identical to serial at any rank count."""

import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.warm import WarmStart

pytestmark = pytest.mark.mpi


def _sequence(n, steps):
    rng = np.random.default_rng(11)
    base, kick = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    for k in range(steps):
        s = base + 0.02 * k * kick
        yield s / np.linalg.norm(s, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "block_intervals,estimate", [(2, "strict"), (None, "strict"), (2, "calibrated")]
)
def test_warm_sequence_bit_identical_to_serial(comm, block_intervals, estimate):
    lat = make_lattice("chain", 30)
    p = ElectronParams(bias=0.5)
    kw = dict(tol=1e-6, scheme="fast", block_intervals=block_intervals, estimate=estimate)
    serial, par = NEGFEngine(lat, p, **kw), NEGFEngine(lat, p, comm=comm, **kw)
    ws, wp = WarmStart(max_reuse=2), WarmStart(max_reuse=2)
    for s in _sequence(lat.n_sites, 5):
        a, b = serial.compute(s, warm=ws), par.compute(s, warm=wp)
        assert np.array_equal(a.spin_density, b.spin_density)
        assert a.current == b.current and a.n_energy_points == b.n_energy_points
        assert all(np.array_equal(x, y) for x, y in zip(ws.grid, wp.grid))
    assert ws.counts == wp.counts == {"cold": 2, "warm": 3}
