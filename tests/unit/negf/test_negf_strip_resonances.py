"""Self-consistent resonance poles of strips (negf/resonances.py, refine=True)."""

import numpy as np
import scipy.linalg as sla

from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf.engine import ElectronParams, NEGFEngine
from hpcspin.negf.resonances import banded_upper, refine_poles, resonance_breakpoints


def _tilted_wall_system():
    lat = make_lattice("square", 12, 3)
    s = domain_wall(lat, 5.5, 2.0, "bloch")
    s = s + 1e-4 * np.random.default_rng(3).normal(size=s.shape)
    s /= np.linalg.norm(s, axis=1)[:, None]
    return NEGFEngine(lat, ElectronParams(J=2.0)).system(s)


def test_refined_poles_solve_the_open_system_and_are_narrow():
    system = _tilted_wall_system()
    h = system.matrix().toarray()
    ab, kd = banded_upper(system.matrix())
    e = sla.eigvals_banded(ab, lower=False)
    e = e[(e > -1.8) & (e < -0.2)]
    pos, wid = refine_poles(system, ab, kd, e)
    b = system.block
    narrow = np.flatnonzero(np.isfinite(wid) & (wid > 0) & (wid < 1e-6))
    assert len(narrow) >= 1  # the tilt turns bound states in the continuum into these
    for k in narrow:
        sl, sr = system.self_energies(np.array([pos[k]]))
        m = h.astype(complex)
        m[:b, :b] += sl[0]
        m[-b:, -b:] += sr[0]
        lam = pos[k] - 0.5j * wid[k]
        smin = np.linalg.svd(m - lam * np.eye(len(m)), compute_uv=False)[-1]
        assert smin < 1e-9 * np.abs(m).max()


def test_refine_is_opt_in():
    system = _tilted_wall_system()
    a = resonance_breakpoints(system, -1.8, -0.2)
    b = resonance_breakpoints(system, -1.8, -0.2, refine=False)
    assert np.array_equal(a, b)
    c = resonance_breakpoints(system, -1.8, -0.2, refine=True)
    assert len(c) > 0 and np.all((c > -1.8) & (c < -0.2))
