"""PNG plots of trajectories, comparisons and field fits (matplotlib, no display needed).

Every axis carries its unit (t = 1 energies, hbar/t times, lattice constants a);
legends sit outside the data; heat maps of long or large runs are block-averaged to
at most ``MAX_PIXELS`` per axis, so the plots stay readable and small for 40 walls
or 1e6 sites.
"""

from __future__ import annotations

import os
import textwrap

import numpy as np

from hpcspin.io import keys

#: Largest heat-map size (time bins, columns): larger data are block-averaged.
MAX_PIXELS = (800, 600)
#: Walls drawn with a legend entry each; more are drawn without a legend.
MAX_LEGEND_WALLS = 8


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def block_average(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Average 2D ``a`` over blocks so that it is at most ``shape`` (whole blocks only).

    Rows (or columns) beyond the last whole block are dropped: at most one block less
    than a factor of two of the data, which a plot of many hundreds of bins does not
    show.
    """
    fr, fc = (max(1, -(-n // m)) for n, m in zip(a.shape, shape, strict=True))
    r, c = a.shape[0] // fr * fr, a.shape[1] // fc * fc
    if (fr, fc) == (1, 1):
        return a
    return a[:r, :c].reshape(r // fr, fr, c // fc, fc).mean(axis=(1, 3))


def wall_tracks(traj: dict) -> np.ndarray:
    """(n_frames, n_walls) positions of every wall (``wall_x`` for older files)."""
    from hpcspin.dynamics.observables import link_walls

    centres = traj.get(keys.WALL_CENTRES)
    if centres is None:
        return np.asarray(traj[keys.WALL_X], dtype=float)[:, None]
    return link_walls(centres)


def plot_trajectory(traj: dict, outdir: str, title: str = "") -> list[str]:
    """Every wall's X(t) and the S^z(x, t) texture of one run; returns the PNG path."""
    plt = _plt()
    t = np.asarray(traj[keys.TIME])
    spins = np.asarray(traj[keys.SPINS])
    L, W = (int(v) for v in traj.get("lattice_shape", (spins.shape[1], 1)))
    sz = spins[..., 2].reshape(len(t), L, W).mean(axis=2)
    tracks = wall_tracks(traj)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
    _tracks_panel(a, t, tracks)
    img = block_average(sz, MAX_PIXELS)
    t1 = t[-1] if len(t) > 1 else t[0] + 1
    a.set_xlim(t[0], t1)
    if tracks.shape[1] > 1:  # several walls: the whole sample; one wall: its motion
        a.set_ylim(-0.5, L - 0.5)
    im = b.imshow(
        img.T,
        aspect="auto",
        origin="lower",
        cmap="RdBu_r",
        vmin=-1,
        vmax=1,
        extent=[t[0], t1, -0.5, L - 0.5],
        interpolation="nearest",
    )
    if tracks.shape[1] <= MAX_LEGEND_WALLS:
        b.plot(t, tracks, "k--", lw=0.8)
    b.set_xlabel("time  (hbar/t)")
    b.set_ylabel("column x  (lattice constants)")
    note = "" if img.shape == sz.shape else f", block-averaged to {img.shape[0]} x {img.shape[1]}"
    b.set_title(f"S^z(x, t), row average{note}", fontsize=9)
    fig.colorbar(im, ax=b, label="S^z  (|S| = 1)")
    if title:
        fig.suptitle(title)
    path = os.path.join(outdir, keys.TRAJECTORY_PNG)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def _tracks_panel(ax, t, tracks) -> None:
    n = tracks.shape[1]
    if n <= MAX_LEGEND_WALLS:
        for j in range(n):
            ax.plot(t, tracks[:, j], lw=1.5, label=f"wall {j}")
        if n > 1:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title("wall centre X(t)" if n == 1 else f"{n} wall centres", fontsize=9)
    else:  # many walls: thin lines in a colour sequence, no legend
        colors = _plt().cm.viridis(np.linspace(0, 1, n))
        for j in range(n):
            ax.plot(t, tracks[:, j], lw=0.7, color=colors[j])
        ax.set_title(f"{n} wall centres (colour: order of appearance)", fontsize=9)
    ax.set_xlabel("time  (hbar/t)")
    ax.set_ylabel("wall centre X  (lattice constants)")
    ax.grid(alpha=0.3)


def plot_comparison(results: dict, outdir: str, name: str = "comparison") -> list[str]:
    """X(t) of several methods and biases, and v(V) per method.

    Colour is the bias, line style the method: two short legends beside the axes
    instead of one entry per run over the data.

    Args:
        results: {method: {bias: {"time": t, "wall_x": X, "velocity": v}}}.
        outdir: where the PNGs go.
        name: file name stem.
    """
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    biases = sorted({v for m in results.values() for v in m})
    for k, (method, runs) in enumerate(results.items()):
        for j, bias in enumerate(biases):
            if bias in runs:
                r = runs[bias]
                a.plot(r["time"], r["wall_x"], styles[k % 4], color=colors[j % len(colors)])
        vs = np.array([(v, runs[v]["velocity"]) for v in biases if v in runs]).reshape(-1, 2)
        b.plot(vs[:, 0], vs[:, 1], markers[k % 4] + styles[k % 4], label=method, mfc="none")
    a.set_xlabel("time after the bias is switched on  (hbar/t)")
    a.set_ylabel("wall centre X  (lattice constants)")
    a.grid(alpha=0.3)
    by_bias = [Line2D([], [], color=colors[j % len(colors)]) for j in range(len(biases))]
    by_method = [Line2D([], [], ls=styles[k % 4], color="k") for k in range(len(results))]
    leg = a.legend(
        by_bias,
        [f"V = {v:+g}" for v in biases],
        title="bias (t/e)",
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    a.add_artist(leg)
    a.legend(
        by_method,
        list(results),
        title="forces",
        fontsize=7,
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        frameon=False,
    )
    b.axhline(0, color="k", lw=0.5)
    b.set_xlabel("bias V  (t/e)")
    b.set_ylabel("wall velocity v  (lattice constants per hbar/t)")
    b.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    b.grid(alpha=0.3)
    path = os.path.join(outdir, f"{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def r_squared(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - sum |p - t|^2 / sum |t - mean t|^2 of (..., 3) vectors (NaN for constant t).

    The mean is per Cartesian component over all sites and configurations, as in the
    R^2 of validation.json (:func:`hpcspin.ml.metrics.transverse_r2`).
    """
    p, t = np.reshape(pred, (-1, 3)), np.reshape(target, (-1, 3))
    ss_tot = float(np.sum((t - t.mean(axis=0)) ** 2))
    return 1.0 - float(np.sum((p - t) ** 2)) / ss_tot if ss_tot > 0 else float("nan")


def plot_field_parity(target: np.ndarray, preds: dict, clean: np.ndarray, path: str) -> str:
    """Parity of ML vs NEGF nonequilibrium fields, with R^2, and the error per site.

    Args:
        target: (n_cfg, N, 3) NEGF H(V) - H(0), transverse part.
        preds: {model label: (n_cfg, N, 3) ML prediction of the same, transverse part}.
        clean: (n_cfg,) bool, clean walls.
        path: PNG file.
    """
    plt = _plt()
    n = len(preds)
    fig, axes = plt.subplots(2, n, figsize=(4.4 * n, 8.0), squeeze=False, constrained_layout=True)
    lim = float(np.abs(target).max()) * 1.05 or 1.0
    for k, (label, pred) in enumerate(preds.items()):
        ax = axes[0, k]
        ax.plot(
            target[~clean].ravel(),
            pred[~clean].ravel(),
            ".",
            ms=1,
            alpha=0.3,
            label=f"other configurations, R^2 = {r_squared(pred[~clean], target[~clean]):.3f}",
        )
        ax.plot(
            target[clean].ravel(),
            pred[clean].ravel(),
            ".",
            ms=2,
            label=f"clean walls, R^2 = {r_squared(pred[clean], target[clean]):.3f}",
        )
        ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.5)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="NEGF  (t)", ylabel="ML  (t)")
        ax.set_title(label, fontsize=9)
        ax.legend(
            fontsize=7,
            markerscale=4,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            frameon=False,
        )
        err = np.sqrt(((pred - target) ** 2).sum(-1).mean(0))
        e = axes[1, k]
        e.plot(err, label="all configurations")
        e.plot(np.sqrt(((pred - target)[clean] ** 2).sum(-1).mean(0)), label="clean walls")
        e.set(xlabel="site i", ylabel="RMS error  (t)")
        e.legend(fontsize=7, frameon=False, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.15))
        e.grid(alpha=0.3)
    # one model leaves a narrow figure: wrap the long caption instead of clipping it
    caption = (
        "transverse part H - (H.S) S (what exerts a torque); each point: one component, one site"
    )
    caption = "\n".join(textwrap.wrap(caption, width=max(50, 38 * n)))
    fig.suptitle(f"Nonequilibrium field H(V) - H(0) on the held-out set\n{caption}", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
