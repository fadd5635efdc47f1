"""Ownership of an output directory: a run lock, and which files a run may replace.

Lock: ``<dir>/.hpcspin.lock`` (or ``<file>.lock`` for a single output file), a JSON
record of the holder (host, pid, SLURM job id, task, start time), created with
``O_EXCL`` by rank 0 for the whole run. A second run is refused (exit status 2)
naming the holder. A lock whose process is gone (same host, pid no longer an
hpcspin process) or that an earlier attempt of the same SLURM job left (requeue)
is stale: it is taken over with a warning. A lock of another host cannot be
checked from here: the message says how to remove it.

Ownership: hpcspin removes or overwrites only files it wrote, recognised by name
*and* by the file-kind attribute it stamps into every HDF5 file
(:data:`hpcspin.io.keys.KIND`); anything else is left alone or refused.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable

import h5py

from hpcspin.errors import HpcspinError
from hpcspin.io import keys
from hpcspin.io.h5 import plain_attr

LOCK_NAME = ".hpcspin.lock"


class LockHeld(HpcspinError):
    """Another run holds the output directory (exit status 2)."""


def _alive_hpcspin(pid: int) -> bool:
    """Whether ``pid`` is a live process of this host running hpcspin."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process: assume it holds the lock
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"hpcspin" in fh.read()
    except OSError:
        return True  # no /proc: a live pid is taken as the holder


def _holder_text(rec: dict) -> str:
    job = f", SLURM job {rec['job_id']}" if rec.get("job_id") else ""
    return (
        f"pid {rec.get('pid')} on {rec.get('host')}{job}, task {rec.get('task')!r}, "
        f"since {rec.get('started')}"
    )


def _stale_reason(rec: dict) -> str | None:
    """Why a lock record belongs to no live run (None: it may be live)."""
    host, job = socket.gethostname(), os.environ.get("SLURM_JOB_ID")
    if job and rec.get("job_id") == job and rec.get("pid") != os.getpid():
        return f"left by an earlier attempt of this SLURM job {job}"
    if rec.get("host") == host and isinstance(rec.get("pid"), int):
        if not _alive_hpcspin(rec["pid"]):
            return f"its process {rec['pid']} on {host} is gone"
    return None


class RunLock:
    """The lock of one output directory or file, held by rank 0 of a run.

    Args:
        path: the lock file (see :func:`lock_path`).
        task: the task name (recorded for the message a second run gets).
    """

    def __init__(self, path: str, task: str):
        self.path, self.task = path, task
        self.token = uuid.uuid4().hex
        self.held = False

    def _record(self) -> dict:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "job_id": os.environ.get("SLURM_JOB_ID"),
            "task": self.task,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "token": self.token,
        }

    def acquire(self) -> str | None:
        """Take the lock; returns a warning when a stale lock was taken over.

        Raises:
            LockHeld: another live run (or one that cannot be checked) holds it.
        """
        data = json.dumps(self._record(), indent=1).encode()
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return self._take_over(data)
        except OSError as exc:
            raise HpcspinError(f"cannot create the run lock {self.path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        except OSError as exc:  # e.g. no space left: no half-written lock stays behind
            os.remove(self.path)
            raise HpcspinError(f"cannot write the run lock {self.path}: {exc.strerror}") from exc
        self.held = True
        return None

    def _take_over(self, data: bytes) -> str:
        rec = read_lock(self.path)
        reason = _stale_reason(rec) if rec is not None else None
        if reason is None:
            who = _holder_text(rec) if rec is not None else "an unreadable lock record"
            raise LockHeld(
                f"{os.path.dirname(self.path) or '.'} is in use by another hpcspin run "
                f"({who}; lock file {self.path}); wait for it to end or use another "
                "[output] dir. If that run is dead (e.g. killed on another node), "
                f"remove {self.path}"
            )
        tmp = f"{self.path}.{self.token}"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, self.path)
        again = read_lock(self.path)  # two runs taking over at once: one wins
        if again is None or again.get("token") != self.token:
            raise LockHeld(f"{self.path}: another run took over the stale lock at the same time")
        self.held = True
        return f"took over the stale run lock {self.path} ({_holder_text(rec)}: {reason})"

    def release(self) -> None:
        """Remove the lock file if this run still holds it."""
        if not self.held:
            return
        self.held = False
        rec = read_lock(self.path)
        if rec is not None and rec.get("token") == self.token:
            try:
                os.remove(self.path)
            except OSError:
                pass


def read_lock(path: str) -> dict | None:
    """The record of a lock file, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as fh:
            rec = json.loads(fh.read(1 << 16))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def lock_path(target: str, is_dir: bool = True) -> str:
    """The lock file of an output directory (``.hpcspin.lock`` in it) or of one file."""
    return os.path.join(target, LOCK_NAME) if is_dir else target + ".lock"


# -- ownership ----------------------------------------------------------------------------
def h5_kind(path: str) -> str | None:
    """The hpcspin file kind stamped in an HDF5 file; None for anything else."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            kind = f.attrs.get(keys.KIND)
            return None if kind is None else str(plain_attr(kind))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def h5_config(path: str) -> dict | None:
    """The run settings (config JSON) stamped into an hpcspin HDF5 file, or None."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            text = f.attrs.get(keys.CONFIG)
            return None if text is None else json.loads(plain_attr(text))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_replaceable(
    path: str, kind: str, what: str, probe: Callable[[str], str | None] = h5_kind
) -> None:
    """Refuse to overwrite ``path`` unless it is missing or an hpcspin file of ``kind``.

    Args:
        path: the file a run is about to write.
        kind: the kind hpcspin stamps into that file (e.g. "trajectory", "model").
        what: how the message names the setting (e.g. "[model] file").
        probe: returns the kind of an existing file, None if it is not hpcspin's.

    Raises:
        HpcspinError: ``path`` is a directory or a file hpcspin did not write.
    """
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise HpcspinError(f"{what} = {path!r} is a directory; give a file path")
    found = probe(path) if os.path.isfile(path) else None
    if found != kind:
        got = "not a file hpcspin wrote" if found is None else f"an hpcspin {found!r} file"
        raise HpcspinError(
            f"{what} = {path!r} exists and is {got}: refusing to overwrite it "
            "(move it away or choose another path)"
        )


def removable(paths: list[str], kind: str, probe=h5_kind) -> tuple[list[str], list[str]]:
    """Split ``paths`` into (hpcspin files of ``kind``, everything else)."""
    ours, other = [], []
    for p in paths:
        (ours if os.path.isfile(p) and probe(p) == kind else other).append(p)
    return ours, other
