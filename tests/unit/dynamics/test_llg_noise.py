"""Thermal field: decomposition independence, statistics, and the Boltzmann distribution.

Convention (noise.py, docs/dynamics.md): sigma^2 = 2 alpha T / dt per component, no
1/(1 + alpha^2). A single spin in a field B along z then samples exp(B S^z / T):
<S^z> = L(B/T) = coth(B/T) - T/B and <S^z^2> = 1 - 2 (T/B) L(B/T). At alpha = 1 the
other common convention (T -> T/(1+alpha^2)) would give <S^z> = 0.751 instead of 0.537.
"""

import numpy as np
import pytest

from hpcspin.dynamics import ThermalNoise, langevin_sigma, make_integrator, thermal_field
from hpcspin.dynamics.noise import BLOCK
from hpcspin.errors import HpcspinError


def test_same_field_for_any_split():
    n = 3 * BLOCK + 17
    idx = np.arange(n)
    whole = thermal_field(idx, 5, 1234, 0.7)
    assert whole.shape == (n, 3)
    # two ranks with an uneven cut inside a block
    cut = BLOCK + 300
    parts = np.vstack(
        [thermal_field(idx[:cut], 5, 1234, 0.7), thermal_field(idx[cut:], 5, 1234, 0.7)]
    )
    np.testing.assert_array_equal(parts, whole)
    # arbitrary order and a grid with ghost cells marked -1
    perm = np.random.default_rng(0).permutation(n)
    np.testing.assert_array_equal(thermal_field(perm, 5, 1234, 0.7), whole[perm])
    grid = np.full((4, 5), -1)
    grid[1:3, 1:4] = [[10, 11, 12], [2000, 2001, 2002]]
    g = thermal_field(grid, 5, 1234, 0.7)
    assert g.shape == (4, 5, 3)
    np.testing.assert_array_equal(g[grid < 0], 0.0)
    np.testing.assert_array_equal(g[1:3, 1:4].reshape(-1, 3), whole[[10, 11, 12, 2000, 2001, 2002]])


def test_independent_over_steps_seeds_streams():
    idx = np.arange(2 * BLOCK)
    a = thermal_field(idx, 0, 1, 1.0)
    for other in (
        thermal_field(idx, 1, 1, 1.0),
        thermal_field(idx, 0, 2, 1.0),
        thermal_field(idx, 0, 1, 1.0, stream=1),
    ):
        assert abs(np.corrcoef(a.ravel(), other.ravel())[0, 1]) < 0.05
    # blocks differ from each other
    assert abs(np.corrcoef(a[:BLOCK].ravel(), a[BLOCK:].ravel())[0, 1]) < 0.05


def test_gaussian_statistics():
    z = np.concatenate([thermal_field(np.arange(4096), k, 99, 1.0).ravel() for k in range(25)])
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert z.var() == pytest.approx(1.0, abs=0.01)
    assert np.mean(z**4) == pytest.approx(3.0, abs=0.05)
    assert thermal_field(np.arange(5), 0, 3, 2.5).std() > 0
    assert langevin_sigma(0.5, 0.2, 0.01) == pytest.approx(np.sqrt(20.0))


def test_bad_noise_input():
    with pytest.raises(HpcspinError):
        thermal_field(np.arange(3), -1, 0, 1.0)
    with pytest.raises(HpcspinError):
        langevin_sigma(0.1, 0.1, 0.0)


@pytest.mark.parametrize(
    "name,alpha,t_end",
    [("heun", 1.0, 30.0), ("heun", 0.3, 40.0), ("sib", 1.0, 30.0), ("depondt", 1.0, 30.0)],
)
def test_boltzmann_single_spin(name, alpha, t_end):
    """2000 independent spins, B = 1, T = 0.5, dt = 0.01; time average after t = 5.

    Measured (heun, alpha = 1): <S^z> = 0.540 (exact 0.5373), <S^z^2> = 0.465 (0.4627);
    the difference is statistics plus the O(dt) weak error.
    """
    n, b, temp, dt = 2000, 1.0, 0.5, 0.01
    idx = np.arange(n)
    noise = ThermalNoise(seed=7, alpha=alpha, temperature=temp, dt=dt)
    integ = make_integrator(name, alpha)
    s = np.tile([0.0, 0.0, 1.0], (n, 1))
    f = lambda x: np.broadcast_to([0.0, 0.0, b], x.shape)  # noqa: E731
    m1, m2 = [], []
    for k in range(int(round(t_end / dt))):
        s = integ.step(s, k * dt, dt, f, noise=noise.field(idx, k))
        if k * dt > 5.0:
            m1.append(s[:, 2].mean())
            m2.append((s[:, 2] ** 2).mean())
    lang = 1 / np.tanh(b / temp) - temp / b
    assert np.abs(np.linalg.norm(s, axis=1) - 1).max() < 1e-14
    assert np.mean(m1) == pytest.approx(lang, abs=0.01)
    assert np.mean(m2) == pytest.approx(1 - 2 * temp / b * lang, abs=0.01)
