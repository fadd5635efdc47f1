"""Narrow strip resonances mapped into the window variable (negf/pole_map.py)."""

import numpy as np
import pytest

from hpcspin.negf.contour import Segment
from hpcspin.negf.engine import ElectronParams, NEGFEngine
from hpcspin.negf.pole_map import PoleMap, follow_v
from hpcspin.negf.pole_tracking import map_cold, map_warm
from hpcspin.negf.quadrature import adaptive_integrate
from hpcspin.negf.resonances import ladder
from hpcspin.negf.warm import WarmStart

A, W = -1.8, 1.0  # the window piece [A, A + W]
ER = np.array([-1.7, -1.5, -1.49, -1.3, -1.05, -0.95, -0.85])
GAM = np.array([1e-10, 1e-8, 1e-6, 1e-4, 3e-9, 1e-7, 1e-5])
AMP = np.linspace(0.02, 0.1, len(ER))
FANO = np.linspace(-1.0, 1.0, len(ER)) * 1e-2 * np.sqrt(GAM)


def _integrand(e):
    """Square-root onset at A times a smooth background, Lorentzians with Fano parts."""
    bg = 0.1 * np.sqrt(np.maximum(e - A, 0.0)) * (1 + 0.3 * np.sin(5 * e))
    x = e[:, None] - ER
    res = (AMP * GAM / (2 * np.pi) + FANO * x) / (x**2 + GAM**2 / 4)
    return np.stack([bg + res.sum(axis=1), 0.5 * bg + res @ np.linspace(-1, 1, len(ER))], 1)


def _exact():
    from scipy.integrate import quad

    def bg(e):
        return 0.1 * np.sqrt(max(e - A, 0.0)) * (1 + 0.3 * np.sin(5 * e))

    b = quad(bg, A, A + W, epsabs=1e-15, epsrel=1e-14, limit=200)[0]
    lo, hi = A - ER, A + W - ER
    lor = AMP / np.pi * (np.arctan(2 * hi / GAM) - np.arctan(2 * lo / GAM))
    fano = 0.5 * FANO * (np.log(hi**2 + GAM**2 / 4) - np.log(lo**2 + GAM**2 / 4))
    r = lor + fano
    return np.array([b + r.sum(), 0.5 * b + r @ np.linspace(-1, 1, len(ER))])


def _segment():
    seg = Segment("window", np.array([0.0, 1.0]), shape="cos", origin=A, width=W)
    seg.add_energies(np.linspace(A, A + W, 11)[1:-1] + 0.0123)  # off the resonances
    return seg


def _integrate(seg, tol):
    def func(k, u):
        z, dz = seg.map(u)
        return _integrand(z.real) * dz.real[:, None]

    return adaptive_integrate(func, [seg.breakpoints], tol)


def test_inverse_and_density_of_the_map():
    pm = PoleMap.build([0.2, 0.35, 0.351, 0.9], [1e-10, 3e-9, 1e-6, 3e-3])
    s = np.linspace(0.0, 1.0, 20001)
    v = pm.inverse(s)
    assert v[0] == 0.0 and v[-1] == 1.0 and np.all(np.diff(v) > 0)
    assert pm.forward(0.0) == 0.0 and abs(pm.forward(1.0) - 1.0) < 1e-15
    # S(v) = s to the resolution of v (a few ulps times the steepest density)
    assert np.all(np.abs(pm.forward(v) - s) <= 8e-16 * pm.density(v) + 4e-16)
    x = np.linspace(0.01, 0.99, 97)
    fd = (pm.forward(x + 1e-7) - pm.forward(x - 1e-7)) / 2e-7
    assert np.allclose(fd, pm.density(x), rtol=1e-6)


@pytest.mark.parametrize("tol", [1e-4, 1e-6])
def test_lorentzians_with_background_to_tol_with_fewer_points(tol):
    exact = _exact()
    seg = _segment()
    roots = (ER, GAM, np.arange(len(ER)))
    map_cold([seg], roots, 1e-2)  # the engine's seeds (scheme fast, strips)
    assert len(seg.poles) == len(ER)
    q = _integrate(seg, tol)
    assert q.converged and np.abs(q.value - exact).max() < tol
    graded = _segment()  # the graded ladders (ratio 16) of the plain variable
    graded.add_energies([p for p, _, _ in ladder(ER, GAM, 1e-2, 0.05, 16.0)])
    g = _integrate(graded, tol)
    assert np.abs(g.value - exact).max() < tol
    assert q.n_points < 0.85 * g.n_points
    if tol == 1e-4:  # the narrowest resonance: a core and two junction intervals
        e = seg.map(q.breakpoints[0])[0].real
        assert np.sum(np.abs(e - ER[0]) < 1e-6) <= 4


