"""Rank groups: the one formula for splitting ranks into contiguous groups.

Pure Python (no MPI import), so that library code that only receives a communicator
(the NEGF engine's block partition) uses the same grouping as
:meth:`hpcspin.parallel.context.ParallelContext.groups` (datagen's ranks per
configuration).
"""

from __future__ import annotations


def group_of(rank: int, size: int, n_groups: int | None) -> tuple[int, int, bool]:
    """(number of groups, this rank's group, whether it leads it) of ``n_groups`` groups.

    None: every rank its own group. Groups are contiguous, ``size // n`` ranks each,
    the last one also takes the remainder; a group's leader is its first rank.
    """
    g = size if n_groups is None else max(1, min(int(n_groups), size))
    per = size // g
    group = min(rank // per, g - 1)
    return g, group, rank == group * per


def group_comm(comm, n_groups: int | None):
    """The communicator of this rank's group of :func:`group_of`. Collective over comm."""
    _, group, _ = group_of(comm.Get_rank(), comm.Get_size(), n_groups)
    return comm.Split(group, comm.Get_rank())
