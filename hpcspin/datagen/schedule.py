"""Dynamic work sharing for independent tasks: batches and a shared counter.

The pending configurations are cut into batches (``flush_every`` per rank). Inside a
batch, ranks take the next position from a counter shared through MPI one-sided
fetch-and-add (on rank 0's window), so a rank that drew cheap configurations takes more
of them: load balance without a master rank, and every rank stays free to enter the
collective writes at the batch end. Which rank computes a configuration never changes
its result (each one is computed serially), so datasets are identical at any rank count.

Within a batch the expensive configurations go first (:func:`longest_first`), so
the ranks run out of work at nearly the same time.

Stopping: a rank that must stop (a signal) stops taking work and pushes the counter past
the batch end, so the other ranks finish their current configuration and stop too; the
stop is then agreed on at the batch boundary.
"""

from __future__ import annotations

import numpy as np


def batches(pending, per_batch: int):
    """Consecutive slices of ``pending`` with ``per_batch`` items each (last one shorter).

    Args:
        pending: sequence of task indices, in order.
        per_batch: items per batch (>= 1).

    Yields:
        Lists of task indices.
    """
    per_batch = max(1, int(per_batch))
    pending = list(pending)
    for start in range(0, len(pending), per_batch):
        yield pending[start : start + per_batch]


def longest_first(items, cost) -> list:
    """Items sorted by decreasing ``cost(item)``, stable.

    Handing out the expensive ones first leaves only cheap ones for the end of a
    batch, where ranks wait for each other.
    """
    return sorted(items, key=lambda item: -cost(item))


class SharedCounter:
    """A counter every rank can fetch-and-increment without the others' help.

    Collective over comm (creation, :meth:`reset`, :meth:`free`); :meth:`next` and
    :meth:`poison` are one-sided. With ``comm`` None (or one rank) a plain integer.

    Args:
        comm: communicator (mpi4py), or None for serial.
    """

    def __init__(self, comm=None):
        self.comm = comm
        self._local = 0
        self._win = None
        if comm is not None and comm.Get_size() > 1:
            from mpi4py import MPI

            self._mpi = MPI
            nbytes = MPI.INT64_T.Get_size() if comm.Get_rank() == 0 else 0
            self._win = MPI.Win.Allocate(nbytes, MPI.INT64_T.Get_size(), comm=comm)
            self._one = np.ones(1, dtype=np.int64)
            self._out = np.zeros(1, dtype=np.int64)
            self.reset()

    def reset(self) -> None:
        """Set the counter to 0. Collective over comm (it ends with a barrier)."""
        self._local = 0
        if self._win is None:
            return
        mpi = self._mpi
        if self.comm.Get_rank() == 0:
            zero = np.zeros(1, dtype=np.int64)
            self._win.Lock(0, mpi.LOCK_EXCLUSIVE)
            self._win.Put(zero, 0, 0)
            self._win.Unlock(0)
        self.comm.Barrier()

    def next(self) -> int:
        """Fetch the counter and add 1 (atomic). One-sided."""
        return self._add(self._one if self._win is not None else 1)

    def poison(self, amount: int) -> None:
        """Add ``amount``, so that every later :meth:`next` lands past a batch end."""
        self._add(np.array([int(amount)], dtype=np.int64) if self._win is not None else amount)

    def _add(self, amount) -> int:
        if self._win is None:
            value = self._local
            self._local += int(amount)
            return value
        mpi = self._mpi
        self._win.Lock(0, mpi.LOCK_SHARED)
        self._win.Fetch_and_op(amount, self._out, 0, 0, mpi.SUM)
        self._win.Unlock(0)
        return int(self._out[0])

    def free(self) -> None:
        """Release the window. Collective over comm."""
        if self._win is not None:
            self._win.Free()
            self._win = None
