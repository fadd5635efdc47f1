"""Fault injection for the tests of the failure paths.

``HPCSPIN_FAULT="name@rank[:count][,name@rank[:count]...]"`` raises
:class:`InjectedFault` (a genuine bug to hpcspin: exit status 1) in the
``count``-th call (default 1) of ``fault_point("name")`` on rank ``rank``
(``*``: every rank). ``HPCSPIN_FAULT_RANK=r`` is the older form of
``task_start@r``.

Fault points (grep ``fault_point(`` for the list):

====================  ==========================================================
``task_start``        before a task builds anything (driver)
``dynamics_step``     after every drive or relax step, before the handlers
``trajectory_frame``  before a trajectory frame is written
``checkpoint_write``  before a dynamics checkpoint is written
``checkpoint_fill``   inside the open checkpoint file (parallel HDF5: collective)
``dynamics_finish``   while the summary of a finished run is written
``datagen_config``    before every configuration a rank computes
``datagen_write``     before the rows of a batch are written
``train_epoch``       after every training epoch
``train_save``        before the model file is written
====================  ==========================================================

Without the variable a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import os

ENV = "HPCSPIN_FAULT"
_rank = 0
_plan: dict[str, tuple[str, int]] | None = None
_calls: dict[str, int] = {}


class InjectedFault(Exception):  # noqa: N818  (named for what it is)
    """The exception a fault point raises: a genuine bug to hpcspin (exit status 1).

    Deliberately not an OSError/RuntimeError/ValueError, which writers may treat as an
    error every rank reports alike.
    """


def set_rank(rank: int) -> None:
    """Tell the fault points which rank this process is (the driver does)."""
    global _rank
    _rank = int(rank)


def parse(spec: str) -> dict[str, tuple[str, int]]:
    """``"a@1:3,b@*"`` -> {"a": ("1", 3), "b": ("*", 1)}.

    Raises:
        ValueError: a malformed entry (a typo must not silently inject nothing).
    """
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, where = item.partition("@")
        rank, _, count = where.partition(":")
        if not sep or not name or not (rank == "*" or rank.isdigit()):
            raise ValueError(f"{ENV}={spec!r}: entry {item!r} is not name@rank[:count]")
        if count and not count.isdigit():
            raise ValueError(f"{ENV}={spec!r}: count of {item!r} is not a number")
        plan[name] = (rank, int(count or 1))
    return plan


def _load() -> dict[str, tuple[str, int]]:
    global _plan
    if _plan is None:
        plan = parse(os.environ.get(ENV, ""))
        legacy = os.environ.get("HPCSPIN_FAULT_RANK", "").strip()
        if legacy:
            plan.setdefault("task_start", (legacy, 1))
        _plan = plan
    return _plan


def reset() -> None:
    """Forget the parsed plan and the call counts (tests that change the variable)."""
    global _plan
    _plan = None
    _calls.clear()


def fault_point(name: str) -> None:
    """Raise InjectedFault here if the plan names this point, this rank and this call."""
    plan = _plan if _plan is not None else _load()
    if name not in plan:
        return
    rank, count = plan[name]
    if rank != "*" and int(rank) != _rank:
        return
    _calls[name] = n = _calls.get(name, 0) + 1
    if n == count:
        raise InjectedFault(f"injected fault on rank {_rank} at '{name}' (call {n}, {ENV})")
