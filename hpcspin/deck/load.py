"""Parse and validate a deck, collecting every problem before reporting."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
from typing import Any

from hpcspin.deck.fields import check_value
from hpcspin.deck.schema import SECTIONS, RunConfig
from hpcspin.errors import DeckError
from hpcspin.resources import run_size_problems


def _fmt(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def problem(section: str, key: str, value: Any, rule: str, hint: str = "") -> str:
    """One problem line: ``[section] key = value: rule (hint)``."""
    head = f"[{section}] {key}" + ("" if value is _NOVALUE else f" = {_fmt(value)}")
    return f"{head}: {rule}" + (f" ({hint})" if hint else "")


_NOVALUE = object()


def _key_of(line: str) -> str:
    return line.split(" = ")[0].split(":")[0]


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(sorted(options))


def _parse_section(name: str, cls: type, table: Any, problems: list[str]):
    if not isinstance(table, dict):
        problems.append(
            problem(
                name,
                "(section)",
                table,
                "must be a table",
                f"write [{name}] followed by key = value lines",
            )
        )
        table = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in fields:
            problems.append(problem(name, key, value, "unknown key", _suggest(key, fields)))
            continue
        meta = fields[key].metadata
        value, err = check_value(value, meta)
        if err:
            hint = meta.get("hint") or meta.get("doc", "")
            problems.append(problem(name, key, value, err, hint))
        else:
            values[key] = value
    for key, f in fields.items():
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required and key not in values and key not in table:
            problems.append(problem(name, key, _NOVALUE, "is required", f.metadata.get("doc", "")))
    try:
        return cls(**values)
    except TypeError:  # a required key was missing or invalid: reported above
        return None


def parse_deck(
    text: str,
    source: str = "deck",
    overrides: dict | None = None,
    n_ranks: int | None = None,
    check_files: bool = True,
) -> RunConfig:
    """Validate deck text and return the frozen configuration.

    Args:
        text: TOML text of the deck.
        source: name used in messages (the file path).
        overrides: ``{"section.key": value}`` applied on top of the text (``--set``).
        n_ranks: rank count the run will use (checks the process grid); None skips.
        check_files: check that input files named by the task exist.

    Raises:
        DeckError: listing every problem found.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeckError([f"TOML syntax error: {exc}"], source) from None
    problems: list[str] = []
    for dotted, value in (overrides or {}).items():
        sec, _, key = dotted.partition(".")
        if not key or sec not in SECTIONS:
            problems.append(
                f"--set {dotted}={_fmt(value)}: expected section.key ({_suggest(sec, SECTIONS)})"
            )
            continue
        table = data.setdefault(sec, {})
        if isinstance(table, dict):
            table[key] = value
    for sec in data:
        if sec not in SECTIONS:
            problems.append(
                problem(sec, "(section)", _NOVALUE, "unknown section", _suggest(sec, SECTIONS))
            )
    sections = {
        name: _parse_section(name, cls, data.get(name, {}), problems)
        for name, cls in SECTIONS.items()
    }
    if any(v is None for v in sections.values()):
        raise DeckError(problems, source)
    cfg = RunConfig(**sections, deck_text=text, deck_path=source)
    # Cross-section rules run even after per-key problems (bad values fall back to
    # defaults), so the user sees everything at once; keys already reported are skipped.
    seen = {_key_of(q) for q in problems}
    problems.extend(q for q in cross_checks(cfg, n_ranks, check_files) if _key_of(q) not in seen)
    if problems:
        raise DeckError(problems, source)
    return cfg