def test_set_poles_keeps_the_energies_of_the_breakpoints():
    seg = _segment()
    e0 = seg.map(seg.breakpoints)[0].real
    seg.set_poles([(-1.5, 1e-9, 3), (-1.2, 1e-6, 5)])
    assert seg.pole_map is not None and len(seg.breakpoints) == 11
    assert np.allclose(seg.map(seg.breakpoints)[0].real, e0, rtol=0, atol=1e-13)
    assert np.allclose(seg.to_param(e0[1:-1]), seg.breakpoints[1:-1], atol=1e-13)
    seg.set_poles([])
    assert seg.pole_map is None and np.allclose(seg.breakpoints, seg.to_v(e0), atol=1e-13)


def test_follow_v_scales_the_core_and_translates_beyond():
    old = PoleMap.build([0.4], [1e-9])
    new = PoleMap.build([0.4 + 3e-5], [4e-9])
    yo, yn = old.junctions()[0], new.junctions()[0]
    v = np.array([0.1, 0.4 - yo, 0.4 - yo / 64, 0.4, 0.4 + yo, 0.4 + 0.1, 0.9])
    got = follow_v(v, old, new, np.array([0.2]))
    assert got[3] == new.vr[0]  # centre onto the centre
    assert np.allclose(got[[1, 4]], new.vr[0] + np.array([-yn, yn]), rtol=0, atol=1e-15)
    assert abs(got[2] - (new.vr[0] - yn / 64)) < 1e-15
    assert got[0] == v[0] and got[6] == v[6]  # beyond the grading range: unchanged
    assert 0.4 + 0.1 < got[5] < 0.4 + 0.1 + 3e-5 + (yn - yo)  # tapered translation
    assert follow_v(v, old, PoleMap.build([0.75], [1e-9]), np.array([0.2])) is None


def test_mapped_strip_wall_against_a_tight_reference(tilted_walls):
    lat, walls = tilted_walls(3, step=1e-3)
    p = ElectronParams(J=2.0, bias=0.5)
    ref = NEGFEngine(lat, p, tol=1e-9, scheme="fast")
    ref.map_poles = False  # the graded ladders
    tol = 1e-5
    eng = NEGFEngine(lat, p, tol=tol, scheme="fast")
    warm = WarmStart()
    for spins in walls:
        r = ref.compute(spins).spin_density
        cold = eng.compute(spins)
        assert np.abs(cold.spin_density - r).max() < tol
        a = eng.compute(spins, warm=warm)
        assert np.abs(a.spin_density - r).max() < tol
        assert sum(len(x) for x in warm.segment_poles) >= 4  # the narrow ones are mapped
    assert warm.counts == {"cold": 1, "warm": 3}


def test_map_warm_goes_cold_when_the_mapped_set_changes():
    seg = _segment()
    roots = (np.array([-1.5, -1.2]), np.array([1e-9, 1e-6]), np.array([3, 5]))
    map_cold([seg], roots, 1e-2)
    assert len(seg.poles) == 2
    moved = (roots[0] + 1e-5, roots[1] * 2, roots[2])
    fresh = _segment()
    (bp,) = map_warm([fresh], [seg.breakpoints], [seg.poles], moved, 1e-2)
    assert len(bp) == len(seg.breakpoints) and np.all(np.diff(bp) > 0)
    e = fresh.map(bp)[0].real
    for x, g in zip(*moved[:2]):  # the core's two ends moved with the resonance
        d = np.sort(np.abs(e - x))[:2]
        assert d[1] - d[0] < 1e-5 * d[0] and d[0] < 1e3 * g
    wide = (roots[0], np.array([1e-9, 5e-2]), roots[2])  # one root no longer narrow
    assert map_warm([_segment()], [seg.breakpoints], [seg.poles], wide, 1e-2) is None
