"""The calibrated window error estimate (quadrature.calibrated_error, estimate="calibrated")."""

import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf import quadrature as Q


def _panel(f, a, b):
    """K15 value, |K15 - G7| and the calibrated estimate of one panel of a scalar f."""
    h = 0.5 * (b - a)
    v = f(0.5 * (a + b) + h * Q.GK_NODES)[None, :, None]
    k = h * np.einsum("j,ijm->im", Q.GK_WEIGHTS, v)
    d = np.abs(k - h * np.einsum("j,ijm->im", Q.GAUSS_WEIGHTS, v))
    return k[0, 0], d[0, 0], Q.calibrated_error(v, np.array([h]), d)[0, 0]


@pytest.mark.parametrize("eps", [0.3, 0.1, 0.05, 0.02])
@pytest.mark.parametrize("a,b", [(-1.0, 1.0), (0.1, 1.1), (-0.3, 0.7)])
def test_estimate_bounds_the_kronrod_error_of_resonances(eps, a, b):
    """Lorentzians (a resonance of width eps): the true K15 error <= estimate <= |K - G|,
    and the estimate is within 400x of the truth (measured 1.2-350x) where |K - G| is up
    to 1e5x off."""
    k, d, est = _panel(lambda x: eps / (x * x + eps * eps), a, b)
    true = abs(k - (np.arctan(b / eps) - np.arctan(a / eps)))
    assert true <= est <= d
    assert est <= 400 * true


def test_estimate_at_the_rounding_level():
    """A polynomial K15 integrates exactly: the estimate is the rounding floor, not 0."""
    k, d, est = _panel(lambda x: 1 + x**3, 0.0, 1.0)
    assert abs(k - 1.25) < 1e-15 and 0 < est < 1e-13


def _wall_errors(lat, spins, tols, estimate):
    p = ElectronParams(bias=0.5)
    conv = NEGFEngine(lat, p, tol=1e-10, scheme="fast").compute(spins)
    out = []
    for tol in tols:
        r = NEGFEngine(lat, p, tol=tol, scheme="fast", estimate=estimate).compute(spins)
        err = max(
            np.abs(r.spin_density - conv.spin_density).max(),
            np.abs(r.charge_density - conv.charge_density).max(),
            abs(r.current - conv.current),
            np.abs(r.spin_current_left - conv.spin_current_left).max(),
        )
        out.append((err, r.n_energy_points))
    return out


def test_reference_wall_achieved_error_tracks_tol():
    """Reference wall, V = 0.5: the achieved error stays below tol and is closer to it
    than with the strict estimate, with fewer points (measured in docs/negf.md)."""
    lat = make_lattice("chain", 60)
    s = domain_wall(lat, 29.5, np.sqrt(5.0), "bloch")
    tols = (1e-4, 1e-6)
    cal = _wall_errors(lat, s, tols, "calibrated")
    strict = _wall_errors(lat, s, tols, "strict")
    for tol, (ec, pc), (es, ps) in zip(tols, cal, strict):
        assert tol / 300 < ec < tol
        assert ec > es and pc < ps


def test_strip_wall_never_above_tol():
    """A Bloch wall across a 3-wide square strip (several window segments)."""
    lat = make_lattice("square", 12, 3)
    s = domain_wall(lat, 5.5, 2.0, "bloch")
    err, _ = _wall_errors(lat, s, (1e-5,), "calibrated")[0]
    assert err < 1e-5


def test_unknown_estimate_is_refused():
    with pytest.raises(HpcspinError, match="estimate"):
        NEGFEngine(make_lattice("chain", 4), estimate="loose")
