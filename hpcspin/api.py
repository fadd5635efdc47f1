"""Python API: run a deck from a script or a notebook.

    import hpcspin
    result = hpcspin.run("input_decks/demo_chain_ml.toml", overrides={"dynamics.t_end": 20.0})
    result.summary["velocity"], result.files["trajectory"]

A deck is a file path, TOML text, or a dict of sections (``{"run": {"task": "negf"},
"lattice": {"length": 20}}``). The run is the same as ``python -m hpcspin``: the same
validation (every problem at once, raised as :class:`~hpcspin.errors.DeckError`), the
same tasks and files. Under ``mpirun`` pass nothing (or a communicator) and call
:func:`run` on every rank; the result is the same on every rank.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpcspin.io import keys

if TYPE_CHECKING:
    from collections.abc import Callable

    from mpi4py import MPI

    from hpcspin.deck.schema import RunConfig
    from hpcspin.parallel.context import ParallelContext

    #: A deck: a file path, TOML text, or ``{section: {key: value}}``.
    Deck = str | os.PathLike[str] | dict[str, Any]


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        task: the deck's task.
        output_dir: the directory the task wrote into (absolute).
        files: existing output files by role (``"trajectory"``, ``"summary"``, ...).
        summary: the task's summary JSON as a dict (empty if the task writes none).
        threads: torch threads per rank used by the run.
        config: the validated configuration (:class:`~hpcspin.deck.schema.RunConfig`).
    """

    task: str
    output_dir: str
    files: dict[str, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    threads: int = 1
    config: RunConfig | None = None


def run(
    deck: Deck,
    comm: MPI.Comm | None = None,
    *,
    overrides: dict | None = None,
    restart: str | None = None,
    log_level: str = "INFO",
) -> RunResult:
    """Validate a deck and run its task. Collective over ``comm``.

    Args:
        deck: path of a TOML deck, TOML text, or a dict ``{section: {key: value}}``.
        comm: mpi4py communicator of the ranks that run it (None: every rank of the
            job; one process outside mpirun). It is duplicated, never used directly.
        overrides: ``{"section.key": value}`` applied on top (as ``--set``).
        restart: checkpoint (dynamics) or dataset (datagen) to continue from.
        log_level: level of hpcspin's log lines on rank 0.

    Returns:
        :class:`RunResult`.

    Raises:
        DeckError: the deck is invalid (every problem listed).
        HpcspinError: another user error (a missing or damaged file, ...).
    """
    from hpcspin.cli import load_checked
    from hpcspin.driver import run_task
    from hpcspin.log import setup_logging
    from hpcspin.parallel.context import ParallelContext

    ctx = ParallelContext() if comm is None else ParallelContext(comm=comm.Dup())
    try:
        setup_logging(ctx.rank, ctx.size, log_level)
        cfg = ctx.decide(load_checked, _loader(deck, ctx.size), dict(overrides or {}))
        threads = set_threads(ctx)
        run_task(cfg, ctx, restart=restart)
        ctx.comm.Barrier()
        return _result(cfg, threads)
    finally:
        ctx.free()


def _loader(deck: Deck, n_ranks: int) -> Callable[[dict], RunConfig]:
    """``overrides -> RunConfig`` for a deck path, TOML text or dict."""
    from hpcspin.deck.load import load_deck, parse_deck

    if isinstance(deck, dict):
        text = deck_text(deck)
        return lambda ov: parse_deck(text, "(deck dict)", ov, n_ranks)
    if isinstance(deck, os.PathLike) or (isinstance(deck, str) and "\n" not in deck):
        return lambda ov: load_deck(os.fspath(deck), ov, n_ranks)
    return lambda ov: parse_deck(deck, "(deck text)", ov, n_ranks)


def set_threads(ctx: ParallelContext) -> int:
    """Torch threads per rank: the node's cores shared by the ranks on the node.

    ``OMP_NUM_THREADS``, when set, wins (as on the command line). A torch not yet
    imported reads the count from ``OMP_NUM_THREADS`` (set here); one already
    imported is told directly. Returns the count.
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        n = int(env)
    else:
        n = max(1, (os.cpu_count() or 1) // max(1, ctx.local_size))
        os.environ["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")  # only hpcspin.ml imports torch
    if torch is not None:
        torch.set_num_threads(n)
    return n


def deck_text(sections: dict) -> str:
    """TOML text of a deck given as ``{section: {key: value}}``."""
    from hpcspin.deck.template import toml_value

    lines = []
    for name, table in sections.items():
        if not isinstance(table, dict):
            lines.append(f"{name} = {toml_value(table)}")  # reported as 'must be a table'
            continue
        lines.append(f"[{name}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _result(cfg: RunConfig, threads: int) -> RunResult:
    """Files of the task that exist, and its summary."""
    task, out = cfg.run.task, os.path.abspath(cfg.output.dir)
    j = os.path.join
    if task == "dynamics":
        files = {
            "trajectory": j(out, keys.TRAJECTORY_FILE),
            "vtkhdf": j(out, keys.TRAJECTORY_VTKHDF),
            "summary": j(out, keys.SUMMARY_FILE),
            "plot": j(out, keys.TRAJECTORY_PNG),
            "checkpoints": j(out, keys.CHECKPOINT_DIR),
        }
    elif task == "datagen":
        files = {"dataset": j(out, keys.DATASET_FILE), "summary": j(out, keys.DATAGEN_SUMMARY_FILE)}
    elif task == "negf":
        files = {"negf": j(out, keys.NEGF_FILE), "summary": j(out, keys.NEGF_SUMMARY_FILE)}
    elif task == "train":
        model = os.path.abspath(cfg.model.file)
        out = os.path.dirname(model)
        stem = os.path.splitext(model)[0]
        files = {"model": model, "summary": stem + keys.TRAIN_SUMMARY_SUFFIX}
    else:
        files = {
            "summary": j(out, keys.VALIDATION_FILE),
            "velocity": j(out, keys.VELOCITY_JSON),
            "velocity_table": j(out, keys.VELOCITY_MD),
            "velocity_plot": j(out, keys.VELOCITY_PNG),
            "fields_plot": j(out, keys.FIELDS_PARITY_PNG),
        }
    files = {k: p for k, p in files.items() if os.path.exists(p)}
    summary = {}
    if "summary" in files:
        with open(files["summary"]) as fh:
            summary = json.load(fh)
    return RunResult(task, out, files, summary, threads, cfg)
