"""Physics checks of the NEGF engine against closed forms and invariants (docs/physics.md)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from hpcspin.hamiltonian.sd import sd_matrix
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.leads import Leads


def _random_spins(rng, n):
    s = rng.normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def _wall(n, x0=None, lam=5.0**0.5):
    x0 = (n - 1) / 2 if x0 is None else x0
    th = 2 * np.arctan(np.exp((np.arange(n) - x0) / lam))
    return np.stack([0 * th, np.sin(th), np.cos(th)], axis=1)


# -- uniform ferromagnet: bulk density from the two spin-split bands -------------------------
@pytest.mark.parametrize("direction", [(0, 0, 1), (0.6, -0.0, 0.8), (1, 1, 1)])
def test_ferromagnet_bulk_matches_band_result(direction):
    n, temp, J, mu = 161, 0.1, 2.0, -1.0
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    lat = make_lattice("chain", n)
    res = NEGFEngine(lat, ElectronParams(J=J, mu=mu, temperature=temp)).compute(np.tile(d, (n, 1)))
    k = np.linspace(-np.pi, np.pi, 20000, endpoint=False)

    def occ(e):
        return np.mean(0.5 * (1 - np.tanh((e - mu) / (2 * temp))))

    n_up, n_dn = occ(-2 * np.cos(k) - J), occ(-2 * np.cos(k) + J)  # majority along S
    c = n // 2
    assert abs(res.charge_density[c] - (n_up + n_dn)) < 1e-6
    assert np.abs(res.spin_density[c] - (n_up - n_dn) * d).max() < 1e-6
    # half-metal: majority band [-4, 0] filled to mu = -1 (partly below the lead band)
    assert n_up - n_dn > 0.6


# -- global spin rotation covariance -----------------------------------------------------------
@pytest.mark.parametrize(
    "kind,L,W,per,lead",
    [
        ("chain", 10, 1, False, "tight-binding"),
        ("triangular", 3, 3, True, "tight-binding"),
        ("square", 3, 2, False, "wide-band"),
    ],
)
def test_rotation_covariance(rng, kind, L, W, per, lead):
    lat = make_lattice(kind, L, W, per)
    s = _random_spins(rng, lat.n_sites)
    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    eng = NEGFEngine(lat, ElectronParams(mu=0.3, bias=0.4, temperature=0.1, lead=lead), tol=1e-8)
    a, b = eng.compute(s), eng.compute(s @ rot.T)
    assert np.abs(b.spin_density - a.spin_density @ rot.T).max() < 2e-8
    assert np.abs(b.charge_density - a.charge_density).max() < 2e-8
    assert abs(a.current - b.current) < 1e-9


# -- conservative field at V = 0: H = -dOmega/dS, Omega from an independent log-det contour -----
def _omega_difference(lat, spins_a, spins_b, p: ElectronParams):
    """Omega(b) - Omega(a) = (1/pi) Im int f(E) [log det(E-H_b-Sigma) - log det(E-H_a-Sigma)].

    Dense log-determinants on the path E_B -> E_B + i g -> E_max + i g (g = 2 pi T Np) plus the
    Np enclosed Matsubara poles; independent of the density code.
    """
    leads = Leads(lat, p.lead, p.t_lead, p.t_contact, p.gamma)
    ha = sd_matrix(lat, spins_a, p.t, p.J).toarray()
    hb = sd_matrix(lat, spins_b, p.t, p.J).toarray()
    n2, b = ha.shape[0], 2 * lat.width
    T, mu = p.temperature, p.mu
    n_p = 3
    g = 2 * np.pi * T * n_p

    def dlogdet(z):
        sl, sr = leads.self_energies(z)
        out = []
        for k, zk in enumerate(z):
            a = zk * np.eye(n2) - ha
            a[:b, :b] -= sl[k]
            a[-b:, -b:] -= sr[k]
            bb = a + ha - hb
            out.append(np.linalg.slogdet(np.linalg.solve(a, bb)))
        return np.array([np.log(s) + l for s, l in out])

    def fermi(z):
        return 1 / (1 + np.exp((z - mu) / T))

    x, w = np.polynomial.legendre.leggauss(200)
    eb, emax = -6.0, mu + 40 * T
    # vertical piece
    y = 0.5 * g * (x + 1)
    z1 = eb + 1j * y
    i1 = np.sum(0.5 * g * w * fermi(z1) * dlogdet(z1) * 1j)
    # horizontal piece, split at mu
    tot = 0
    for lo, hi in ((eb, mu - 1), (mu - 1, mu), (mu, emax)):
        e = lo + 0.5 * (hi - lo) * (x + 1)
        z2 = e + 1j * g
        tot += np.sum(0.5 * (hi - lo) * w * fermi(z2) * dlogdet(z2))
    poles = mu + 1j * np.pi * T * (2 * np.arange(n_p) + 1)
    return (np.imag(i1 + tot) / np.pi) - 2 * T * np.sum(np.real(dlogdet(poles)))


def test_field_is_minus_grand_potential_gradient(rng):
    lat = make_lattice("chain", 5)
    p = ElectronParams(J=1.5, mu=0.3, temperature=0.2)
    s = _random_spins(rng, 5)
    field = NEGFEngine(lat, p, tol=1e-9).field(s)
    h = 1e-4
    for i, a in [(1, 0), (2, 2), (4, 1)]:
        sp, sm = s.copy(), s.copy()
        sp[i, a] += h
        sm[i, a] -= h
        fd = -_omega_difference(lat, sm, sp, p) / (2 * h)
        assert abs(fd - field[i, a]) < 1e-6, (i, a, fd, field[i, a])


def _loop_work(eng, s0, site, bias, mu, m=16):
    """Work of the field on one spin carried around a cone: sum_phi H . dS (spectral)."""
    phi = 2 * np.pi * np.arange(m) / m
    th = 0.9
    work = 0.0
    for ph in phi:
        s = s0.copy()
        s[site] = [np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)]
        ds = [-np.sin(th) * np.sin(ph), np.sin(th) * np.cos(ph), 0.0]
        work += eng.compute(s, bias=bias, mu=mu).field[site] @ ds * (2 * np.pi / m)
    return work


def test_loop_work_vanishes_at_zero_bias_only(rng):
    lat = make_lattice("chain", 6)
    s0 = _wall(6, lam=1.5)
    eng = NEGFEngine(lat, ElectronParams(J=2.0, temperature=0.1), tol=1e-8)
    w0 = _loop_work(eng, s0, 2, 0.0, 0.3)
    w1 = _loop_work(eng, s0, 2, 0.5, 0.3)
    assert abs(w0) < 1e-7
    assert abs(w1) > 1e-3


# -- currents ---------------------------------------------------------------------------------
def test_current_conservation_and_angular_momentum_balance(rng):
    lat = make_lattice("chain", 12)
    s = _random_spins(rng, 12)
    p = ElectronParams(J=2.0, mu=-0.7, bias=0.6, temperature=0.05)
    res = NEGFEngine(lat, p, tol=1e-9).compute(s)
    # particle current: the left-lead and right-lead formulas agree (I_L = -I_R)
    assert abs(res.current_left - res.current) < 1e-9 and res.current > 0
    # steady state: spin in - spin out = torque of the electrons on the local spins
    torque = 2 * p.J * np.cross(s, res.spin_density).sum(0)
    assert np.abs(res.spin_current_left - res.spin_current_right - torque).max() < 1e-7


@pytest.mark.parametrize(
    "kind,L,W,per", [("chain", 8, 1, False), ("square", 4, 3, False), ("triangular", 4, 4, True)]
)
def test_transmission_bounded_by_open_channels(rng, kind, L, W, per):
    lat = make_lattice(kind, L, W, per)
    e = np.linspace(-6.5, 6.5, 131) + 0.0123  # avoid the exact band edges (singular)
    eng = NEGFEngine(lat, ElectronParams(J=1.0, bias=0.2, mu=0.0))
    res = eng.compute(_random_spins(rng, lat.n_sites), transmission_energies=e)
    leads = Leads(lat)
    if leads.modes is not None:
        _, em, cm = leads.modes
        chans = 2 * np.sum(np.abs(e[:, None] - em[None]) < 2 * np.abs(cm)[None], axis=1)
    else:
        chans = np.full(len(e), 2 * W)
    assert np.all(res.transmission <= chans + 1e-9)
    assert np.all(res.transmission >= -1e-12)
    # uniform clean ferromagnet with J = 0: a perfect conductor
    clean = NEGFEngine(lat, ElectronParams(J=0.0)).compute(
        np.tile([0, 0, 1.0], (lat.n_sites, 1)), transmission_energies=e
    )
    if leads.modes is not None:
        assert np.allclose(clean.transmission, chans, atol=1e-8)


@pytest.mark.parametrize("solver", ["rgf", "dense"])
def test_transmission_outside_the_lead_band_is_zero_not_nan(solver):
    """Energies outside the lead band (and at its edges) give T = 0, also where the
    unbroadened recursion would divide by zero: E = -2.5 with J = 2 makes the last
    site's block E - Sigma(E) - J S.sigma singular (Sigma(-2.5) = -0.5)."""
    lat = make_lattice("chain", 7)
    up = np.tile([0, 0, 1.0], (7, 1))
    e = np.array([-2.5, -2.0, 2.0, 3.0, -1.0, 0.5])
    for n_e in (1, len(e)):  # the per-energy scalar kernel and the batched one
        res = NEGFEngine(lat, ElectronParams(J=2.0), solver=solver).compute(
            up, transmission_energies=e[:n_e]
        )
        assert np.all(np.isfinite(res.transmission))
        assert np.all(res.transmission[:4][:n_e] == 0.0)
    assert 0.0 < res.transmission[4] <= 2.0 and 0.0 < res.transmission[5] <= 2.0


def test_section7_wall_current_positive_and_antisymmetric():
    lat = make_lattice("chain", 60)
    s = _wall(60, x0=29.5)
    eng = NEGFEngine(lat, ElectronParams())
    ip = eng.compute(s, bias=0.5)
    im = eng.compute(s, bias=-0.5)
    assert ip.current > 0.03
    # exact symmetry: mirror x -> N-1-x with a pi rotation about y maps V -> -V
    assert abs(ip.current + im.current) < 1e-7
    mirrored = im.spin_density[::-1] * np.array([-1, 1, -1])
    assert np.abs(mirrored - ip.spin_density).max() < 1e-6
