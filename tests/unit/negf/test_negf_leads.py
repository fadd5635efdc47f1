import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.negf.leads import (
    Leads,
    gamma_of,
    simultaneous_modes,
    surface_gf_1d,
    surface_gf_modes,
    surface_gf_sancho_rubio,
)


def test_1d_self_energy_inside_band():
    for t in (1.0, 0.7):
        e = np.linspace(-1.99, 1.99, 41) * t
        g = surface_gf_1d(e, t)
        assert np.allclose(g.imag, -np.sqrt(4 * t**2 - e**2) / (2 * t**2))
        assert np.allclose(g.real, e / (2 * t**2))
    # lead + contact: Sigma = t_c^2 g
    e = np.linspace(-1.99, 1.99, 41)
    ld = Leads(make_lattice("chain", 3), t_lead=1.0, t_contact=0.5)
    sl, sr = ld.self_energies(e)
    assert np.allclose(sl[:, 0, 0], 0.25 * surface_gf_1d(e, 1.0))
    assert np.allclose(sl[:, 0, 0], sl[:, 1, 1]) and np.allclose(sl[:, 0, 1], 0)
    assert np.allclose(sr, sl)
    assert np.all(np.real(np.diagonal(gamma_of(sl), axis1=1, axis2=2)) > 0)


def test_1d_outside_band_decays_and_is_real():
    e = np.array([-5.0, -2.5, 2.01, 3.0, 10.0])
    g = surface_gf_1d(e, 1.0)
    assert np.all(g.imag == 0)
    assert np.all(np.abs(g) < 1.0)  # decaying root: |t g| < 1
    assert np.all(np.sign(g.real) == np.sign(e))
    assert np.allclose(g, 1.0 / (e - g))  # Dyson: g = 1/(E - t^2 g)


def test_1d_complex_energies_are_retarded():
    rng = np.random.default_rng(0)
    z = rng.uniform(-4, 4, 50) + 1j * rng.uniform(1e-6, 3, 50)
    g = surface_gf_1d(z, 1.0)
    assert np.all(g.imag < 0)
    assert np.all(np.abs(g) < 1)
    assert np.allclose(g, 1.0 / (z - g))
    # continuity onto the real axis from above
    e = np.linspace(-3, 3, 13)
    assert np.allclose(surface_gf_1d(e + 1e-10j, 1.0), surface_gf_1d(e, 1.0), atol=1e-4)


def test_sancho_rubio_chain_matches_closed_form():
    z = np.array([0.3 + 0.2j, -1.1 + 1e-3j, 2.5 + 1j, -3 + 0.01j])
    h0, v = np.zeros((1, 1)), -np.ones((1, 1))
    for side in ("left", "right"):
        g = surface_gf_sancho_rubio(z, h0, v, side)[:, 0, 0]
        assert np.allclose(g, surface_gf_1d(z, 1.0), atol=1e-12, rtol=0)
    e = np.array([-1.5, 0.3, 1.2])
    g = surface_gf_sancho_rubio(e, h0, v, "left", eta=1e-12)[:, 0, 0]
    assert np.allclose(g, surface_gf_1d(e, 1.0), atol=1e-8, rtol=0)


@pytest.mark.parametrize(
    "kind,W,per",
    [("square", 4, False), ("square", 5, True), ("triangular", 4, True), ("triangular", 5, True)],
)
def test_modes_match_sancho_rubio(kind, W, per):
    lat = make_lattice(kind, 3, W, per)
    ld = Leads(lat, method="modes")
    assert ld.modes is not None
    z = np.array([0.3 + 0.2j, -1.1 + 0.01j, 2.5 + 1j, -5.0 + 0.05j])
    for side in ("left", "right"):
        gs = surface_gf_sancho_rubio(z, ld.h0, ld.v, side)
        assert np.abs(gs - surface_gf_modes(z, ld.h0, ld.v)).max() < 1e-11
    e = np.array([-2.3, -0.7, 0.4, 1.7])
    for side in ("left", "right"):
        gs = surface_gf_sancho_rubio(e, ld.h0, ld.v, side, eta=1e-10)
        assert np.abs(gs - surface_gf_modes(e, ld.h0, ld.v)).max() < 1e-5


def test_open_triangular_uses_lead_modes_and_satisfies_dyson():
    lat = make_lattice("triangular", 3, 4, False)
    assert simultaneous_modes(Leads(lat).h0, Leads(lat).v) is None
    ld = Leads(lat)
    assert ld.method == "eigen"
    z = np.array([0.4 + 0.3j, -2.0 + 0.02j])
    gl = ld.surface_gf(z, "left")
    gr = ld.surface_gf(z, "right")
    zi = z[:, None, None] * np.eye(4)
    assert np.allclose(gl, np.linalg.inv(zi - ld.h0 - ld.v.T @ gl @ ld.v))
    assert np.allclose(gr, np.linalg.inv(zi - ld.h0 - ld.v @ gr @ ld.v.T))


def test_strip_transmission_channels_of_clean_square_strip():
    """Gamma of a clean strip lead counts open channels: Tr[Gamma g-ish] via modes."""
    lat = make_lattice("square", 3, 4, False)
    ld = Leads(lat)
    _, e_m, _ = ld.modes
    e = 0.1
    sl, _ = ld.orbital_self_energies(np.array([e]))
    gam = gamma_of(sl)[0]
    open_modes = np.sum(np.abs(e - e_m) < 2.0)
    # each open mode has Gamma_m = 2 sin k_m > 0; closed modes 0
    w = np.linalg.eigvalsh(gam)
    assert np.sum(w > 1e-12) == open_modes


def test_wide_band():
    lat = make_lattice("square", 3, 2)
    ld = Leads(lat, kind="wide-band", gamma=0.8)
    sl, sr = ld.self_energies(np.array([0.1, -3 + 1j]))
    assert np.allclose(sl, -0.4j * np.eye(4)) and np.allclose(sr, sl)
