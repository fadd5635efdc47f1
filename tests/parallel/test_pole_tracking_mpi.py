"""Strip resonances followed along a warm-started sequence over ranks: bit-identical to serial."""

import numpy as np
import pytest

from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.warm import WarmStart

pytestmark = pytest.mark.mpi


def test_tracked_strip_sequence_bit_identical_to_serial(comm):
    lat = make_lattice("square", 12, 3)
    rng = np.random.default_rng(3)
    base = domain_wall(lat, 5.5, 2.0, "bloch") + 1e-4 * rng.normal(size=(lat.n_sites, 3))
    kick = rng.normal(size=base.shape)
    kw = dict(tol=1e-5, scheme="fast", block_intervals=4)
    p = ElectronParams(J=2.0, bias=0.5)
    serial, par = NEGFEngine(lat, p, **kw), NEGFEngine(lat, p, comm=comm, **kw)
    ws, wp = WarmStart(), WarmStart()
    for k in range(3):
        s = base + 1e-3 * k * kick
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        a, b = serial.compute(s, warm=ws), par.compute(s, warm=wp)
        assert np.array_equal(a.spin_density, b.spin_density)
        assert a.current == b.current and a.n_energy_points == b.n_energy_points
        assert np.array_equal(ws.poles.roots[0], wp.poles.roots[0])
    assert wp.poles.counts["tracked"] == 2 and wp.counts == {"cold": 1, "warm": 2}
