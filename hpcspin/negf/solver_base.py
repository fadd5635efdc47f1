"""The solver interface and registry (imported by every backend, including PETSc).

A solver is built for one :class:`~hpcspin.negf.system.OpenSystem` and answers batched
questions about n energies at once (see :class:`Solver`). Backends register themselves
by name with :func:`register`; :func:`hpcspin.negf.solvers.get_solver` looks them up.
"""

from __future__ import annotations

import numpy as np

from hpcspin.hamiltonian.sd import pauli_components
from hpcspin.negf.observables import injected_site_blocks, lead_currents

_REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: make a solver available as ``get_solver(name)``."""

    def deco(cls):
        _REGISTRY[name] = cls
        cls.name = name
        return cls

    return deco


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

    def window_terms(self, energies, gam_l, gam_r, weight) -> np.ndarray:
        """Bias-window integrand rows (n, 4N + 8), each multiplied by ``weight`` (n,).

        Columns: Pauli components (charge, s_x, s_y, s_z) of the site blocks of
        G Gamma_L G^+ for every site, then j^L_a and j^R_a (see :mod:`.observables`).
        """
        col = self.first_column(energies)
        dens = pauli_components(injected_site_blocks(col, gam_l)).real.reshape(len(col), -1)
        jl, jr = lead_currents(col, gam_l, gam_r)
        return np.concatenate([dens, jl, jr], axis=1) * weight[:, None]

    def pole_terms(self, z, weight) -> np.ndarray:
        """sum_p weight_p Re Tr[sigma_a G^r_ii(z_p)] per site, (N, 4) (the pole sum)."""
        c = pauli_components(self.diagonal_blocks(z)).real
        return np.einsum("p,pna->na", weight, c)
