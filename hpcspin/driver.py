"""Builds the objects of a task from the config and runs it.

Only this module and hpcspin/tasks see the whole RunConfig; library classes
take plain arguments.

Around every task the driver holds (1) the run lock of the output directory
(:mod:`hpcspin.io.outdir`), logging the directory and the files the task will
write, and (2) for the tasks with safe points (:data:`STOPPABLE`) one signal flag for
the whole task (:mod:`hpcspin.tasks.signals`), so SIGTERM / SIGUSR1 never kill a rank
between their safe points.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import TYPE_CHECKING

from hpcspin import faults
from hpcspin.log import get_logger
from hpcspin.parallel.context import decide
from hpcspin.tasks.signals import SignalFlag

if TYPE_CHECKING:
    from hpcspin.deck.schema import RunConfig
    from hpcspin.io.outdir import RunLock
    from hpcspin.parallel.context import ParallelContext

TASK_MODULES = {
    "negf": "hpcspin.tasks.negf",
    "datagen": "hpcspin.tasks.datagen",
    "train": "hpcspin.tasks.train",
    "dynamics": "hpcspin.tasks.dynamics",
    "validate": "hpcspin.tasks.validate",
}

log = get_logger("driver")
#: Tasks that stop at safe points on SIGTERM/SIGUSR1 (checkpoint, exit status 75).
STOPPABLE = ("dynamics", "datagen", "train")


def run_task(cfg: RunConfig, ctx: ParallelContext, restart: str | None = None) -> None:
    """Run ``cfg.run.task``. Collective over ctx.comm."""
    log.info(
        "hpcspin task '%s' on %d rank(s); deck %s",
        cfg.run.task,
        ctx.size,
        cfg.deck_path or "(text)",
    )
    faults.set_rank(ctx.rank)
    # Tasks with safe points hold the flag for their whole run; the others (one NEGF
    # evaluation, validation) keep the default: a signal ends them at once.
    flag = SignalFlag() if cfg.run.task in STOPPABLE else contextlib.nullcontext()
    with flag:
        faults.fault_point("task_start")
        module = importlib.import_module(TASK_MODULES[cfg.run.task])
        lock = decide(ctx.comm, _lock, cfg, restart)
        try:
            module.run(cfg, ctx, restart=restart)
        finally:  # rank-local: never a collective on the way out of a failure
            if lock is not None and ctx.rank == 0:
                lock.release()


def output_target(cfg: RunConfig, restart: str | None = None) -> tuple[str, bool]:
    """(path, is a directory) the task writes into and locks.

    train writes next to its ``[model] file`` (one lock per model file); datagen with
    ``--restart FILE`` into that file's directory; everything else into [output] dir.
    """
    task = cfg.run.task
    if task == "train":
        return cfg.model.file, False
    if task == "datagen" and restart:
        return os.path.dirname(os.path.abspath(restart)), True
    return cfg.output.dir, True


def planned_outputs(cfg: RunConfig, restart: str | None = None) -> list[str]:
    """The files (or file patterns) the task will write, for the log (names: io/keys)."""
    from hpcspin.io import keys as k

    task, out = cfg.run.task, cfg.output.dir
    j = os.path.join
    if task == "dynamics":
        files = [k.TRAJECTORY_FILE, k.TRAJECTORY_VTKHDF, f"{k.CHECKPOINT_DIR}/checkpoint_<step>.h5"]
        files.append(k.SUMMARY_FILE)
        files += [k.TRAJECTORY_PNG] if cfg.output.plots else []
        return [j(out, f) for f in files]
    if task == "datagen":
        path = restart or j(out, k.DATASET_FILE)
        return [path, j(os.path.dirname(path) or ".", k.DATAGEN_SUMMARY_FILE)]
    if task == "train":
        m = cfg.model.file
        return [m, m + ".ckpt", os.path.splitext(m)[0] + k.TRAIN_SUMMARY_SUFFIX]
    if task == "negf":
        return [j(out, k.NEGF_FILE), j(out, k.NEGF_SUMMARY_FILE)]
    names = (k.VALIDATION_FILE, k.VELOCITY_JSON, k.VELOCITY_MD, "velocity/")
    return [j(out, f) for f in names]


def _lock(cfg: RunConfig, restart: str | None) -> RunLock:
    """Rank 0: create the output directory and take its run lock."""
    from hpcspin.errors import HpcspinError
    from hpcspin.io.outdir import RunLock, lock_path

    target, is_dir = output_target(cfg, restart)
    where = target if is_dir else os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(where, exist_ok=True)
    except OSError as exc:
        raise HpcspinError(f"output directory {where!r}: cannot create ({exc.strerror})") from exc
    lock = RunLock(lock_path(target, is_dir), cfg.run.task)
    note = lock.acquire()
    if note:
        log.warning("%s", note)
    log.info("output directory %s (run lock %s); this run writes:", where, lock.path)
    for f in planned_outputs(cfg, restart):
        log.info("  %s", f)
    return lock
