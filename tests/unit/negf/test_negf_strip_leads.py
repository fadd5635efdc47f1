"""Exact lead self-energies of every strip: clean-strip T(E) = open channels, Dyson checks.

The open-channel count is taken independently from the lead's band structure: the
eigenvalues of H(k) = H0 + V e^{ik} + V^+ e^{-ik} on a fine k grid; a band rising
through E is a right-moving channel.
"""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from hpcspin.lattice import make_lattice
from hpcspin.negf.engine import ElectronParams, NEGFEngine
from hpcspin.negf.lead_modes import surface_gf_eigen
from hpcspin.negf.leads import LeadError, Leads, dyson_check, surface_gf_sancho_rubio
from hpcspin.negf.observables import transmission

NK = 3000


def h_of_k(h0, v, k):
    ph = np.exp(1j * np.asarray(k))[..., None, None]
    return h0 + v * ph + v.T * ph.conj()


def bands(h0, v):
    """Sorted bands on a k grid that holds every band extremum exactly, and the extrema.

    Between consecutive samples each sorted band is then monotonic, so counting sign
    changes is exact even next to a threshold.
    """
    k = np.linspace(-np.pi, np.pi, NK, endpoint=False)
    eps = np.linalg.eigvalsh(h_of_k(h0, v, k))
    prev, nxt = np.roll(eps, 1, axis=0), np.roll(eps, -1, axis=0)
    ks, es = [], []
    for i, n in zip(*np.nonzero(((eps <= prev) & (eps <= nxt)) | ((eps >= prev) & (eps >= nxt)))):
        sign = 1.0 if eps[i, n] <= prev[i, n] else -1.0
        dk = 2 * np.pi / NK
        r = minimize_scalar(
            lambda q, n=n, sign=sign: sign * np.linalg.eigvalsh(h_of_k(h0, v, q))[n],
            bounds=(k[i] - dk, k[i] + dk),
            method="bounded",
            options={"xatol": 1e-13},
        )
        ks.append(r.x)
        es.append(sign * r.fun)
    kk = np.sort(np.mod(np.concatenate([k, ks]) + np.pi, 2 * np.pi) - np.pi)
    return np.linalg.eigvalsh(h_of_k(h0, v, kk)), np.unique(es)


def open_channels(eps, e):
    """Right-moving channels at energy e: downward steps of #(bands below e) along k."""
    below = (eps < e).sum(axis=1)
    d = np.roll(below, -1) - below
    return int(-d[d < 0].sum())


def clean_transmission(lat, energies):
    """T(E) of a clean (J = 0) two-slice centre: spin-summed."""
    eng = NEGFEngine(lat, ElectronParams(J=0.0))
    spins = np.tile([0.0, 0.0, 1.0], (lat.n_sites, 1))
    system = eng.system(spins)
    solver = eng.make_solver(system)
    gl, gr = system.gammas(energies)
    # no open channel: T = 0 (the recursion is not defined at every real energy there)
    op = (np.abs(gl).max(axis=(1, 2)) > 1e-12) & (np.abs(gr).max(axis=(1, 2)) > 1e-12)
    out = np.zeros(len(energies))
    if op.any():
        out[op] = transmission(solver.first_column(energies[op]), gl[op], gr[op])
    return out


CASES = [("chain", 1, False)]
CASES += [(k, w, False) for k in ("square", "triangular") for w in range(1, 9)]
CASES += [(k, w, True) for k in ("square", "triangular") for w in range(3, 9)]


@pytest.mark.parametrize("kind,W,per", CASES)
def test_clean_strip_transmission_counts_open_channels(kind, W, per):
    lat = make_lattice(kind, 2, W, per)
    ld = Leads(lat)
    eps, thr = bands(ld.h0, ld.v)
    lo, hi = eps.min() - 0.3, eps.max() + 0.3
    grid = np.linspace(lo, hi, 101)
    t_grid = clean_transmission(lat, grid)
    for e, t in zip(grid, t_grid):
        if np.abs(thr - e).min() > 1e-6:  # away from thresholds: exactly the open channels
            assert abs(t - 2 * open_channels(eps, e)) < 1e-8, (e, t)
    # At a threshold itself the clean strip's Green's function diverges (van Hove):
    # the (checked) self-energies must still be finite and causal there ...
    for sig in ld.orbital_self_energies(thr):
        gam = 1j * (sig - np.conj(np.swapaxes(sig, 1, 2)))
        assert np.isfinite(sig).all() and (np.linalg.eigvalsh(gam)[:, 0] > -1e-6).all()
    # ... and T is exact just off every threshold and band edge.
    for d, tol in ((1e-7, 1e-2), (1e-5, 1e-8)):
        off = np.concatenate([thr - d, thr + d])
        for e, t in zip(off, clean_transmission(lat, off)):
            assert abs(t - 2 * open_channels(eps, e)) < tol, (e, t)


