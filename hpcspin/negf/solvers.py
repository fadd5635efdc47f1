"""Linear-algebra backends behind one interface, and their string registry.

A solver is built for one :class:`~hpcspin.negf.system.OpenSystem` and answers two
batched questions (n energies at once):

* ``diagonal_blocks(z)``: the 2x2 site blocks G^r_ii(z), shape (n, N, 2, 2), for the
  equilibrium contour (Im z > 0);
* ``first_column(E)``: the first block column G^r_{x,0}(E), shape (n, L, b, b)
  (b = 2W), for the bias window (G^r Gamma_L G^a) and the transmission.
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.negf.rgf import rgf_column0, rgf_diagonal

_REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a solver available as ``get_solver(name)``."""

    def deco(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


def get_solver(name: str) -> type:
    """Solver class by name: "rgf", "dense" or "petsc"."""
    if name == "petsc" and name not in _REGISTRY:
        import hpcspin.negf.petsc  # noqa: F401  (registers itself; needs petsc4py)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise HpcspinError(
            f"unknown NEGF solver {name!r}; choose from {sorted(set(_REGISTRY) | {'petsc'})}"
        ) from None


def slice_to_site_blocks(g: np.ndarray) -> np.ndarray:
    """Diagonal slice blocks (L, n, b, b) -> site blocks (n, N, 2, 2), N = L * b/2."""
    L, n, b, _ = g.shape
    w = b // 2
    g = g.reshape(L, n, w, 2, w, 2)
    d = np.einsum("lnyayc->nlyac", g)
    return d.reshape(n, L * w, 2, 2)


class Solver:
    """Interface of the backends (see module docstring)."""

    name = "base"

    def __init__(self, system, comm=None, options_prefix: str = "hpcspin_negf_"):
        self.system = system
        self.comm = comm

    def diagonal_blocks(self, z) -> np.ndarray:  # pragma: no cover - interface
        """Site blocks G^r_ii(z), (n, N, 2, 2)."""
        raise NotImplementedError

    def first_column(self, energies) -> np.ndarray:  # pragma: no cover - interface
        """First block column G^r_{x,0}(E), (n, L, b, b)."""
        raise NotImplementedError


@register("rgf")
class RGFSolver(Solver):
    """Recursive Green's functions, batched over energies (the default)."""

    def diagonal_blocks(self, z) -> np.ndarray:
        """Site blocks G^r_ii(z), (n, N, 2, 2)."""
        s = self.system
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        sl, sr = s.self_energies(z)
        return slice_to_site_blocks(rgf_diagonal(s.hd, s.v, z, sl, sr))

    def first_column(self, energies) -> np.ndarray:
        """First block column G^r_{x,0}(E), (n, L, b, b)."""
        s = self.system
        e = np.atleast_1d(np.asarray(energies, dtype=complex))
        sl, sr = s.self_energies(e)
        return np.ascontiguousarray(np.swapaxes(rgf_column0(s.hd, s.v, e, sl, sr), 0, 1))


@register("dense")
class DenseSolver(Solver):
    """Dense inversion of the full matrix; a test reference only (O(N^3))."""

    def _inverse(self, z):
        s = self.system
        h = s.matrix().toarray()
        n2, b = h.shape[0], s.block
        sl, sr = s.self_energies(z)
        for k, zk in enumerate(np.atleast_1d(z)):
            a = zk * np.eye(n2) - h
            a[:b, :b] -= sl[k]
            a[n2 - b :, n2 - b :] -= sr[k]
            yield np.linalg.inv(a)

    def diagonal_blocks(self, z) -> np.ndarray:
        """Site blocks G^r_ii(z), (n, N, 2, 2)."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        n = self.system.n_sites
        out = np.empty((len(z), n, 2, 2), dtype=complex)
        idx = np.arange(n)
        for k, g in enumerate(self._inverse(z)):
            g4 = g.reshape(n, 2, n, 2)
            out[k] = g4[idx, :, idx, :]
        return out

    def first_column(self, energies) -> np.ndarray:
        """First block column G^r_{x,0}(E), (n, L, b, b)."""
        e = np.atleast_1d(np.asarray(energies, dtype=complex))
        s = self.system
        out = np.empty((len(e), s.n_slices, s.block, s.block), dtype=complex)
        for k, g in enumerate(self._inverse(e)):
            out[k] = g[:, : s.block].reshape(s.n_slices, s.block, s.block)
        return out
