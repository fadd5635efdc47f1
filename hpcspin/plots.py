"""PNG plots of trajectories and comparisons (matplotlib, no display needed)."""

from __future__ import annotations

import os

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_trajectory(traj: dict, outdir: str, title: str = "") -> list[str]:
    """Wall centre X(t) and the S^z(x, t) texture of one run; returns the PNG paths."""
    plt = _plt()
    t, x = np.asarray(traj["time"]), np.asarray(traj["wall_x"])
    spins = np.asarray(traj["spins"])
    L, W = (int(v) for v in traj.get("lattice_shape", (spins.shape[1], 1)))
    sz = spins[..., 2].reshape(len(t), L, W).mean(axis=2)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    a.plot(t, x, lw=1.5)
    a.set_xlabel("time  (hbar/t)")
    a.set_ylabel("wall centre X  (lattice constants)")
    a.grid(alpha=0.3)
    im = b.imshow(
        sz.T,
        aspect="auto",
        origin="lower",
        cmap="RdBu_r",
        vmin=-1,
        vmax=1,
        extent=[t[0], t[-1] if len(t) > 1 else t[0] + 1, -0.5, L - 0.5],
    )
    b.plot(t, x, "k--", lw=0.8, label="X(t)")
    b.set_xlabel("time  (hbar/t)")
    b.set_ylabel("site x")
    b.legend(loc="upper left", fontsize=8)
    fig.colorbar(im, ax=b, label="S^z (row average)")
    fig.suptitle(title)
    path = os.path.join(outdir, "trajectory.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot_comparison(results: dict, outdir: str, name: str = "comparison") -> list[str]:
    """X(t) of several methods and biases, and v(V) per method.

    Args:
        results: {method: {bias: {"time": t, "wall_x": X, "velocity": v}}}.
        outdir: where the PNGs go.
        name: file name stem.
    """
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    styles = {0: "-", 1: "--", 2: ":", 3: "-."}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    biases = sorted({v for m in results.values() for v in m})
    for k, (method, runs) in enumerate(results.items()):
        for j, bias in enumerate(biases):
            if bias not in runs:
                continue
            r = runs[bias]
            a.plot(
                r["time"],
                r["wall_x"],
                styles[k % 4],
                color=colors[j % len(colors)],
                label=f"{method}, V = {bias:+g}",
            )
        vs = [(v, runs[v]["velocity"]) for v in biases if v in runs]
        b.plot([p[0] for p in vs], [p[1] for p in vs], "o" + styles[k % 4], label=method)
    a.set_xlabel("time after the bias is switched on  (hbar/t)")
    a.set_ylabel("wall centre X")
    a.legend(fontsize=7, ncol=2)
    a.grid(alpha=0.3)
    b.axhline(0, color="k", lw=0.5)
    b.set_xlabel("bias V  (t/e)")
    b.set_ylabel("wall velocity v  (sites per hbar/t)")
    b.legend()
    b.grid(alpha=0.3)
    path = os.path.join(outdir, f"{name}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
