"""The open system: central s-d Hamiltonian of one spin configuration plus two leads."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpcspin.hamiltonian.sd import sd_matrix, slice_blocks
from hpcspin.negf.leads import Leads, gamma_of


class OpenSystem:
    """Central region (block tridiagonal, slice blocks b = 2W) attached to two leads.

    Args:
        lattice: the central region.
        spins: (N, 3) classical spins.
        leads: a :class:`~hpcspin.negf.leads.Leads`.
        t: central hopping.
        J: s-d exchange.
        onsite: on-site energies (scalar, (N,) or None).
        eta: broadening of the centre: H -> H - i eta (docs/negf.md, broadening eta).
    """

    def __init__(
        self, lattice, spins, leads: Leads, t: float = 1.0, J: float = 2.0, onsite=None, eta=0.0
    ):
        self.lattice, self.leads = lattice, leads
        self.t, self.J, self.onsite = float(t), float(J), onsite
        self.spins = np.asarray(spins, dtype=float)
        self.hd, self.v = slice_blocks(lattice, self.spins, t, J, onsite)
        self.n_sites = lattice.n_sites
        self.n_slices = lattice.length
        self.block = 2 * lattice.width
        self.eta = float(eta)
        if self.eta:  # eta = 0 leaves every array (and result) as it was
            self.hd = self.hd - 1j * self.eta * np.eye(self.block)[None]

    def self_energies(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(Sigma_L, Sigma_R), each (n, b, b), on slice 0 and slice L-1."""
        return self.leads.self_energies(z)

    def gammas(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(Gamma_L, Gamma_R), each (n, b, b)."""
        sl, sr = self.self_energies(z)
        return gamma_of(sl), gamma_of(sr)

    def matrix(self):
        """Central Hamiltonian as a scipy.sparse CSR matrix (2N x 2N)."""
        h = sd_matrix(self.lattice, self.spins, self.t, self.J, self.onsite)
        return h - 1j * self.eta * sp.identity(h.shape[0], format="csr") if self.eta else h

    def spectral_bounds(self) -> tuple[float, float]:
        """Gershgorin bounds of the whole (leads + centre) spectrum, bound states included."""
        d = np.real(np.diagonal(self.hd, axis1=1, axis2=2))
        radius = np.abs(self.hd).sum(axis=2) - np.abs(d)
        coup = np.abs(self.v).sum(1) + np.abs(self.v).sum(0)
        tc = abs(self.leads.t_contact / self.leads.t_lead) if self.leads.t_lead else 1.0
        coup = coup * max(1.0, tc)
        lo = float((d - radius - coup).min())
        hi = float((d + radius + coup).max())
        blo, bhi = self.leads.band_bounds()
        return min(lo, blo), max(hi, bhi)
