"""Breakpoints for narrow transmission resonances of the bias window.

In long, strongly disordered chains (random spins at J = 2) electrons are localised and
resonances become far narrower than T_el; a quadrature that never puts a node near one
misses an O(1) contribution to the density. Narrow resonances are eigenstates psi_n of
the isolated centre that barely touch the contact slices; to first order they sit at

    E_r = E_n + Re <psi|Sigma(E_n)|psi>,   width Gamma_n = -2 Im <psi|Sigma(E_n)|psi>.

Breakpoints at E_r and E_r +- Gamma_n 4^k (k = 0, 1, ... up to the base grid scale)
let the adaptive quadrature resolve each one. The eigenvalues come from LAPACK's
banded Hermitian solver (bandwidth 2W + 1; all of them, then those in the window:
several times faster than LAPACK's selection by value when the window holds many),
the eigenvector end components from one inverse-iteration step each, split over the
ranks in fixed chunks of eigenvalues (the same numbers at any rank count).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from hpcspin.negf.quadrature import Partition, map_blocks, plan_blocks

#: Most eigenvalues per chunk of end-component work (chunks from plan_blocks: fixed by
#: the eigenvalue count, so results are independent of the rank count).
CHUNK = 16


def banded_upper(h) -> tuple[np.ndarray, int]:
    """Upper banded storage (kd+1, n) of a sparse Hermitian matrix."""
    coo = h.tocoo()
    up = coo.col >= coo.row
    r, c, v = coo.row[up], coo.col[up], coo.data[up]
    kd = int((c - r).max()) if len(r) else 0
    ab = np.zeros((kd + 1, h.shape[0]), dtype=complex)
    ab[kd + r - c, c] = v
    return ab, kd


def _end_components(ab, kd: int, energies: np.ndarray, b: int):
    """First and last ``b`` components of the normalised eigenvectors at ``energies``.

    One step of inverse iteration per eigenvalue with a banded LU, O(N kd^2) each:
    much cheaper than LAPACK's eigenvectors of the whole band (which dominated the
    cost of a field evaluation), and deterministic, so every rank gets the same seeds.
    """
    n = ab.shape[1]
    full = np.zeros((2 * kd + 1, n), dtype=complex)
    full[: kd + 1] = ab  # upper part (and diagonal), LAPACK general-band layout
    for d in range(1, kd + 1):  # lower part: conjugates of the upper diagonals
        full[kd + d, : n - d] = ab[kd - d, d:].conj()
    rhs = np.random.default_rng(12345).normal(size=n) + 0.0j
    scale = max(1.0, float(np.abs(ab).max()))
    p0, p1 = [], []
    for e in energies:
        m = full.copy()
        m[kd] -= e + 1e-10 * scale
        try:
            x = sla.solve_banded((kd, kd), m, rhs, check_finite=False)
        except (np.linalg.LinAlgError, ValueError):
            x = np.zeros(n, dtype=complex)
        x /= max(np.linalg.norm(x), 1e-300)
        p0.append(x[:b])
        p1.append(x[-b:])
    return np.array(p0).reshape(-1, b), np.array(p1).reshape(-1, b)


def resonance_breakpoints(
    system,
    lo: float,
    hi: float,
    narrow: float = 1e-4,
    coarse: float = 0.05,
    part: Partition | None = None,
) -> np.ndarray:
    """Graded breakpoints around the narrow resonances inside [lo, hi].

    Args:
        system: an :class:`~hpcspin.negf.system.OpenSystem`.
        lo: lower end of the window.
        hi: upper end of the window.
        narrow: resonances with estimated width below this are seeded.
        coarse: grading stops at this distance from the resonance.
        part: rank partition sharing the inverse iterations (None: serial).

    Returns:
        sorted breakpoints (may be empty).
    """
    ab, kd = banded_upper(system.matrix())
    try:
        e = sla.eigvals_banded(ab, lower=False, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return np.zeros(0)
    e = e[(e >= lo) & (e <= hi)]
    if len(e) == 0:
        return np.zeros(0)
    b = system.block
    sl, sr = system.self_energies(e)
    bounds = np.cumsum([0] + plan_blocks(len(e), CHUNK, min_block=4))
    ends = map_blocks(
        len(bounds) - 1,
        lambda k: _end_components(ab, kd, e[bounds[k] : bounds[k + 1]], b),
        part or Partition(),
    )
    p0 = np.concatenate([x[0] for x in ends])  # (k, b) each
    p1 = np.concatenate([x[1] for x in ends])
    shift = np.einsum("ki,kij,kj->k", p0.conj(), sl, p0) + np.einsum(
        "ki,kij,kj->k", p1.conj(), sr, p1
    )
    er = e + shift.real
    width = -2 * shift.imag
    pts = []
    for x, g in zip(er, width):
        if g >= narrow or g < 1e-15 or not lo < x < hi:  # broad, or outside the band
            continue
        pts.append(x)
        d = g
        while d < coarse:
            pts += [x - d, x + d]
            d *= 4.0
    pts = np.array(pts)
    return np.unique(pts[(pts > lo) & (pts < hi)])