def load_deck(
    path: str, overrides: dict | None = None, n_ranks: int | None = None, check_files: bool = True
) -> RunConfig:
    """Read a deck file and validate it (see :func:`parse_deck`).

    Raises:
        DeckError: unreadable file, directory, TOML syntax error or invalid content.
    """
    if os.path.isdir(path):
        raise DeckError([f"{path} is a directory, not a deck file"], path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DeckError([f"deck file {path} not found{relative_note(path)}"], path) from None
    except OSError as exc:
        raise DeckError([f"cannot read deck file {path}: {exc.strerror}"], path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DeckError([f"deck file {path} is not UTF-8 text"], path) from None
    return parse_deck(text, path, overrides, n_ranks, check_files)


def _default_grid(cfg: RunConfig, n_ranks: int) -> tuple[int, int]:
    if cfg.parallel.grid:
        g = tuple(cfg.parallel.grid)
        return (g[0], g[1] if len(g) > 1 else 1)
    return (n_ranks, 1)


def cross_checks(cfg: RunConfig, n_ranks: int | None, check_files: bool) -> list[str]:
    """Rules that involve several keys or sections; returns problem lines."""
    p = _lattice_spin_checks(cfg)
    p.extend(_dynamics_datagen_checks(cfg))
    p.extend(_negf_rank_checks(cfg, n_ranks))
    p.extend(_parallel_checks(cfg, n_ranks))
    p.extend(run_size_problems(cfg, n_ranks))  # dt vs t_end; memory per rank
    if check_files:
        p.extend(_file_checks(cfg))
    return p


def _lattice_spin_checks(cfg: RunConfig) -> list[str]:
    """[lattice] and [spins] rules."""
    p: list[str] = []
    lat, sp = cfg.lattice, cfg.spins
    if lat.kind == "chain" and lat.width != 1:
        p.append(
            problem(
                "lattice",
                "width",
                lat.width,
                "a chain has width 1",
                "use kind = 'square' or 'triangular' for strips",
            )
        )
    if lat.periodic and lat.width < 3:
        p.append(problem("lattice", "periodic", True, "needs width >= 3", f"width = {lat.width}"))
    if sp.initial == "wall":
        if sp.wall_width == 0 and sp.K <= 0:
            p.append(
                problem(
                    "spins",
                    "wall_width",
                    0.0,
                    "needs K > 0 to default to sqrt(J_H/(2K))",
                    "set wall_width explicitly",
                )
            )
        if sp.wall_width == 0 and sp.K > 0 and sp.J_H <= 0:
            p.append(
                problem(
                    "spins",
                    "J_H",
                    sp.J_H,
                    "must be > 0 for a default wall width",
                    "set wall_width explicitly",
                )
            )
        if sp.wall_center >= lat.length:
            p.append(
                problem(
                    "spins",
                    "wall_center",
                    sp.wall_center,
                    f"must lie inside the chain (< {lat.length})",
                )
            )
    if sp.initial == "file" and not sp.file:
        p.append(problem("spins", "file", "", "is required when initial = 'file'"))
    for axis in ("easy_axis", "hard_axis", "direction"):
        v = getattr(sp, axis)
        if math.fsum(x * x for x in v) == 0:
            p.append(problem("spins", axis, v, "must not be the zero vector"))
    return p


def _dynamics_datagen_checks(cfg: RunConfig) -> list[str]:
    """[dynamics], [datagen] and [train] rules."""
    p: list[str] = []
    dyn = cfg.dynamics
    if dyn.temperature > 0 and dyn.integrator != "heun":
        p.append(
            problem(
                "dynamics",
                "temperature",
                dyn.temperature,
                "a stochastic field needs integrator = 'heun'",
                "the Stratonovich interpretation",
            )
        )
    lo, hi = cfg.datagen.noise
    if lo > hi:
        p.append(problem("datagen", "noise", [lo, hi], "must be [low, high] with low <= high"))
    lo, hi = cfg.datagen.width_range
    if lo > hi:
        p.append(
            problem("datagen", "width_range", [lo, hi], "must be [low, high] with low <= high")
        )
    if cfg.datagen.snapshot_share > 0 and not cfg.datagen.snapshots:
        p.append(
            problem(
                "datagen",
                "snapshot_share",
                cfg.datagen.snapshot_share,
                "needs [datagen] snapshots",
                "a trajectory file to draw from",
            )
        )
    if sum(cfg.datagen.mix) <= 0:
        p.append(problem("datagen", "mix", cfg.datagen.mix, "must have a positive share"))
    if (dyn.committee or dyn.spot_check_every) and dyn.forces != "ml":
        key = "committee" if dyn.committee else "spot_check_every"
        p.append(
            problem("dynamics", key, getattr(dyn, key), "checks the ML field: needs forces = 'ml'")
        )
    tr = cfg.train
    if cfg.run.task == "train" and tr.fit != "both":
        if not tr.init_model or tr.targets != "split" or cfg.model.head == "E":
            p.append(
                problem(
                    "train",
                    "fit",
                    tr.fit,
                    "needs [train] init_model, targets = 'split' and a head with two parts",
                    "the part not fitted keeps the weights of init_model",
                )
            )
    kw = tuple(tr.neq_kind_weights)
    if kw and (len(kw) != len(tr.neq_kinds) or min(kw) <= 0):
        p.append(
            problem(
                "train",
                "neq_kind_weights",
                list(kw),
                f"needs one positive weight per neq_kinds family ({len(tr.neq_kinds)})",
                "in the order of [train] neq_kinds",
            )
        )
    if dyn.committee_action != "warn" and dyn.committee_threshold <= 0:
        p.append(
            problem(
                "dynamics",
                "committee_action",
                dyn.committee_action,
                "needs committee_threshold > 0",
                "the disagreement above which to act",
            )
        )
    return p


def _negf_rank_checks(cfg: RunConfig, n_ranks: int | None) -> list[str]:
    """[negf] rules and rank counts of NEGF solves and datagen groups."""
    p: list[str] = []
    rps = cfg.negf.ranks_per_solve
    if rps > 1 and cfg.negf.solver != "petsc":
        p.append(
            problem(
                "negf",
                "ranks_per_solve",
                rps,
                "only the petsc solver shares a system between ranks",
                "set solver = 'petsc' or ranks_per_solve = 1",
            )
        )
    rpc = cfg.datagen.ranks_per_config
    if n_ranks is not None and n_ranks % rpc:
        p.append(
            problem("datagen", "ranks_per_config", rpc, f"must divide the rank count {n_ranks}")
        )
    if rps > 1 and cfg.run.task == "datagen" and rpc % rps:
        p.append(
            problem(
                "negf", "ranks_per_solve", rps, f"must divide [datagen] ranks_per_config = {rpc}"
            )
        )
    if n_ranks is not None and n_ranks % rps:
        p.append(problem("negf", "ranks_per_solve", rps, f"must divide the rank count {n_ranks}"))
    e0, e1 = cfg.negf.transmission_range
    if e0 >= e1:
        p.append(problem("negf", "transmission_range", [e0, e1], "must be increasing"))
    return p


def _parallel_checks(cfg: RunConfig, n_ranks: int | None) -> list[str]:
    p: list[str] = []
    lat = cfg.lattice
    grid = cfg.parallel.grid
    if lat.kind == "chain" and len(grid) == 2 and grid[1] != 1:
        p.append(
            problem("parallel", "grid", grid, "a chain is split along x only", "use [n_ranks, 1]")
        )
    if n_ranks is None:
        return p
    px, py = _default_grid(cfg, n_ranks)
    if grid and px * py != n_ranks:
        p.append(
            problem(
                "parallel",
                "grid",
                grid,
                f"needs {px * py} ranks but the job has {n_ranks}",
                "make the product equal the rank count, or leave grid empty",
            )
        )
        return p
    halo = cfg.model.radius if cfg.dynamics.forces == "ml" else 1
    if cfg.run.task == "dynamics" and cfg.dynamics.forces != "negf":
        if lat.length // px < max(halo, 1):
            p.append(
                problem(
                    "lattice",
                    "length",
                    lat.length,
                    f"too short for {px} ranks along x with a halo of {halo} sites",
                    "each rank needs at least radius columns; use fewer ranks or a longer lattice",
                )
            )
        if py > 1 and lat.width // py < max(halo, 1):
            p.append(
                problem(
                    "lattice",
                    "width",
                    lat.width,
                    f"too narrow for {py} ranks along y with a halo of {halo}",
                    "use fewer ranks along y",
                )
            )
    if cfg.run.task == "train" and cfg.model.radius * 2 > lat.length:
        # r = L/2 is the reach at which every site sees past one end of the lattice
        # (the strip model that must see the leads); beyond it nothing more is seen.
        p.append(
            problem(
                "model",
                "radius",
                cfg.model.radius,
                f"window 2r = {2 * cfg.model.radius} exceeds the lattice length {lat.length}",
            )
        )
    if cfg.model.design == "window" and cfg.model.radius > 8 and cfg.run.task == "train":
        p.append(
            problem(
                "model",
                "radius",
                cfg.model.radius,
                "must be <= 8 with design = 'window' (all pairs of the window)",
                "use design = 'columns' on a strip for a longer reach",
            )
        )
    if cfg.run.task == "train" and cfg.model.design == "columns" and lat.kind == "chain":
        p.append(
            problem(
                "model",
                "design",
                cfg.model.design,
                "the columns window is for strips (square, triangular)",
                "use design = 'window' on a chain",
            )
        )
    return p


def relative_note(path: str) -> str:
    """What a relative path is relative to, for a not-found message ('' if absolute)."""
    if os.path.isabs(path):
        return ""
    return (
        f"; relative paths are relative to the working directory {os.getcwd()}, "
        f"so this is {os.path.abspath(path)}: run from the directory the deck expects "
        "or give an absolute path"
    )


def _file_checks(cfg: RunConfig) -> list[str]:
    p: list[str] = []
    task = cfg.run.task

    def need(section: str, key: str, path: str, why: str):
        if not path:
            p.append(problem(section, key, path, f"is required ({why})"))
        elif not os.path.isfile(path):
            p.append(problem(section, key, path, "file not found", why + relative_note(path)))

    if cfg.spins.initial == "file":
        need("spins", "file", cfg.spins.file, "initial = 'file'")
    if task == "train":
        need("train", "dataset", cfg.train.dataset, "the training data")
        for extra in cfg.train.extra_datasets:
            need("train", "extra_datasets", extra, "more training data")
        if cfg.train.init_model:
            need("train", "init_model", cfg.train.init_model, "the model to continue")
    if task == "datagen" and cfg.datagen.snapshot_share > 0 and cfg.datagen.snapshots:
        need("datagen", "snapshots", cfg.datagen.snapshots, "snapshot_share > 0")
    if task == "dynamics" and cfg.dynamics.forces == "ml":
        need("model", "file", cfg.model.file, "forces = 'ml'")
    if task == "validate":
        for m in cfg.validate.models or (cfg.model.file,):
            need(
                "validate" if cfg.validate.models else "model",
                "models" if cfg.validate.models else "file",
                m,
                "a model to validate",
            )
        need(
            "validate" if cfg.validate.dataset else "train",
            "dataset",
            cfg.validate.dataset or cfg.train.dataset,
            "held-out data",
        )
    return p


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``section.key=value`` from ``--set``; the value is read as TOML, else a string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise DeckError([f"--set {text}: expected section.key=value"], "--set")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value
