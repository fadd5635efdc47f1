"""Builds the objects of a task from the config and runs it.

Only this module and hpcspin/tasks see the whole RunConfig; library classes
take plain arguments.
"""

from __future__ import annotations

import importlib
import os

from hpcspin.log import get_logger

TASK_MODULES = {
    "negf": "hpcspin.tasks.negf",
    "datagen": "hpcspin.tasks.datagen",
    "train": "hpcspin.tasks.train",
    "dynamics": "hpcspin.tasks.dynamics",
    "validate": "hpcspin.tasks.validate",
}

log = get_logger("driver")


def _inject_fault(rank: int) -> None:
    """Fault injection for the tests of the abort path (HPCSPIN_FAULT_RANK=r)."""
    target = os.environ.get("HPCSPIN_FAULT_RANK")
    if target is not None and target.strip() == str(rank):
        raise RuntimeError(f"injected fault on rank {rank} (HPCSPIN_FAULT_RANK)")


def run_task(cfg, ctx, restart: str | None = None) -> None:
    """Run ``cfg.run.task``. Collective over ctx.comm."""
    log.info(
        "hpcspin task '%s' on %d rank(s); deck %s",
        cfg.run.task,
        ctx.size,
        cfg.deck_path or "(text)",
    )
    _inject_fault(ctx.rank)
    module = importlib.import_module(TASK_MODULES[cfg.run.task])
    module.run(cfg, ctx, restart=restart)
