"""The wall experiment's NEGF checks on strips, for the validate task's velocity report.

On the relaxed wall (the first frame of an NEGF-driven run), with single NEGF
evaluations at +V and -V for every bias of the deck:

* torque balance: the net torque sum_i S_i x H_i equals the spin current the wall
  absorbs from the leads, (j^L - j^R)/2 (:func:`hpcspin.negf.observables.absorbed_spin_current`);
* drive symmetry: H(-V) equals the image of H(V) under the strip's mirror (square) or
  in-plane pi rotation (triangular) with a pi spin rotation
  (:func:`hpcspin.negf.observables.drive_symmetry`);
* v_T = T_z / (2 W (1 + alpha^2)): the velocity of a rigid wall that turns the net
  z-torque into translation (W spins flip per column), the strip's counterpart of the
  chain's I / (2 (1 + alpha^2)).
* each model's T_z of its current-induced field H(V) - H(0) on the same wall, relative
  to NEGF's: over a run in which the wall moves less than a column the velocity
  follows this torque, so it tells in seconds what the driven run tells in minutes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from hpcspin.deck.schema import RunConfig
from hpcspin.io import keys
from hpcspin.io.trajectory import read_trajectory
from hpcspin.lattice import Lattice
from hpcspin.log import get_logger

log = get_logger("validate")


def relaxed_wall(
    out: str, jobs: list[tuple[str, str, float]], run_dir: Callable[[str, str, float], str]
) -> np.ndarray | None:
    """The relaxed wall: the first frame of the NEGF run at the largest |V| (None: none)."""
    negf = sorted((abs(b), b) for label, _, b in jobs if label == "negf")
    if not negf:
        return None
    path = os.path.join(run_dir(out, "negf", negf[-1][1]), keys.TRAJECTORY_FILE)
    return np.asarray(read_trajectory(path)["spins"][0], float)


def model_torques(
    models: dict, lattice: Lattice, spins: np.ndarray, bias: float, mu: float
) -> dict[str, float]:
    """T_z of each model's H(V) - H(0) on ``spins``, by label ({label: ForceModel})."""
    from hpcspin.negf.observables import net_torque

    out = {}
    for label, model in models.items():
        h = [
            np.asarray(model.field(spins[None], lattice, {"bias": [v], "mu": [mu]}))[0]
            for v in (bias, 0.0)
        ]
        out[label] = float(net_torque(spins, h[0] - h[1])[2])
    return out


def strip_checks(
    cfg: RunConfig,
    lattice: Lattice,
    spins: np.ndarray,
    biases: Sequence[float],
    models: dict[str, str] | None = None,
) -> list[dict]:
    """Torque balance, drive symmetry and v_T at every |V| > 0 of ``biases``.

    With ``models`` ({label: model file}), also each model's T_z on the same wall.
    """
    from hpcspin.ml import load_model
    from hpcspin.negf import NEGFEngine
    from hpcspin.negf.observables import (
        absorbed_spin_current,
        drive_symmetry,
        mirror_image,
        net_torque,
    )
    from hpcspin.tasks.common import electron_params_from

    eng = NEGFEngine(
        lattice, electron_params_from(cfg, 0.0), tol=cfg.negf.tol, scheme=cfg.negf.scheme
    )
    sym = drive_symmetry(lattice, spins, tol=1e-5)
    scale = 2 * lattice.width * (1 + cfg.dynamics.alpha**2)
    loaded = {k: load_model(p, lattice=lattice) for k, p in (models or {}).items()}
    rows = []
    for v in sorted({abs(b) for b in biases if b != 0}):
        rp, rm = eng.compute(spins, bias=v), eng.compute(spins, bias=-v)
        t = net_torque(spins, rp.field)
        a = absorbed_spin_current(rp.spin_current_left, rp.spin_current_right)
        t_m = net_torque(spins, rm.field)
        a_m = absorbed_spin_current(rm.spin_current_left, rm.spin_current_right)
        row = {
            "bias": v,
            "current": rp.current,
            "net_torque": t.tolist(),
            "absorbed_spin_current": a.tolist(),
            "balance_residual": float(max(np.abs(t - a).max(), np.abs(t_m - a_m).max())),
            "torque_velocity": float(t[2] / scale),
            "symmetry_residual": None,
            "model_net_torque_z": model_torques(loaded, lattice, spins, v, cfg.electrons.mu),
        }
        if sym is not None:
            row["symmetry_residual"] = float(np.abs(mirror_image(rp.field, *sym) - rm.field).max())
        rows.append(row)
    log.info("strip checks on the relaxed wall: %s", rows)
    return rows


def strip_markdown(rows: list[dict], symmetric: bool) -> list[str]:
    """Markdown lines of the strip checks (appended to velocity.md)."""
    lines = [
        "",
        "Strip checks on the relaxed wall (single NEGF evaluations at +V and -V):",
        "",
        "| abs(V) | T_z = sum (S x H)_z | absorbed (j^L - j^R)_z / 2 | balance residual "
        "| symmetry residual | v_T = T_z / (2 W (1 + a^2)) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        sym = "-" if r["symmetry_residual"] is None else f"{r['symmetry_residual']:.1e}"
        lines.append(
            f"| {r['bias']:.2f} | {r['net_torque'][2]:+.6f} | "
            f"{r['absorbed_spin_current'][2]:+.6f} | {r['balance_residual']:.1e} | {sym} | "
            f"{r['torque_velocity']:+.6f} |"
        )
    for label in rows[0]["model_net_torque_z"] if rows else ():
        errs = ", ".join(
            f"{r['model_net_torque_z'][label] / r['net_torque'][2] - 1:+.2%} at {r['bias']:.2f}"
            for r in rows
        )
        lines += ["", f"T_z of {label}'s H(V) - H(0) on this wall relative to NEGF's: {errs}"]
    if not symmetric:
        lines.append("")
        lines.append(
            "The relaxed wall is not symmetric under the strip's mirror: no symmetry check."
        )
    return lines
