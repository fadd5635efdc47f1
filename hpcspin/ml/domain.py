"""The training domain of a model: recorded at training, compared with a deck before use.

A model is only as good as the data it saw. The model file records where that
data came from (lattice, electron parameters, lead model) and what it spanned
(biases, chemical potentials, wall widths, the range of nearest-neighbour spin
products that the descriptors are built from). Before dynamics or validate use
a model, :func:`check_deck` compares the deck with that record:

- an electron parameter that differs is refused (exit 2, both values named)
  unless the deck lists it in ``[model] accept_domain``;
- a bias (or chemical potential, for models that take it as an input) outside
  the trained range, or an initial wall narrower or wider than the trained
  walls, is a warning: the model extrapolates;
- ``[model] head`` or ``radius`` written in the deck must equal the file's
  (the file's are the ones used).

numpy only: no torch, no MPI.
"""

from __future__ import annotations

import math
import os
import tomllib

import numpy as np

from hpcspin.errors import ModelMismatchError
from hpcspin.log import get_logger

log = get_logger("ml.domain")

#: Electron parameters a model is tied to (names of the deck's [electrons] keys).
PHYSICAL = ("t", "J", "mu", "temperature", "lead", "t_lead", "t_contact", "gamma", "onsite")
#: Parameters that matter only for one lead model.
_LEAD_ONLY = {"t_lead": "tight-binding", "gamma": "wide-band"}
_REL_TOL = 1e-9