def test_open_triangular_lead_method_is_exact_and_checked():
    lat = make_lattice("triangular", 2, 4)
    ld = Leads(lat)
    assert ld.method == "eigen"
    # complex energies: against a dense finite lead of 300 slices (exact to ~1e-14)
    z = np.array([0.4 + 0.5j, -2.0 + 0.5j, 3.1 + 0.5j])
    m, w = 300, 4
    for side in ("left", "right"):
        g = ld.surface_gf(z, side)
        hop = ld.v if side == "right" else ld.v.T
        for k, zk in enumerate(z):
            h = (
                np.kron(np.eye(m), ld.h0)
                + np.kron(np.eye(m, k=1), hop)
                + np.kron(np.eye(m, k=-1), hop.T)
            )
            gd = np.linalg.solve(zk * np.eye(m * w) - h, np.eye(m * w)[:, :w])[:w]
            assert np.abs(g[k] - gd).max() < 1e-10
        assert (dyson_check(z, g, ld.h0, ld.v, side) < 1e-12).all()


@pytest.mark.parametrize("W", [3, 4])
def test_open_triangular_wall_transmission_matches_decimation(W):
    """The energies where decimation used to overflow: agree with eta-broadened decimation."""
    from hpcspin.hamiltonian.textures import domain_wall

    lat = make_lattice("triangular", 20, W)
    spins = domain_wall(lat, 9.5, np.sqrt(5.0), "bloch")
    e = np.array([-2.0, -1.415])
    out = []
    for method, eta in (("auto", 1e-12), ("sancho-rubio", 1e-9)):
        eng = NEGFEngine(lat, ElectronParams(J=2.0), lead_method=method)
        eng.leads.eta = eta
        system = eng.system(spins)
        gl, gr = system.gammas(e)
        out.append(transmission(eng.make_solver(system).first_column(e), gl, gr))
    assert np.all(np.isfinite(out[0])) and np.all(out[0] > 0.5)
    assert np.abs(out[0] - out[1]).max() < 1e-6


@pytest.mark.parametrize("W,per", [(16, False), (32, False), (32, True)])
def test_wide_triangular_leads_pass_the_check(W, per):
    ld = Leads(make_lattice("triangular", 2, W, per))
    e = np.array([-4.1, -2.0, -0.3, 1.0, 2.0, 2.7, 5.9, 0.5 + 1e-3j])
    for side in ("left", "right"):
        g = ld.surface_gf(e, side)
        assert (dyson_check(e, g, ld.h0, ld.v, side) < 1e-6).all()
    gam = ld.orbital_self_energies(e[:-1])[0]
    assert np.all(np.linalg.eigvalsh(1j * (gam - np.swapaxes(gam.conj(), 1, 2)))[:, 0] > -1e-8)


def test_eigen_equals_transverse_modes_where_both_apply():
    for kind, W, per in (("square", 5, False), ("triangular", 6, True), ("triangular", 5, True)):
        ld = Leads(make_lattice(kind, 2, W, per))
        assert ld.method == "modes"
        e = np.concatenate([np.linspace(-6.3, 6.3, 37), [0.2 + 0.1j]])
        ref = ld.surface_gf(e, "left")
        g = surface_gf_eigen(e, ld.h0, ld.v, "left")
        ok = np.isfinite(g).all(axis=(1, 2))  # NaN: ambiguous (threshold), retried
        assert ok.mean() > 0.9
        assert np.abs(g[ok] - ref[ok]).max() < 1e-9


def test_failure_is_exit_1_naming_the_energy(monkeypatch):
    import hpcspin.negf.leads as leads_mod

    ld = Leads(make_lattice("triangular", 2, 3))

    def broken(z, *a, **k):
        return np.full((len(np.atleast_1d(z)), 3, 3), np.nan, dtype=complex)

    monkeypatch.setattr(leads_mod, "surface_gf_eigen", broken)
    monkeypatch.setattr(leads_mod, "surface_gf_sancho_rubio", broken)
    with pytest.raises(LeadError, match=r"E = -1\.415") as info:
        ld.surface_gf(np.array([-1.415]), "left")
    assert info.value.exit_code == 1
    assert "eta" not in str(info.value)


def test_decimation_failure_is_nan_not_an_exception():
    ld = Leads(make_lattice("triangular", 2, 3), method="sancho-rubio")
    g = surface_gf_sancho_rubio(np.array([-2.0, 0.3 + 0.1j]), ld.h0, ld.v, "left", maxiter=3)
    assert np.isnan(g[0]).all() or dyson_check(-2.0, g[:1], ld.h0, ld.v, "left")[0] > 0
    # the checked Leads gets every energy right anyway
    g = ld.surface_gf(np.array([-2.0, -1.415]), "left")
    assert (dyson_check(np.array([-2.0, -1.415]), g, ld.h0, ld.v, "left") < 1e-6).all()
