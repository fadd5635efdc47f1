"""The s-d Hamiltonian of the conduction electrons (docs/physics.md, the s-d model).

    H_el = -t sum_<ij>,s c+_is c_js + sum_i eps_i n_i - J sum_i S_i . (c+_i sigma c_i)

Matrix layout: 2N x 2N, site-major, spin-minor (row ``2*i + s``, s = 0 up, 1 down).
Sites are numbered ``i = x*W + y`` (see :mod:`hpcspin.lattice`), so slice x occupies
rows ``[2*W*x, 2*W*(x+1))``: the matrix is block tridiagonal with slice blocks of
size b = 2W. Pure numpy/scipy; everything is vectorised over sites.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hpcspin.errors import HpcspinError

#: Pauli matrices sigma_0 (identity), sigma_x, sigma_y, sigma_z, shape (4, 2, 2).
PAULI = np.array(
    [[[1, 0], [0, 1]], [[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=complex
)


def _check_spins(lattice, spins) -> np.ndarray:
    s = np.asarray(spins, dtype=float)
    if s.shape != (lattice.n_sites, 3):
        raise HpcspinError(f"spins must have shape ({lattice.n_sites}, 3), got {s.shape}")
    return s


def _onsite_array(lattice, onsite) -> np.ndarray:
    if onsite is None:
        return np.zeros(lattice.n_sites)
    eps = np.broadcast_to(np.asarray(onsite, dtype=float), (lattice.n_sites,))
    return np.array(eps)


def onsite_blocks(spins: np.ndarray, J: float, onsite: np.ndarray | float = 0.0) -> np.ndarray:
    """On-site 2x2 blocks eps_i - J S_i . sigma.

    Args:
        spins: (N, 3) classical spins.
        J: s-d exchange (energy).
        onsite: eps_i, scalar or (N,).

    Returns:
        (N, 2, 2) complex blocks.
    """
    s = np.asarray(spins, dtype=float)
    eps = np.broadcast_to(np.asarray(onsite, dtype=float), s.shape[:1])
    out = np.empty((s.shape[0], 2, 2), dtype=complex)
    out[:, 0, 0] = eps - J * s[:, 2]
    out[:, 1, 1] = eps + J * s[:, 2]
    out[:, 0, 1] = -J * (s[:, 0] - 1j * s[:, 1])
    out[:, 1, 0] = -J * (s[:, 0] + 1j * s[:, 1])
    return out


def intraslice_hopping(lattice, t: float = 1.0) -> np.ndarray:
    """Orbital hopping matrix inside one slice, (W, W) real: -t on intraslice bonds."""
    w = lattice.width
    h = np.zeros((w, w))
    b = lattice.intraslice_bonds()
    if len(b):
        h[b[:, 0], b[:, 1]] = -t
        h[b[:, 1], b[:, 0]] = -t
    return h


def interslice_hopping(lattice, t: float = 1.0) -> np.ndarray:
    """Orbital coupling from slice x to slice x+1, (W, W) real: entry (y, y') = -t per bond.

    This is H_{x, x+1} restricted to one spin; H_{x+1, x} is its transpose.
    """
    w = lattice.width
    v = np.zeros((w, w))
    b = lattice.interslice_bonds()
    if len(b):
        v[b[:, 0], b[:, 1]] = -t
    return v


def spin_kron(a: np.ndarray) -> np.ndarray:
    """Orbital matrices (..., W, W) -> spin-degenerate (..., 2W, 2W) in site-major order."""
    a = np.asarray(a)
    out = np.zeros(a.shape[:-2] + (2 * a.shape[-2], 2 * a.shape[-1]), dtype=np.result_type(a, 1j))
    out[..., 0::2, 0::2] = a
    out[..., 1::2, 1::2] = a
    return out


def slice_blocks(
    lattice, spins: np.ndarray, t: float = 1.0, J: float = 2.0, onsite=None
) -> tuple[np.ndarray, np.ndarray]:
    """Block-tridiagonal form of the s-d Hamiltonian for RGF.

    Args:
        lattice: a :class:`hpcspin.lattice.Lattice`.
        spins: (N, 3) classical spins.
        t: hopping.
        J: s-d exchange.
        onsite: eps_i (scalar, (N,) or None).

    Returns:
        (Hd, V): diagonal slice blocks (L, 2W, 2W) complex and the inter-slice coupling
        V = H_{x, x+1} (2W, 2W), identical for every x.
    """
    s = _check_spins(lattice, spins)
    L, W = lattice.length, lattice.width
    blocks = onsite_blocks(s, J, _onsite_array(lattice, onsite)).reshape(L, W, 2, 2)
    hd = np.broadcast_to(spin_kron(intraslice_hopping(lattice, t)), (L, 2 * W, 2 * W)).copy()
    y = np.arange(W)
    for a in range(2):
        for c in range(2):
            hd[:, 2 * y + a, 2 * y + c] += blocks[:, :, a, c]
    return hd, spin_kron(interslice_hopping(lattice, t))


def sd_matrix(lattice, spins: np.ndarray, t: float = 1.0, J: float = 2.0, onsite=None):
    """Full 2N x 2N s-d Hamiltonian as a scipy.sparse CSR matrix (complex)."""
    s = _check_spins(lattice, spins)
    n = lattice.n_sites
    blocks = onsite_blocks(s, J, _onsite_array(lattice, onsite))
    a = np.arange(2)
    base = 2 * np.arange(n)[:, None, None]
    rows = [np.broadcast_to(base + a[None, :, None], (n, 2, 2))]
    cols = [np.broadcast_to(base + a[None, None, :], (n, 2, 2))]
    vals = [blocks]
    bonds = lattice.bonds(1)
    if len(bonds):
        for s_ in range(2):
            for a, b in ((0, 1), (1, 0)):
                rows.append(2 * bonds[:, a] + s_)
                cols.append(2 * bonds[:, b] + s_)
                vals.append(np.full(len(bonds), -t, dtype=complex))
    r = np.concatenate([x.ravel() for x in rows])
    c = np.concatenate([x.ravel() for x in cols])
    v = np.concatenate([x.ravel() for x in vals])
    return sp.csr_matrix((v, (r, c)), shape=(2 * n, 2 * n))


def pauli_components(blocks: np.ndarray) -> np.ndarray:
    """Tr[sigma_a X] for 2x2 blocks X (..., 2, 2) -> (..., 4) complex (a = 0, x, y, z)."""
    x = np.asarray(blocks)
    out = np.empty(x.shape[:-2] + (4,), dtype=np.result_type(x, 1j))
    out[..., 0] = x[..., 0, 0] + x[..., 1, 1]
    out[..., 1] = x[..., 0, 1] + x[..., 1, 0]
    out[..., 2] = 1j * (x[..., 0, 1] - x[..., 1, 0])
    out[..., 3] = x[..., 0, 0] - x[..., 1, 1]
    return out
