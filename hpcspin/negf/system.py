"""The open system: central s-d Hamiltonian of one spin configuration plus two leads."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.sd import (
    interslice_hopping,
    intraslice_hopping,
    onsite_blocks,
    sd_matrix,
    slice_blocks,
    spin_kron,
)
from hpcspin.negf.leads import Leads, gamma_of
from hpcspin.negf.rgf import scalar_coupling


def _coupling_radius(v: np.ndarray, leads: Leads) -> np.ndarray:
    """Gershgorin radius per orbital from the slice couplings (contact hopping included)."""
    coup = np.abs(v).sum(1) + np.abs(v).sum(0)
    tc = abs(leads.t_contact / leads.t_lead) if leads.t_lead else 1.0
    return coup * max(1.0, tc)


class SliceTemplate:
    """The spin-independent parts of the open systems of one lattice (scheme "fast").

    An engine builds it once; every :class:`OpenSystem` built with it then skips the
    hopping blocks, the on-site array, the lead and coupling parts of
    :meth:`OpenSystem.spectral_bounds` and the coupling test of the RGF solver (about
    0.1 ms of fixed set-up per field evaluation). :meth:`blocks` gives the slice blocks
    of :func:`~hpcspin.hamiltonian.sd.slice_blocks` bit for bit (the same additions).

    Args:
        lattice: the central region.
        leads: the leads (their band and contact hopping enter the bounds).
        t, J, onsite: as :class:`OpenSystem`.
    """

    def __init__(self, lattice, leads: Leads, t: float, J: float, onsite=None):
        self.lattice, self.t, self.J, self.onsite = lattice, float(t), float(J), onsite
        n, w = lattice.n_sites, lattice.width
        self.shape = (n, 3)
        eps = 0.0 if onsite is None else np.asarray(onsite, dtype=float)
        self.eps = np.array(np.broadcast_to(eps, (n,)))
        self.hop = spin_kron(intraslice_hopping(lattice, self.t)).ravel()
        self.v = spin_kron(interslice_hopping(lattice, self.t))
        # Flat positions (2y + a) * 2W + 2y + c of the site blocks in a slice block.
        y, a, c = np.meshgrid(np.arange(w), np.arange(2), np.arange(2), indexing="ij")
        self.index = ((2 * y + a) * 2 * w + 2 * y + c).ravel()
        self.coupling = scalar_coupling(self.v)
        self.coup = _coupling_radius(self.v, leads)
        self.band = leads.band_bounds()

    def blocks(self, spins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hd, v) of ``spins`` as :func:`~hpcspin.hamiltonian.sd.slice_blocks`."""
        if spins.shape != self.shape:
            raise HpcspinError(f"spins must have shape {self.shape}, got {spins.shape}")
        lat = self.lattice
        b = 2 * lat.width
        site = onsite_blocks(spins, self.J, self.eps).reshape(lat.length, -1)
        if len(self.index) == b * b:  # a chain: every entry is a site-block entry
            hd = self.hop + site
        else:
            hd = np.empty((lat.length, b * b), dtype=complex)
            hd[:] = self.hop
            hd[:, self.index] += site
        return hd.reshape(lat.length, b, b), self.v.copy()


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
        template: a :class:`SliceTemplate` of the same lattice, leads, t, J and onsite
            (optional; the same arrays, with less set-up).
    """

    def __init__(
        self,
        lattice,
        spins,
        leads: Leads,
        t: float = 1.0,
        J: float = 2.0,
        onsite=None,
        eta=0.0,
        template: SliceTemplate | None = None,
    ):
        self.lattice, self.leads = lattice, leads
        self.t, self.J, self.onsite = float(t), float(J), onsite
        self.spins = np.asarray(spins, dtype=float)
        self.template = template
        if template is None:
            self.hd, self.v = slice_blocks(lattice, self.spins, t, J, onsite)
        else:
            self.hd, self.v = template.blocks(self.spins)
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

    def scalar_coupling(self) -> complex | None:
        """C if the slice coupling v == c * identity, else None."""
        if self.template is not None:
            return self.template.coupling
        return scalar_coupling(self.v)

    def spectral_bounds(self) -> tuple[float, float]:
        """Gershgorin bounds of the whole (leads + centre) spectrum, bound states included."""
        d = np.real(np.diagonal(self.hd, axis1=1, axis2=2))
        a = np.abs(self.hd)
        # Chains: a0 + a1 is the sum over the row, the same number, without numpy's slow
        # reduction over a length-2 axis (a third of the cost at N = 1e5).
        rows = a[..., 0] + a[..., 1] if self.block == 2 else a.sum(axis=2)
        radius = rows - np.abs(d)
        if self.template is not None:  # the same numbers, computed once per engine
            coup, (blo, bhi) = self.template.coup, self.template.band
        else:
            coup, (blo, bhi) = _coupling_radius(self.v, self.leads), self.leads.band_bounds()
        lo = float((d - radius - coup).min())
        hi = float((d + radius + coup).max())
        return min(lo, blo), max(hi, bhi)
