"""LLG for one spin in a constant field against the closed-form solution, every integrator.

With dS/dt = S x H - alpha S x dS/dt and |H| = h along e3:
    tan(theta/2) = tan(theta0/2) exp(-alpha h t / (1 + alpha^2)),
    phi(t)       = phi0 - h t / (1 + alpha^2)    (clockwise seen from the tip of H).
"""

import numpy as np
import pytest

from hpcspin.dynamics import INTEGRATORS, llg_rhs, make_integrator
from hpcspin.errors import HpcspinError

H_VEC = np.array([0.3, -0.4, 1.2])  # |H| = 1.3
ALPHA = 0.1
# max deviation from the closed form over t in [0, 10] at dt = 0.01 (measured x ~3)
TOL = {"sib": 1.5e-4, "depondt": 2e-4, "heun": 1.5e-4, "rk4": 2e-9}


def frame(h):
    e3 = h / np.linalg.norm(h)
    e1 = np.cross(e3, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(e3, e1), e3


def exact(t, theta0, phi0, h, alpha):
    hn = np.linalg.norm(h)
    e1, e2, e3 = frame(h)
    th = 2 * np.arctan(np.tan(theta0 / 2) * np.exp(-alpha * hn * t / (1 + alpha**2)))
    ph = phi0 - hn * t / (1 + alpha**2)
    return (
        np.sin(th)[:, None] * (np.cos(ph)[:, None] * e1 + np.sin(ph)[:, None] * e2)
        + np.cos(th)[:, None] * e3
    )


def run(name, dt, t_end, alpha=ALPHA, theta0=1.0, phi0=0.3, n_copies=1):
    integ = make_integrator(name, alpha)
    s = np.repeat(exact(np.zeros(1), theta0, phi0, H_VEC, alpha), n_copies, axis=0)
    calls = []

    def field(x):
        calls.append(1)
        return np.broadcast_to(H_VEC, x.shape).copy()

    n = int(round(t_end / dt))
    traj = [s]
    for k in range(n):
        s = integ.step(s, k * dt, dt, field)
        traj.append(s)
    assert len(calls) == n * integ.n_field_evals_per_step
    return np.arange(n + 1) * dt, np.array(traj)


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_matches_closed_form(name):
    t, traj = run(name, 0.01, 10.0)
    ref = exact(t, 1.0, 0.3, H_VEC, ALPHA)
    err = np.abs(traj[:, 0] - ref).max()
    assert err < TOL[name], err


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_precession_frequency_and_relaxation_rate(name):
    """Rates fitted from the simulated trajectory equal h/(1+a^2) and a h/(1+a^2)."""
    alpha = 0.3
    t, traj = run(name, 0.005, 5.0, alpha=alpha)
    e1, e2, e3 = frame(H_VEC)
    s = traj[:, 0]
    th = np.arccos(np.clip(s @ e3, -1, 1))
    ph = np.unwrap(np.arctan2(s @ e2, s @ e1))
    hn = np.linalg.norm(H_VEC)
    omega = -np.polyfit(t, ph, 1)[0]
    rate = -np.polyfit(t, np.log(np.tan(th / 2)), 1)[0]
    assert omega == pytest.approx(hn / (1 + alpha**2), rel=1e-4)
    assert rate == pytest.approx(alpha * hn / (1 + alpha**2), rel=1e-4)


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_norm_preserved(name, rng):
    """|S| = 1 to 1e-14 over many steps with a strongly varying field."""
    s = rng.normal(size=(50, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    integ = make_integrator(name, 0.05)

    def field(x):  # nonlinear, site-coupled
        return 3.0 * np.roll(x, 1, axis=0) + np.cross(x, [0.0, 0.0, 2.0]) + [0.5, 0.0, 0.0]

    for k in range(2000):
        s = integ.step(s, k * 0.05, 0.05, field)
    assert np.abs(np.linalg.norm(s, axis=1) - 1).max() < 1e-14


def test_rhs_properties(rng):
    s = rng.normal(size=(20, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    h = rng.normal(size=(20, 3))
    a = 0.4
    ds = llg_rhs(s, h, a)
    # tangent, and solves the implicit Gilbert form dS/dt = S x H - a S x dS/dt
    np.testing.assert_allclose(np.einsum("ic,ic->i", s, ds), 0, atol=1e-15)
    np.testing.assert_allclose(ds, np.cross(s, h) - a * np.cross(s, ds), atol=1e-14)
    # damping lowers the Zeeman energy -H.S
    assert np.all(np.einsum("ic,ic->i", h, llg_rhs(s, h, 0.0)) == pytest.approx(0, abs=1e-14))
    assert np.all(np.einsum("ic,ic->i", h, ds) >= 0)


def test_zero_cells_stay_zero():
    s = np.zeros((4, 3))
    s[1] = [0, 0, 1.0]
    s[2] = [1.0, 0, 0]
    for name in INTEGRATORS:
        out = make_integrator(name, 0.1).step(s, 0, 0.1, lambda x: np.ones_like(x))
        assert np.all(out[[0, 3]] == 0)
        assert np.all(np.isfinite(out))


def test_registry_errors():
    with pytest.raises(HpcspinError):
        make_integrator("euler")
    with pytest.raises(HpcspinError):
        make_integrator("rk4", alpha=-0.1)
