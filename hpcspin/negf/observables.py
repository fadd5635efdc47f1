"""Observables from Green's function blocks (pure numpy kernels).

Conventions: Pauli components c_a(X) = Tr[sigma_a X], a = 0 (charge), x, y, z. The spin
density is s_i = Tr_spin[sigma rho_ii] (so |s_i| <= 1 per electron), the charge density
n_i = Tr_spin rho_ii, the field on S_i is H_i^el = J s_i. Currents are particle
currents (electric current = -e I), positive from left to right for V > 0:

    T(E)      = Tr[Gamma_R G_{L-1,0} Gamma_L G_{L-1,0}^+]
    j^L_a(E)  = Tr[sigma_a Gamma_L (A_00 - G_00 Gamma_L G_00^+)]   (left lead -> centre)
    j^R_a(E)  = Tr[sigma_a Gamma_R G_{L-1,0} Gamma_L G_{L-1,0}^+]  (centre -> right lead)

with A_00 = i (G_00 - G_00^+) = (G Gamma G^+)_00 inside the lead band; multiplied by
(f_L - f_R)/2pi and integrated over the window they give the particle (a = 0) and spin
currents; the equilibrium part carries none into non-magnetic leads.
"""

from __future__ import annotations

import numpy as np

from hpcspin.hamiltonian.sd import pauli_components


def _dag(x: np.ndarray) -> np.ndarray:
    return np.conj(np.swapaxes(x, -1, -2))


def _slice_pauli_trace(x: np.ndarray) -> np.ndarray:
    """sum_y c_a(X_yy) for (..., b, b) -> (..., 4)."""
    b = x.shape[-1]
    w = b // 2
    x = x.reshape(x.shape[:-2] + (w, 2, w, 2))
    d = np.einsum("...yayc->...ac", x)
    return pauli_components(d)


def injected_site_blocks(col: np.ndarray, gam_l: np.ndarray) -> np.ndarray:
    """Site blocks of G Gamma_L G^+ from the first block column.

    Args:
        col: (n, L, b, b) blocks G_{x,0}.
        gam_l: (n, b, b) Gamma_L.

    Returns:
        (n, N, 2, 2) complex (Hermitian blocks).
    """
    n, L, b, _ = col.shape
    w = b // 2
    if b == 2:  # chain: Gamma_L = gamma * 1 (spin-degenerate lead)
        gam = gam_l[:, 0, 0].real[:, None]
        p, q, r, s = col[..., 0, 0], col[..., 0, 1], col[..., 1, 0], col[..., 1, 1]
        out = np.empty((n, L, 2, 2), dtype=complex)
        out[..., 0, 0] = gam * (p.real**2 + p.imag**2 + q.real**2 + q.imag**2)
        out[..., 1, 1] = gam * (r.real**2 + r.imag**2 + s.real**2 + s.imag**2)
        out[..., 0, 1] = gam * (p * r.conj() + q * s.conj())
        out[..., 1, 0] = out[..., 0, 1].conj()
        return out
    t = col @ gam_l[:, None]  # (n, L, b, b)
    c4 = col.reshape(n, L, w, 2, b)
    t4 = t.reshape(n, L, w, 2, b)
    blocks = np.einsum("nlyak,nlyck->nlyac", t4, np.conj(c4))
    return blocks.reshape(n, L * w, 2, 2)


def lead_currents(col: np.ndarray, gam_l: np.ndarray, gam_r: np.ndarray):
    """Spectral currents j^L_a(E), j^R_a(E), each (n, 4); j^R_0 = T(E)."""
    return end_currents(col[:, 0], col[:, -1], gam_l, gam_r)


def end_currents(g00: np.ndarray, glast: np.ndarray, gam_l: np.ndarray, gam_r: np.ndarray):
    """:func:`lead_currents` from the two end blocks G_{0,0}, G_{L-1,0}, each (n, b, b)."""
    a00 = 1j * (g00 - _dag(g00))
    inj0 = g00 @ gam_l @ _dag(g00)
    jl = _slice_pauli_trace(gam_l @ (a00 - inj0)).real
    jr = _slice_pauli_trace(gam_r @ glast @ gam_l @ _dag(glast)).real
    return jl, jr


