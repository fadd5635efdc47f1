"""Plots a referee accepts: units, legends beside the data, R^2, titles inside the figure,
heat maps that stay readable for many walls."""

from __future__ import annotations

import numpy as np
import pytest

from hpcspin import plots
from hpcspin.hamiltonian.textures import alternating_walls
from hpcspin.lattice import make_lattice

pytest.importorskip("matplotlib")


def _boxes_clear(fig, ax):
    """Legends of ``ax`` do not overlap its data area; texts lie inside the figure."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    area = ax.get_window_extent(r)
    for leg in [c for c in ax.get_children() if type(c).__name__ == "Legend"]:
        assert not leg.get_window_extent(r).overlaps(area)
    figbox = fig.bbox
    for text in fig.texts + [ax.title, ax.xaxis.label, ax.yaxis.label]:
        if text.get_text():
            bb = text.get_window_extent(r)
            assert figbox.x0 - 1 <= bb.x0 and bb.x1 <= figbox.x1 + 1, text.get_text()


def test_block_average():
    a = np.arange(24.0).reshape(6, 4)
    np.testing.assert_array_equal(plots.block_average(a, (10, 10)), a)
    b = plots.block_average(a, (3, 2))
    assert b.shape == (3, 2) and b[0, 0] == np.mean(a[:2, :2])
    assert plots.block_average(np.ones((1001, 7)), (800, 600)).shape == (500, 7)


def test_many_walls_trajectory_plot(tmp_path):
    lat = make_lattice("chain", 2000)
    s0 = alternating_walls(lat, 40, 2.0)
    n = 900
    t = np.linspace(0, 90, n)
    shift = np.arange(n) // 300  # walls step by one site every 300 frames
    spins = np.stack([np.roll(s0, k, axis=0) for k in shift])
    from hpcspin.dynamics.observables import sz_profile, wall_centres

    centres = np.array([wall_centres(sz_profile(s, lat)) for s in spins])
    traj = {"time": t, "spins": spins, "wall_x": centres[:, 0], "wall_centres": centres}
    (path,) = plots.plot_trajectory(traj, str(tmp_path), title="40 walls")
    assert path.endswith("trajectory.png")
    assert plots.wall_tracks(traj).shape == (n, 40)


def test_comparison_legends_beside_the_data(tmp_path):
    plt = plots._plt()
    t = np.linspace(0, 250, 50)
    res = {
        m: {v: {"time": t, "wall_x": 29.5 + 0.05 * v * t, "velocity": 0.05 * v} for v in
            (-0.5, -0.25, 0.0, 0.25, 0.5)}
        for m in ("negf", "ml E+vector", "ml EA")
    }  # fmt: skip
    captured = {}
    orig = plt.close
    plt.close = lambda fig: captured.setdefault("fig", fig)
    try:
        plots.plot_comparison(res, str(tmp_path), "velocity")
    finally:
        plt.close = orig
    fig = captured["fig"]
    for ax in fig.axes:
        _boxes_clear(fig, ax)
        assert "(" in ax.get_xlabel() and "(" in ax.get_ylabel()  # units
    assert (tmp_path / "velocity.png").is_file()


def test_parity_has_r2_units_and_a_title_inside(tmp_path):
    plt = plots._plt()
    rng = np.random.default_rng(0)
    target = rng.normal(size=(20, 10, 3))
    preds = {"E + vector": target + 0.1 * rng.normal(size=target.shape), "EA": 0 * target}
    clean = np.arange(20) < 5
    captured = {}
    orig = plt.close
    plt.close = lambda fig: captured.setdefault("fig", fig)
    try:
        plots.plot_field_parity(target, preds, clean, str(tmp_path / "p.png"))
    finally:
        plt.close = orig
    fig = captured["fig"]
    top = fig.axes[0]
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    r2 = plots.r_squared(preds["E + vector"][clean], target[clean])
    assert f"clean walls, R^2 = {r2:.3f}" in labels and r2 > 0.9
    assert top.get_xlabel() == "NEGF  (t)" and top.get_ylabel() == "ML  (t)"
    for ax in fig.axes:
        _boxes_clear(fig, ax)
    from hpcspin.ml.metrics import transverse_r2

    s = np.tile([0.0, 0.0, 1.0], (20, 10, 1))  # target already transverse to these
    target[..., 2] = 0.0
    pred = preds["E + vector"] * [1, 1, 0]
    assert abs(plots.r_squared(pred, target) - transverse_r2(pred, target, s)) < 1e-12
