"""Wall centre, velocity fit, magnetisation and the initial Bloch/Neel wall."""

import numpy as np
import pytest

from hpcspin.dynamics import (
    domain_wall,
    magnetisation,
    sz_profile,
    wall_centre,
    wall_centres,
    wall_velocity,
)
from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice


def test_wall_centre_linear_interpolation():
    sz = np.array([1.0, 0.9, 0.3, -0.1, -0.8, -1.0])
    # crossing between sites 2 and 3: 2 + 0.3 / 0.4
    assert wall_centre(sz) == pytest.approx(2.75)
    # a tanh profile: exact centre recovered to the interpolation error
    x = np.arange(60)
    assert wall_centre(-np.tanh((x - 29.5) / 2.2)) == pytest.approx(29.5, abs=1e-12)
    assert wall_centre(-np.tanh((x - 31.3) / 2.2)) == pytest.approx(31.3, abs=1e-2)


def test_wall_centres_several_and_tracking():
    sz = np.array([1, 1, -1, -1, 1, 1, -1], dtype=float)
    np.testing.assert_allclose(wall_centres(sz), [1.5, 3.5, 5.5])
    assert wall_centre(sz) == 1.5
    assert wall_centre(sz, previous=3.2) == 3.5
    assert wall_centre(sz, previous=9.0) == 5.5
    assert np.isnan(wall_centre(np.ones(5)))
    assert wall_centres(np.ones(5)).size == 0


def test_exact_zero_counted_once():
    assert wall_centres(np.array([1.0, 0.0, -1.0])).tolist() == [1.0]
    assert wall_centres(np.array([-1.0, 0.0, 1.0])).tolist() == [1.0]


def test_domain_wall_profile_spec7():
    n, x0, lam = 60, 29.5, np.sqrt(5.0)
    s = domain_wall(n, x0, lam)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0)
    assert s[0, 2] > 0.99999 and s[-1, 2] < -0.99999
    np.testing.assert_array_equal(s[:, 0], 0.0)  # Bloch: y-z plane
    assert np.all(s[:, 1] >= 0)
    th = 2 * np.arctan(np.exp((np.arange(n) - x0) / lam))
    np.testing.assert_allclose(s[:, 2], np.cos(th), atol=1e-15)
    # cos(2 atan e^u) = -tanh(u): symmetric about the middle bond
    np.testing.assert_allclose(s[:, 2], -np.tanh((np.arange(n) - x0) / lam), atol=1e-14)
    assert wall_centre(s[:, 2]) == pytest.approx(29.5, abs=1e-12)
    neel = domain_wall(n, x0, lam, kind="neel")
    np.testing.assert_allclose(neel[:, 1], 0.0, atol=1e-15)
    np.testing.assert_allclose(neel[:, 0], s[:, 1], atol=1e-15)
    with pytest.raises(HpcspinError):
        domain_wall(n, x0, lam, kind="twisted")


def test_domain_wall_on_strip_and_profile():
    lat = make_lattice("triangular", 20, 3, periodic=True)
    s = domain_wall(lat, 9.5, 2.0)
    prof = sz_profile(s, lat)
    assert prof.shape == (20,)
    np.testing.assert_allclose(prof, domain_wall(20, 9.5, 2.0)[:, 2], atol=1e-15)
    assert wall_centre(prof) == pytest.approx(9.5, abs=1e-12)


def test_wall_velocity_fit():
    t = np.linspace(0, 500, 501)
    x = 29.5 + 0.024 * t + 1e-3 * np.sin(t)
    x[:100] = np.nan  # not yet tracked: ignored
    assert wall_velocity(t, x, 250, 500) == pytest.approx(0.024, abs=1e-5)
    with pytest.raises(HpcspinError):
        wall_velocity(t, x, 10, 20)


def test_magnetisation():
    s = domain_wall(60, 29.5, 2.0)
    m = magnetisation(s)
    assert m[2] == pytest.approx(0.0, abs=1e-12)  # antisymmetric profile
    assert m[1] == pytest.approx(np.pi * 2.0, rel=1e-6)  # sum sech = pi lambda
    valid = np.zeros(60, bool)
    valid[:10] = True
    np.testing.assert_allclose(magnetisation(s, valid), s[:10].sum(axis=0))
