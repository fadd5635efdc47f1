"""ParallelContext: the single owner of MPI.COMM_WORLD.

Everything collective in hpcspin takes a communicator from here (``ctx.comm``,
a duplicate of COMM_WORLD, so library traffic never mixes with user traffic).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mpi4py import MPI


def world_size() -> int:
    """Number of ranks in COMM_WORLD (for the CLI, before a context exists)."""
    return MPI.COMM_WORLD.Get_size()


def world_rank() -> int:
    """This process's rank in COMM_WORLD."""
    return MPI.COMM_WORLD.Get_rank()


def abort_world(code: int = 1) -> None:
    """End every rank of the job at once (after a rank-local failure)."""
    MPI.COMM_WORLD.Abort(code)


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

    @property
    def is_root(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

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

    def split(self, n_groups: int) -> MPI.Comm:
        """Split ranks into ``n_groups`` contiguous groups (e.g. one PETSc solve each).

        Collective over comm. Returns this rank's group communicator.
        """
        n_groups = max(1, min(int(n_groups), self.size))
        color = self.rank * n_groups // self.size
        return self.comm.Split(color, key=self.rank)

    def self_context(self) -> ParallelContext:
        """A one-rank context of this process alone (serial sub-runs inside a job)."""
        return ParallelContext(comm=MPI.COMM_SELF.Dup())

    def all_ok(self, ok: bool) -> bool:
        """Logical AND of a per-rank verdict over all ranks. Collective over comm."""
        return bool(self.comm.allreduce(bool(ok), op=MPI.LAND))

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
