"""Strip resonances followed along warm-started sequences (negf/pole_tracking.py)."""

import numpy as np
import pytest

from hpcspin.negf.contour import Segment
from hpcspin.negf.engine import ElectronParams, NEGFEngine
from hpcspin.negf.pole_tracking import PoleTracker, follow_grid
from hpcspin.negf.resonances import centre_band, strip_roots
from hpcspin.negf.warm import WarmStart

LO, HI = -2.09, 0.09


def _sorted(roots):
    order = np.lexsort((roots[0], roots[2]))
    return roots[0][order], roots[1][order], roots[2][order]


def test_tracked_roots_equal_a_fresh_search(tilted_walls):
    lat, walls = tilted_walls(4)
    eng = NEGFEngine(lat, ElectronParams(J=2.0))
    tracker = PoleTracker()
    system = eng.system(walls[0])
    ab, kd = centre_band(system)
    tracker.start(system, ab, kd, LO, HI, strip_roots(system, ab, kd, LO, HI))
    moved = 0.0
    for spins in walls[1:]:
        system = eng.system(spins)
        ab, kd = centre_band(system)
        old = tracker.roots[0].copy()
        got = _sorted(tracker.follow(system, ab, kd, LO, HI))
        fresh = _sorted(strip_roots(system, ab, kd, LO, HI))
        assert np.array_equal(got[2], fresh[2])
        assert np.abs(got[0] - fresh[0]).max() < 1e-10
        assert np.all(np.abs(got[1] - fresh[1]) <= 1e-5 * fresh[1] + 1e-15)
        assert np.sum(fresh[1] < 1e-5) >= 4  # the resonances the grid must resolve
        moved = max(moved, np.abs(np.sort(got[0]) - np.sort(old)).max())
    assert moved > 1e-6  # the roots did move (by far more than their widths)
    assert tracker.counts == {"search": 1, "tracked": 4, "lost": 0}


def test_tracking_gives_up_on_a_different_window_or_texture(tilted_walls):
    lat, walls = tilted_walls(0)
    eng = NEGFEngine(lat, ElectronParams(J=2.0))
    system = eng.system(walls[0])
    ab, kd = centre_band(system)
    tracker = PoleTracker()
    tracker.start(system, ab, kd, LO, HI, strip_roots(system, ab, kd, LO, HI))
    assert tracker.follow(system, ab, kd, LO, HI + 0.1) is None  # another window
    tracker.start(system, ab, kd, LO, HI, strip_roots(system, ab, kd, LO, HI))
    rng = np.random.default_rng(1)
    other = rng.normal(size=walls[0].shape)
    system = eng.system(other / np.linalg.norm(other, axis=1)[:, None])
    ab, kd = centre_band(system)
    assert tracker.follow(system, ab, kd, LO, HI) is None  # roots jump, merge or appear
    assert tracker.counts["lost"] == 1 and tracker.roots is None


def _ladder_segment(x, g):
    seg = Segment("window", np.array([0.0, 1.0]), shape="cos", origin=-1.0, width=1.0)
    d = g * 4.0 ** np.arange(14)
    seg.add_energies(np.concatenate([[x], x - d[d < 0.05], x + d[d < 0.05], [-0.7, -0.3]]))
    return seg


def _energies(seg, s):
    return seg.origin + 0.5 * seg.width * (1 - np.cos(np.pi * s))


@pytest.mark.parametrize("new_width, grows", [(2e-9, False), (1e-11, True)])
def test_follow_grid_moves_the_ladder_with_the_resonance(new_width, grows):
    x, g, d = -0.5, 1e-9, 3e-5
    seg = _ladder_segment(x, g)
    old = (np.array([x]), np.array([g]), np.array([7]))
    new = (np.array([x + d]), np.array([new_width]), np.array([7]))
    (bp,) = follow_grid([seg], [seg.breakpoints], old, new, narrow=1e-2)
    e = _energies(seg, bp)
    assert np.all(np.diff(bp) > 0) and bp[0] == 0.0 and bp[-1] == 1.0
    assert np.abs(e - (x + d)).min() < 1e-12  # the centre moved onto the resonance
    inner = np.sort(np.abs(e - (x + d)))[1:3]  # the first rungs on both sides
    assert np.all(inner < 4 * new_width) and np.all(inner > 0.2 * new_width)
    assert (len(bp) > len(seg.breakpoints)) == grows  # only missing inner rungs added
    far = _energies(seg, seg.breakpoints)
    kept = np.abs(far - x) > 0.05
    assert np.allclose(np.sort(e)[-len(far[kept & (far > x)]) :], far[kept & (far > x)])


def test_warm_tracked_evaluations_agree_with_cold_ones(tilted_walls):
    lat, walls = tilted_walls(3, step=1e-3)
    tol = 1e-6
    eng = NEGFEngine(lat, ElectronParams(J=2.0, bias=0.5), tol=tol, scheme="fast")
    warm = WarmStart()
    cold_points = None
    for spins in walls:
        a = eng.compute(spins, warm=warm)
        b = eng.compute(spins)
        assert np.abs(a.spin_density - b.spin_density).max() < 3 * tol
        cold_points = cold_points or b.n_energy_points
        assert a.n_energy_points < 1.3 * cold_points  # the grid follows, it does not grow
    assert warm.poles.counts["tracked"] == 3 and warm.counts == {"cold": 1, "warm": 3}


def test_a_lost_track_makes_the_evaluation_a_cold_start(tilted_walls):
    lat, walls = tilted_walls(0)
    rng = np.random.default_rng(7)
    other = rng.normal(size=walls[0].shape)
    other /= np.linalg.norm(other, axis=1)[:, None]
    p = ElectronParams(J=2.0, bias=0.5)
    eng = NEGFEngine(lat, p, tol=1e-5, scheme="fast")
    warm = WarmStart()
    eng.compute(walls[0], warm=warm)
    a = eng.compute(other, warm=warm)  # every resonance elsewhere: search again
    b = NEGFEngine(lat, p, tol=1e-5, scheme="fast").compute(other)
    assert warm.poles.counts == {"search": 2, "tracked": 0, "lost": 1}
    assert warm.counts == {"cold": 2, "warm": 0}
    assert np.array_equal(a.spin_density, b.spin_density)
    assert a.n_energy_points == b.n_energy_points
