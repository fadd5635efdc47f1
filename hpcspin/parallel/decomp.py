"""Domain decomposition of an L x W lattice over a 1D or 2D process grid.

One block-distribution rule (:func:`block_range`) splits both axes. Rank ``r`` of
a ``(px, py)`` grid sits at grid coordinates ``(ix, iy) = divmod(r, py)`` (MPI's
row-major Cartesian order, ``reorder=False``). It owns columns
``[x0, x1) = block_range(L, px, ix)`` and rows ``[y0, y1) = block_range(W, py, iy)``
and holds them in grid form ``(nx, ny, ...)`` with a halo of ``(hx, hy)`` cells on
every side; owned cells are ``grid[hx:nx-hx, hy:ny-hy]``.

Ghost cells come from the nearest neighbouring block only (no multi-hop), so
every block along an axis split over more than one rank must be at least as wide
as the halo on that axis. With one rank along a periodic y axis the wrap is local
and any ``hy`` works. Sites are numbered ``i = x * W + y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hpcspin.errors import HpcspinError


def block_range(n: int, parts: int, index: int) -> tuple[int, int]:
    """Half-open range ``[start, stop)`` of block ``index`` when ``n`` items go to ``parts``.

    The first ``n % parts`` blocks get one item more than the others, so block
    sizes differ by at most one and the blocks tile ``[0, n)`` in order.

    Args:
        n: number of items (>= 0).
        parts: number of blocks (>= 1).
        index: block index, ``0 <= index < parts``.
    """
    if parts < 1 or not 0 <= index < parts:
        raise ValueError(f"block index {index} out of range for {parts} parts")
    base, extra = divmod(int(n), int(parts))
    start = index * base + min(index, extra)
    return start, start + base + (1 if index < extra else 0)


def choose_grid(size: int, length: int, width: int, halo: tuple[int, int] = (0, 0)) -> tuple:
    """Process grid ``(px, py)`` for ``size`` ranks on an L x W lattice.

    A chain (W = 1) is always ``(size, 1)``. A strip is split along x as far as
    possible (transport direction, long axis); y is split only when x alone cannot
    take ``size`` ranks with blocks at least ``max(hx, 1)`` columns wide.

    Raises:
        HpcspinError: if no factorisation of ``size`` fits the lattice.
    """
    hx, hy = (int(h) for h in halo)
    if width == 1:
        return (int(size), 1)
    for px in range(size, 0, -1):
        if size % px:
            continue
        py = size // px
        if _fits(length, px, hx) and _fits(width, py, hy):
            return (px, py)
    raise HpcspinError(
        f"cannot place {size} ranks on a {length} x {width} lattice with halo {halo} "
        "(each block must hold at least one site and be as wide as the halo; use fewer ranks)"
    )


def _fits(n: int, parts: int, halo: int) -> bool:
    """Whether ``parts`` blocks of ``n`` are non-empty and (if split) >= halo wide."""
    if parts > n:
        return False
    return parts == 1 or n // parts >= halo


@dataclass(frozen=True)
class Decomposition:
    """One rank's block of an L x W lattice (the chain is W = 1, ``hy = 0``).

    Attributes:
        length: L, columns along x (never periodic).
        width: W, rows along y.
        periodic: whether y wraps around.
        dims: process grid ``(px, py)``.
        coords: this rank's grid coordinates ``(ix, iy)``.
        halo: ghost widths ``(hx, hy)``.
    """

    length: int
    width: int
    periodic: bool
    dims: tuple[int, int]
    coords: tuple[int, int]
    halo: tuple[int, int] = (0, 0)

    def __post_init__(self):
        self.validate()

    @classmethod
    def for_rank(
        cls,
        length: int,
        width: int,
        periodic: bool,
        size: int,
        rank: int,
        halo: tuple[int, int] = (0, 0),
        dims: tuple[int, int] | None = None,
    ) -> Decomposition:
        """Decomposition of rank ``rank`` of ``size`` (grid from :func:`choose_grid`)."""
        if dims is None:
            dims = choose_grid(size, length, width, halo)
        dims = (int(dims[0]), int(dims[1]))
        if dims[0] * dims[1] != size:
            raise HpcspinError(f"process grid {dims} has {dims[0] * dims[1]} ranks, job has {size}")
        if not 0 <= rank < size:
            raise HpcspinError(f"rank {rank} outside 0..{size - 1}")
        ix, iy = divmod(int(rank), dims[1])
        return cls(int(length), int(width), bool(periodic), dims, (ix, iy), _pair(halo))

    @classmethod
    def from_lattice(cls, lattice, size: int = 1, rank: int = 0, halo=(0, 0), dims=None):
        """Same as :meth:`for_rank` for a :class:`hpcspin.lattice.Lattice`."""
        return cls.for_rank(lattice.length, lattice.width, lattice.periodic, size, rank, halo, dims)

    def validate(self) -> None:
        """Raise HpcspinError for a grid the lattice or the halo cannot take."""
        (px, py), (ix, iy), (hx, hy) = self.dims, self.coords, self.halo
        if self.length < 1 or self.width < 1:
            raise HpcspinError(f"lattice {self.length} x {self.width} is empty")
        if px < 1 or py < 1 or not (0 <= ix < px and 0 <= iy < py):
            raise HpcspinError(f"grid coordinates {self.coords} outside process grid {self.dims}")
        if hx < 0 or hy < 0:
            raise HpcspinError(f"halo widths must be >= 0, got {self.halo}")
        for axis, n, parts, h in (("x", self.length, px, hx), ("y", self.width, py, hy)):
            if parts > n:
                raise HpcspinError(
                    f"{parts} ranks along {axis} but only {n} "
                    f"{'columns' if axis == 'x' else 'rows'}: use at most {n} ranks there"
                )
            if parts > 1 and n // parts < h:
                raise HpcspinError(
                    f"blocks along {axis} are {n // parts} wide, narrower than the halo {h} "
                    f"(ghosts come from the nearest rank only): use at most {n // max(h, 1)} "
                    f"ranks along {axis}"
                )

    # -- ranges and shapes ---------------------------------------------------
    @property
    def size(self) -> int:
        """Number of ranks in the process grid."""
        return self.dims[0] * self.dims[1]

    @property
    def rank(self) -> int:
        """This block's rank in row-major grid order."""
        return self.coords[0] * self.dims[1] + self.coords[1]

    @cached_property
    def x_range(self) -> tuple[int, int]:
        """Owned columns ``[x0, x1)``."""
        return block_range(self.length, self.dims[0], self.coords[0])

    @cached_property
    def y_range(self) -> tuple[int, int]:
        """Owned rows ``[y0, y1)``."""
        return block_range(self.width, self.dims[1], self.coords[1])

    @property
    def owned_shape(self) -> tuple[int, int]:
        """Owned block shape ``(x1 - x0, y1 - y0)``."""
        return (self.x_range[1] - self.x_range[0], self.y_range[1] - self.y_range[0])

    @property
    def n_owned(self) -> int:
        """Number of owned sites."""
        return self.owned_shape[0] * self.owned_shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        """Extended grid shape ``(nx, ny)`` = owned block plus halo on both sides."""
        (ox, oy), (hx, hy) = self.owned_shape, self.halo
        return (ox + 2 * hx, oy + 2 * hy)

    @property
    def owned_slice(self) -> tuple[slice, slice]:
        """Index of the owned cells in the extended grid."""
        (nx, ny), (hx, hy) = self.shape, self.halo
        return (slice(hx, nx - hx), slice(hy, ny - hy))

    # -- global indices --------------------------------------------------------
    @cached_property
    def _ext_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Global (x, y) of every extended cell, y not yet wrapped."""
        (nx, ny), (hx, hy) = self.shape, self.halo
        gx = np.arange(nx) + self.x_range[0] - hx
        gy = np.arange(ny) + self.y_range[0] - hy
        return np.meshgrid(gx, gy, indexing="ij")

    @cached_property
    def valid(self) -> np.ndarray:
        """Boolean (nx, ny): cell holds a real site (False beyond x ends and open y edges)."""
        gx, gy = self._ext_xy
        ok = (gx >= 0) & (gx < self.length)
        if not self.periodic:
            ok &= (gy >= 0) & (gy < self.width)
        return ok

    @cached_property
    def extended_sites(self) -> np.ndarray:
        """Global site index (nx, ny) of every extended cell, -1 where not valid."""
        gx, gy = self._ext_xy
        idx = gx * self.width + np.mod(gy, self.width)
        return np.where(self.valid, idx, -1)

    @cached_property
    def owned_sites(self) -> np.ndarray:
        """Global site indices of the owned block, in grid (x-major) order, shape (n_owned,)."""
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        x, y = np.meshgrid(np.arange(x0, x1), np.arange(y0, y1), indexing="ij")
        return (x * self.width + y).ravel()

    def block_of(self, rank: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """Owned ``((x0, x1), (y0, y1))`` of another rank of the same grid."""
        ix, iy = divmod(int(rank), self.dims[1])
        return (
            block_range(self.length, self.dims[0], ix),
            block_range(self.width, self.dims[1], iy),
        )

    # -- data movement (serial helpers) ----------------------------------------
    def scatter(self, global_array: np.ndarray) -> np.ndarray:
        """Extended grid (nx, ny, ...) of a global (N, ...) array; ghosts filled, invalid 0."""
        g = np.asarray(global_array)
        if g.shape[0] != self.length * self.width:
            raise HpcspinError(
                f"global array has {g.shape[0]} sites, lattice has {self.length * self.width}"
            )
        out = g[np.maximum(self.extended_sites, 0)]
        out[~self.valid] = 0
        return out

    def owned(self, grid):
        """View of the owned cells of an extended grid."""
        return grid[self.owned_slice]

    def owned_from_global(self, global_array: np.ndarray) -> np.ndarray:
        """Owned block (ox, oy, ...) cut out of a global (N, ...) array."""
        g = np.asarray(global_array)
        return g[self.owned_sites].reshape(self.owned_shape + g.shape[1:])

    def place_owned(self, global_array: np.ndarray, owned_block, rank: int | None = None):
        """Write ``rank``'s owned block (ox, oy, ...) into a global (N, ...) array."""
        (x0, x1), (y0, y1) = self.block_of(self.rank if rank is None else rank)
        g = global_array.reshape((self.length, self.width) + global_array.shape[1:])
        g[x0:x1, y0:y1] = np.asarray(owned_block).reshape((x1 - x0, y1 - y0) + g.shape[2:])
        return global_array

    def gather(self, comm, owned_block, root: int | None = 0) -> np.ndarray | None:
        """Global (N, ...) array from every rank's owned block. Collective over comm.

        Args:
            comm: communicator whose rank order is the grid order (or None: serial).
            owned_block: this rank's owned cells, shape (ox, oy, ...) or (n_owned, ...).
            root: rank that receives the result (others get None); None: every rank.
        """
        block = self._as_block(owned_block)
        if comm is None or comm.Get_size() == 1:
            return self.place_owned(self._empty_global(block), block)
        blocks = comm.allgather(block) if root is None else comm.gather(block, root=root)
        if blocks is None:
            return None
        out = self._empty_global(block)
        for r, b in enumerate(blocks):
            self.place_owned(out, b, r)
        return out

    def _as_block(self, arr) -> np.ndarray:
        """Owned data as (ox, oy, ...) from (ox, oy, ...) or (n_owned, ...)."""
        a = np.ascontiguousarray(arr)
        if a.ndim >= 2 and a.shape[:2] == self.owned_shape:
            return a
        if a.shape[0] != self.n_owned:
            raise HpcspinError(f"owned block of shape {a.shape} does not fit {self.owned_shape}")
        return a.reshape(self.owned_shape + a.shape[1:])

    def _empty_global(self, block: np.ndarray) -> np.ndarray:
        return np.zeros((self.length * self.width,) + block.shape[2:], dtype=block.dtype)


def _pair(h) -> tuple[int, int]:
    """Halo as a pair: an int means (h, h)."""
    if np.ndim(h) == 0:
        return (int(h), int(h))
    return (int(h[0]), int(h[1]))
