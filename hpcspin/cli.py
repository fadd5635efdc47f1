"""Command line: ``python -m hpcspin DECK [--check [--ranks N]] [--restart FILE] ...``.

``python -m hpcspin --print-defaults [TASK]`` prints a template deck of every key;
``python -m hpcspin export TRAJ --format ovf|extxyz|vtkhdf`` converts a trajectory;
``python -m hpcspin inspect MODEL.pt`` describes a model file.

Exit statuses: 0 done; 2 a mistake in the input (deck, files), printed without a
traceback; 75 stopped on a signal after a checkpoint (resubmit to continue);
1 anything else (the traceback is logged and every rank is ended).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING

from hpcspin import __version__
from hpcspin.errors import EXIT_FAILURE, DeckError, HpcspinError, RunInterrupted

if TYPE_CHECKING:
    from collections.abc import Callable

    from hpcspin.deck.schema import RunConfig
    from hpcspin.parallel.context import ParallelContext


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used for --help)."""
    p = argparse.ArgumentParser(
        prog="python -m hpcspin",
        description="Voltage-driven spin dynamics: NEGF data, ML forces, parallel LLG.",
        epilog="Other commands: 'python -m hpcspin export TRAJ --format ovf|extxyz|vtkhdf' "
        "(a trajectory for other tools), 'python -m hpcspin inspect MODEL.pt' (a model "
        "file); each has its own --help.",
    )
    p.add_argument("deck", nargs="?", help="input deck (TOML)")
    p.add_argument(
        "--check",
        action="store_true",
        help="validate the deck on one process and exit (login nodes, job scripts)",
    )
    p.add_argument(
        "--ranks",
        type=int,
        default=None,
        metavar="N",
        help="with --check: the rank count the job will use",
    )
    p.add_argument("--restart", metavar="FILE", help="restart from this checkpoint file")
    p.add_argument(
        "--print-defaults",
        nargs="?",
        const="",
        metavar="TASK",
        help="print a complete commented deck of every key with its default, unit and "
        "allowed values (only the sections TASK reads, if given) and exit",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a deck value (repeatable; VALUE is read as TOML)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level of rank 0",
    )
    p.add_argument("--all-ranks-log", action="store_true", help="let every rank log INFO")
    p.add_argument("--version", action="version", version=f"hpcspin {__version__}")
    return p


def _overrides(items: list[str]) -> dict:
    from hpcspin.deck.load import parse_override

    return dict(parse_override(s) for s in items)


def _print_error(exc: Exception) -> None:
    print(f"hpcspin: error: {exc}", file=sys.stderr, flush=True)


def load_checked(load: Callable[[dict], RunConfig], overrides: dict) -> RunConfig:
    """``load(overrides)``, redone with the model file's radius for an ML dynamics deck.

    The run uses the radius stored in the model file, not [model] radius, so the
    rank-count checks are redone with the file's descriptor reach when they differ
    (the returned config is the deck's own: the run identity is unchanged).

    Args:
        load: callable ``overrides -> RunConfig`` (e.g. load_deck of a path).
        overrides: ``{"section.key": value}``.
    """
    cfg = load(overrides)
    if cfg.run.task != "dynamics" or cfg.dynamics.forces != "ml":
        return cfg
    from hpcspin.ml.model import model_file_reach

    reach = model_file_reach(cfg.model.file)  # None: unreadable, reported at run time
    if reach is None or reach == cfg.model.radius:
        return cfg
    load({**overrides, "model.radius": reach})
    return cfg


def _load_deck(deck: str, overrides: dict, n_ranks: int) -> RunConfig:
    """:func:`load_checked` of a deck file."""
    from hpcspin.deck import load_deck

    return load_checked(lambda ov: load_deck(deck, ov, n_ranks=n_ranks), overrides)


