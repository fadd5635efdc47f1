"""Rotation-invariant descriptors of an ordered window of spins around a site.

A :class:`Window` is the list of integer lattice offsets ``(dx, dy)`` within the
cutoff radius of a site, in a fixed order (the chain's left and right neighbours
are different features: the bias breaks the x -> -x mirror). For a window of
spins ``w`` (..., K, 3) the features are

- dot products ``S_a . S_b`` for every pair of window cells (a < b),
- triple products ``S_c . (S_a x S_b)`` with the centre ``c`` and pairs (a, b)
  closer than ``triple_cutoff`` (chain: all pairs), plus on the chain the
  consecutive triples ``S_a . (S_{a+1} x S_{a+2})``,
- a mask feature per non-centre cell (1 = real site, 0 = lead side / beyond an
  open edge; such cells carry zero spin, so their products vanish),
- global inputs (bias, mu) appended unchanged.

All of them are invariant under a global SO(3) rotation of the spins. Strips
keep the y -> -y mirror that a drive along x leaves intact: :attr:`Window.mirror`
is the permutation of window cells it induces, used by the model for group
averaging. The equivariant basis vectors of the vector head
(:meth:`Window.basis`) are ``S_o``, ``S_c x S_o`` for every non-centre offset o
and ``S_{-o} x S_o`` for each inversion pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from hpcspin.lattice import KINDS as LATTICE_KINDS
from hpcspin.lattice import cartesian

_TOL = 1e-8


@dataclass(frozen=True)
class Window:
    """Ordered neighbourhood of a site and the index sets of its features.

    Attributes:
        kind: lattice kind ("chain", "square", "triangular").
        radius: cutoff radius in lattice constants (chain: offsets -r..r).
        triple_cutoff: largest distance between the two non-centre cells of a
            centre triple; None takes all pairs (default on the chain; 1.5 on strips).
    """

    kind: str
    radius: float
    triple_cutoff: float | None = None

    def __post_init__(self):
        if self.kind not in LATTICE_KINDS:
            raise ValueError(f"unknown lattice kind {self.kind!r}")
        if not self.radius >= 1:
            raise ValueError(f"descriptor radius must be >= 1, got {self.radius}")

    # -- geometry ------------------------------------------------------------
    def position(self, off: np.ndarray) -> np.ndarray:
        """Cartesian position (n, 2) of integer offsets (n, 2) (the Lattice's vectors)."""
        return cartesian(self.kind, off)

    @cached_property
    def offsets(self) -> np.ndarray:
        """Integer offsets (K, 2) of the window, sorted by (dx, dy); centre included."""
        r = int(np.ceil(self.radius)) + 1
        dx, dy = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
        off = np.stack([dx.ravel(), dy.ravel()], axis=1)
        if self.kind == "chain":
            off = off[off[:, 1] == 0]
        dist = np.linalg.norm(self.position(off), axis=1)
        off = off[dist <= self.radius + _TOL]
        order = np.lexsort((off[:, 1], off[:, 0]))
        return off[order]

    @property
    def size(self) -> int:
        """K, number of cells in the window."""
        return len(self.offsets)

    @cached_property
    def centre(self) -> int:
        """Index of offset (0, 0)."""
        return int(np.flatnonzero(np.all(self.offsets == 0, axis=1))[0])

    @property
    def reach(self) -> tuple[int, int]:
        """(hx, hy): largest |dx| and |dy| of the window, the halo it needs."""
        return int(np.abs(self.offsets[:, 0]).max()), int(np.abs(self.offsets[:, 1]).max())

    def _index_of(self, pos: np.ndarray) -> np.ndarray:
        p = self.position(self.offsets)
        d = np.linalg.norm(p[None, :, :] - pos[:, None, :], axis=2)
        idx = np.argmin(d, axis=1)
        if not np.all(d[np.arange(len(pos)), idx] < 1e-6):
            raise AssertionError("window is not closed under the symmetry")
        return idx

    @cached_property
    def mirror(self) -> np.ndarray | None:
        """Permutation (K,) of cells under the mirror: y -> -y on strips, x -> -x on the chain.

        On the chain the mirror is a symmetry only together with V -> -V; the model
        uses it only when it takes the bias as an input (``ModelSpec.chain_mirror``).
        """
        if self.kind == "chain":
            return self.inversion
        p = self.position(self.offsets) * np.array([1.0, -1.0])
        return self._index_of(p)

    @cached_property
    def inversion(self) -> np.ndarray:
        """Index (K,) of the cell at -offset."""
        return self._index_of(-self.position(self.offsets))

    # -- feature index sets ------------------------------------------------------
    @cached_property
    def pairs(self) -> np.ndarray:
        """(n_pairs, 2) cell index pairs a < b of the dot products."""
        a, b = np.triu_indices(self.size, k=1)
        return np.stack([a, b], axis=1)

    @cached_property
    def triples(self) -> np.ndarray:
        """(n_triples, 3) cell indices (c, a, b) of the triple products S_c.(S_a x S_b)."""
        c = self.centre
        others = [k for k in range(self.size) if k != c]
        pos = self.position(self.offsets)
        cut = self.triple_cutoff
        if cut is None and self.kind != "chain":
            cut = 1.5
        out = []
        for i, a in enumerate(others):
            for b in others[i + 1 :]:
                if cut is None or np.linalg.norm(pos[a] - pos[b]) <= cut + _TOL:
                    out.append((c, a, b))
        if self.kind == "chain":
            for a in range(self.size - 2):
                t = (a, a + 1, a + 2)
                if c not in t:
                    out.append(t)
        return np.array(out, dtype=int).reshape(-1, 3)

    @cached_property
    def mask_cells(self) -> np.ndarray:
        """Cells (K-1,) whose validity is a feature (all but the centre)."""
        return np.array([k for k in range(self.size) if k != self.centre], dtype=int)

    def n_features(self, n_globals: int = 0) -> int:
        """Descriptor length for ``n_globals`` global inputs."""
        return len(self.pairs) + len(self.triples) + len(self.mask_cells) + n_globals

    @cached_property
    def basis_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Equivariant basis as (singles (n1,), cross pairs (n2, 2)).

        Singles u give S_u; cross pairs (p, q) give S_p x S_q: (centre, o) for every
        non-centre o, then (-o, o) for every o in the positive half (x > 0, or
        x = 0 and y > 0).
        """
        c = self.centre
        singles = self.mask_cells.copy()
        cross = [(c, o) for o in self.mask_cells]
        for o in self.mask_cells:
            dx, dy = self.offsets[o]
            if dx > 0 or (dx == 0 and dy > 0):
                cross.append((int(self.inversion[o]), int(o)))
        return singles, np.array(cross, dtype=int).reshape(-1, 2)

    @property
    def n_basis(self) -> int:
        """Number of equivariant basis vectors."""
        s, c = self.basis_pairs
        return len(s) + len(c)

    @cached_property
    def mirror_features(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Signed permutation (perm, sign) of the features under the mirror, or None.

        For the mirrored window (cell k taken from cell ``mirror[k]``) feature i equals
        ``sign[i] * feature[perm[i]]`` of the original window (globals excluded).
        """
        if self.mirror is None:
            return None
        return feature_permutation(self, self.mirror)

    @cached_property
    def mirror_basis(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Signed permutation (perm, sign) of the vector-head basis under the mirror.

        Basis vector i of the mirrored window is ``sign[i] * v[perm[i]]`` of the
        original window.
        """
        if self.mirror is None:
            return None
        return basis_permutation(self, self.mirror)

    def settings(self) -> dict:
        """Plain-data description (stored in model files)."""
        return {
            "kind": self.kind,
            "radius": float(self.radius),
            "triple_cutoff": self.triple_cutoff,
        }

    # -- torch kernels -------------------------------------------------------
    def tensors(self, device, dtype=None) -> dict:
        """Index tensors on ``device`` (cached per device)."""
        key = str(device)
        cache = self.__dict__.setdefault("_tcache", {})
        if key not in cache:
            s, c = self.basis_pairs
            li = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long, device=device)  # noqa: E731
            cache[key] = {
                "pa": li(self.pairs[:, 0]),
                "pb": li(self.pairs[:, 1]),
                "t0": li(self.triples[:, 0]),
                "t1": li(self.triples[:, 1]),
                "t2": li(self.triples[:, 2]),
                "mask": li(self.mask_cells),
                "single": li(s),
                "cp": li(c[:, 0]),
                "cq": li(c[:, 1]),
            }
        return cache[key]


def feature_permutation(window: Window, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed permutation (perm, sign) of the features for the cell permutation ``p``.

    The window whose cell k is taken from cell ``p[k]`` has feature i equal to
    ``sign[i] * feature[perm[i]]`` of the original window (globals excluded).
    """
    pair_ix = {tuple(sorted(pq)): i for i, pq in enumerate(window.pairs.tolist())}
    perm = [pair_ix[tuple(sorted((p[a], p[b])))] for a, b in window.pairs]
    sign = [1.0] * len(perm)
    off = len(window.pairs)
    trip_ix = {frozenset(t): i for i, t in enumerate(window.triples.tolist())}
    for t in window.triples:
        mt = [int(p[k]) for k in t]
        j = trip_ix[frozenset(mt)]
        perm.append(off + j)
        sign.append(_parity([window.triples[j].tolist().index(k) for k in mt]))
    off += len(window.triples)
    mask_ix = {int(k): i for i, k in enumerate(window.mask_cells)}
    perm += [off + mask_ix[int(p[k])] for k in window.mask_cells]
    sign += [1.0] * len(window.mask_cells)
    return np.array(perm), np.array(sign)


def basis_permutation(window: Window, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed permutation of the vector-head basis for the cell permutation ``p``."""
    singles, cross = window.basis_pairs
    s_ix = {int(k): i for i, k in enumerate(singles)}
    perm = [s_ix[int(p[k])] for k in singles]
    sign = [1.0] * len(singles)
    c_ix = {frozenset(pq): i for i, pq in enumerate(cross.tolist())}
    for a, b in cross:
        j = c_ix[frozenset((int(p[a]), int(p[b])))]
        perm.append(len(singles) + j)
        sign.append(1.0 if cross[j][0] == p[a] else -1.0)
    return np.array(perm), np.array(sign)


def _parity(perm) -> float:
    """+1 for an even permutation of range(n), -1 for an odd one."""
    perm, sign = list(perm), 1.0
    for i in range(len(perm)):
        while perm[i] != i:
            j = perm[i]
            perm[i], perm[j] = perm[j], perm[i]
            sign = -sign
    return sign


def gather_window(
    grid: torch.Tensor, window: Window, x0: int, nx: int, y0: int, ny: int
) -> torch.Tensor:
    """Stack the window cells of the block [x0:x0+nx, y0:y0+ny] of a padded grid.

    Args:
        grid: (B, X, Y, C) tensor, padded so that every window cell of the block
            lies inside it.
        window: the window.
        x0: first centre cell along x (padded grid coordinates).
        nx: number of centre cells along x.
        y0: first centre cell along y.
        ny: number of centre cells along y.

    Returns:
        (B, nx, ny, K, C) tensor; cell k is grid[:, x + dx_k, y + dy_k].
    """
    parts = [
        grid[:, x0 + dx : x0 + dx + nx, y0 + dy : y0 + dy + ny]
        for dx, dy in window.offsets.tolist()
    ]
    return torch.stack(parts, dim=3)


def features(
    win: torch.Tensor, mask: torch.Tensor, window: Window, glob: torch.Tensor | None = None
) -> torch.Tensor:
    """Invariant descriptor of each window.

    Args:
        win: (M, K, 3) spins of the window cells (zero on invalid cells).
        mask: (M, K) 1.0 on valid cells, 0.0 elsewhere.
        window: the window the cells come from.
        glob: (M, G) global inputs, or None.

    Returns:
        (M, F) features: dots, triples, masks, globals.
    """
    ix = window.tensors(win.device)
    dots = (win[:, ix["pa"]] * win[:, ix["pb"]]).sum(-1)
    parts = [dots]
    if len(window.triples):
        cr = torch.cross(win[:, ix["t1"]], win[:, ix["t2"]], dim=-1)
        parts.append((win[:, ix["t0"]] * cr).sum(-1))
    parts.append(mask[:, ix["mask"]])
    if glob is not None and glob.shape[-1]:
        parts.append(glob)
    return torch.cat(parts, dim=-1)


def basis(win: torch.Tensor, window: Window) -> torch.Tensor:
    """Equivariant basis vectors (M, n_basis, 3) of each window."""
    ix = window.tensors(win.device)
    singles = win[:, ix["single"]]
    cross = torch.cross(win[:, ix["cp"]], win[:, ix["cq"]], dim=-1)
    return torch.cat([singles, cross], dim=1)
