"""ParallelContext: the single owner of MPI.COMM_WORLD, of rank groups and of collective decisions.

Everything collective in hpcspin takes a communicator from here (``ctx.comm``,
a duplicate of COMM_WORLD, so library traffic never mixes with user traffic).

Collective decisions (:mod:`hpcspin.parallel.collective`: :func:`decide`,
:func:`agree`, re-exported here): a check whose failure is a
user error (a file, a deck value) either runs on rank 0 alone and the result or
the error is broadcast, or runs on every rank and the first rank's error is
shared. Either way every rank raises the same :class:`~hpcspin.errors.HpcspinError`
at the same point (``collective = True``), so the CLI exits cleanly with status 2
instead of ending the job. Any other exception stays rank-local: the CLI logs its
traceback and ends every rank.

Rank groups (:meth:`ParallelContext.groups`, :mod:`hpcspin.parallel.groups`): ``n``
contiguous groups of ``size // n`` ranks (the last one takes the remainder), group
``g`` led by its first rank; the NEGF engine's block partition and datagen's
ranks-per-configuration groups both use this one formula.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mpi4py import MPI

from hpcspin.parallel.collective import PeerFailed as PeerFailed  # re-exported
from hpcspin.parallel.collective import agree, decide
from hpcspin.parallel.collective import collective_error as collective_error  # re-exported
from hpcspin.parallel.groups import group_of as group_of  # re-exported


def abort_world(code: int = 1) -> None:
    """End every rank of the job at once (after a rank-local failure)."""
    MPI.COMM_WORLD.Abort(code)


@dataclass
class RankGroups:
    """This rank's place in a grouping (:meth:`ParallelContext.groups`).

    Attributes:
        n_groups, group, leader: as :func:`~hpcspin.parallel.groups.group_of`.
        comm: the ranks of this group (None when each rank is its own group).
        leaders: the group leaders (None on other ranks).
    """

    n_groups: int
    group: int
    leader: bool
    comm: Any = None
    leaders: Any = None

    def free(self) -> None:
        """Release the communicators made for the grouping. Collective."""
        for c in (self.comm, self.leaders):
            if c is not None and c != MPI.COMM_NULL:
                c.Free()
        self.comm = self.leaders = None


def make_groups(comm, n_groups: int | None) -> RankGroups:
    """Split ``comm`` into :func:`~hpcspin.parallel.groups.group_of` groups. Collective.

    Without a real split (one group per rank) ``comm`` is the leaders' communicator
    itself and no group communicator is made.
    """
    size, rank = comm.Get_size(), comm.Get_rank()
    g, group, leader = group_of(rank, size, n_groups)
    if g == size:
        return RankGroups(g, group, True, None, None)
    gcomm = comm.Split(group, rank)
    leaders = comm.Split(0 if leader else MPI.UNDEFINED, rank)
    return RankGroups(g, group, leader, gcomm, None if leaders == MPI.COMM_NULL else leaders)


@dataclass
class ParallelContext:
    """Communicators of one run.

    Attributes:
        comm: duplicate of COMM_WORLD for all hpcspin collectives.
        rank, size: position in ``comm``.
        node_comm: ranks sharing this node (shared-memory split).
        local_rank, local_size: position in ``node_comm`` (device choice).
    """

    comm: MPI.Comm = field(default_factory=lambda: MPI.COMM_WORLD.Dup())

    def __post_init__(self) -> None:
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.node_comm = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank = self.node_comm.Get_rank()
        self.local_size = self.node_comm.Get_size()

    def cart(self, dims: tuple[int, ...], periods: tuple[bool, ...]) -> MPI.Cartcomm:
        """Cartesian communicator over a 1D or 2D process grid. Collective over comm.

        Args:
            dims: ranks along each grid axis; their product must equal ``size``.
            periods: whether each axis wraps around.
        """
        dims = tuple(int(d) for d in dims)
        prod = 1
        for d in dims:
            prod *= d
        if prod != self.size:
            raise ValueError(f"process grid {dims} needs {prod} ranks, job has {self.size}")
        return self.comm.Create_cart(list(dims), periods=[bool(p) for p in periods], reorder=False)

    def groups(self, n_groups: int | None) -> RankGroups:
        """This rank's group of ``n_groups`` contiguous groups. Collective over comm."""
        return make_groups(self.comm, n_groups)

    def decide(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """:func:`decide` over ``comm``."""
        return decide(self.comm, fn, *args, **kwargs)

    def agree(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """:func:`agree` over ``comm``."""
        return agree(self.comm, fn, *args, **kwargs)

    def self_context(self) -> ParallelContext:
        """A one-rank context of this process alone (serial sub-runs inside a job)."""
        return ParallelContext(comm=MPI.COMM_SELF.Dup())

    def free(self) -> None:
        """Release the duplicated communicators."""
        for c in (self.node_comm, self.comm):
            if c != MPI.COMM_NULL:
                c.Free()


def cuda_aware_mpi() -> bool:
    """Whether halo buffers may be device pointers (``HPCSPIN_CUDA_AWARE_MPI=1``).

    Off by default: GPU tensors are staged through host memory, which works with
    every MPI. Set the variable only for an MPI built with CUDA support.
    """
    return os.environ.get("HPCSPIN_CUDA_AWARE_MPI", "0") == "1"
