"""A complete, commented deck of every key and its default, generated from the schema.

``python -m hpcspin --print-defaults [TASK]`` prints it; the output is a valid deck
that parses back to the defaults (tested), so it is also the starting point of a new
deck. With a task, only the sections that task reads are printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap

from hpcspin.deck.schema import SECTIONS, TASKS

#: Sections each task reads (``run`` always).
TASK_SECTIONS: dict[str, tuple[str, ...]] = {
    "negf": ("run", "lattice", "electrons", "spins", "negf", "output", "parallel"),
    "datagen": ("run", "lattice", "electrons", "spins", "negf", "datagen", "output", "parallel"),
    "train": ("run", "lattice", "model", "train", "output", "parallel"),
    "dynamics": (
        "run",
        "lattice",
        "electrons",
        "spins",
        "negf",
        "model",
        "dynamics",
        "output",
        "parallel",
    ),
    "validate": tuple(s for s in SECTIONS if s != "datagen"),
}
_WIDTH = 88
_E, _T, _A, _1 = "t", "hbar/t", "lattice constants", "dimensionless"
#: Unit of every numeric key (a test checks that each numeric key has one).
UNITS: dict[str, str] = {
    "run.seed": _1,
    "lattice.length": "sites",
    "lattice.width": "sites",
    **{f"electrons.{k}": _E for k in ("t", "J", "mu", "bias", "t_lead", "t_contact", "gamma")},
    "electrons.temperature": "t (k_B = 1)",
    "electrons.onsite": _E,
    **{f"spins.{k}": _E for k in ("J_H", "K", "K_perp", "B")},
    **{f"spins.{k}": "unit vector (normalised)" for k in ("easy_axis", "hard_axis", "direction")},
    "spins.wall_center": _A,
    "spins.wall_width": _A,
    "spins.walls": _1,
    "spins.noise": "rad",
    "negf.tol": "spin density (|s_i| <= 1)",
    "negf.transmission_range": _E,
    "negf.transmission_points": _1,
    "negf.ranks_per_solve": "ranks",
    "negf.eta": "t (energy; relaxation rate 2 eta / hbar)",
    "model.radius": _A,
    "model.rows": "rows",
    "model.pair_cutoff": _A,
    "model.eq_radius": _A,
    "model.hidden": "neurons",
    "train.epochs": _1,
    "train.lr": _1,
    "train.batch_size": "configurations",
    "train.weight_decay": _1,
    "train.torque_weight": _1,
    "train.neq_loss_weight": _1,
    "train.neq_kind_weights": _1,
    "train.val_fraction": _1,
    "train.patience": "epochs",
    "dynamics.committee_threshold": "t per unit spin",
    "dynamics.spot_check_every": "steps",
    "train.min_eq_r2": _1,
    "train.min_neq_r2": _1,
    "train.max_torque_err": _1,
    "datagen.n_configs": _1,
    "datagen.biases": _E,
    "datagen.mix": "shares (normalised)",
    "datagen.noise": "rad",
    "datagen.width_range": _A,
    "datagen.flush_every": "configurations",
    "datagen.ranks_per_config": "ranks",
    "datagen.snapshot_share": _1,
    "dynamics.dt": _T,
    "dynamics.t_end": _T,
    "dynamics.alpha": _1,
    "dynamics.relax_alpha": _1,
    "dynamics.relax_tol": _E,
    "dynamics.relax_max_time": _T,
    "dynamics.temperature": "t (k_B = 1)",
    "output.every": "steps",
    "output.checkpoint_every": "steps",
    "output.progress_interval": "s (wall clock)",
    "parallel.grid": "ranks",
    "validate.velocity_biases": _E,
    "validate.velocity_t_end": _T,
}


def toml_value(value) -> str:
    """A Python value as TOML (bool, int, float, str, list; numpy values allowed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | os.PathLike):
        return json.dumps(os.fspath(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return toml_value(value.tolist())
    raise TypeError(f"deck value {value!r} of type {type(value).__name__} is not TOML")


def rules(meta: dict) -> str:
    """The allowed values of an option, in words."""
    parts = []
    if meta.get("choices"):
        parts.append("one of " + ", ".join(toml_value(c) for c in meta["choices"]))
    for key, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if meta.get(key) is not None:
            parts.append(f"{word} {meta[key]:g}")
    n = meta.get("length")
    if isinstance(n, int):
        parts.append(f"{n} items")
    elif isinstance(n, tuple):
        parts.append(f"{n[0]} to {n[1]} items")
    if meta.get("choices") or any(meta.get(k) is not None for k in ("ge", "gt", "le", "lt")):
        if meta.get("kind") is tuple:
            parts[0] = "items " + parts[0]
    return "; ".join(parts)


def template(task: str | None = None) -> str:
    """The template deck of ``task`` (None: every section, task = "dynamics").

    Raises:
        ValueError: unknown task.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    names = TASK_SECTIONS[task] if task else tuple(SECTIONS)
    what = f"task {task}" if task else "all sections"
    head = [
        f"# hpcspin deck: every key with its default ({what}).",
        "# Generated by `python -m hpcspin --print-defaults" + (f" {task}`." if task else "`."),
        "# Units: energies in t (hopping = 1), times in hbar/t, lengths in lattice constants,",
        "# |S| = 1. Keys left out take these defaults (the reference experiment of",
        "# docs/physics.md). Relative paths are relative to the working directory.",
    ]
    blocks = ["\n".join(head)]
    for name in names:
        blocks.append(_section(name, task or "dynamics"))
    return "\n\n".join(blocks) + "\n"


def _section(name: str, task: str) -> str:
    cls = SECTIONS[name]
    doc = (cls.__doc__ or "").strip().splitlines()[0]
    lines = [f"[{name}]", f"# {doc.replace('``', '')}"]
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:  # required: only [run] task
            value = task
        text = meta.get("doc", "")
        unit = UNITS.get(f"{name}.{f.name}")
        if unit:
            text += f"; unit: {unit}"
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            text += " (required)"
        allowed = rules(meta)
        if allowed:
            text += f" [{allowed}]"
        lines += textwrap.wrap(text, _WIDTH, initial_indent="# ", subsequent_indent="#   ")
        lines.append(f"{f.name} = {toml_value(value)}")
    return "\n".join(lines)
