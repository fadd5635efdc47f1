"""SIGTERM/SIGUSR1 as a flag: SLURM's warnings before the time limit.

The tasks check the flag at safe points (after a step, a configuration, an epoch),
agree on it over all ranks, write what a restart needs and exit with status 75.
"""

from __future__ import annotations

import signal
import threading

from mpi4py import MPI

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class SignalFlag:
    """Context manager: SIGTERM / SIGUSR1 set ``signum`` instead of ending the process.

    Attributes:
        signum: the last signal received (0: none).
    """

    def __init__(self):
        self.signum = 0
        self._old = {}

    @property
    def requested(self) -> bool:
        """True once a signal arrived on this rank."""
        return self.signum != 0

    def _handler(self, signum, frame):
        self.signum = signum

    def __enter__(self) -> SignalFlag:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
        return False

    def agreed(self, comm) -> int:
        """The signal seen by any rank (0: none). Collective over comm."""
        return int(comm.allreduce(self.signum, op=MPI.MAX))
