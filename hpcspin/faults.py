"""Fault injection for the tests of the failure paths.

``HPCSPIN_FAULT="name@rank[:count[:kind]][,...]"`` raises an exception in the
``count``-th call (default 1) of ``fault_point("name")`` on rank ``rank``
(``*``: every rank). ``kind`` is what is raised:

* ``bug`` (default): :class:`InjectedFault`, a genuine bug to hpcspin (exit status 1);
* ``oserror``: an ``OSError`` (EIO), as a failing disk or HDF5 write raises;
* ``error``: an :class:`~hpcspin.errors.HpcspinError` raised on this rank only (not
  a collective error), as a rank-local check of the input would.

The last two are the exceptions writers treat as expected: raised on one rank only
inside an open parallel file they must still end the job, not hang it.
``HPCSPIN_FAULT_RANK=r`` is the older form of ``task_start@r``.

Fault points (grep ``fault_point(`` for the list):

====================  ==========================================================
``task_start``        before a task builds anything (driver)
``dynamics_step``     after every drive or relax step, before the handlers
``trajectory_open``   inside the trajectory file just opened (parallel HDF5: collective)
``trajectory_frame``  before a trajectory frame is written
``trajectory_write``  inside a frame write, between collective resizes and writes
``checkpoint_write``  before a dynamics checkpoint is written
``checkpoint_fill``   inside the open checkpoint file (parallel HDF5: collective)
``dynamics_finish``   while the summary of a finished run is written
``datagen_config``    before every configuration a rank computes
``negf_energy_block`` before every block of energies (poles, quadrature intervals) a rank
                      evaluates in an NEGF evaluation
``validate_run``      before every velocity run (dynamics) of a validate task
``datagen_write``     before the rows of a batch are written
``train_epoch``       after every training epoch
``train_save``        before the model file is written
====================  ==========================================================

Without the variable a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import errno
import os

from hpcspin.errors import HpcspinError

ENV = "HPCSPIN_FAULT"
KINDS = ("bug", "oserror", "error")
_rank = 0
_plan: dict[str, tuple[str, int, str]] | None = None
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
    """``"a@1:3,b@*"`` -> {"a": ("1", 3), "b": ("*", 1)} (the kinds: :func:`parse_kinds`).

    Raises:
        ValueError: a malformed entry (a typo must not silently inject nothing).
    """
    return {name: (rank, count) for name, (rank, count, _) in _entries(spec).items()}


def parse_kinds(spec: str) -> dict[str, str]:
    """``"a@1,b@0:2:oserror"`` -> {"a": "bug", "b": "oserror"}."""
    return {name: kind for name, (_, _, kind) in _entries(spec).items()}


def _entries(spec: str) -> dict[str, tuple[str, int, str]]:
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, where = item.partition("@")
        rank, _, rest = where.partition(":")
        count, _, kind = rest.partition(":")
        if not sep or not name or not (rank == "*" or rank.isdigit()):
            raise ValueError(f"{ENV}={spec!r}: entry {item!r} is not name@rank[:count[:kind]]")
        if count and not count.isdigit():
            raise ValueError(f"{ENV}={spec!r}: count of {item!r} is not a number")
        if kind and kind not in KINDS:
            raise ValueError(f"{ENV}={spec!r}: kind of {item!r} is not one of {KINDS}")
        plan[name] = (rank, int(count or 1), kind or "bug")
    return plan


def _load() -> dict[str, tuple[str, int, str]]:
    global _plan
    if _plan is None:
        plan = _entries(os.environ.get(ENV, ""))
        legacy = os.environ.get("HPCSPIN_FAULT_RANK", "").strip()
        if legacy:
            plan.setdefault("task_start", (legacy, 1, "bug"))
        _plan = plan
    return _plan


def reset() -> None:
    """Forget the parsed plan and the call counts (tests that change the variable)."""
    global _plan
    _plan = None
    _calls.clear()


def fault_point(name: str) -> None:
    """Raise the planned exception here if the plan names this point, this rank and call."""
    plan = _plan if _plan is not None else _load()
    if name not in plan:
        return
    rank, count, kind = plan[name]
    if rank != "*" and int(rank) != _rank:
        return
    _calls[name] = n = _calls.get(name, 0) + 1
    if n != count:
        return
    message = f"injected fault on rank {_rank} at '{name}' (call {n}, {ENV})"
    if kind == "oserror":
        raise OSError(errno.EIO, message)
    if kind == "error":
        raise HpcspinError(message)
    raise InjectedFault(message)
