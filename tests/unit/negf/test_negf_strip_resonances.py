"""Narrow resonances of strips (negf/resonances.py: strip_poles, the default on strips)."""

import numpy as np

from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf.engine import ElectronParams, NEGFEngine
from hpcspin.negf.resonances import banded_upper, resonance_breakpoints, strip_poles


def _tilted_wall_system():
    lat = make_lattice("square", 12, 3)
    s = domain_wall(lat, 5.5, 2.0, "bloch")
    s = s + 1e-4 * np.random.default_rng(3).normal(size=s.shape)
    s /= np.linalg.norm(s, axis=1)[:, None]
    return NEGFEngine(lat, ElectronParams(J=2.0)).system(s)


def _open_matrix(system, e, lam=None, h=1e-7):
    """Dense H + Sigma(E), plus (lam - E) Sigma'(E) if lam is given (linearised)."""
    m = system.matrix().toarray().astype(complex)
    b = system.block
    sl, sr = system.self_energies(np.array([e, e - h, e + h]))
    d = 0.0 if lam is None else (lam - e) / (2 * h)
    m[:b, :b] += sl[0] + d * (sl[2] - sl[1])
    m[-b:, -b:] += sr[0] + d * (sr[2] - sr[1])
    return m


def _spectral(system, e):
    m = _open_matrix(system, e)
    return -np.trace(np.linalg.inv(e * np.eye(len(m)) - m)).imag


def test_strip_poles_solve_the_open_system_and_are_narrow():
    system = _tilted_wall_system()
    ab, kd = banded_upper(system.matrix())
    pos, wid = strip_poles(system, ab, kd, -2.09, 0.09)
    narrow = np.flatnonzero(wid < 1e-6)
    # the tilt turns bound states in the continuum (closed transverse channels) into
    # resonances ~1e-9 wide, shifted by 1e-3..0.2 from the isolated centre's levels;
    # two of them lie 0.007 below a lead threshold, where Sigma' is large
    assert len(narrow) >= 5
    for k in narrow:
        lam = pos[k] - 0.5j * wid[k]
        m = _open_matrix(system, pos[k], lam)
        smin = np.linalg.svd(m - lam * np.eye(len(m)), compute_uv=False)[-1]
        assert smin < 1e-9 * np.abs(m).max()


def test_each_narrow_pole_is_a_peak_of_the_spectral_function():
    """Independent of the pole search: -Im Tr G(E) is a Lorentzian at (E_r, Gamma)."""
    system = _tilted_wall_system()
    ab, kd = banded_upper(system.matrix())
    pos, wid = strip_poles(system, ab, kd, -2.09, 0.09)
    for k in np.flatnonzero(wid < 1e-6):
        x = pos[k] + wid[k] * np.array([-0.1, 0.0, 0.1, -0.5, 0.5])
        a = np.array([_spectral(system, e) for e in x])
        assert a[1] >= a[0] and a[1] >= a[2]  # the peak (to a tenth of a width)
        assert np.all(abs(a[3:] / a[1] - 0.5) < 0.05)  # half maximum at +- Gamma/2


def test_refined_seeds_are_the_strip_default_and_chains_keep_first_order():
    system = _tilted_wall_system()
    a = resonance_breakpoints(system, -1.8, -0.2)
    b = resonance_breakpoints(system, -1.8, -0.2, refine=True)
    assert np.array_equal(a, b) and len(a) > 0 and np.all((a > -1.8) & (a < -0.2))
    lat = make_lattice("chain", 40, 1)
    s = np.random.default_rng(5).normal(size=(40, 3))
    chain = NEGFEngine(lat, ElectronParams(J=2.0)).system(s / np.linalg.norm(s, axis=1)[:, None])
    c = resonance_breakpoints(chain, -2.0, 0.0)
    assert np.array_equal(c, resonance_breakpoints(chain, -2.0, 0.0, refine=False))


def test_budget_warning_names_the_configuration_and_the_estimate(monkeypatch, caplog):
    import functools

    from hpcspin.negf import engine as engine_mod

    one_round = functools.partial(engine_mod.adaptive_integrate, max_rounds=1)
    monkeypatch.setattr(engine_mod, "adaptive_integrate", one_round)
    lat = make_lattice("square", 6, 2)
    s = domain_wall(lat, 2.5, 2.0, "bloch")
    with caplog.at_level("WARNING", logger="hpcspin.negf"):
        res = NEGFEngine(lat, ElectronParams(J=2.0), tol=1e-9).compute(s, bias=0.5)
    assert not res.info["converged"]
    (msg,) = [r.getMessage() for r in caplog.records if "not converged" in r.getMessage()]
    assert "square lattice 6 x 2, V = 0.5, mu = -1" in msg
    est = float(msg.split("error estimate ")[1].split()[0])
    assert 1e-9 < est <= 1.001 * res.error_estimate  # the quadrature's share of the estimate
