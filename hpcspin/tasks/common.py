"""Config -> objects helpers shared by the tasks (only tasks/ and driver see RunConfig)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.spin import SpinParams
from hpcspin.lattice import Lattice, make_lattice
from hpcspin.parallel.context import agree, decide
from hpcspin.parallel.context import collective_error as collective_error  # for the tasks

if TYPE_CHECKING:
    from mpi4py import MPI

    from hpcspin.deck.schema import RunConfig
    from hpcspin.negf import ElectronParams, NEGFEngine
    from hpcspin.parallel.context import ParallelContext


def lattice_from(cfg: RunConfig) -> Lattice:
    """The central region of the deck."""
    lat = cfg.lattice
    return make_lattice(lat.kind, lat.length, lat.width, lat.periodic)


def spin_params_from(cfg: RunConfig) -> SpinParams:
    """Classical spin Hamiltonian of the deck."""
    s = cfg.spins
    return SpinParams(
        J_H=s.J_H,
        K=s.K,
        easy_axis=tuple(s.easy_axis),
        K_perp=s.K_perp,
        hard_axis=tuple(s.hard_axis),
        B=tuple(s.B),
    )


def electron_params_from(cfg: RunConfig, bias: float | None = None) -> ElectronParams:
    """NEGF electron parameters of the deck (bias overridable)."""
    from hpcspin.negf import ElectronParams

    e = cfg.electrons
    return ElectronParams(
        t=e.t,
        J=e.J,
        mu=e.mu,
        bias=e.bias if bias is None else bias,
        temperature=e.temperature,
        t_lead=e.t_lead,
        t_contact=e.t_contact,
        lead=e.lead,
        gamma=e.gamma,
        onsite=None if e.onsite == 0.0 else e.onsite,
    )


def negf_engine_from(cfg: RunConfig, lattice: Lattice, comm: MPI.Comm | None = None) -> NEGFEngine:
    """NEGF engine of the deck, energy points split over ``comm``."""
    from hpcspin.negf import NEGFEngine

    groups = None
    if comm is not None and cfg.negf.ranks_per_solve > 1:
        groups = max(1, comm.Get_size() // cfg.negf.ranks_per_solve)
    return NEGFEngine(
        lattice,
        electron_params_from(cfg),
        solver=cfg.negf.solver,
        tol=cfg.negf.tol,
        comm=comm,
        groups=groups,
        scheme=cfg.negf.scheme,
        estimate=cfg.negf.estimate,
        eta=cfg.negf.eta,
    )


def wall_width(cfg: RunConfig) -> float:
    """Wall width from the deck: explicit, or lambda = sqrt(J_H / (2K))."""
    s = cfg.spins
    return s.wall_width if s.wall_width > 0 else float(np.sqrt(s.J_H / (2.0 * s.K)))


def initial_spins(cfg: RunConfig, lattice: Lattice, comm: MPI.Comm | None = None) -> np.ndarray:
    """Initial spins (N, 3) of the deck, identical on every rank (seeded).

    Collective over ``comm`` with ``initial = "file"`` (every rank reads the file; an
    error on any rank is raised on all).

    Walls lie across x (same profile in every row). Several walls alternate in sign
    and are evenly spaced. ``noise`` tilts each spin by a random small rotation.
    """
    s = cfg.spins
    n = lattice.n_sites
    if s.initial == "uniform":
        d = np.asarray(s.direction, float)
        spins = np.tile(d / np.linalg.norm(d), (n, 1))
    elif s.initial == "random":
        g = np.random.default_rng([cfg.run.seed, 1])
        v = g.normal(size=(n, 3))
        spins = v / np.linalg.norm(v, axis=1, keepdims=True)
    elif s.initial == "file":
        from hpcspin.io.spins_file import read_spins_file

        spins = agree(comm, read_spins_file, s.file, n)
    else:
        spins = _walls(cfg, lattice)
    if s.noise > 0:
        g = np.random.default_rng([cfg.run.seed, 2])
        spins = spins + s.noise * g.normal(size=spins.shape)
        spins /= np.linalg.norm(spins, axis=1, keepdims=True)
    return np.ascontiguousarray(spins, dtype=np.float64)


def _walls(cfg: RunConfig, lattice: Lattice) -> np.ndarray:
    from hpcspin.hamiltonian.textures import alternating_walls, domain_wall

    s = cfg.spins
    if s.walls == 1:
        x0 = s.wall_center if s.wall_center >= 0 else (lattice.length - 1) / 2.0
        return domain_wall(lattice, x0, wall_width(cfg), kind=s.wall_kind)
    return alternating_walls(lattice, s.walls, wall_width(cfg), s.wall_kind)


def prepare_output_dir(cfg: RunConfig, ctx: ParallelContext) -> str:
    """Create the output directory on rank 0; every rank returns its path. Collective."""
    path = cfg.output.dir

    def make() -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise HpcspinError(f"[output] dir = {path!r}: cannot create ({exc.strerror})") from exc

    decide(ctx.comm, make)
    return path


def write_json(path: str, data: dict) -> None:
    """Write a JSON file atomically (rank 0 only by convention)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


#: Keys a dynamics run may change between segments of one run (how long, not what).
_CONTINUABLE = {"dynamics": ("t_end", "relax_max_time"), "negf": ("ranks_per_solve",)}


def run_identity(cfg: RunConfig, model_sha256: str | None = None) -> dict:
    """What the trajectory of a dynamics run depends on, as plain data.

    Everything except where and how often it writes, on how many ranks, and how long it
    runs; NEGF settings only with NEGF forces, the model (and the sha256 of its file)
    only with ML forces. Stored in every checkpoint: an automatic resume compares it
    with the deck, so a changed deck never silently continues (or reports) an old run.
    """
    return run_identity_of(cfg.to_dict(), model_sha256)


def run_identity_of(d: dict, model_sha256: str | None = None) -> dict:
    """:func:`run_identity` of a config as plain data (``cfg.to_dict()``, a file's JSON)."""
    forces = d["dynamics"]["forces"]
    out = {k: d[k] for k in ("lattice", "electrons", "spins", "dynamics")}
    out["seed"] = d["run"]["seed"]
    if forces == "negf":
        out["negf"] = {k: v for k, v in d["negf"].items() if not k.startswith("transmission")}
    if forces == "ml":
        out["model"] = {k: v for k, v in d["model"].items() if k != "file"}
        out["model"]["file_sha256"] = model_sha256
    for sec, keys in _CONTINUABLE.items():
        if sec in out:
            out[sec] = {k: v for k, v in out[sec].items() if k not in keys}
    return json.loads(json.dumps(out, default=_jsonable, sort_keys=True))


def settings_changes(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """(name, old value, new value) of every differing setting of two section dicts.

    Sections that are dicts on both sides are compared key by key ("section.key"),
    anything else as a whole ("section").
    """
    out = []
    for sec in sorted(set(old) | set(new)):
        a, b = old.get(sec), new.get(sec)
        if isinstance(a, dict) and isinstance(b, dict):
            keys = sorted(set(a) | set(b))
            out += [(f"{sec}.{k}", a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]
        elif a != b:
            out.append((sec, a, b))
    return out


def identity_changes(old: dict, new: dict, limit: int = 8) -> list[str]:
    """'section.key: old -> new' for every setting that differs (at most ``limit``)."""
    out = [f"{k}: {a!r} -> {b!r}" for k, a, b in settings_changes(old, new)]
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
