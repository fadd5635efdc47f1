"""Scheme "fast" on strips (compiled strip kernels) over ranks: bit-identical to serial."""

import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.warm import WarmStart

pytestmark = pytest.mark.mpi


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_strip_sequence_bit_identical_to_serial(comm, kind):
    lat = make_lattice(kind, 6, 2)
    rng = np.random.default_rng(5)
    base, kick = rng.normal(size=(lat.n_sites, 3)), rng.normal(size=(lat.n_sites, 3))
    kw = dict(tol=1e-5, scheme="fast", block_intervals=2)
    p = ElectronParams(bias=0.5)
    serial, par = NEGFEngine(lat, p, **kw), NEGFEngine(lat, p, comm=comm, **kw)
    ws, wp = WarmStart(), WarmStart()
    for k in range(3):
        s = base + 0.02 * k * kick
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        a, b = serial.compute(s, warm=ws), par.compute(s, warm=wp)
        assert np.array_equal(a.spin_density, b.spin_density)
        assert a.current == b.current and a.n_energy_points == b.n_energy_points
