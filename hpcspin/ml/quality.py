"""Held-out quality of a trained model, judged against thresholds.

Three numbers decide whether a driven model is fit for dynamics, all on the
configurations held out from training:

- ``eq_r2``: R^2 of the transverse equilibrium field H(0) (the E part);
- ``neq_r2``: R^2 of the transverse current-induced field H(V) - H(0) on clean
  walls (the family the wall velocity depends on);
- ``neq_torque_err``: relative error of the net torque sum_i S_i x H_i of the
  current-induced field on clean walls. For the NEGF field that net torque is the
  spin current the electrons deposit in the texture, so this is the error of the
  model's spin-transfer budget against the NEGF current.

Without equilibrium fields in the dataset the total field is judged instead
(``r2``, ``torque_err``); the E head (trained on H(0) only) is judged on
``eq_r2``. Values below a threshold are reported as WARNING lines and kept in
the model file with the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpcspin.ml.metrics import net_torque_error, transverse_r2, transverse_rmse


@dataclass(frozen=True)
class Thresholds:
    """Quality limits (deck: [train] min_eq_r2, min_neq_r2, max_torque_err)."""

    min_eq_r2: float = 0.95
    min_neq_r2: float = 0.8
    max_torque_err: float = 0.1


def _predict(model, lattice, spins, bias, mu, block: int = 64) -> dict:
    out: dict[str, list] = {}
    for i in range(0, len(spins), block):
        sl = slice(i, i + block)
        g = {"bias": np.asarray(bias[sl], float), "mu": np.asarray(mu[sl], float)}
        parts = model.field(np.asarray(spins[sl]), lattice, g, parts=True)
        for k, v in parts.items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def _measures(pred, target, spins, prefix: str) -> dict:
    return {
        f"{prefix}r2": transverse_r2(pred, target, spins),
        f"{prefix}rmse": transverse_rmse(pred, target, spins),
        f"{prefix}torque_err": net_torque_error(pred, target, spins),
    }


def held_out_quality(model, lattice, data: dict, idx, wall_family: str = "wall") -> dict:
    """Quality measures of ``model`` on the configurations ``idx`` of a dataset.

    Args:
        model: a ForceModel.
        lattice: the lattice of the configurations.
        data: dataset dict (``spins``, ``field``, ``bias``, ``mu``; optional ``field_eq``,
            ``kind``, ``kind_names``).
        idx: held-out configuration indices.
        wall_family: the family of clean walls.

    Returns:
        ``{"n_held_out", "n_walls", "eq_r2", "neq_r2", "neq_torque_err", ...}`` (with
        equilibrium fields) or ``{"r2", "torque_err", ...}`` (without); NaN where a
        measure has no data.
    """
    idx = np.asarray(idx, dtype=int)
    out: dict = {"n_held_out": int(idx.size)}
    if idx.size == 0:
        return out
    s, h = data["spins"][idx], data["field"][idx]
    pred = _predict(model, lattice, s, data["bias"][idx], data["mu"][idx])
    names = data.get("kind_names") or []
    walls = np.ones(idx.size, bool)
    if "kind" in data and wall_family in names:
        walls = data["kind"][idx] == names.index(wall_family)
    if "noise" in data:
        walls &= data["noise"][idx] == 0
    out["n_walls"] = int(walls.sum())
    if "field_eq" in data and model.head == "E":
        # The E head is trained on H(0) alone and has no current-induced part: it is
        # judged as an equilibrium model (dynamics at V != 0 needs another head).
        out.update(_measures(pred["total"], data["field_eq"][idx], s, "eq_"))
    elif "field_eq" in data:
        h0 = data["field_eq"][idx]
        out.update(_measures(pred["eq"], h0, s, "eq_"))
        if walls.any():
            w = walls
            out.update(_measures(pred["neq"][w], (h - h0)[w], s[w], "neq_"))
    else:
        out.update(_measures(pred["total"], h, s, ""))
    return out


def verdict(quality: dict, limits: Thresholds) -> list[str]:
    """The failed checks as sentences (empty: the model passes)."""
    checks = [
        ("eq_r2", "R^2 of the equilibrium field", limits.min_eq_r2, "min_eq_r2", True),
        ("neq_r2", "R^2 of the current-induced field", limits.min_neq_r2, "min_neq_r2", True),
        ("r2", "R^2 of the field", limits.min_neq_r2, "min_neq_r2", True),
        (
            "neq_torque_err",
            "net-torque error (current-induced)",
            limits.max_torque_err,
            "max_torque_err",
            False,
        ),
        ("torque_err", "net-torque error", limits.max_torque_err, "max_torque_err", False),
    ]
    bad = []
    for key, what, lim, deck_key, is_min in checks:
        v = quality.get(key)
        if v is None or not np.isfinite(v):
            continue
        if (v < lim) if is_min else (v > lim):
            rel = "below" if is_min else "above"
            bad.append(f"{what} {v:.4g} is {rel} [train] {deck_key} = {lim:g}")
    return bad


def table(quality: dict, limits: Thresholds) -> str:
    """A fixed-width table of the held-out measures and their limits."""
    rows = [
        ("eq_r2", ">=", limits.min_eq_r2),
        ("neq_r2", ">=", limits.min_neq_r2),
        ("neq_torque_err", "<=", limits.max_torque_err),
        ("r2", ">=", limits.min_neq_r2),
        ("torque_err", "<=", limits.max_torque_err),
        ("eq_rmse", "", None),
        ("neq_rmse", "", None),
        ("rmse", "", None),
    ]
    lines = [f"{'held-out measure':<18} {'value':>11}  limit"]
    for key, op, lim in rows:
        if key in quality:
            v = quality[key]
            limit = "" if lim is None else f"{op} {lim:g}"
            lines.append(f"{key:<18} {v:>11.5g}  {limit}")
    lines.append(
        f"({quality.get('n_held_out', 0)} held-out configurations, "
        f"{quality.get('n_walls', 0)} clean walls)"
    )
    return "\n".join(lines)
