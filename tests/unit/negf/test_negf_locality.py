"""The locality measurement behind the descriptor radius (tools/negf_locality.py)."""

import os
import sys

import numpy as np

from hpcspin.dynamics.observables import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf.engine import ElectronParams, NEGFEngine

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools"))
from negf_locality import _tangents, decay, jacobian  # noqa: E402


def test_decay_of_a_banded_matrix():
    n = 12
    jac = np.zeros((n, n, 3, 2))
    for i in range(n):
        for j in range(n):
            jac[i, j, 0, 0] = 2.0 ** -abs(i - j)
    d = decay(jac, margin=2)
    np.testing.assert_allclose(d[:8], 2.0 ** -np.arange(8))
    assert d[8] == 0  # |i - j| = 8 needs i, j both in [2, 10): only up to 7


def test_jacobian_entry_matches_direct_difference():
    lat = make_lattice("chain", 8)
    s = domain_wall(lat, 3.5, 1.5)
    eng = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, temperature=0.1), tol=1e-9)
    jac = jacobian(eng, s, 0.3, h=1e-4)
    e1, _ = _tangents(s)
    h = 1e-5
    sp, sm = s.copy(), s.copy()
    sp[5] = np.cos(h) * s[5] + np.sin(h) * e1[5]
    sm[5] = np.cos(h) * s[5] - np.sin(h) * e1[5]
    direct = (eng.field(sp, bias=0.3) - eng.field(sm, bias=0.3)) / (2 * h)
    np.testing.assert_allclose(jac[:, 5, :, 0], direct, atol=1e-6)
    assert np.abs(jac[4, 5]).max() > 1e-3  # neighbours do feel each other
