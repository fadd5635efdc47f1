"""Reports of the validate task: field metrics on a dataset, and the velocity table."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from hpcspin.datagen.samplers import KIND_WALL
from hpcspin.dynamics.llg import transverse
from hpcspin.io import keys
from hpcspin.io.trajectory import read_trajectory
from hpcspin.log import get_logger
from hpcspin.tasks.common import write_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from hpcspin.deck.schema import RunConfig
    from hpcspin.lattice import Lattice
    from hpcspin.ml.model import ForceModel

    #: (label, forces, bias) of one velocity run, and the run's directory from them.
    Job = tuple[str, str, float]
    RunDir = Callable[[str, str, float], str]
    #: ML fields at V and at V = 0 per configuration, and the clean-wall mask.
    Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]

log = get_logger("validate")


def _predict(
    model: ForceModel,
    lattice: Lattice,
    spins: np.ndarray,
    bias: np.ndarray,
    mu: np.ndarray,
    block: int = 32,
) -> np.ndarray:
    """Total ML field at (bias, mu) per configuration, in blocks. Returns (n, N, 3)."""
    out = [np.zeros((0,) + spins.shape[1:])]
    for i in range(0, len(spins), block):
        g = {"bias": bias[i : i + block], "mu": mu[i : i + block]}
        out.append(np.asarray(model.field(spins[i : i + block], lattice, g)))
    return np.concatenate(out, 0)


def _torque_z(spins: np.ndarray, fields: np.ndarray) -> np.ndarray:
    """z-component of the net torque sum_i S_i x H_i per configuration."""
    return np.cross(spins, fields).sum(axis=1)[:, 2]


def model_metrics(model: ForceModel, lattice: Lattice, data: dict) -> tuple[dict, Prediction]:
    """Metrics of one model on a dataset (all configurations and clean walls)."""
    from hpcspin.ml.metrics import field_metrics

    s, bias, mu = data["spins"], data["bias"], data["mu"]
    h_v, h_0 = data["field"], data["field_eq"]
    p_v = _predict(model, lattice, s, bias, mu)
    p_0 = _predict(model, lattice, s, np.zeros_like(bias), mu)
    clean = (data["kind"] == KIND_WALL) & (data["noise"] == 0)
    res: dict = {"n_configs": int(len(s)), "n_clean_walls": int(clean.sum())}
    for tag, m in (("all", slice(None)), ("clean", clean)):
        if not np.any(np.ones(len(s), bool)[m]):
            continue
        res.update(field_metrics(p_v[m], h_v[m], s[m], prefix=f"{tag}_total_"))
        res.update(field_metrics(p_0[m], h_0[m], s[m], prefix=f"{tag}_eq_"))
        res.update(field_metrics(p_v[m] - p_0[m], h_v[m] - h_0[m], s[m], prefix=f"{tag}_neq_"))
    if clean.any():
        tz_ml = _torque_z(s[clean], p_v[clean] - p_0[clean])
        tz_ng = _torque_z(s[clean], h_v[clean] - h_0[clean])
        res["clean_net_torque_z_negf"] = tz_ng.tolist()
        res["clean_net_torque_z_ml"] = tz_ml.tolist()
        res["clean_current_negf"] = data["current"][clean].tolist()
        res["clean_net_torque_rel_err"] = float(
            np.mean(np.abs(tz_ml - tz_ng)) / np.mean(np.abs(tz_ng))
        )
    return res, (p_v, p_0, clean)


def field_report(cfg: RunConfig, lattice: Lattice, model_paths: list[str], out: str) -> dict:
    """Metrics of every model on the held-out dataset, with parity and site-error PNGs."""
    from hpcspin.io.dataset import read_dataset
    from hpcspin.ml import load_model

    path = cfg.validate.dataset or cfg.train.dataset
    data = read_dataset(path)
    report: dict = {"dataset": path, "models": {}}
    preds: dict[str, Prediction] = {}
    for mp in model_paths:
        model = load_model(mp, lattice=lattice)
        label = os.path.splitext(os.path.basename(mp))[0]
        metrics, preds[label] = model_metrics(model, lattice, data)
        metrics["head"] = model.spec.head
        report["models"][label] = metrics
        log.info(
            "%s (%s): neq R2 all %.4f, clean %.4f; total R2 %.4f; clean net-torque error %.3f",
            label,
            model.spec.head,
            metrics["all_neq_r2"],
            metrics.get("clean_neq_r2", np.nan),
            metrics["all_total_r2"],
            metrics.get("clean_net_torque_rel_err", np.nan),
        )
    if cfg.output.plots:
        _plot_fields(data, preds, out)
    return report


def _perp(h: np.ndarray, s: np.ndarray) -> np.ndarray:
    return transverse(h, spins=s)


def _plot_fields(data: dict, preds: dict[str, Prediction], out: str) -> None:
    from hpcspin.plots import plot_field_parity

    s = data["spins"]
    neq = _perp(data["field"] - data["field_eq"], s)
    clean = next(iter(preds.values()))[2] if preds else np.zeros(len(s), bool)
    fits = {label: _perp(p_v - p_0, s) for label, (p_v, p_0, _) in preds.items()}
    plot_field_parity(neq, fits, clean, os.path.join(out, keys.FIELDS_PARITY_PNG))


def half_metal_problem(cfg: RunConfig, bias: float) -> str | None:
    """Why the half-metal closed form v = I / (2 (1 + alpha^2)) does not apply (None: it does).

    It needs a chain whose electrons at both chemical potentials mu_L = mu + V/2 and
    mu_R = mu - V/2 lie in the majority band only: bands eps - |J| + [-2t, 2t]
    (majority) and eps + |J| + [-2t, 2t] (minority) of the uniform chain.
    """
    e = cfg.electrons
    if cfg.lattice.width != 1:
        return "strip: several transverse channels, no closed form"
    t, j = e.t, abs(e.J)
    maj = (e.onsite - j - 2 * t, e.onsite - j + 2 * t)
    mino = (e.onsite + j - 2 * t, e.onsite + j + 2 * t)
    for name, mu in (("mu_L", e.mu + bias / 2), ("mu_R", e.mu - bias / 2)):
        if mino[0] <= mu <= mino[1]:
            return f"{name} = {mu:g} lies in the minority band [{mino[0]:g}, {mino[1]:g}]"
        if not maj[0] <= mu <= maj[1]:
            return f"{name} = {mu:g} lies outside the majority band [{maj[0]:g}, {maj[1]:g}]"
    return None


def velocity_report(cfg: RunConfig, out: str, jobs: list[Job], run_dir: RunDir) -> dict:
    """Velocity table (JSON, Markdown) and X(t), v(V) plots from the finished runs."""
    from hpcspin.plots import plot_comparison

    runs = load_runs(out, jobs, run_dir)
    alpha = cfg.dynamics.alpha
    width = cfg.lattice.width
    t_end = cfg.validate.velocity_t_end
    biases = sorted({b for _, _, b in jobs})
    rows = []
    ref = runs.get("negf", {})
    for bias in biases:
        row: dict = {"bias": bias}
        if bias in ref:
            r = ref[bias]
            row["negf_velocity"] = r["velocity"]
            row["negf_current"] = r["current"]
            # Chain in a half-metal: every electron crossing the wall flips its spin, so
            # the wall absorbs spin at the rate I. On strips several spin channels may
            # be open (the 20 x 4 strip of docs/experiment.md absorbs 27 % of I), and
            # with mu_L or mu_R in the minority band both spins carry current: then no
            # closed form is shown, and the reason is.
            why = half_metal_problem(cfg, bias)
            row["closed_form_velocity"] = None if why else r["current"] / (2 * (1 + alpha**2))
            row["closed_form_note"] = why or "half-metal: mu_L, mu_R in the majority band only"
            row["negf_seconds"] = r["seconds"]
        for label, rr in runs.items():
            if label == "negf" or bias not in rr:
                continue
            row[f"{label}_velocity"] = rr[bias]["velocity"]
            row[f"{label}_seconds"] = rr[bias]["seconds"]
            if bias in ref:
                v0 = ref[bias]["velocity"]
                row[f"{label}_rel_err"] = (
                    (rr[bias]["velocity"] - v0) / v0 if abs(v0) > 1e-9 else None
                )
                dx = rr[bias]["wall_x"] - ref[bias]["wall_x"]
                row[f"{label}_max_abs_dX"] = float(np.nanmax(np.abs(dx)))
        rows.append(row)
    report = {
        "alpha": alpha,
        "width": width,
        "t_end": t_end,
        "fit_window": [t_end / 2, t_end],
        "rows": rows,
    }
    if width > 1 and ref:  # strips: torque balance and drive symmetry on the relaxed wall
        from hpcspin.tasks.common import lattice_from
        from hpcspin.tasks.validate_strip import relaxed_wall, strip_checks

        models = {label: forces for label, forces, _ in jobs if label != "negf"}
        report["strip_checks"] = strip_checks(
            cfg, lattice_from(cfg), relaxed_wall(out, jobs, run_dir), biases, models
        )
    write_json(os.path.join(out, keys.VELOCITY_JSON), report)
    _markdown(report, list(runs), os.path.join(out, keys.VELOCITY_MD))
    if cfg.output.plots:
        plot_comparison(runs, out, "velocity")
    return report


def _fmt(v: float | None, f: str = "{:+.5f}") -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f.format(v)


def _markdown(report: dict, labels: list[str], path: str) -> None:
    ml = [m for m in labels if m != "negf"]
    cf = "I/(2(1+a^2))" if report.get("width", 1) == 1 else "closed form (chains only)"
    head = f"| V | v NEGF | {cf} | " + " | ".join(f"v {m} | rel. err | max dX" for m in ml) + " |"
    lines = [head, "|" + "---|" * (3 + 3 * len(ml))]
    for r in report["rows"]:
        cells = [
            f"{r['bias']:+.2f}",
            _fmt(r.get("negf_velocity")),
            _fmt(r.get("closed_form_velocity")),
        ]
        for m in ml:
            cells += [
                _fmt(r.get(f"{m}_velocity")),
                _fmt(r.get(f"{m}_rel_err"), "{:+.2%}"),
                _fmt(r.get(f"{m}_max_abs_dX"), "{:.3f}"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = sorted(
        {
            f"V = {r['bias']:+.2f}: {r['closed_form_note']}"
            for r in report["rows"]
            if r.get("closed_form_velocity") is None and r.get("closed_form_note")
        }
    )
    if notes:
        lines += ["", "Closed form not shown where it does not apply:", *[f"- {n}" for n in notes]]
    if report.get("strip_checks"):
        from hpcspin.tasks.validate_strip import strip_markdown

        rows = report["strip_checks"]
        lines += strip_markdown(rows, any(r["symmetry_residual"] is not None for r in rows))
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def load_runs(out: str, jobs: list[Job], run_dir: RunDir) -> dict:
    """{label: {bias: {time, wall_x, velocity, current}}} from finished runs."""
    import json

    res: dict = {}
    for label, _, bias in jobs:
        d = run_dir(out, label, bias)
        traj = read_trajectory(os.path.join(d, keys.TRAJECTORY_FILE))
        with open(os.path.join(d, keys.SUMMARY_FILE)) as fh:
            summ = json.load(fh)
        cur = np.asarray(traj.get("current", [np.nan]), float)
        res.setdefault(label, {})[bias] = {
            "time": np.asarray(traj["time"]),
            "wall_x": np.asarray(traj["wall_x"]),
            "velocity": float(summ["velocity"]),
            "current": float(np.nanmean(cur[len(cur) // 2 :]))
            if np.isfinite(cur).any()
            else float("nan"),
            "seconds": float(summ["wall_seconds_this_segment"]),
        }
    return res