def chain_injected_pauli(rows: np.ndarray, gam: np.ndarray, out: np.ndarray) -> None:
    """Pauli components of the site blocks of G Gamma_L G^+ for a chain, fused.

    Args:
        rows: (L, 4, n) first block column in row layout (entries p, q, r, s of the
            2x2 blocks G_{x,0}; see :func:`hpcspin.negf.rgf.chain_column0_rows`).
        gam: (n,) real, Gamma_L = gam * 1 (spin-degenerate lead), times any weight.
        out: (n, L, 4) real, overwritten with (charge, s_x, s_y, s_z) per site.

    With A = gam G G^+ (2x2): A_00 = gam(|p|^2 + |q|^2), A_11 = gam(|r|^2 + |s|^2),
    A_01 = gam(p r* + q s*); the components are A_00 + A_11, 2 Re A_01, -2 Im A_01,
    A_00 - A_11. Same numbers as :func:`injected_site_blocks` followed by
    ``pauli_components``, without the (n, L, 2, 2) complex intermediates.
    """
    m = rows.real**2
    m += rows.imag**2  # (L, 4, n)
    m *= gam
    up = m[:, 0] + m[:, 1]
    dn = m[:, 2] + m[:, 3]
    a01 = rows[:, 0] * rows[:, 2].conj()
    a01 += rows[:, 1] * rows[:, 3].conj()
    a01 *= 2 * gam
    out[:, :, 0] = (up + dn).T
    out[:, :, 1] = a01.real.T
    out[:, :, 2] = -a01.imag.T
    out[:, :, 3] = (up - dn).T


def transmission(col: np.ndarray, gam_l: np.ndarray, gam_r: np.ndarray) -> np.ndarray:
    """T(E) = Tr[Gamma_R G_{L-1,0} Gamma_L G_{L-1,0}^+], shape (n,)."""
    glast = col[:, -1]
    return np.real(np.einsum("nij,nji->n", gam_r @ glast @ gam_l, _dag(glast)))


# -- the wall experiment on strips: torque balance and the drive symmetry ----------------------
def net_torque(spins: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Net torque sum_i S_i x H_i of a field on the spins, shape (3,)."""
    return np.cross(np.asarray(spins, float), np.asarray(field, float)).sum(axis=0)


def absorbed_spin_current(spin_current_left: np.ndarray, spin_current_right: np.ndarray):
    """Spin angular momentum the centre absorbs per unit time, (j^L - j^R) / 2, shape (3,).

    The spin currents j^L (left lead -> centre) and j^R (centre -> right lead) are Pauli
    components (units of hbar/2 per electron); halving gives angular momentum (hbar = 1).
    In the steady state the electron spin in the centre is constant, so everything that
    flows in and does not flow out goes to the classical spins:

        sum_i S_i x H_i^el = (j^L - j^R) / 2,    H_i^el = J s_i.

    The identity holds energy by energy (for every z, Tr sigma_a [H + Sigma, G(z)] = 0
    and Sigma is spin independent), so the engine's quadrature keeps it to round-off
    at any tol. At V = 0 no spin current flows into the non-magnetic leads, so the net
    torque of H(0) vanishes and the current-induced part H(V) - H(0) carries all of it.
    """
    return 0.5 * (np.asarray(spin_current_left, float) - np.asarray(spin_current_right, float))


def mirror_sites(lattice) -> np.ndarray:
    """Site permutation of the strip symmetry that swaps the two leads.

    Square strips and the chain: the mirror (x, y) -> (L-1-x, y). Triangular strips
    (bonds along a1, a2 and a2 - a1) are not mirror symmetric in x alone, which maps
    the bond a2 - a1 to -a1 - a2; the in-plane pi rotation (x, y) -> (L-1-x, W-1-y)
    maps every bond onto a bond, for open and periodic strips.
    """
    x, y = lattice.coords[:, 0], lattice.coords[:, 1]
    if lattice.kind == "triangular":
        y = lattice.width - 1 - y
    return lattice.site(lattice.length - 1 - x, y)


def drive_symmetry(lattice, spins: np.ndarray, tol: float = 1e-8):
    """The symmetry that maps the strip with this texture at bias V onto itself at -V.

    The spatial part (:func:`mirror_sites`) swaps the leads, hence mu_L and mu_R, hence
    V -> -V; the electrons have no spin-orbit coupling, so a global spin rotation can
    be added at will: a pi rotation about an axis n perpendicular to the wall's easy
    axis brings the mirrored texture back onto itself (n = y for a Bloch wall turning
    in the y-z plane, n = x for a Neel wall). n is found from the texture:
    R S_{P(i)} = S_i for all i needs n parallel to S_i + S_{P(i)}.

    Args:
        lattice: the strip.
        spins: (N, 3) texture.
        tol: largest accepted max_i |R S_{P(i)} - S_i|.

    Returns:
        (perm, rot): site permutation (N,) and 3x3 rotation, with
        H_i(-V) = rot @ H_{perm(i)}(V) for the NEGF fields of this texture; or None
        when the texture is not symmetric.
    """
    s = np.asarray(spins, float)
    perm = mirror_sites(lattice)
    axis = (s + s[perm]).sum(axis=0)
    norm = np.linalg.norm(axis)
    if norm < 1e-12:
        return None
    n = axis / norm
    rot = 2.0 * np.outer(n, n) - np.eye(3)
    if np.abs(s[perm] @ rot.T - s).max() > tol:
        return None
    return perm, rot


def mirror_image(field: np.ndarray, perm: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Image rot @ H_{perm(i)} of a site field (N, 3) under :func:`drive_symmetry`."""
    return np.asarray(field, float)[perm] @ rot.T