def check(args: argparse.Namespace) -> int:
    """``--check``: validate on this process only; no MPI collective is entered."""
    n = args.ranks if args.ranks is not None else 1
    if n < 1:
        _print_error(DeckError([f"--ranks {n}: must be >= 1"], "--check"))
        return 2
    try:
        cfg = _load_deck(args.deck, _overrides(args.set), n)
    except HpcspinError as exc:
        _print_error(exc)
        return exc.exit_code
    lat = cfg.lattice
    print(
        f"{args.deck}: OK  task={cfg.run.task}  lattice={lat.kind} "
        f"{lat.length}x{lat.width} ({lat.length * lat.width} sites)  ranks={n}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the deck on every rank of the MPI job."""
    from hpcspin.parallel.context import ParallelContext, abort_world

    ctx = ParallelContext()
    from hpcspin.log import setup_logging

    setup_logging(ctx.rank, ctx.size, args.log_level, args.all_ranks_log)
    log = logging.getLogger("hpcspin.cli")
    try:
        cfg = _load_collective(ctx, args)
        from hpcspin.driver import run_task

        run_task(cfg, ctx, restart=args.restart)
        return 0
    except RunInterrupted as exc:
        log.warning("%s", exc)
        return exc.exit_code
    except HpcspinError as exc:
        if ctx.rank == 0 or not exc.collective:
            _print_error(exc)
        if exc.collective or ctx.size == 1:
            return exc.exit_code
        log.error("error on rank %d only: ending all %d ranks", ctx.rank, ctx.size)
        abort_world(exc.exit_code)
        return exc.exit_code
    except BaseException as exc:  # noqa: BLE001  (any failure must end the whole job)
        if isinstance(exc, SystemExit | KeyboardInterrupt) and ctx.size == 1:
            raise
        log.error("unexpected error on rank %d:\n%s", ctx.rank, traceback.format_exc())
        if ctx.size > 1:
            abort_world(EXIT_FAILURE)
        return EXIT_FAILURE


def _load_collective(ctx: ParallelContext, args: argparse.Namespace) -> RunConfig:
    """Rank 0 reads and validates the deck; every rank gets the config or the error."""
    payload: RunConfig | DeckError | None = None
    if ctx.rank == 0:
        try:
            payload = _load_deck(args.deck, _overrides(args.set), ctx.size)
        except DeckError as exc:
            payload = exc
    payload = ctx.comm.bcast(payload, root=0)
    if isinstance(payload, DeckError):
        payload.collective = True
        raise payload
    return payload


def export_main(argv: list[str]) -> int:
    """``python -m hpcspin export TRAJ --format ovf|extxyz|vtkhdf [--frames F] [--out P]``."""
    from hpcspin.io.export import FORMATS, export

    p = argparse.ArgumentParser(
        prog="python -m hpcspin export",
        description="Write a trajectory as OVF 2.0 (one file per frame), extxyz or a "
        "VTKHDF sidecar for ParaView (docs/outputs.md).",
    )
    p.add_argument("trajectory", help="trajectory.h5 of a dynamics run")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument(
        "--frames",
        default="all",
        help="all (default), first, last, a list 0,5,9 or a slice 0:100:10",
    )
    p.add_argument(
        "--out",
        default=None,
        help="output file (ovf: stem of <stem>_<frame>.ovf); default: next to the trajectory",
    )
    p.add_argument(
        "--binary",
        type=int,
        default=0,
        choices=(0, 4, 8),
        help="OVF data: 0 text (default), 4 or 8 binary float bytes",
    )
    args = p.parse_args(argv)
    try:
        paths = export(args.trajectory, args.format, args.out, args.frames, args.binary)
    except HpcspinError as exc:
        _print_error(exc)
        return exc.exit_code
    except OSError as exc:
        _print_error(HpcspinError(f"cannot write the export: {exc}"))
        return 2
    for path in paths[:3]:
        print(path)
    if len(paths) > 3:
        print(f"... {len(paths)} files")
    return 0


def print_defaults(task: str | None) -> int:
    """``--print-defaults [TASK]``: the template deck on stdout (exit 2: unknown task)."""
    from hpcspin.deck.template import template

    try:
        text = template(task)
    except ValueError as exc:
        print(f"python -m hpcspin: error: --print-defaults: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    if argv[:1] == ["inspect"]:  # model files: spec, domain, quality, checksum
        from hpcspin.ml.describe import main as inspect_main

        return inspect_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.print_defaults is not None:
        return print_defaults(args.print_defaults or None)
    if not args.deck:
        build_parser().print_usage(sys.stderr)
        print("python -m hpcspin: error: a deck file is required", file=sys.stderr)
        return 2
    if args.ranks is not None and not args.check:
        print("python -m hpcspin: error: --ranks is only used with --check", file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.check:
        return check(args)
    code = run(args)
    from hpcspin.tasks.signals import record_exit

    record_exit(code)  # for the job templates (jobs/hpcspin_job.sh)
    return code
