"""Broadening eta of the centre (NEGFEngine(eta=...), [negf] eta; docs/negf.md)."""

import numpy as np
import pytest
from scipy.integrate import quad_vec

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf.contour import fermi
from hpcspin.negf.engine import ElectronParams, NEGFEngine

P = ElectronParams(J=2.0)


def _random(lat, seed=1):
    s = np.random.default_rng(seed).normal(size=(lat.n_sites, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def _tilted_strip_wall():
    lat = make_lattice("square", 8, 2)
    s = domain_wall(lat, 3.5, 2.0, "bloch") + 1e-4 * np.random.default_rng(3).normal(size=(16, 3))
    return lat, s / np.linalg.norm(s, axis=1)[:, None]


def test_eta_zero_is_the_exact_engine_bit_for_bit():
    lat, s = _tilted_strip_wall()
    a = NEGFEngine(lat, P).compute(s, bias=0.5)
    b = NEGFEngine(lat, P, eta=0.0).compute(s, bias=0.5)
    assert np.array_equal(a.spin_density, b.spin_density)
    assert a.current == b.current and a.n_energy_points == b.n_energy_points


@pytest.mark.parametrize("shape", [(12, 1), (6, 2)])
def test_solvers_and_schemes_agree_at_finite_eta(shape):
    lat = make_lattice("chain", 12, 1) if shape[1] == 1 else make_lattice("square", *shape)
    s = _random(lat)
    runs = [("rgf", "reference"), ("dense", "reference")]
    if shape[1] == 1:  # the compiled kernels (scheme fast) are the chain's
        runs.append(("rgf", "fast"))
    out = [
        NEGFEngine(lat, P, solver=solver, scheme=scheme, tol=1e-8, eta=1e-2)
        .compute(s, bias=0.5)
        .spin_density
        for solver, scheme in runs
    ]
    for o in out[1:]:
        assert abs(o - out[0]).max() < 1e-12


def test_small_eta_is_a_small_linear_change():
    lat = make_lattice("chain", 12, 1)
    s = _random(lat)
    r0 = NEGFEngine(lat, P, tol=1e-9).compute(s, bias=0.5).spin_density
    d = [
        abs(NEGFEngine(lat, P, tol=1e-9, eta=eta).compute(s, bias=0.5).spin_density - r0).max()
        for eta in (1e-7, 1e-5)
    ]
    assert 0 < d[0] < 1e-5 and d[1] / d[0] == pytest.approx(100, rel=0.05)


def test_equilibrium_density_equals_the_real_axis_integral():
    """V = 0, eta > 0: -1/pi Im int G_eta(E) f(E) dE, Lorentzian tails included."""
    lat = make_lattice("chain", 6, 1)
    s = _random(lat)
    eng = NEGFEngine(lat, P, tol=1e-9, eta=1e-2, solver="dense")
    system = eng.system(s)
    h = system.matrix().toarray()
    idx = np.arange(6)

    def spin_density(e):
        sl, sr = system.self_energies(np.array([e]))
        m = e * np.eye(12) - h
        m[:2, :2] -= sl[0]
        m[-2:, -2:] -= sr[0]
        g = np.linalg.inv(m).reshape(6, 2, 6, 2)[idx, :, idx, :]
        sig = np.stack(
            [g[:, 1, 0] + g[:, 0, 1], 1j * (g[:, 0, 1] - g[:, 1, 0]), g[:, 0, 0] - g[:, 1, 1]]
        )
        return -np.imag(sig.T).ravel() / np.pi * fermi(np.array([e]), P.mu, P.temperature)[0]

    cuts = np.linspace(-8.0, 1.5, 24)
    ref = quad_vec(spin_density, -np.inf, cuts[0], epsabs=1e-13)[0]
    ref = ref + quad_vec(spin_density, cuts[-1], np.inf, epsabs=1e-13)[0]
    for a, b in zip(cuts[:-1], cuts[1:]):
        ref = ref + quad_vec(spin_density, a, b, epsabs=1e-13)[0]
    got = eng.compute(s, bias=0.0).spin_density
    assert abs(got - ref.reshape(6, 3)).max() < 1e-9


def test_negative_eta_is_refused():
    with pytest.raises(HpcspinError, match="eta"):
        NEGFEngine(make_lattice("chain", 4, 1), P, eta=-1e-3)


def test_deck_key_reaches_the_engine_and_is_checked():
    from hpcspin.deck import parse_deck
    from hpcspin.errors import DeckError
    from hpcspin.tasks.common import negf_engine_from
    from hpcspin.tasks.datagen import fingerprint_data

    deck = '[run]\ntask = "negf"\n[lattice]\nlength = 8\n'
    cfg = parse_deck(deck + "[negf]\neta = 1e-4\n")
    assert negf_engine_from(cfg, make_lattice("chain", 8, 1)).eta == 1e-4
    exact = parse_deck(deck)
    assert exact.negf.eta == 0.0
    assert "eta" not in fingerprint_data(exact)["negf"]  # exact datasets keep their fingerprint
    assert fingerprint_data(cfg)["negf"]["eta"] == 1e-4
    with pytest.raises(DeckError) as ei:
        parse_deck(deck + "[negf]\neta = -1e-3\n")
    (msg,) = ei.value.problems
    assert msg.startswith("[negf] eta = -0.001:") and "(0 (default, exact)" in msg
