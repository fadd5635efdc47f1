"""Lattice geometry and neighbour tables (see package docstring for numbering)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

KINDS = ("chain", "square", "triangular")

# Primitive vectors in units of the lattice constant; integer coordinates (x, y)
# map to position x*a1 + y*a2.
_A2 = {"chain": (0.0, 1.0), "square": (0.0, 1.0), "triangular": (0.5, np.sqrt(3.0) / 2.0)}
_TOL = 1e-8


def cartesian(kind: str, xy) -> np.ndarray:
    """Cartesian positions (n, 2) of integer coordinates or offsets (n, 2) on ``kind``.

    The one definition of the primitive vectors: a1 = (1, 0), a2 = (0, 1) on the chain
    and the square strip, a2 = (1/2, sqrt(3)/2) on the triangular strip.
    """
    c = np.asarray(xy, dtype=float).reshape(-1, 2)
    return c[:, :1] * np.array([1.0, 0.0]) + c[:, 1:] * np.array(_A2[kind])


@dataclass(frozen=True, eq=False)
class Lattice:
    """A strip of L columns (transport direction x) and W rows.

    Attributes:
        kind: "chain", "square" or "triangular".
        length: L, number of slices along x.
        width: W, sites per slice (1 for the chain).
        periodic: periodic transverse (y) boundary; open otherwise.
    """

    kind: str
    length: int
    width: int = 1
    periodic: bool = False
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown lattice kind {self.kind!r}; choose from {KINDS}")
        if self.length < 1 or self.width < 1:
            raise ValueError("length and width must be >= 1")
        if self.kind == "chain" and self.width != 1:
            raise ValueError("a chain has width 1")
        if self.periodic and self.width < 3:
            raise ValueError("a periodic transverse boundary needs width >= 3")

    # -- sites ---------------------------------------------------------------
    @property
    def n_sites(self) -> int:
        """N = L * W."""
        return self.length * self.width

    def site(self, x, y):
        """Site index of integer coordinates (arrays allowed)."""
        return np.asarray(x) * self.width + np.asarray(y)

    @cached_property
    def coords(self) -> np.ndarray:
        """Integer coordinates (N, 2): column x and row y of every site."""
        x, y = np.divmod(np.arange(self.n_sites), self.width)
        return np.stack([x, y], axis=1)

    @cached_property
    def positions(self) -> np.ndarray:
        """Cartesian positions (N, 2) in lattice constants."""
        return cartesian(self.kind, self.coords)

    def slice_sites(self, x: int) -> np.ndarray:
        """Sites of slice (column) x, in row order."""
        return np.arange(x * self.width, (x + 1) * self.width)

    # -- neighbours ----------------------------------------------------------
    @cached_property
    def _shells(self) -> list[tuple[float, np.ndarray]]:
        """Neighbour shells as (distance, integer offsets (n, 2)) from a bulk site."""
        a2 = np.array(_A2[self.kind])
        r = 6
        dx, dy = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
        off = np.stack([dx.ravel(), dy.ravel()], axis=1)
        if self.kind == "chain":
            off = off[off[:, 1] == 0]
        off = off[np.any(off != 0, axis=1)]
        dist = np.linalg.norm(off[:, :1] * np.array([1.0, 0.0]) + off[:, 1:] * a2, axis=1)
        shells = []
        for d in np.unique(np.round(dist, 8)):
            if d > r - 1:  # shells beyond this may be truncated by the box
                break
            sel = np.abs(dist - d) < _TOL
            shells.append((float(d), off[sel]))
        return shells

    def shell_distance(self, shell: int) -> float:
        """Distance of neighbour shell ``shell`` (1 = nearest neighbours)."""
        return self._shells[shell - 1][0]

    def neighbor_offsets(self, shell: int = 1) -> np.ndarray:
        """Integer offsets (n, 2) of the given shell in the infinite lattice."""
        return self._shells[shell - 1][1]

    def neighbors(self, shell: int = 1) -> np.ndarray:
        """Neighbour table (N, z) of the given shell; -1 marks a missing neighbour.

        Transverse wrap-around follows ``periodic``; nothing wraps along x
        (the leads sit there). Column order follows :meth:`neighbor_offsets`.
        """
        key = ("nbr", shell)
        if key not in self._cache:
            off = self.neighbor_offsets(shell)
            x = self.coords[:, :1] + off[None, :, 0]
            y = self.coords[:, 1:] + off[None, :, 1]
            if self.periodic:
                ok = (x >= 0) & (x < self.length)
                y = np.mod(y, self.width)
            else:
                ok = (x >= 0) & (x < self.length) & (y >= 0) & (y < self.width)
            tab = np.where(ok, x * self.width + y, -1)
            self._cache[key] = tab
        return self._cache[key]

    def bonds(self, shell: int = 1) -> np.ndarray:
        """Unique bonds (n_bonds, 2) with i < j of the given shell, sorted."""
        key = ("bonds", shell)
        if key not in self._cache:
            tab = self.neighbors(shell)
            i = np.repeat(np.arange(self.n_sites), tab.shape[1])
            j = tab.ravel()
            m = (j >= 0) & (i < j)
            b = np.unique(np.stack([i[m], j[m]], axis=1), axis=0)
            self._cache[key] = b
        return self._cache[key]

    def _row_pairs(self, dx: int) -> list[tuple[int, int]]:
        """Row pairs (y, y') of nearest-neighbour bonds from slice x to slice x + dx."""
        pairs = []
        for ddx, dy in self.neighbor_offsets(1):
            if ddx != dx:
                continue
            for y in range(self.width):
                y2 = y + dy
                if self.periodic:
                    y2 %= self.width
                elif not 0 <= y2 < self.width:
                    continue
                pairs.append((y, y2))
        return pairs

    def interslice_bonds(self) -> np.ndarray:
        """Nearest-neighbour bonds (n, 2) between slice 0 and slice 1, as row pairs.

        Row indices (0..W-1) of the left and right site; the same for every pair of
        adjacent slices and for the lead-to-centre contact.
        """
        rows = sorted(set(self._row_pairs(1)))
        return np.array(rows, dtype=int).reshape(-1, 2)

    def intraslice_bonds(self) -> np.ndarray:
        """Nearest-neighbour bonds (n, 2) inside one slice, as row pairs with a < b."""
        rows = sorted({(min(a, b), max(a, b)) for a, b in self._row_pairs(0) if a != b})
        return np.array(rows, dtype=int).reshape(-1, 2)


def make_lattice(kind: str, length: int, width: int = 1, periodic: bool = False) -> Lattice:
    """Build a lattice (chain: width 1)."""
    if kind == "chain":
        width = 1
    return Lattice(kind=kind, length=int(length), width=int(width), periodic=bool(periodic))
