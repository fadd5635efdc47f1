"""Halo exchange on the grid layout of :class:`~hpcspin.parallel.decomp.Decomposition`.

``forward`` fills ghost cells with copies of their owners' values (corners
included, y wrapping when the lattice is periodic); ``reverse`` is its adjoint:
every ghost cell's value is added into the cell that owns the site, then the
ghosts are zeroed. Both run in two phases, x then y (reverse: y then x); the y
phase moves whole extended rows, x ghosts included, which carries the corners
to the diagonal neighbours without extra messages.

Arrays are ``(nx, ny, ...)`` numpy arrays or torch tensors (duck typed, torch is
never imported here). CUDA tensors are staged through host buffers unless
:func:`hpcspin.parallel.context.cuda_aware_mpi` allows device buffers. Tensors are
modified in place through ``.detach()``: the exchange is not recorded by autograd.
"""

from __future__ import annotations

import sys

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.parallel.decomp import Decomposition


class HaloExchanger:
    """Forward and reverse ghost-cell exchange for one rank's block.

    Collective over comm: ``forward`` and ``reverse`` must be called by every rank
    of the process grid, in the same order.

    Args:
        comm: communicator whose ranks form the process grid in row-major order
            (``rank = ix * py + iy``), or None for a serial run.
        decomposition: this rank's block.
        cart: optional Cartesian communicator over ``comm`` with ``dims`` equal to
            ``decomposition.dims`` (e.g. from ``ParallelContext.cart``); built with
            ``comm.Create_cart`` (collective) when not given.
    """

    def __init__(self, comm, decomposition: Decomposition, cart=None):
        d = decomposition
        self.decomp = d
        self.comm = comm
        self.cart = None
        size = 1 if comm is None else comm.Get_size()
        if d.size != size:
            raise HpcspinError(f"process grid {d.dims} has {d.size} ranks, communicator {size}")
        # Neighbours (low, high) per axis; None: no neighbour (edge), "self": local wrap.
        self._nbrs: list[tuple] = [(None, None), (None, None)]
        if d.periodic and d.dims[1] == 1:
            self._nbrs[1] = ("self", "self")
        if size > 1:
            self._setup_cart(comm, cart)
        self._bufs: dict = {}

    def _setup_cart(self, comm, cart) -> None:
        from mpi4py import MPI  # noqa: PLC0415  (serial runs need no MPI)

        d = self.decomp
        own = cart is None
        if own:
            cart = comm.Create_cart(list(d.dims), periods=[False, d.periodic], reorder=False)
        if tuple(cart.Get_topo()[0]) != d.dims:
            raise HpcspinError(f"Cartesian communicator dims {cart.dims} != {d.dims}")
        if tuple(cart.Get_coords(cart.Get_rank())) != d.coords:
            raise HpcspinError(
                f"rank {cart.Get_rank()} sits at {cart.Get_coords(cart.Get_rank())} "
                f"in the Cartesian grid but the decomposition says {d.coords}"
            )
        self.cart = cart
        self._own_cart = own
        for axis in (0, 1):
            if self._nbrs[axis][0] == "self":
                continue
            lo, hi = cart.Shift(axis, 1)
            self._nbrs[axis] = tuple(None if r == MPI.PROC_NULL else r for r in (lo, hi))

    def free(self) -> None:
        """Free the Cartesian communicator if this exchanger created it. Collective over comm."""
        if self.cart is not None and getattr(self, "_own_cart", False):
            self.cart.Free()
        self.cart = None

    # -- public API --------------------------------------------------------------
    def forward(self, grid):
        """Fill ghost cells from their owners; invalid cells become 0. Collective over comm.

        Args:
            grid: (nx, ny, ...) array or tensor; owned cells are read, ghosts written.

        Returns:
            ``grid`` (modified in place).
        """
        ops, arr = self._ops(grid)
        for axis in (0, 1):
            self._phase(arr, ops, axis, reverse=False)
        self._zero_invalid(arr, ops)
        return grid

    def reverse(self, grid):
        """Add ghost-cell values into their owners, then zero the ghosts. Collective over comm.

        The adjoint of :meth:`forward`: values on invalid cells are dropped.

        Args:
            grid: (nx, ny, ...) array or tensor of per-cell contributions.

        Returns:
            ``grid`` (modified in place).
        """
        ops, arr = self._ops(grid)
        self._zero_invalid(arr, ops)
        for axis in (1, 0):
            self._phase(arr, ops, axis, reverse=True)
        self._zero_ghosts(arr, ops)
        return grid

    # -- phases ------------------------------------------------------------------
    def _phase(self, arr, ops, axis: int, reverse: bool) -> None:
        h = self.decomp.halo[axis]
        lo, hi = self._nbrs[axis]
        if h == 0 or (lo is None and hi is None):
            return
        if lo == "self":
            self._local_wrap(arr, ops, reverse)
            return
        ghost_lo, bnd_lo, bnd_hi, ghost_hi = self._slabs(axis)
        # (send slab, dest, tag, recv slab, source): tag = direction of travel.
        if not reverse:
            moves = [(bnd_lo, lo, 0, ghost_hi, hi), (bnd_hi, hi, 1, ghost_lo, lo)]
        else:
            moves = [(ghost_lo, lo, 0, bnd_hi, hi), (ghost_hi, hi, 1, bnd_lo, lo)]
        reqs, recvs = [], []
        tag0 = 100 + 2 * axis
        for k, (_, _, tag, rsl, src) in enumerate(moves):
            if src is not None:
                rbuf = self._buf(arr, ops, rsl, (axis, k, "r"))
                reqs.append(self.cart.Irecv(rbuf, source=src, tag=tag0 + tag))
                recvs.append((rsl, rbuf))
        sbufs = []
        for k, (ssl, dst, tag, _, _) in enumerate(moves):
            if dst is not None:
                sbufs.append((self._buf(arr, ops, ssl, (axis, k, "s")), ssl, dst, tag))
        for sbuf, ssl, _, _ in sbufs:
            ops.get(arr, ssl, sbuf)
        ops.sync()
        for sbuf, _, dst, tag in sbufs:
            reqs.append(self.cart.Isend(sbuf, dest=dst, tag=tag0 + tag))
        _waitall(reqs)
        for rsl, rbuf in recvs:
            (ops.add if reverse else ops.put)(arr, rsl, rbuf)

    def _slabs(self, axis: int):
        """Index tuples (ghost low, boundary low, boundary high, ghost high) along ``axis``."""
        (nx, ny), (hx, hy) = self.decomp.shape, self.decomp.halo
        n, h = (nx, hx) if axis == 0 else (ny, hy)
        cuts = [slice(0, h), slice(h, 2 * h), slice(n - 2 * h, n - h), slice(n - h, n)]
        if axis == 0:  # x phase: owned rows only; the y phase carries the corners
            return [(c, slice(hy, ny - hy)) for c in cuts]
        return [(slice(0, nx), c) for c in cuts]

    def _local_wrap(self, arr, ops, reverse: bool) -> None:
        """Periodic y with one rank along y: ghost rows are copies of own rows."""
        d = self.decomp
        ny, hy, w = d.shape[1], d.halo[1], d.width
        ghosts = list(range(hy)) + list(range(ny - hy, ny))
        for j in ghosts:
            src = hy + (j - hy) % w
            if reverse:
                ops.add(arr, (slice(None), src), arr[:, j])
            else:
                ops.put(arr, (slice(None), j), arr[:, src])

    def _zero_invalid(self, arr, ops) -> None:
        d = self.decomp
        (px, py), (ix, iy), (hx, hy) = d.dims, d.coords, d.halo
        (nx, ny) = d.shape
        if hx and ix == 0:
            ops.zero(arr, (slice(0, hx),))
        if hx and ix == px - 1:
            ops.zero(arr, (slice(nx - hx, nx),))
        if hy and not d.periodic and iy == 0:
            ops.zero(arr, (slice(None), slice(0, hy)))
        if hy and not d.periodic and iy == py - 1:
            ops.zero(arr, (slice(None), slice(ny - hy, ny)))

    def _zero_ghosts(self, arr, ops) -> None:
        (nx, ny), (hx, hy) = self.decomp.shape, self.decomp.halo
        if hx:
            ops.zero(arr, (slice(0, hx),))
            ops.zero(arr, (slice(nx - hx, nx),))
        if hy:
            ops.zero(arr, (slice(None), slice(0, hy)))
            ops.zero(arr, (slice(None), slice(ny - hy, ny)))

    # -- buffers and array kinds -----------------------------------------------------
    def _ops(self, grid):
        if tuple(grid.shape[:2]) != self.decomp.shape:
            raise HpcspinError(
                f"grid of shape {tuple(grid.shape)} does not match the extended block "
                f"{self.decomp.shape}"
            )
        if isinstance(grid, np.ndarray):
            return _NUMPY, grid
        if not (hasattr(grid, "detach") and hasattr(grid, "cpu")):
            raise HpcspinError(f"halo exchange needs a numpy array or a tensor, got {type(grid)}")
        t = grid.detach()
        if not getattr(t, "is_cuda", False):
            return _NUMPY, t.numpy()  # shares memory with the CPU tensor
        from hpcspin.parallel.context import cuda_aware_mpi  # noqa: PLC0415

        return (_DeviceOps() if cuda_aware_mpi() else _STAGED), t

    def _buf(self, arr, ops, sl, key):
        shape = tuple(_extent(s, n) for s, n in zip(sl, arr.shape)) + tuple(arr.shape[len(sl) :])
        full = (key, shape, str(arr.dtype), ops.kind, str(getattr(arr, "device", "")))
        buf = self._bufs.get(full)
        if buf is None:
            buf = ops.empty(arr, shape)
            self._bufs[full] = buf
        return buf


