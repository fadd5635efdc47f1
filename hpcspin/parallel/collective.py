"""Collective decisions: one owner for "every rank fails the same way".

A check whose failure is a user error (a file, a deck value) either runs on rank 0
alone and the result or the error is broadcast (:func:`decide`), or runs on every
rank and the first failing rank's error is shared (:func:`agree`). Either way every
rank raises the same :class:`~hpcspin.errors.HpcspinError` at the same point
(``collective = True``), and the CLI exits cleanly with status 2 instead of ending
the job. Any other exception stays rank-local: the CLI logs its traceback and ends
every rank. Pure Python (the communicator's own methods only, no MPI import), so
library code that receives a communicator (training, the tasks) can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpcspin.errors import HpcspinError


class PeerFailed(RuntimeError):
    """Rank 0 failed with a genuine bug while deciding for every rank (see its traceback)."""


def decide(comm, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Run ``fn`` on rank 0 and give every rank its result or its error. Collective.

    Args:
        comm: communicator (None: serial).
        fn: the decision (file checks, reading a small file, ...).
        *args: positional arguments of ``fn``.
        **kwargs: keyword arguments of ``fn``.

    Returns:
        ``fn``'s result (broadcast: it must pickle).

    Raises:
        HpcspinError: the error ``fn`` raised on rank 0, on every rank (collective).
        PeerFailed: on ranks other than 0 when ``fn`` raised anything else there
            (rank 0 re-raises the original; the CLI ends the job).
    """
    if comm is None or comm.Get_size() == 1:
        return _collective_call(fn, *args, **kwargs)
    msg = None
    if comm.Get_rank() == 0:
        try:
            msg = ("ok", fn(*args, **kwargs))
        except HpcspinError as exc:
            msg = ("error", exc)
        except BaseException:
            comm.bcast(("bug", None), root=0)
            raise
    kind, value = comm.bcast(msg, root=0)
    if kind == "ok":
        return value
    if kind == "bug":
        raise PeerFailed("rank 0 failed while deciding for every rank (its traceback is logged)")
    value.collective = True
    raise value


def agree(comm, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Run ``fn`` on every rank; if it raised HpcspinError anywhere, every rank raises it.

    For checks every rank must do itself (each loads the same model file): when one
    rank fails, all raise the error of the lowest failing rank. Collective (one
    allgather); any other exception stays rank-local (the CLI ends the job).
    """
    if comm is None or comm.Get_size() == 1:
        return _collective_call(fn, *args, **kwargs)
    result, err = None, None
    try:
        result = fn(*args, **kwargs)
    except HpcspinError as exc:
        err = exc
    first = next((e for e in comm.allgather(err) if e is not None), None)
    if first is not None:
        first.collective = True
        raise first
    return result


def _collective_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except HpcspinError as exc:
        exc.collective = True
        raise


def collective_error(msg: str, cls: type[HpcspinError] = HpcspinError) -> HpcspinError:
    """An error that every rank raises at the same point after a shared decision."""
    e = cls(msg)
    e.collective = True
    return e
