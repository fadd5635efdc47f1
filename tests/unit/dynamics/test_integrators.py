"""Integrators on a classical chain: energy conservation, order in dt, building blocks."""

import numpy as np
import pytest

from hpcspin.dynamics import INTEGRATORS, integrate, make_integrator
from hpcspin.dynamics.integrators import cayley_step, rotate
from hpcspin.hamiltonian.spin import SpinParams, classical_energy, classical_field
from hpcspin.lattice import make_lattice

PARAMS = SpinParams(J_H=1.0, K=0.1, K_perp=0.5, B=(0.05, 0.0, 0.1))


def random_chain(seed, n):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 3))
    return make_lattice("chain", n), s / np.linalg.norm(s, axis=1, keepdims=True)


def max_energy_error(name, lat, s0, dt, t_end):
    f = lambda s: classical_field(s, lat, PARAMS)  # noqa: E731
    e0 = classical_energy(s0, lat, PARAMS)
    integ, s, dev = make_integrator(name, 0.0), s0.copy(), 0.0
    for k in range(int(round(t_end / dt))):
        s = integ.step(s, k * dt, dt, f)
        dev = max(dev, abs(classical_energy(s, lat, PARAMS) - e0))
    return dev / lat.n_sites


def test_energy_conservation_rk4():
    """alpha = 0, 40 random spins, t = 50, dt = 0.01: max |E(t) - E(0)| / N < 1e-8.

    Measured 1.9e-9 (|E(0)| / N = 0.17); at dt = 0.02 it is 5.9e-8 (error ~ dt^5).
    """
    lat, s0 = random_chain(1, 40)
    assert max_energy_error("rk4", lat, s0, 0.01, 50.0) < 1e-8


@pytest.mark.parametrize("name", ["sib", "depondt", "heun"])
def test_energy_conservation_second_order(name):
    """alpha = 0, t = 10: |dE| / N < 2e-5 at dt = 0.01 and shrinks at least as dt^2.

    Measured at dt = 0.01 / 0.005: sib 6.6e-6 / 1.3e-6, depondt 9.8e-6 / 1.3e-6,
    heun 9.8e-6 / 1.3e-6.
    """
    lat, s0 = random_chain(1, 40)
    e1 = max_energy_error(name, lat, s0, 0.01, 10.0)
    e2 = max_energy_error(name, lat, s0, 0.005, 10.0)
    assert e1 < 2e-5
    assert e1 / e2 > 3.5


ORDER_DTS = {
    "rk4": (0.2, 0.1, 0.05, 0.025),
    "sib": (0.1, 0.05, 0.025, 0.0125),
    "depondt": (0.1, 0.05, 0.025, 0.0125),
    "heun": (0.1, 0.05, 0.025, 0.0125),
}


@pytest.fixture(scope="module")
def order_reference():
    lat, s0 = random_chain(2, 20)
    f = lambda s: classical_field(s, lat, PARAMS)  # noqa: E731
    ref = integrate(make_integrator("rk4", 0.1), s0, 0.001, 2000, f)
    return s0, f, ref


@pytest.mark.parametrize("name", sorted(INTEGRATORS))
def test_order_of_convergence(name, order_reference):
    """Log-log slope of the error at t = 2 (alpha = 0.1) vs dt equals the order +- 0.3.

    Measured slopes: rk4 4.02, sib 1.99, depondt 1.98, heun 2.00.
    """
    s0, f, ref = order_reference
    dts = ORDER_DTS[name]
    errs = [
        np.abs(integrate(make_integrator(name, 0.1), s0, dt, int(round(2.0 / dt)), f) - ref).max()
        for dt in dts
    ]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - INTEGRATORS[name].order) < 0.3, (errs, slope)


def test_cayley_solves_implicit_midpoint(rng):
    s = rng.normal(size=(10, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    a = rng.normal(size=(10, 3)) * 3
    dt = 0.37
    s1 = cayley_step(s, a, dt)
    np.testing.assert_allclose(s1 - s, dt * np.cross(0.5 * (s + s1), a), atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(s1, axis=1), 1.0, atol=1e-15)


def test_rotate_is_exact_flow():
    """Rotation about z by angle w dt: (x, y) -> (x cos - y sin, x sin + y cos)."""
    s = np.array([[0.6, 0.0, 0.8]])
    out = rotate(s, np.array([[0.0, 0.0, 2.0]]), 0.3)
    np.testing.assert_allclose(out, [[0.6 * np.cos(0.6), 0.6 * np.sin(0.6), 0.8]], atol=1e-15)
