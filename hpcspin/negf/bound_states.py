"""Occupation of bound states inside the bias window.

A state of the centre that couples to no open channel of either lead (a bound state in
the continuum) carries no current and is invisible to the window integral
``int dE/2pi G Gamma_L G^+ (f_L - f_R)``. On a strip whose texture depends on x only
(every relaxed straight wall, the initial walls of the strip decks) the transverse modes
decouple, and a mode that is closed in the leads holds true bound states at energies
where other modes propagate. The split ``rho = rho_eq(mu_R) + window`` then fills them
to mu_R: reversing the bias does not mirror the density, and v(-V) differs from -v(V)
(measured 0.2-0.9 % on a periodic square 16 x 4 strip).

Nothing in the steady state fixes their occupation: the leads do not reach them, and
any weak inelastic process would decide it. The engine gives them the mean of the two
leads, ``(f_L + f_R)/2``, the choice that keeps the drive symmetry of the strip exact,
by adding ``(f_L - f_R)/2 * Psi (1 - P)^-1 Psi^+`` to the density: Psi are the bound
states (degenerate ones together) in the centre, P = Psi^+ d Herm Sigma/dE Psi the
weight that lives in the leads' evanescent tails (the residue of G at the bound state).
A resonance of any nonzero width (a tilted wall) is integrated by the window quadrature
instead (its seeds resolve it), with the occupation its lead couplings give.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from hpcspin.hamiltonian.sd import pauli_components
from hpcspin.negf.pole_tracking import sigma_with_slopes
from hpcspin.negf.resonances import (
    BOUND_WIDTH,
    SLOPE_STEP,
    _band_matvec,
    _effective_band,
    _herm_band,
)

#: Roots closer than this (t) form one degenerate group (the same eigenvalue).
GROUP_TOL = 1e-9
#: Block inverse-iteration steps for the bound states' eigenvectors (each gains the
#: ratio of the distances to e of the nearest other eigenvalue and of the shift, ~1e-3
#: or better, so 3 steps reach round-off).
INVERSE_STEPS = 3


def _groups(positions: np.ndarray, index: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(mean energy, eigenvalue indices) of each group of bound states at one energy."""
    order = np.argsort(positions)
    out: list[list[int]] = []
    for j in order:
        if out and abs(positions[j] - positions[out[-1][-1]]) < GROUP_TOL:
            out[-1].append(j)
        else:
            out.append([j])
    return [(float(np.mean(positions[g])), np.unique(index[g])) for g in out]


def _bound_vectors(hb, kd: int, b: int, e: float, k: int) -> np.ndarray | None:
    """Orthonormal eigenvectors of the Hermitian band ``hb`` with eigenvalue e (n, m).

    Block inverse iteration on k + 1 vectors (a k-fold degenerate group and one more)
    shifted just off e, then Rayleigh-Ritz: O(n kd^2) per solve, where LAPACK's
    banded eigenvectors cost O(n^2 kd) (0.25 s per group on a 40 x 8 strip).
    """
    n = hb.shape[1]
    full = _effective_band(hb, kd, b, np.zeros((b, b)), np.zeros((b, b)))
    full[kd] -= e + 1e-13 * (1.0 + abs(e))
    x = np.random.default_rng(2024).normal(size=(n, k + 1)) + 0.0j
    try:
        for _ in range(INVERSE_STEPS):
            x = np.linalg.qr(sla.solve_banded((kd, kd), full, x, check_finite=False))[0]
    except (np.linalg.LinAlgError, ValueError):
        return None
    full[kd] += e + 1e-13 * (1.0 + abs(e))
    hx = np.stack([_band_matvec(full, kd, c) for c in x.T], axis=1)
    w, u = np.linalg.eigh(x.conj().T @ hx)
    psi = x @ u
    near = np.abs(w - e) < 1e-7
    resid = np.linalg.norm(hx @ u - psi * w, axis=0)
    keep = near & (resid < 1e-8 * max(1.0, float(np.abs(full).max())))
    if not keep.any():
        return None
    order = np.argsort(np.abs(w - e))
    order = order[keep[order]][:k]
    return psi[:, order]


def _group_density(system, ab, kd: int, e: float, idx: np.ndarray) -> np.ndarray | None:
    """Psi (1 - P)^-1 Psi^+ on the site blocks, as Pauli components (N, 4).

    None if H + Herm Sigma(e) has no eigenvector with eigenvalue e.
    """
    b = system.block
    sl, sr = sigma_with_slopes(system, np.array([e]))  # one-off energies: not cached
    hb = _herm_band(ab, kd, b, sl[0], sr[0])
    psi = _bound_vectors(hb, kd, b, e, len(idx))
    if psi is None:  # as if not found: the split's occupation
        return None

    def herm(x):
        return 0.5 * (x + x.conj().T)

    dl = (herm(sl[2]) - herm(sl[1])) / (2 * SLOPE_STEP)
    dr = (herm(sr[2]) - herm(sr[1])) / (2 * SLOPE_STEP)
    p = psi[:b].conj().T @ dl @ psi[:b] + psi[-b:].conj().T @ dr @ psi[-b:]
    weight = np.linalg.inv(np.eye(psi.shape[1]) - p)
    blocks = psi.reshape(-1, 2, psi.shape[1])  # (N, spin, state)
    rho = np.einsum("isa,ab,itb->ist", blocks, weight, blocks.conj())
    return pauli_components(rho).real


def bound_state_density(system, ab, kd: int, roots, occupation) -> np.ndarray | None:
    """Density correction of the bound states among ``roots`` (N, 4), or None if none.

    Args:
        system: the open system.
        ab: upper band storage of the isolated centre (real diagonal), with ``kd``.
        kd: its bandwidth.
        roots: (positions, widths, index) of eps_n(E) = E in the window
            (:func:`hpcspin.negf.resonances.strip_roots`).
        occupation: f(E) -> the occupation added to what the split gives a bound state
            ((f_L - f_R)/2 for the lead-symmetric choice).

    Returns:
        (N, 4) Pauli components (charge, s_x, s_y, s_z) to add, or None.
    """
    pos, wid, index = roots
    bound = np.abs(wid) < BOUND_WIDTH
    if not bound.any():
        return None
    out = None
    for e, idx in _groups(pos[bound], index[bound]):
        occ = float(occupation(e))
        if occ == 0.0:
            continue
        dens = _group_density(system, ab, kd, e, idx)
        if dens is not None:
            out = occ * dens if out is None else out + occ * dens
    return out