def _stats(x) -> dict | None:
    """min, max, mean and count of the finite entries (None when there are none)."""
    x = np.asarray(x, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    return {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "n": x.size}


def bond_products(spins, lattice) -> np.ndarray:
    """S_i . S_j over the nearest-neighbour bonds, shape (n_cfg, n_bonds)."""
    s = np.asarray(spins, dtype=float).reshape(-1, lattice.n_sites, 3)
    b = lattice.bonds(1)
    return np.einsum("cbk,cbk->cb", s[:, b[:, 0]], s[:, b[:, 1]])


def training_domain(data: dict, lattice) -> dict:
    """The training domain of a dataset (as :func:`hpcspin.io.dataset.read_dataset` reads it).

    Args:
        data: the dataset dict (``spins``, ``bias``, ``mu``; optional ``wall_width``,
            ``kind``, ``kind_names``, ``electrons``).
        lattice: the lattice of every configuration.

    Returns:
        Plain data: ``lattice``, ``electrons`` (the recorded [electrons] parameters),
        ``bias``, ``mu``, ``wall_width`` (statistics), ``bond_product`` (statistics of
        the per-configuration minimum of S_i . S_j over bonds: how sharp the sharpest
        twist was) and ``n_configs`` per family.
    """
    electrons = data.get("electrons") or {}
    prod = bond_products(data["spins"], lattice)
    kinds = {}
    names = data.get("kind_names") or []
    if "kind" in data:
        for k, n in zip(*np.unique(data["kind"], return_counts=True), strict=True):
            kinds[names[int(k)] if int(k) < len(names) else str(int(k))] = int(n)
    return {
        "lattice": {
            "kind": lattice.kind,
            "width": int(lattice.width),
            "periodic": bool(lattice.periodic),
            "length": int(lattice.length),
        },
        "electrons": {k: electrons[k] for k in PHYSICAL if k in electrons},
        "bias": _stats(data["bias"]),
        "mu": _stats(data["mu"]),
        "wall_width": _stats(data.get("wall_width", [])),
        "bond_product": _stats(prod.min(axis=1)) if prod.size else None,
        "n_configs": {"total": int(np.shape(data["spins"])[0]), **kinds},
    }


def _differs(a, b) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return not math.isclose(float(a), float(b), rel_tol=_REL_TOL, abs_tol=1e-12)
    return a != b


def parameter_changes(domain: dict, electrons: dict, globals_: tuple = ()) -> list[str]:
    """Electron parameters of a deck that differ from the training domain.

    Args:
        domain: the model file's ``domain``.
        electrons: the deck's [electrons] as a dict.
        globals_: the model's global inputs (a "mu" input lets mu vary within range).

    Returns:
        ``["J"]``-style names of the differing parameters.
    """
    trained = domain.get("electrons", {})
    lead = trained.get("lead", electrons.get("lead"))
    out = []
    for key in PHYSICAL:
        if key not in trained or key not in electrons:
            continue
        if key in _LEAD_ONLY and _LEAD_ONLY[key] != lead:
            continue  # this lead model does not use it
        if key == "mu" and "mu" in globals_:
            continue  # an input of the model: checked against its range instead
        if _differs(trained[key], electrons[key]):
            out.append(key)
    return out


def deck_model_keys(deck_text: str) -> dict:
    """The keys written in the deck's [model] table (defaults not included)."""
    try:
        table = tomllib.loads(deck_text or "").get("model", {})
    except tomllib.TOMLDecodeError:
        return {}
    return table if isinstance(table, dict) else {}


def _spec_problems(meta: dict, deck_text: str, path: str) -> list[str]:
    """[model] head / radius written in the deck that differ from the file's."""
    given = deck_model_keys(deck_text)
    named = given.get("file")
    if isinstance(named, str) and os.path.abspath(named) != os.path.abspath(path):
        return []  # the deck's head/radius describe its own [model] file, not this one
    out = []
    for key, have in (("head", meta.get("head")), ("radius", meta.get("radius"))):
        if key in given and _differs(given[key], have):
            out.append(
                f"[model] {key} = {given[key]!r}, but the model file {path} has {key} "
                f"{have!r} (remove the key or use a model trained with it)"
            )
    return out


def _range_warnings(domain: dict, name: str, values, what: str) -> list[str]:
    rng = domain.get(name)
    if not rng:
        return []
    out = []
    for v in values:
        if v < rng["min"] - 1e-12 or v > rng["max"] + 1e-12:
            out.append(
                f"{what} {v:g} is outside the trained {name} range "
                f"[{rng['min']:g}, {rng['max']:g}]: the model extrapolates"
            )
    return out


def strip_lattice_changes(domain: dict, lattice) -> list[str]:
    """How a strip deck's lattice differs from a strip model's training strip.

    The current-induced field on a strip between non-magnetic leads depends on where
    a texture sits between the two lead interfaces (spin-dependent reflection there;
    docs/experiment.md): a strip model is a model of its device (length, width,
    transverse boundary), unlike a chain model, which is local and runs on any length.

    Args:
        domain: the model file's ``domain``.
        lattice: a :class:`~hpcspin.lattice.Lattice` or a deck's [lattice] section
            (``kind``, ``length``, ``width``, ``periodic``).

    Returns:
        ``"length 20 -> 40"``-style items; empty for chains or a matching strip.
    """
    trained = domain.get("lattice") or {}
    if lattice.kind == "chain" or not trained or trained.get("kind") != lattice.kind:
        return []
    have = {"length": int(lattice.length), "width": int(lattice.width)}
    have["periodic"] = bool(lattice.periodic)
    return [
        f"{k} {trained[k]!r} -> {v!r}" for k, v in have.items() if k in trained and trained[k] != v
    ]


def _lattice_problem(domain: dict, cfg, path: str, accepted: set) -> str | None:
    changes = strip_lattice_changes(domain, cfg.lattice)  # kind, length, width, periodic
    if not changes:
        return None
    msg = (
        f"[lattice] differs from the strip the model {path} was trained on "
        f"({', '.join(changes)}); a strip model is a model of its device"
    )
    if "lattice" in accepted:
        log.warning("%s (accepted: [model] accept_domain lists 'lattice')", msg)
        return None
    return f"{msg}: train one for this strip, or add 'lattice' to [model] accept_domain"


def check_deck(
    meta: dict,
    cfg,
    path: str,
    *,
    biases=None,
    wall_width: float | None = None,
    check_spec: bool = True,
) -> list[str]:
    """Compare a deck with a model file's training domain.

    Args:
        meta: the model file's metadata (``model.meta`` or ``read_model_file``).
        cfg: the deck (RunConfig).
        path: the model file, for messages.
        biases: the biases the deck will run at (default: [electrons] bias).
        wall_width: width of the deck's initial wall, if any (checked against the
            trained wall widths).
        check_spec: compare the deck's [model] head and radius with the file's.

    Returns:
        The warnings (also logged): extrapolation in bias, mu or wall width; a model
        whose held-out quality failed its thresholds at training.

    Raises:
        ModelMismatchError: an electron parameter (or a strip model's lattice, see
            :func:`strip_lattice_changes`) differs and is not listed in
            ``[model] accept_domain``, or [model] head/radius contradicts the file
            (every problem in one message).
    """
    problems = _spec_problems(meta, cfg.deck_text, path) if check_spec else []
    domain = meta.get("domain")
    if not domain:
        log.warning("model file %s records no training domain (older file): not checked", path)
        if problems:
            raise ModelMismatchError("\n".join(problems))
        return []
    import dataclasses

    electrons = dataclasses.asdict(cfg.electrons)
    accepted = set(getattr(cfg.model, "accept_domain", ()))
    trained = domain.get("electrons", {})
    for key in parameter_changes(domain, electrons, tuple(meta.get("globals", ()))):
        msg = (
            f"[electrons] {key} = {electrons[key]!r}, but the model {path} was trained "
            f"at {key} = {trained[key]!r}"
        )
        if key in accepted:
            log.warning("%s (accepted: [model] accept_domain lists %r)", msg, key)
        else:
            problems.append(
                f"{msg}: use a model trained there, or add {key!r} to [model] "
                "accept_domain to run outside the training domain"
            )
    lat_problem = _lattice_problem(domain, cfg, path, accepted)
    if lat_problem:
        problems.append(lat_problem)
    if problems:
        raise ModelMismatchError("\n".join(problems))
    biases = [cfg.electrons.bias] if biases is None else list(biases)
    warnings = _range_warnings(domain, "bias", biases, "bias")
    if "mu" in meta.get("globals", ()):
        warnings += _range_warnings(domain, "mu", [cfg.electrons.mu], "[electrons] mu")
    if wall_width is not None:
        warnings += _range_warnings(domain, "wall_width", [wall_width], "initial wall width")
    q = meta.get("metrics", {}).get("quality", {})
    if q.get("passed") is False:
        warnings.append("failed its held-out quality checks: " + "; ".join(q.get("failed", [])))
    for w in warnings:
        log.warning("model %s: %s", path, w)
    return warnings


def deck_wall_width(cfg) -> float | None:
    """Width of the deck's initial wall (None when it starts from no wall)."""
    sp = cfg.spins
    if sp.initial != "wall":
        return None
    if sp.wall_width > 0:
        return float(sp.wall_width)
    return math.sqrt(sp.J_H / (2 * sp.K)) if sp.K > 0 else None
