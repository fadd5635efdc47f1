"""Classical spin energy and its field (docs/physics.md, the s-d model). Pure numpy.

    H_spin = -J_H sum_<ij> S_i.S_j - K sum_i (S_i.e_easy)^2
             + K_perp sum_i (S_i.e_hard)^2 - B . sum_i S_i

on the nearest-neighbour bonds of the lattice; each bond counted once. The field is
``H_i = -dH_spin/dS_i`` (the unconstrained gradient; only its part transverse to S_i
exerts a torque):

    H_i = J_H sum_{j nn i} S_j + 2 K (S_i.e) e - 2 K_perp (S_i.h) h + B

Two layouts: site form ``(N, 3)`` with a :class:`~hpcspin.lattice.Lattice`, and the grid
form ``(nx, ny, 3)`` of a (possibly decomposed) domain with a halo (see the grid/domain
contract in hpcspin.parallel): owned cells ``[hx:nx-hx, hy:ny-hy]``,
``valid`` marks real sites, ghost cells hold neighbours' spins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.lattice import KINDS, Lattice, make_lattice


@dataclass(frozen=True)
class SpinParams:
    """Parameters of the classical spin Hamiltonian (energies in units of t).

    Attributes:
        J_H: nearest-neighbour Heisenberg exchange (> 0 ferromagnetic).
        K: easy-axis anisotropy (> 0 favours +-easy_axis).
        easy_axis: easy axis direction (normalised on use).
        K_perp: hard-axis anisotropy (> 0 penalises components along hard_axis).
        hard_axis: hard axis direction (normalised on use).
        B: Zeeman field (energy -B . S per site).
    """

    J_H: float = 1.0
    K: float = 0.1
    easy_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    K_perp: float = 0.0
    hard_axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    B: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        for name in ("easy_axis", "hard_axis", "B"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.shape != (3,) or not np.all(np.isfinite(v)):
                raise HpcspinError(f"SpinParams.{name} must be 3 finite numbers, got {v}")
            object.__setattr__(self, name, tuple(float(c) for c in v))
        for name in ("easy_axis", "hard_axis"):
            if np.linalg.norm(getattr(self, name)) == 0.0:
                raise HpcspinError(f"SpinParams.{name} must be nonzero")

    @property
    def e_easy(self) -> np.ndarray:
        """Unit easy axis (3,)."""
        v = np.asarray(self.easy_axis, dtype=float)
        return v / np.linalg.norm(v)

    @property
    def e_hard(self) -> np.ndarray:
        """Unit hard axis (3,)."""
        v = np.asarray(self.hard_axis, dtype=float)
        return v / np.linalg.norm(v)


def _onsite_energy(spins: np.ndarray, p: SpinParams) -> np.ndarray:
    """Anisotropy + Zeeman energy per site, shape spins.shape[:-1]."""
    se = spins @ p.e_easy
    sh = spins @ p.e_hard
    return -p.K * se**2 + p.K_perp * sh**2 - spins @ np.asarray(p.B)


def _onsite_field(spins: np.ndarray, p: SpinParams) -> np.ndarray:
    """Anisotropy + Zeeman field, same shape as spins."""
    e, h = p.e_easy, p.e_hard
    se = (spins @ e)[..., None]
    sh = (spins @ h)[..., None]
    return 2.0 * p.K * se * e - 2.0 * p.K_perp * sh * h + np.asarray(p.B)


def _check_sites(spins: np.ndarray, lattice: Lattice) -> np.ndarray:
    spins = np.asarray(spins, dtype=float)
    if spins.shape != (lattice.n_sites, 3):
        raise HpcspinError(f"spins must have shape ({lattice.n_sites}, 3), got {spins.shape}")
    return spins


def classical_energy(spins: np.ndarray, lattice: Lattice, params: SpinParams) -> float:
    """Total classical spin energy.

    Args:
        spins: (N, 3) spins (unit vectors in physical use; not checked).
        lattice: the lattice (nearest-neighbour bonds, shell 1).
        params: Hamiltonian parameters.

    Returns:
        H_spin in units of t.
    """
    spins = _check_sites(spins, lattice)
    b = lattice.bonds(1)
    exch = -params.J_H * np.einsum("ij,ij->", spins[b[:, 0]], spins[b[:, 1]])
    return float(exch + _onsite_energy(spins, params).sum())


def classical_field(spins: np.ndarray, lattice: Lattice, params: SpinParams) -> np.ndarray:
    """Classical field H_i = -dH_spin/dS_i.

    Args:
        spins: (N, 3) spins.
        lattice: the lattice.
        params: Hamiltonian parameters.

    Returns:
        (N, 3) field in units of t.
    """
    spins = _check_sites(spins, lattice)
    nb = lattice.neighbors(1)
    padded = np.vstack([spins, np.zeros((1, 3))])  # index -1 -> zero row
    h = params.J_H * padded[nb].sum(axis=1)
    return h + _onsite_field(spins, params)


# -- grid / domain form ------------------------------------------------------


@cache
def _offsets(kind: str) -> tuple[tuple[int, int], ...]:
    if kind not in KINDS:
        raise HpcspinError(f"unknown lattice kind {kind!r}; choose from {KINDS}")
    off = make_lattice(kind, 1, 1).neighbor_offsets(1)
    return tuple((int(dx), int(dy)) for dx, dy in off)


def _check_grid(spins, valid, halo, kind):
    spins = np.asarray(spins, dtype=float)
    valid = np.asarray(valid, dtype=bool)
    if spins.ndim != 3 or spins.shape[-1] != 3 or valid.shape != spins.shape[:2]:
        raise HpcspinError(
            f"grid spins must be (nx, ny, 3) with valid (nx, ny); got {spins.shape}, {valid.shape}"
        )
    hx, hy = (int(h) for h in halo)
    off = _offsets(kind)
    need_x = max(abs(dx) for dx, _ in off)
    need_y = max(abs(dy) for _, dy in off)
    if hx < need_x or hy < need_y:
        raise HpcspinError(f"{kind}: halo {halo} too small; need at least ({need_x}, {need_y})")
    nx, ny = valid.shape
    if nx <= 2 * hx or ny <= 2 * hy:
        raise HpcspinError(f"grid {valid.shape} has no owned cells with halo {halo}")
    return spins, valid, hx, hy, off


def _owned_neighbour_sum(spins, valid, halo, lattice_kind):
    """Owned spins, the sum of their nearest neighbours, the owned index, owned validity."""
    spins, valid, hx, hy, off = _check_grid(spins, valid, halo, lattice_kind)
    nx, ny = valid.shape
    s = spins * valid[..., None]
    inner = (slice(hx, nx - hx), slice(hy, ny - hy))
    own = s[inner]
    nsum = np.zeros_like(own)
    for dx, dy in off:
        nsum += s[hx + dx : nx - hx + dx, hy + dy : ny - hy + dy]
    return own, nsum, inner, valid[inner]


def classical_field_grid(
    spins: np.ndarray,
    valid: np.ndarray,
    halo: tuple[int, int],
    lattice_kind: str,
    params: SpinParams,
) -> np.ndarray:
    """Classical field on the owned cells of a domain in grid form.

    Neighbour (x + dx, y + dy) of owned cell (x, y) for every nearest-neighbour offset
    of the lattice kind (site numbering i = x*W + y); ghost cells must be filled
    (periodic wrap in y done by the halo exchange). Invalid cells contribute nothing.
    Equal to :func:`classical_field` on one domain with filled ghosts.

    Args:
        spins: (nx, ny, 3) owned block plus halo.
        valid: (nx, ny) bool, True on real sites.
        halo: (hx, hy) halo widths; need hx >= 1, and hy >= 1 unless the chain.
        lattice_kind: "chain", "square" or "triangular".
        params: Hamiltonian parameters.

    Returns:
        (nx, ny, 3) field; zero outside the owned valid cells.
    """
    own, nsum, inner, owned_valid = _owned_neighbour_sum(spins, valid, halo, lattice_kind)
    h = params.J_H * nsum + _onsite_field(own, params)
    out = np.zeros_like(np.asarray(spins, dtype=float))
    out[inner] = h * owned_valid[..., None]
    return out


def classical_energy_grid(
    spins: np.ndarray,
    valid: np.ndarray,
    halo: tuple[int, int],
    lattice_kind: str,
    params: SpinParams,
) -> float:
    """Energy owned by a domain: on-site terms of owned sites plus half of each of their bonds.

    Summed over all domains this gives :func:`classical_energy` exactly (up to the
    order of summation).

    Args:
        spins: (nx, ny, 3) owned block plus filled halo.
        valid: (nx, ny) bool.
        halo: (hx, hy).
        lattice_kind: "chain", "square" or "triangular".
        params: Hamiltonian parameters.

    Returns:
        Owned-site energy in units of t.
    """
    own, nsum, _, owned_valid = _owned_neighbour_sum(spins, valid, halo, lattice_kind)
    e = -0.5 * params.J_H * np.einsum("xyc,xyc->xy", own, nsum) + _onsite_energy(own, params)
    return float((e * owned_valid).sum())
