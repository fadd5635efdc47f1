"""The accuracy knob: errors against converged references and independent methods."""

import numpy as np
import pytest

from hpcspin.hamiltonian.sd import pauli_components, sd_matrix
from hpcspin.lattice import make_lattice
from hpcspin.negf import DEFAULT_TOL, ElectronParams, NEGFEngine
from hpcspin.negf.contour import fermi, ozaki_fermi, ozaki_pole_count


def _wall(n, x0):
    th = 2 * np.arctan(np.exp((np.arange(n) - x0) / np.sqrt(5.0)))
    return np.stack([0 * th, np.sin(th), np.cos(th)], axis=1)


def _random(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


CONFIGS = {
    "section7-wall": (60, lambda: _wall(60, 29.5)),
    "random30": (30, lambda: _random(30, 7)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_default_tol_meets_1e6_and_error_decreases(name):
    n, make = CONFIGS[name]
    lat, s = make_lattice("chain", n), make()
    p = ElectronParams(bias=0.5)
    ref = NEGFEngine(lat, p, tol=1e-11).compute(s)
    errs = []
    for tol in (1e-3, 1e-5, DEFAULT_TOL, 1e-8):
        r = NEGFEngine(lat, p, tol=tol).compute(s)
        errs.append(np.abs(r.spin_density - ref.spin_density).max())
        assert r.error_estimate <= tol
        if tol <= 1e-5:  # the estimate bounds the true error
            assert errs[-1] <= tol
    default = errs[2]
    assert default <= 1e-6
    assert errs[3] < errs[1] and errs[3] < 1e-8


def test_ozaki_expansion_accuracy():
    x = np.linspace(-300, 300, 6001)
    p = ozaki_pole_count(300.0, 1e-10)
    assert np.abs(ozaki_fermi(x, p) - fermi(x, 0.0, 1.0)).max() < 1e-10
    assert p < 40  # the range grows like P^2


@pytest.mark.parametrize("temp", [1e-3, 0.05])
def test_ozaki_and_contour_agree_low_temperature(temp):
    lat = make_lattice("chain", 12)
    s = _random(12, 3)
    p = ElectronParams(mu=-0.8, temperature=temp, bias=0.3)
    a = NEGFEngine(lat, p, tol=1e-9, eq_method="ozaki").compute(s)
    b = NEGFEngine(lat, p, tol=1e-9, eq_method="contour").compute(s)
    assert a.info["eq_method"] == "ozaki" and b.info["eq_method"] == "contour"
    assert np.abs(a.spin_density - b.spin_density).max() < 1e-8
    assert np.abs(a.charge_density - b.charge_density).max() < 1e-8


def _wide_band_zero_temperature(lat, spins, p):
    """Exact T = 0 equilibrium density of a wide-band system from the eigenpairs of H_eff.

    rho = -(1/pi) Im_h sum_n |R_n><L_n| (log(mu - l_n) - i pi),  H_eff = H - i Gamma/2 P.
    """
    h = sd_matrix(lat, spins, p.t, p.J).toarray()
    b = 2 * lat.width
    heff = h.astype(complex)
    heff[:b, :b] -= 0.5j * p.gamma * np.eye(b)
    heff[-b:, -b:] -= 0.5j * p.gamma * np.eye(b)
    lam, r = np.linalg.eig(heff)
    left = np.linalg.inv(r)
    m = (r * (np.log(p.mu - lam) - 1j * np.pi)) @ left
    rho = -(m - m.conj().T) / (2j * np.pi)
    n = lat.n_sites
    idx = np.arange(n)
    blocks = rho.reshape(n, 2, n, 2)[idx, :, idx, :]
    return pauli_components(blocks).real


def test_zero_temperature_wide_band_exact():
    lat = make_lattice("square", 3, 2)
    s = _random(6, 11)
    p = ElectronParams(J=1.5, mu=0.4, temperature=0.0, lead="wide-band", gamma=0.8)
    res = NEGFEngine(lat, p, tol=1e-10).compute(s)
    ref = _wide_band_zero_temperature(lat, s, p)
    assert np.abs(res.spin_density - ref[:, 1:]).max() < 1e-8
    assert np.abs(res.charge_density - ref[:, 0]).max() < 1e-8


def test_zero_temperature_tight_binding_limit():
    """T = 0 (arc to mu) agrees with T -> 0 (Ozaki) away from resonances at mu."""
    lat = make_lattice("chain", 10)
    s = _wall(10, 4.5)
    a = NEGFEngine(lat, ElectronParams(temperature=0.0, bias=0.3), tol=1e-9).compute(s)
    b = NEGFEngine(lat, ElectronParams(temperature=2e-3, bias=0.3), tol=1e-9).compute(s)
    assert np.abs(a.spin_density - b.spin_density).max() < 1e-4
    assert abs(a.current - b.current) < 1e-4


def test_bound_states_included():
    """J = 3 pushes majority states below the lead band: charge still sums correctly."""
    lat = make_lattice("chain", 20)
    s = np.tile([0, 0, 1.0], (20, 1))
    res = NEGFEngine(lat, ElectronParams(J=3.0, mu=-2.5, temperature=0.02)).compute(s)
    # mu = -2.5 lies below the lead band: the only electrons are in bound states of the
    # majority band [-5, -1] below -2, each exactly filled (isolated, f = 1)
    assert res.charge_density.sum() > 1.0
    assert np.abs(res.spin_density[:, 2] - res.charge_density).max() < 1e-6
    assert res.current == 0.0
