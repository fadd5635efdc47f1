"""The ``datagen`` task: NEGF reference fields for sampled spin configurations.

Output: ``<[output] dir>/dataset.h5`` (layout in :mod:`hpcspin.io.dataset`), or the file
given with ``--restart``. Each configuration is computed whole by one group of
``[datagen] ranks_per_config`` ranks (one rank: serial NEGF, ``comm=None``; a group
splits the configuration's energy points, reduced in a fixed order), so the data do
not depend on how many groups there are; the groups share the configurations
dynamically (:mod:`hpcspin.datagen.schedule`) and their leaders write them at batch
ends (``flush_every`` configurations per group).

Failures: an error every rank sees alike (a foreign or damaged file, another deck's
dataset) is decided on rank 0 and raised on every rank (exit status 2); anything
else ends the job (the CLI aborts every rank), and nothing collective is entered on
the way out of it (the shared counter and the file are left to the abort).

Resuming: a run finds an existing dataset made by the same deck (same fingerprint of
lattice, electrons, NEGF accuracy, sampler and seed) and computes only the
configurations not flagged done. SIGTERM or SIGUSR1 stops the run after the current
configuration and the batch's write (exit status 75); a killed run loses only the
configurations of its last unflagged batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from hpcspin import __version__
from hpcspin.datagen.samplers import (
    KIND_NAMES,
    Sample,
    SamplerSettings,
    cost_estimate,
    sample_config,
)
from hpcspin.datagen.schedule import SharedCounter, batches, longest_first
from hpcspin.errors import DataFileError, RunInterrupted
from hpcspin.faults import fault_point
from hpcspin.io import dataset as ds
from hpcspin.io import keys
from hpcspin.log import Progress, get_logger
from hpcspin.tasks.common import (
    agree,
    decide,
    lattice_from,
    negf_engine_from,
    prepare_output_dir,
    settings_changes,
    write_json,
)
from hpcspin.tasks.signals import SignalFlag

if TYPE_CHECKING:
    from mpi4py import MPI

    from hpcspin.deck.schema import RunConfig
    from hpcspin.lattice import Lattice
    from hpcspin.parallel.context import ParallelContext

log = get_logger("datagen")

SUMMARY_FILE = keys.DATAGEN_SUMMARY_FILE  # next to the dataset: timings of the last session
FORMAT_VERSION = 1  # of the dataset layout; part of the fingerprint
#: MPI-IO mode of the row writes: True collective (aggregation, what parallel file
#: systems need at scale), False independent (no rendezvous per write: 50-200x cheaper
#: on one shared node, docs/datagen.md), "auto": collective when the job spans nodes.
#: No deck key yet.
COLLECTIVE_IO = "auto"


def snapshot_frames(cfg: RunConfig, comm: MPI.Comm | None = None) -> np.ndarray | None:
    """Snapshot frames (n_frames, N, 3) of the deck, or None.

    Every rank reads them; collective over ``comm`` (an error anywhere on all ranks).
    """
    d = cfg.datagen
    if d.snapshot_share <= 0:
        return None
    from hpcspin.io.spins_file import read_spin_frames

    n = cfg.lattice.length * cfg.lattice.width
    key = (d.snapshots, os.path.getmtime(d.snapshots) if os.path.exists(d.snapshots) else 0)
    if key not in _FRAMES:
        _FRAMES[key] = agree(comm, read_spin_frames, d.snapshots, n)
    return _FRAMES[key]


_FRAMES: dict[tuple[str, float], np.ndarray] = {}


def sampler_settings(cfg: RunConfig, comm: MPI.Comm | None = None) -> SamplerSettings:
    """Sampler settings of the deck (collective over ``comm`` with snapshots)."""
    d = cfg.datagen
    frames = snapshot_frames(cfg, comm)
    digest = ""
    if frames is not None:
        digest = hashlib.sha256(np.ascontiguousarray(frames, dtype="<f8").tobytes()).hexdigest()
    return SamplerSettings(
        mix=tuple(d.mix),
        noise=tuple(d.noise),
        width_range=tuple(d.width_range),
        biases=tuple(d.biases),
        mu=cfg.electrons.mu,
        snapshot_share=d.snapshot_share,
        snapshot_frames=0 if frames is None else len(frames),
        snapshot_sha256=digest,
    )


def fingerprint_data(cfg: RunConfig, comm: MPI.Comm | None = None) -> dict:
    """Everything that determines the numbers in a dataset (not flush_every, not dirs)."""
    electrons = dataclasses.asdict(cfg.electrons)
    electrons.pop("bias")  # datagen draws V from [datagen] biases
    datagen = dataclasses.asdict(cfg.datagen)
    datagen.pop("flush_every")
    datagen.pop("ranks_per_config")  # the numbers do not depend on how ranks are grouped
    return {
        "format": FORMAT_VERSION,
        "seed": cfg.run.seed,
        "lattice": dataclasses.asdict(cfg.lattice),
        "electrons": electrons,
        # eta only when set: datasets of the exact setting keep their fingerprints
        "negf": {"solver": cfg.negf.solver, "tol": cfg.negf.tol}
        | ({"eta": cfg.negf.eta} if cfg.negf.eta else {}),
        "datagen": _plain(datagen),
        "sampler": sampler_settings(cfg, comm).to_dict(),
    }


def dataset_path(cfg: RunConfig, restart: str | None = None) -> str:
    """Where the dataset of a deck lives: ``--restart FILE`` or ``<output.dir>/dataset.h5``."""
    return restart or os.path.join(cfg.output.dir, ds.DATASET_FILE)


def run(cfg: RunConfig, ctx: ParallelContext, restart: str | None = None) -> None:
    """Generate (or complete) the dataset of the deck. Collective over ctx.comm."""
    t_start = time.perf_counter()
    if restart is None:
        prepare_output_dir(cfg, ctx)
    path = dataset_path(cfg, restart)
    lattice = lattice_from(cfg)
    writer, done, session = open_dataset(cfg, ctx, path, lattice.n_sites, restart)
    pending = np.nonzero(~done)[0].tolist()
    log.info(
        "dataset %s: %d configurations, %d done, %d to compute (session %d)",
        path,
        done.size,
        int(done.sum()),
        len(pending),
        session,
    )
    gen = _Generation(cfg, ctx, writer, lattice, session)
    try:
        with SignalFlag() as stop:
            gen.run(pending, int(done.sum()), stop)
    except BaseException:
        # Closing is collective in parallel: after a failure on one rank it would wait
        # for ranks that never come. The CLI ends the job; flagged rows are safe anyway.
        if ctx.size == 1:
            writer.close()
        raise
    gen.free()
    writer.close()
    gen.summary(path, time.perf_counter() - t_start)
    if gen.stopped:
        raise RunInterrupted(
            f"datagen stopped on a signal: {gen.n_done}/{done.size} configurations complete "
            f"in {path}; run the same deck again to compute the rest"
        )


def open_dataset(
    cfg: RunConfig, ctx: ParallelContext, path: str, n_sites: int, restart: str | None
) -> tuple[ds.DatasetWriter, np.ndarray, int]:
    """Create the dataset file, or reopen it for resuming. Collective over ctx.comm.

    Rank 0 inspects an existing file and decides; every rank gets the decision, so a
    foreign or damaged file raises the same DataFileError everywhere and stays untouched.

    Returns:
        (writer, done flags (n_configs,) bool, session number of this run).
    """
    fp_json, fp = ds.fingerprint_of(fingerprint_data(cfg, ctx.comm))
    decision = decide(ctx.comm, _decide, cfg, path, fp, fp_json, restart)
    if decision[0] == "create":
        n = cfg.datagen.n_configs
        writer = ds.DatasetWriter.create(
            path,
            ctx.comm,
            ds.layout(n, n_sites, cfg.datagen.with_equilibrium),
            {"deck_text": cfg.deck_text, "config_json": cfg.to_json(), "n_ranks": ctx.size},
            _file_attrs(cfg, n_sites, fp, fp_json),
            collective=_collective(ctx),
        )
        done, session = np.zeros(n, dtype=bool), 0
    else:
        _, done, session = decision
        writer = ds.DatasetWriter(path, ctx.comm, collective=_collective(ctx))
    writer.set_attrs(**{ds.SESSIONS: session + 1, keys.N_RANKS: ctx.size})
    return writer, done, session


def _collective(ctx: ParallelContext) -> bool:
    if COLLECTIVE_IO == "auto":
        return ctx.local_size < ctx.size  # several nodes
    return bool(COLLECTIVE_IO)


def _decide(
    cfg: RunConfig, path: str, fp: str, fp_json: str, restart: str | None
) -> tuple[str] | tuple[str, np.ndarray, int]:
    if not os.path.exists(path):
        if restart is not None:
            raise DataFileError(f"--restart {path}: file not found")
        return ("create",)
    if restart is None and cfg.output.resume == "never":
        raise DataFileError(
            f"{path} exists and [output] resume = 'never': remove it, choose another "
            "[output] dir, or set resume = 'auto' to complete it"
        )
    info = ds.inspect_dataset(path)
    if info.fingerprint != fp:
        raise DataFileError(
            f"{path} was made by a different deck, refusing to resume into it "
            f"({_fingerprint_diff(info.fingerprint_json, fp_json)}); "
            "use another [output] dir or the original deck"
        )
    if info.version != __version__:
        log.warning("%s was written by hpcspin %s, this is %s", path, info.version, __version__)
    return ("resume", info.done, info.sessions)


def _fingerprint_diff(old_json: str, new_json: str) -> str:
    try:
        old, new = json.loads(old_json), json.loads(new_json)
    except ValueError:
        return "unreadable fingerprint"
    diffs = [f"{k}: file {a!r}, deck {b!r}" for k, a, b in settings_changes(old, new)]
    return "; ".join(diffs[:6]) or "fingerprint differs"


def _file_attrs(cfg: RunConfig, n_sites: int, fp: str, fp_json: str) -> dict:
    lat = cfg.lattice
    return {
        ds.FINGERPRINT: fp,
        ds.FINGERPRINT_JSON: fp_json,
        ds.N_CONFIGS: cfg.datagen.n_configs,
        ds.SESSIONS: 0,
        ds.KIND_NAMES: json.dumps(list(KIND_NAMES)),
        ds.LATTICE_JSON: json.dumps(dataclasses.asdict(lat), sort_keys=True),
        ds.ELECTRONS_JSON: json.dumps(dataclasses.asdict(cfg.electrons), sort_keys=True),
        ds.SAMPLER_JSON: json.dumps(sampler_settings(cfg).to_dict(), sort_keys=True),
        ds.NEGF_JSON: json.dumps(dataclasses.asdict(cfg.negf), sort_keys=True),
        keys.N_SITES: n_sites,
        keys.LATTICE_SHAPE: np.array([lat.length, lat.width], dtype=np.int64),
    }


class _Generation:
    """The batch loop of one session, with its timers. Collective over ctx.comm."""

    def __init__(
        self,
        cfg: RunConfig,
        ctx: ParallelContext,
        writer: ds.DatasetWriter,
        lattice: Lattice,
        session: int,
    ) -> None:
        self.ctx, self.comm, self.writer = ctx, ctx.comm, writer
        self.lattice, self.session = lattice, session
        self.seed = cfg.run.seed
        self.settings = sampler_settings(cfg, ctx.comm)
        self.frames = snapshot_frames(cfg, ctx.comm)
        self.with_eq = cfg.datagen.with_equilibrium
        self.n_total = cfg.datagen.n_configs
        self.interval = cfg.output.progress_interval
        # Groups of ranks_per_config ranks compute one configuration together (energy
        # points split in the group; with PETSc, systems shared per ranks_per_solve);
        # the group leaders share the work counter and hold the rows.
        k = cfg.datagen.ranks_per_config
        self.groups = ctx.groups(ctx.size // k)
        self.gcomm, self.leader = self.groups.comm, self.groups.leader
        self.lcomm = self.groups.leaders if self.gcomm is not None else self.comm
        self.per_batch = cfg.datagen.flush_every * self.groups.n_groups
        self.engine = negf_engine_from(cfg, lattice, comm=self.gcomm)
        self.t = {"compute": 0.0, "wait": 0.0, "io": 0.0}
        self.n_mine = 0
        self.n_new = 0
        self.n_done = 0
        self.stopped = False

    def run(self, pending: list[int], n_done: int, stop: SignalFlag) -> None:
        """Compute the pending configurations batch by batch."""
        self.n_done = n_done
        progress = Progress(self.n_total, "configs", self.ctx.rank, self.interval, start=n_done)
        counter = SharedCounter(self.lcomm) if self.leader else None
        # Freeing the counter is collective: only after a loop every rank completed
        # (a failing rank must not wait there for ranks that wait elsewhere).
        for batch in batches(pending, self.per_batch):
            batch = longest_first(batch, self._cost)
            rows, data = self._compute_batch(batch, counter, stop)
            self._write_batch(rows, data)
            if counter is not None:
                counter.reset()
            n_new, n_stop = self.comm.allreduce(
                np.array([len(rows), int(stop.requested)], dtype=np.int64)
            )
            self.n_new += int(n_new)
            self.n_done += int(n_new)
            progress.update(self.n_done)
            if n_stop:
                self.stopped = True
                break
        if counter is not None:
            counter.free()

    def free(self) -> None:
        """Release the group communicators. Collective (after a completed run)."""
        self.groups.free()

    def _compute_batch(
        self, batch: list[int], counter: SharedCounter | None, stop: SignalFlag
    ) -> tuple[list[int], dict[str, np.ndarray]]:
        rows: list[int] = []
        results: list[dict] = []
        while True:
            stopping = stop.requested
            if self.gcomm is not None:  # the whole group stops together
                stopping = bool(self.gcomm.allreduce(stopping))
            if stopping:
                break
            pos = counter.next() if counter is not None else None  # leaders hold one
            if self.gcomm is not None:
                pos = self.gcomm.bcast(pos, root=0)
            assert pos is not None  # every group has a leader: its position reached all
            if pos >= len(batch):
                break
            t0 = time.perf_counter()
            row = self.compute(batch[pos])  # collective over the group
            dt = time.perf_counter() - t0
            self.t["compute"] += dt
            if self.leader:
                results.append(row)
                rows.append(batch[pos])
            log.debug("computed config %d in %.3f s", batch[pos], dt)
        if stopping and counter is not None:  # a leader
            counter.poison(len(batch) + self.ctx.size)  # the others stop after their current one
        t0 = time.perf_counter()
        self.comm.Barrier()
        self.t["wait"] += time.perf_counter() - t0
        self.n_mine += len(rows)
        data = {name: np.stack([r[name] for r in results]) for name in results[0]} if rows else {}
        return rows, data

    def _write_batch(self, rows: list[int], data: dict) -> None:
        fault_point("datagen_write")
        t0 = time.perf_counter()
        self.writer.write_rows(rows, data)
        t1 = time.perf_counter()
        self.writer.flush()  # data on disk before its done flags
        t2 = time.perf_counter()
        self.writer.mark_done(rows)
        t3 = time.perf_counter()
        self.t["io"] += t3 - t0
        log.debug(
            "wrote %d rows: data %.4f s, flush %.4f s, flags %.4f s",
            len(rows),
            t1 - t0,
            t2 - t1,
            t3 - t2,
        )

    def _cost(self, k: int) -> float:
        return cost_estimate(k, self.seed, self.settings)

    def compute(self, k: int) -> dict:
        """NEGF results of configuration k as one dataset row."""
        fault_point("datagen_config")
        s: Sample = sample_config(k, self.seed, self.lattice, self.settings, self.frames)
        res = self.engine.compute(s.spins, bias=s.bias, mu=s.mu)
        row = {
            ds.SPINS: s.spins,
            ds.FIELD: np.asarray(res.field),
            ds.DENSITY: np.asarray(res.spin_density),
            ds.CURRENT: float(res.current),
            ds.BIAS: s.bias,
            ds.MU: s.mu,
            ds.SAMPLE_KIND: s.kind,
            ds.NOISE: s.noise,
            ds.WALL_CENTER: s.center,
            ds.WALL_WIDTH: s.width,
            ds.SESSION: self.session,
        }
        err = getattr(res, "error_estimate", np.nan)
        if self.with_eq:
            eq = res if s.bias == 0.0 else self.engine.compute(s.spins, bias=0.0, mu=s.mu)
            row[ds.FIELD_EQ] = np.asarray(eq.field)
            err = max(err, getattr(eq, "error_estimate", np.nan))
        row[ds.NEGF_ERROR] = float(err)
        if err > self.engine.tol:  # the point budget ran out (the engine logs the details)
            log.warning(
                "datagen: configuration %d (kind %s, V = %.6g): NEGF error estimate %.3g > "
                "tol %.3g, recorded in %s",
                k,
                s.kind,
                s.bias,
                err,
                self.engine.tol,
                ds.NEGF_ERROR,
            )
        return row

    def summary(self, path: str, wall: float) -> None:
        """Log totals and the time shares; rank 0 writes datagen_summary.json."""
        t = np.array([self.t["compute"], self.t["wait"], self.t["io"], wall])
        tot = self.comm.allreduce(t)
        share = tot[:3] / tot[3] if tot[3] > 0 else np.zeros(3)
        info = {
            "path": path,
            "n_ranks": self.ctx.size,
            "session": self.session,
            "configs_computed": self.n_new,
            "configs_done": self.n_done,
            "n_configs": self.n_total,
            "wall_s": wall,
            "configs_per_s": self.n_new / wall if wall > 0 else float("nan"),
            "share_compute": float(share[0]),
            "share_wait": float(share[1]),
            "share_io": float(share[2]),
            "stopped": self.stopped,
        }
        log.info(
            "datagen: %d configs computed this run (%d/%d done) in %.1f s, %.3g configs/s; "
            "time: compute %.1f%%, waiting %.1f%%, I/O %.1f%%",
            self.n_new,
            self.n_done,
            self.n_total,
            wall,
            info["configs_per_s"],
            100 * share[0],
            100 * share[1],
            100 * share[2],
        )
        if self.ctx.rank == 0:
            write_json(os.path.join(os.path.dirname(path) or ".", SUMMARY_FILE), info)


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
