"""Initial textures of many walls, every wall centre per frame, per-wall velocities."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hpcspin
from hpcspin.dynamics import domain_wall as exported_domain_wall
from hpcspin.dynamics.observables import link_walls, sz_profile, wall_centres, wall_report
from hpcspin.hamiltonian.textures import alternating_walls, domain_wall, wall_centres_of
from hpcspin.io.trajectory import read_trajectory
from hpcspin.lattice import make_lattice


def old_builder(lattice, n_walls, lam, phi):
    """The multi-wall builder as it was (overflowing exp; phi as an angle)."""
    x = lattice.coords[:, 0].astype(float)
    theta = np.zeros_like(x)
    seg = lattice.length / n_walls
    for k in range(n_walls):
        with np.errstate(over="ignore"):
            th = 2.0 * np.arctan(np.exp((x - ((k + 0.5) * seg - 0.5)) / lam))
        lo, hi = k * seg - 0.5, (k + 1) * seg - 0.5
        m = (x > lo) & (x <= hi) if k else x <= hi
        theta[m] = th[m] if k % 2 == 0 else np.pi - th[m]
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], 1)


def test_forty_walls_without_overflow_warning():
    lat = make_lattice("chain", 4000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = alternating_walls(lat, 40, np.sqrt(5.0), "bloch")
    assert np.all(s[:, 0] == 0.0)  # Bloch: exactly in the y-z plane
    np.testing.assert_allclose(s, old_builder(lat, 40, np.sqrt(5.0), np.pi / 2), atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(s, axis=1), 1.0, atol=1e-15)
    found = wall_centres(sz_profile(s, lat))
    np.testing.assert_allclose(found, wall_centres_of(lat, 40), atol=0.02)


def test_single_wall_is_the_domain_wall_and_is_re_exported():
    lat = make_lattice("square", 30, 3)
    np.testing.assert_array_equal(
        alternating_walls(lat, 1, 2.0, "neel"), domain_wall(lat, 14.5, 2.0, "neel")
    )
    assert exported_domain_wall is domain_wall


def test_link_walls_and_report():
    t = np.arange(50.0)
    right, still, left = 20 + 0.7 * t, np.full(50, 5.0), 15 - 0.1 * t  # walls never cross
    c = np.stack([right, still, left], 1)
    c[right > 39, 0] = np.nan  # leaves a 40-column sample
    c = np.sort(c, axis=1)  # the trajectory stores each frame sorted
    tracks = link_walls(c)
    assert tracks.shape == (50, 3)
    r = wall_report(t, c, 40, 0.0, 49.0)
    np.testing.assert_allclose(sorted(r["wall_velocities"]), [-0.1, 0.0, 0.7], atol=1e-12)
    assert r["n_walls_start"] == 3 and r["n_walls_end"] == 2
    assert [w["side"] for w in r["walls_left"]] == ["right"]
    assert "left the sample" in r["warnings"][0]


@pytest.fixture
def classical(tmp_path):
    def run(out, **sets):
        base = {
            "run": {"task": "dynamics"},
            "spins": {"K_perp": 0.5, "B": [0.0, 0.0, 0.01]},
            "dynamics": {"forces": "none", "relax": False, "dt": 0.2},
            "output": {"dir": str(tmp_path / out), "every": 5, "plots": False},
        }
        return hpcspin.run(base, overrides=sets, log_level="WARNING")

    return run


def test_two_walls_move_apart_symmetrically(classical):
    # +z | -z | +z with B along +z: both +z domains grow, the walls approach each other
    r = classical("two", **{"lattice.length": 80, "spins.walls": 2, "dynamics.t_end": 20.0})
    v = r.summary["wall_velocities"]
    assert r.summary["n_walls_start"] == r.summary["n_walls_end"] == 2
    assert v[0] > 0.01 and v[1] < -0.01
    assert abs(v[0] + v[1]) < 1e-9 * abs(v[0])  # mirror symmetry of the texture
    traj = read_trajectory(r.files["trajectory"])
    assert traj["wall_centres"].shape == (len(traj["time"]), 2)
    np.testing.assert_allclose(traj["wall_centres"][0], [19.5, 59.5], atol=1e-9)


def test_a_wall_that_leaves_is_reported(classical, caplog):
    sets = {"lattice.length": 40, "spins.wall_center": 30.0, "dynamics.t_end": 80.0}
    r = classical("leave", **sets)
    assert r.summary["n_walls_start"] == 1 and r.summary["n_walls_end"] == 0
    assert r.summary["walls_left"][0]["side"] == "right"
