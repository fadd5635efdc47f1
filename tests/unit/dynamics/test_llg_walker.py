"""Walker solution for a field-driven wall in the classical model (docs/physics.md, spin dynamics).

Chain, J_H = 1, easy axis z (K), hard axis x (K_perp = 0.5), field B along +z,
alpha = 0.1; S^z = +1 on the left. Continuum limit (A = J_H / 2, gamma = 1):
the wall tilts out of the y-z plane by psi with sin(2 psi) = B / (alpha K_perp), its
width shrinks to Delta = sqrt(A / (K + K_perp sin^2 psi)) and it moves at

    v = Delta B / alpha   (+x: the domain along B grows),

below the Walker field B_W = alpha K_perp = 0.05. The collective-coordinate equations
(2B = 2 dphi/dt + 2 alpha dX/dt / Delta, energy balance 2 B v = alpha sum |dS/dt|^2)
fix the sign and magnitude; the precession sense only decides the sign of psi.

On the lattice the wall is only a few sites wide and the velocity carries a
discreteness correction ~ 1/Delta^2, measured: -0.67 % at K = 0.025 (Delta = 4.4),
-1.32 % at K = 0.05, -2.71 % at K = 0.1 (Delta = 2.2); v is converged in dt
(rk4, dt = 0.2 vs 0.1: identical to 1e-6).
"""

import numpy as np
import pytest

from hpcspin.dynamics import INTEGRATORS, domain_wall, make_integrator, wall_centre, wall_velocity
from hpcspin.hamiltonian.spin import SpinParams, classical_field
from hpcspin.lattice import make_lattice

ALPHA, K_PERP, B = 0.1, 0.5, 0.005


def walker(K, b):
    sin2psi = abs(b) / (ALPHA * K_PERP)
    sin2 = (1 - np.sqrt(1 - sin2psi**2)) / 2
    delta = np.sqrt(0.5 / (K + K_PERP * sin2))
    return delta * b / ALPHA, 0.5 * np.arcsin(sin2psi)


def drive(K, b, n, x0, t_end, dt=0.2, name="rk4"):
    lat = make_lattice("chain", n)
    p = SpinParams(J_H=1.0, K=K, K_perp=K_PERP, B=(0.0, 0.0, b))
    s = domain_wall(n, x0, np.sqrt(0.5 / K), kind="bloch")
    integ = make_integrator(name, ALPHA)
    f = lambda x: classical_field(x, lat, p)  # noqa: E731
    ts, xs, X = [], [], None
    for k in range(int(round(t_end / dt))):
        s = integ.step(s, k * dt, dt, f)
        X = wall_centre(s[:, 2], X)
        ts.append((k + 1) * dt)
        xs.append(X)
    v = wall_velocity(ts, xs, t_end / 2, t_end)
    # tilt out of the y-z plane at the centre
    i = int(np.argmin(np.abs(s[:, 2])))
    psi = abs(np.pi / 2 - abs(np.arctan2(s[i, 1], s[i, 0])))
    return v, psi, xs[-1]


@pytest.fixture(scope="module")
def runs():
    return {
        0.025: drive(0.025, B, 300, 75.0, 300.0),
        0.1: drive(0.1, B, 200, 60.0, 300.0),
    }


def test_walker_velocity_wide_wall(runs):
    """Delta = 4.4 sites: within 1 % of the closed form (measured -0.67 %)."""
    v, psi, x_end = runs[0.025]
    vw, psiw = walker(0.025, B)
    assert v > 0
    assert v == pytest.approx(vw, rel=0.01)
    assert psi == pytest.approx(psiw, rel=0.05)
    assert x_end < 300 - 30  # stayed away from the end


def test_walker_velocity_K01_and_lattice_correction(runs):
    """K = 0.1 (reference anisotropy): within 3.5 % (measured -2.7 %); the deviation
    scales as 1/Delta^2 (factor 4 between K = 0.025 and 0.1), i.e. a lattice effect."""
    v, psi, _ = runs[0.1]
    vw, psiw = walker(0.1, B)
    assert v == pytest.approx(vw, rel=0.035)
    assert psi == pytest.approx(psiw, rel=0.05)
    dev_wide = runs[0.025][0] / walker(0.025, B)[0] - 1
    dev_narrow = v / vw - 1
    assert dev_narrow < 0 and dev_wide < 0
    assert 3.0 < dev_narrow / dev_wide < 5.0


def test_walker_reverses_with_field(runs):
    v, _, _ = drive(0.1, -B, 200, 140.0, 300.0)
    assert v == pytest.approx(-runs[0.1][0], rel=1e-3)


def test_above_walker_breakdown_slower():
    """B = 4 B_W: the wall precesses and its mean velocity falls far below Delta B / alpha."""
    b = 4 * ALPHA * K_PERP
    v, _, _ = drive(0.1, b, 200, 60.0, 200.0)
    assert 0 < v < 0.5 * np.sqrt(5.0) * b / ALPHA


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_velocity_converged_at_large_dt(name, runs):
    """Every scheme at dt = 0.2 gives the rk4 (dt = 0.2) velocity to 1e-5 relative.

    Measured: rk4 dt 0.1 / 0.4: 2e-7 / 3e-7; heun 1e-7; sib 1.3e-6; depondt 5.6e-6.
    Without the transverse projection in sib / depondt the error was 5.7 % / 4.8 %.
    """
    v, _, _ = drive(0.1, B, 200, 60.0, 300.0, dt=0.1 if name == "rk4" else 0.2, name=name)
    assert v == pytest.approx(runs[0.1][0], rel=1e-5)
