"""ParallelContext: the single owner of MPI.COMM_WORLD, of rank groups and of collective decisions.

Everything collective in hpcspin takes a communicator from here (``ctx.comm``,
a duplicate of COMM_WORLD, so library traffic never mixes with user traffic).

Collective decisions (:func:`decide`, :func:`agree`): a check whose failure is a
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

from hpcspin.errors import HpcspinError
from hpcspin.parallel.groups import group_of


def abort_world(code: int = 1) -> None:
    """End every rank of the job at once (after a rank-local failure)."""
    MPI.COMM_WORLD.Abort(code)


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