def _extent(s: slice, n: int) -> int:
    return len(range(*s.indices(n)))


def _waitall(reqs) -> None:
    if reqs:
        from mpi4py import MPI  # noqa: PLC0415

        MPI.Request.Waitall(reqs)


class _NumpyOps:
    """Host numpy arrays (and CPU tensors through their numpy view)."""

    kind = "numpy"

    @staticmethod
    def empty(arr, shape):
        return np.empty(shape, dtype=arr.dtype)

    @staticmethod
    def get(arr, sl, buf):
        np.copyto(buf, arr[sl])

    @staticmethod
    def put(arr, sl, src):
        arr[sl] = src

    @staticmethod
    def add(arr, sl, src):
        arr[sl] += src

    @staticmethod
    def zero(arr, sl):
        arr[sl] = 0

    @staticmethod
    def sync():
        pass


class _StagedOps(_NumpyOps):
    """CUDA tensors without CUDA-aware MPI: slabs travel through host buffers."""

    kind = "staged"

    @staticmethod
    def empty(arr, shape):
        return np.empty(shape, dtype=str(arr.dtype).replace("torch.", ""))

    @staticmethod
    def get(arr, sl, buf):
        np.copyto(buf, arr[sl].cpu().numpy())

    @staticmethod
    def put(arr, sl, src):
        arr[sl] = src if not isinstance(src, np.ndarray) else arr.new_tensor(src)

    @staticmethod
    def add(arr, sl, src):
        arr[sl] += src if not isinstance(src, np.ndarray) else arr.new_tensor(src)


class _DeviceOps(_StagedOps):
    """CUDA tensors with CUDA-aware MPI: device buffers go to MPI directly."""

    kind = "device"

    @staticmethod
    def empty(arr, shape):
        return arr.new_empty(shape)

    @staticmethod
    def get(arr, sl, buf):
        buf.copy_(arr[sl])

    @staticmethod
    def sync():
        torch = sys.modules.get("torch")  # loaded: a tensor exists
        if torch is not None and torch.cuda.is_available():
            torch.cuda.synchronize()


_NUMPY = _NumpyOps()
_STAGED = _StagedOps()
