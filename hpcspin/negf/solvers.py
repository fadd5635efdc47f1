"""Linear-algebra backends behind one interface, and their string registry.

The interface and the registry live in :mod:`.solver_base` (which the PETSc backend
imports); this module holds the RGF and dense backends and :func:`get_solver`.

A solver is built for one :class:`~hpcspin.negf.system.OpenSystem` and answers two
batched questions (n energies at once):

* ``diagonal_blocks(z)``: the 2x2 site blocks G^r_ii(z), shape (n, N, 2, 2), for the
  equilibrium contour (Im z > 0);
* ``first_column(E)``: the first block column G^r_{x,0}(E), shape (n, L, b, b)
  (b = 2W), for the bias window (G^r Gamma_L G^a) and the transmission.

``window_terms`` turns the first column into the weighted bias-window integrand; the
RGF backend fuses it for chains (no (n, N, 2, 2) intermediates).
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.negf import kernels, strip_kernels
from hpcspin.negf.observables import chain_injected_pauli, end_currents
from hpcspin.negf.rgf import chain_column0_rows, rgf_column0, rgf_diagonal, scalar_coupling
from hpcspin.negf.solver_base import _REGISTRY, Solver, register


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


@register("rgf")
class RGFSolver(Solver):
    """Recursive Green's functions, batched over energies (the default).

    Args:
        system: the open system.
        comm: unused (energies are split by the engine).
        compiled: use the compiled chain kernels of :mod:`.kernels` for the window
            integrand and the pole sum of chains when numba is installed (otherwise, and
            for strips, the numpy kernels).
    """

    def __init__(self, system, comm=None, compiled: bool = False, **kwargs):
        super().__init__(system, comm, **kwargs)
        self.coupling = system.scalar_coupling() if system.block == 2 else None
        self.compiled = bool(compiled) and kernels.AVAILABLE and self.coupling is not None
        # Strips (b = 2W > 2): the compiled block recursions of strip_kernels.
        self.strip = bool(compiled) and strip_kernels.AVAILABLE and system.block > 2

    def pole_terms(self, z, weight) -> np.ndarray:
        """As :meth:`Solver.pole_terms`; compiled for chains when enabled."""
        if self.strip:
            sl, sr = self.system.self_energies(z)
            return strip_kernels.pole_sum(self.system.hd, self.system.v, z, sl, sr, weight)
        if not self.compiled:
            return super().pole_terms(z, weight)
        s = self.system
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        sl, sr = s.self_energies(z)
        return kernels.chain_pole_sum(s.hd, self.coupling, z, sl, sr, weight)

    def pole_parts(self, z, weight):
        """Spin-independent kernel inputs of :meth:`pole_terms` (None: not compiled)."""
        if not self.compiled:
            return None
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        sl, sr = self.system.self_energies(z)
        return kernels.pole_parts(z, sl, sr, weight)

    def pole_from_parts(self, parts) -> np.ndarray:
        """:meth:`pole_terms` from :meth:`pole_parts` of the same poles and weights."""
        return kernels.pole_rows(self.system.hd, self.coupling, parts)

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

    def window_terms(self, energies, gam_l, gam_r, weight) -> np.ndarray:
        """As :meth:`Solver.window_terms`; fused for chains (row layout, real arrays)."""
        s = self.system
        if self.strip:
            return self.window_from_parts(self.window_parts(energies, gam_l, gam_r, weight))
        if s.block != 2 or scalar_coupling(s.v) is None:  # not a chain: the generic path
            return super().window_terms(energies, gam_l, gam_r, weight)
        e = np.atleast_1d(np.asarray(energies, dtype=complex))
        sl, sr = s.self_energies(e)
        if self.compiled:
            return self._compiled_window(e, sl, sr, gam_l, gam_r, weight)
        rows = chain_column0_rows(s.hd, s.v, e, sl, sr)
        return self._fused_rows(rows, gam_l, gam_r, weight)

    @staticmethod
    def _fused_rows(rows, gam_l, gam_r, weight) -> np.ndarray:
        n, L = rows.shape[2], rows.shape[0]
        vals = np.empty((n, 4 * L + 8))
        dens = vals[:, : 4 * L].reshape(n, L, 4)
        chain_injected_pauli(rows, gam_l[:, 0, 0].real * weight, dens)
        jl, jr = end_currents(rows[0].T.reshape(n, 2, 2), rows[-1].T.reshape(n, 2, 2), gam_l, gam_r)
        vals[:, 4 * L : 4 * L + 4] = jl * weight[:, None]
        vals[:, 4 * L + 4 :] = jr * weight[:, None]
        return vals

    def _compiled_window(self, e, sl, sr, gam_l, gam_r, weight) -> np.ndarray:
        parts = self._parts(e, sl, sr, gam_l, gam_r, weight)
        if parts is None:  # spin-dependent leads: the numpy kernels
            rows = chain_column0_rows(self.system.hd, self.system.v, e, sl, sr)
            return self._fused_rows(rows, gam_l, gam_r, weight)
        return kernels.window_rows(self.system.hd, self.coupling, parts)

    @staticmethod
    def _parts(e, sl, sr, gam_l, gam_r, weight):
        degenerate = all(
            np.array_equal(g[:, 0, 1], np.zeros(len(g))) and np.array_equal(g[:, 0, 0], g[:, 1, 1])
            for g in (gam_l, gam_r)
        )
        if not degenerate:
            return None
        gl, gr = gam_l[:, 0, 0].real, gam_r[:, 0, 0].real
        return kernels.window_parts(e, sl, sr, gl, gr, weight)

    def window_parts(self, energies, gam_l, gam_r, weight):
        """Spin-independent kernel inputs of :meth:`window_terms` (None: not compiled)."""
        if not (self.compiled or self.strip):
            return None
        e = np.atleast_1d(np.asarray(energies, dtype=complex))
        sl, sr = self.system.self_energies(e)
        if self.strip:
            return strip_kernels.window_parts(e, sl, sr, gam_l, gam_r, weight)
        return self._parts(e, sl, sr, gam_l, gam_r, weight)

    def window_from_parts(self, parts) -> np.ndarray:
        """:meth:`window_terms` from :meth:`window_parts` of the same energies."""
        if self.strip:
            return strip_kernels.window_from_parts(self.system.hd, self.system.v, parts)
        return kernels.window_rows(self.system.hd, self.coupling, parts)


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
