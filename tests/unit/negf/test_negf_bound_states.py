"""Bound states in the bias window (negf/bound_states.py): the mean lead occupation.

A wall that depends on x only leaves the transverse modes of a square strip uncoupled;
modes closed in the leads then hold bound states at energies where others propagate.
The engine gives them (f_L + f_R)/2. The reference here is built independently: the
lead-symmetric split

    rho = (rho_eq(mu_L) + rho_eq(mu_R))/2 + int dE/4pi G (Gamma_L - Gamma_R) G^+ (f_L - f_R)

with the two equilibrium densities from the engine at V = 0 and the window integral
from dense inverses on a composite Gauss-Legendre grid. Bound states carry no Gamma
weight, so this split gives them the mean occupation without looking for them.
"""

import numpy as np
import pytest

from hpcspin.hamiltonian.sd import pauli_components
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.bound_states import BOUND_WIDTH
from hpcspin.negf.contour import fermi
from hpcspin.negf.engine import NEGFEngine as Engine
from hpcspin.negf.observables import drive_symmetry, mirror_image

P = ElectronParams(J=2.0, mu=-1.0, temperature=0.05)


def _x_only_wall(kind, L, W, per):
    lat = make_lattice(kind, L, W, per)
    return lat, domain_wall(lat, (L - 1) / 2, 5**0.5, "bloch")


def _window_sym(system, lo, hi, edges, mu_l, mu_r, temp, panel=0.02, order=20):
    """int dE/4pi G (Gamma_L - Gamma_R) G^+ (f_L - f_R): site Pauli components (N, 4)."""
    h = system.matrix().toarray()
    n, b = h.shape[0], system.block
    bps = np.unique(np.concatenate([[lo, hi], [e for e in edges if lo < e < hi]]))
    x, w = np.polynomial.legendre.leggauss(order)
    es, ws = [], []
    for a, c in zip(bps[:-1], bps[1:]):
        u = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0, 1, max(1, int((c - a) / panel)) + 1))
        for p, q in zip(u[:-1], u[1:]):  # graded to both ends: square-root thresholds
            es.append(a + (c - a) * (p + (q - p) * (x + 1) / 2))
            ws.append((c - a) * (q - p) / 2 * w)
    e, wt = np.concatenate(es), np.concatenate(ws)
    sl, sr = system.self_energies(e)
    a = e[:, None, None] * np.eye(n) - h[None].astype(complex)
    a[:, :b, :b] -= sl
    a[:, -b:, -b:] -= sr
    g = np.linalg.inv(a)
    gam_l = 1j * (sl - sl.conj().transpose(0, 2, 1))
    gam_r = 1j * (sr - sr.conj().transpose(0, 2, 1))
    gl, gr = g[:, :, :b], g[:, :, -b:]
    gg = np.einsum("kia,kab,kjb->kij", gl, gam_l, gl.conj())
    gg -= np.einsum("kia,kab,kjb->kij", gr, gam_r, gr.conj())
    idx = np.arange(n // 2)
    blocks = gg.reshape(len(e), n // 2, 2, n // 2, 2)[:, idx, :, idx, :]  # (N, k, 2, 2)
    f = (fermi(e, mu_l, temp) - fermi(e, mu_r, temp)) * wt / (4 * np.pi)
    return np.einsum("k,nkc->nc", f, pauli_components(blocks).real)


def lead_symmetric_reference(lat, spins, bias):
    eng = NEGFEngine(lat, P, tol=1e-11)
    mu_l, mu_r, temp = P.mu + bias / 2, P.mu - bias / 2, P.temperature
    eq = [eng.compute(spins, bias=0.0, mu=m).spin_density for m in (mu_l, mu_r)]
    lo, hi = min(mu_l, mu_r) - 40 * temp, max(mu_l, mu_r) + 40 * temp
    win = _window_sym(eng.system(spins), lo, hi, eng._band_edges(), mu_l, mu_r, temp)
    return 0.5 * (eq[0] + eq[1]) + win[:, 1:]


@pytest.mark.parametrize("per", [True, False], ids=["periodic", "open"])
def test_bound_states_get_the_mean_lead_occupation(per, monkeypatch):
    lat, s = _x_only_wall("square", 6, 3, per)
    ref = lead_symmetric_reference(lat, s, 0.4)
    eng = NEGFEngine(lat, P, tol=1e-9)
    got = eng.compute(s, bias=0.4).spin_density
    assert np.abs(got - ref).max() < 1e-8  # measured 2e-11 .. 2e-10 (8 x 3)
    roots = eng._roots(eng.system(s), -1.5, -0.5)
    assert (np.abs(roots[1]) < BOUND_WIDTH).any()  # there are bound states to fill
    # without the correction the split fills them to mu_R: far from the reference
    monkeypatch.setattr(Engine, "_add_bound_states", lambda *a, **k: None)
    plain = NEGFEngine(lat, P, tol=1e-9).compute(s, bias=0.4).spin_density
    assert np.abs(plain - ref).max() > 1e-3


@pytest.mark.parametrize(
    "kind, W, per",
    [("square", 4, True), ("square", 4, False), ("square", 3, True), ("triangular", 4, True)],
)
def test_x_only_walls_keep_the_drive_symmetry(kind, W, per):
    """H(-V) = R H_P(V): 0.06-0.09 with the bound states filled to mu_R (16 x 4)."""
    lat, s = _x_only_wall(kind, 10, W, per)
    perm, rot = drive_symmetry(lat, s)
    eng = NEGFEngine(lat, P, tol=1e-8, scheme="fast")
    ip, im = eng.compute(s, bias=0.4), eng.compute(s, bias=-0.4)
    assert np.abs(mirror_image(ip.field, perm, rot) - im.field).max() < 5e-7
    assert abs(ip.current + im.current) < 1e-8


def test_no_correction_without_bound_states_at_zero_bias_or_with_eta(monkeypatch):
    lat, s = _x_only_wall("square", 6, 3, True)
    tilted = s + 1e-3 * np.random.default_rng(1).normal(size=s.shape)
    tilted /= np.linalg.norm(tilted, axis=1, keepdims=True)
    cases = [(tilted, 0.4, 0.0), (s, 0.0, 0.0), (s, 0.4, 1e-3)]
    with_ = [NEGFEngine(lat, P, eta=eta).compute(x, bias=v) for x, v, eta in cases]
    monkeypatch.setattr(Engine, "_add_bound_states", lambda *a, **k: None)
    without = [NEGFEngine(lat, P, eta=eta).compute(x, bias=v) for x, v, eta in cases]
    for a, b in zip(with_, without):
        assert np.array_equal(a.spin_density, b.spin_density)
        assert np.array_equal(a.charge_density, b.charge_density)


def test_a_root_is_either_seeded_or_bound_never_both():
    """Seeds (window quadrature) and the bound-state term must not both count a state."""
    from hpcspin.negf.resonances import _graded, ladder  # ladder: the tracker's seeds

    pos = np.array([-1.2, -1.1, -1.0])
    wid = np.array([0.2 * BOUND_WIDTH, 0.9 * BOUND_WIDTH, 1e-9])
    seeds = _graded(pos, wid, -2.0, 0.0, 1e-2, 0.05)
    assert not np.isin([-1.2, -1.1], seeds).any() and -1.0 in seeds
    assert {r for _, r, _ in ladder(pos, wid, 1e-2, 0.05, 16.0)} == {-1.0}
