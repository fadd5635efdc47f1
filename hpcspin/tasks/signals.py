"""SIGTERM/SIGUSR1 as a flag: SLURM's warnings before the time limit.

The tasks check the flag at safe points (after a step, a configuration, an epoch),
agree on it over all ranks, write what a restart needs and exit with status 75.

The driver holds one flag around the whole task, so a signal never kills a rank at
an edge of a loop (while loading, after the last epoch, while writing the result):
a signal before a loop is passed on to the loop's own flag (which then stops at its
first safe point); one after the last loop is recorded and the task completes.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

from mpi4py import MPI

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any, Literal

    #: What signal.signal accepts and returns.
    _Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

#: Flags entered and not yet left (innermost last): a nested flag starts with the
#: signal its enclosing flag has seen.
_active: list[SignalFlag] = []


class SignalFlag:
    """Context manager: SIGTERM / SIGUSR1 set ``signum`` instead of ending the process.

    Attributes:
        signum: the last signal received (0: none).
    """

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, _Handler] = {}

    @property
    def requested(self) -> bool:
        """True once a signal arrived on this rank."""
        return self.signum != 0

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def __enter__(self) -> SignalFlag:
        if _active:
            self.signum = self.signum or _active[-1].signum
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        _active.append(self)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        if self in _active:
            _active.remove(self)
        if _active and self.signum:  # seen inside: the enclosing flag knows it too
            _active[-1].signum = _active[-1].signum or self.signum
        return False

    def agreed(self, comm: MPI.Comm) -> int:
        """The signal seen by any rank (0: none). Collective over comm."""
        return int(comm.allreduce(self.signum, op=MPI.MAX))

    def local(self) -> int:
        """The signal seen by this rank (0: none); for callers that reduce it themselves."""
        return self.signum


#: File to which every rank appends "rank status" as it exits (set by jobs/hpcspin_job.sh).
EXIT_FILE_ENV = "HPCSPIN_EXIT_FILE"
_RANK_VARS = ("PMIX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")


def record_exit(code: int) -> None:
    """Append this rank's exit status to ``$HPCSPIN_EXIT_FILE`` (if set).

    A launcher that gets the signal itself may report a status of its own (mpirun
    returns 1 on SIGTERM while every rank checkpoints and exits 75); the job templates
    then go by the ranks' statuses. A rank ended by MPI_Abort or a kill writes nothing.
    """
    path = os.environ.get(EXIT_FILE_ENV)
    if not path:
        return
    rank = next((os.environ[v] for v in _RANK_VARS if v in os.environ), "0")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{rank} {int(code)}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # only a hint for the templates; the status itself is returned as usual
