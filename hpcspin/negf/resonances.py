"""Breakpoints for narrow transmission resonances of the bias window.

In long, strongly disordered chains (random spins at J = 2) electrons are localised and
resonances become far narrower than T_el; a quadrature that never puts a node near one
misses an O(1) contribution to the density. Narrow resonances are eigenstates psi_n of
the isolated centre that barely touch the contact slices; to first order they sit at

    E_r = E_n + Re <psi|Sigma(E_n)|psi>,   width Gamma_n = -2 Im <psi|Sigma(E_n)|psi>.

On strips the first-order position can be far off: a state of a transverse mode that is
closed in the leads (a bound state in the continuum of the row-uniform wall, made a
resonance of width ~1e-9 by a small tilt) couples to the real, O(1), square-root
self-energy of its closed channel, which shifts it by much more than its width. There
the seeds can be refined (:func:`refine_poles`, ``refine=True``): inverse iteration on
the effective Hamiltonian H + Sigma(E) at the current estimate until the complex
eigenvalue E_r - i Gamma/2 is self-consistent. Status: opt-in. On a tilted 20 x 4
square-strip wall (V = 0.5, tilt 1e-4) it lowered the error at tol 1e-6 from 1.0e-4 to
4.6e-6 against a tol 1e-10 reference, but on a tilted 12 x 3 wall it raised it from
8.9e-7 to 8.1e-4 (with half the points: the adaptive rounds stop too early), so the
engine does not use it. The chain keeps the first-order seeds.

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

from hpcspin.negf import kernels
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


def _end_components(ab, kd: int, energies: np.ndarray, b: int, compiled: bool = False):
    """First and last ``b`` components of the normalised eigenvectors at ``energies``.

    One step of inverse iteration per eigenvalue with a banded LU, O(N kd^2) each:
    much cheaper than LAPACK's eigenvectors of the whole band (which dominated the
    cost of a field evaluation), and deterministic, so every rank gets the same seeds.
    ``compiled``: all of them in one compiled call (:func:`kernels.band_end_components`).
    """
    n = ab.shape[1]
    if compiled and kernels.AVAILABLE:
        rhs = np.random.default_rng(12345).normal(size=n) + 0.0j
        shift = 1e-10 * max(1.0, float(np.abs(ab).max()))
        return kernels.band_end_components(ab, kd, np.asarray(energies) + shift, rhs, b)
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


#: Self-consistency steps of :func:`refine_poles` (each one banded LU solve).
REFINE_STEPS = 10


def _effective_band(ab, kd: int, b: int, sl: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """General-band layout (2 kd + 1, n) of H + Sigma_L + Sigma_R (Sigma on the ends)."""
    n = ab.shape[1]
    full = np.zeros((2 * kd + 1, n), dtype=complex)
    full[: kd + 1] = ab
    for d in range(1, kd + 1):
        full[kd + d, : n - d] = ab[kd - d, d:].conj()
    for blk, off in ((sl, 0), (sr, n - b)):
        for i in range(b):
            for j in range(b):
                full[kd + i - j, off + j] += blk[i, j]
    return full


def _band_matvec(full, kd: int, x: np.ndarray) -> np.ndarray:
    n = len(x)
    y = np.zeros(n, dtype=complex)
    for r in range(2 * kd + 1):
        d = kd - r  # full[r, j] = A[j - d, j]
        if d >= 0:
            y[: n - d] += full[r, d:] * x[d:]
        else:
            y[-d:] += full[r, : n + d] * x[: n + d]
    return y


def refine_poles(system, ab, kd: int, energies: np.ndarray):
    """Self-consistent resonance poles E_r - i Gamma/2 grown from isolated eigenvalues.

    Each isolated-centre eigenvalue is followed as the leads are switched on
    (Sigma scaled by 1/4, 1/2, 3/4, 1: a continuation, so distinct eigenvalues end on
    distinct poles), by inverse iteration with the shift updated by the Rayleigh
    quotient of H + s Sigma(Re lambda): the closed channels' real self-energy is
    included to all orders.

    Returns:
        (positions, widths) of the poles, (n,) each.
    """
    b = system.block
    n = ab.shape[1]
    h = _effective_band(ab, kd, b, np.zeros((b, b)), np.zeros((b, b)))
    rhs = np.random.default_rng(2024).normal(size=n) + 0.0j
    pos, wid = [], []
    for e in energies:
        lam = complex(e)
        x = _solve_shifted(h, kd, lam, rhs)
        for scale in (0.25, 0.5, 0.75, 1.0):
            for _ in range(REFINE_STEPS):
                sl, sr = system.self_energies(np.array([lam.real]))
                full = _effective_band(ab, kd, b, scale * sl[0], scale * sr[0])
                y = _solve_shifted(full, kd, lam, x)
                x = y / max(np.linalg.norm(y), 1e-300)
                new = complex(np.vdot(x, _band_matvec(full, kd, x)))
                done = abs(new - lam) < 1e-3 * abs(new.imag) + 1e-14
                lam = new
                if done:
                    break
        # Converged only if (A - lambda) x ~ 0; otherwise no pole is claimed (NaN).
        r = np.linalg.norm(_band_matvec(full, kd, x) - lam * x)
        ok = r < 1e-10 * max(1.0, float(np.abs(full).max()))
        pos.append(lam.real if ok else np.nan)
        wid.append(-2.0 * lam.imag if ok else np.nan)
    return np.array(pos), np.array(wid)


def _solve_shifted(full, kd: int, lam: complex, x: np.ndarray) -> np.ndarray:
    m = full.copy()
    m[kd] -= lam + 1e-13 * (1.0 + abs(lam))
    try:
        y = sla.solve_banded((kd, kd), m, x, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return x
    return y / max(np.linalg.norm(y), 1e-300)


def _sigma_scale(system) -> float:
    """Bound on |Sigma| of the leads: t_c^2 / |t_lead| (the surface |g| <= 1/|t|)."""
    ld = system.leads
    t = abs(getattr(ld, "t_lead", 1.0)) or 1.0
    return float(getattr(ld, "t_contact", 1.0)) ** 2 / t


def resonance_breakpoints(
    system,
    lo: float,
    hi: float,
    narrow: float = 1e-4,
    coarse: float = 0.05,
    part: Partition | None = None,
    refine: bool = False,
    compiled: bool = False,
) -> np.ndarray:
    """Graded breakpoints around the narrow resonances inside [lo, hi].

    Args:
        system: an :class:`~hpcspin.negf.system.OpenSystem`.
        lo: lower end of the window.
        hi: upper end of the window.
        narrow: resonances with estimated width below this are seeded.
        coarse: grading stops at this distance from the resonance.
        part: rank partition sharing the inverse iterations (None: serial).
        refine: strips only: self-consistent poles (:func:`refine_poles`) instead of
            the first-order estimate. Opt-in: not yet validated (see module docstring).
        compiled: the band of a chain straight from its blocks and the end components
            in one compiled call (scheme "fast"; the same seeds to round-off).

    Returns:
        sorted breakpoints (may be empty).
    """
    band = kernels.chain_band(system.hd, system.v) if compiled and kernels.AVAILABLE else None
    ab, kd = band if band is not None else banded_upper(system.matrix())
    try:
        e = sla.eigvals_banded(ab, lower=False, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return np.zeros(0)
    b = system.block
    # On strips a pole can lie far from its isolated-centre eigenvalue (docstring):
    # start from every eigenvalue within the largest self-energy shift of the window.
    margin = _sigma_scale(system) if refine and b > 2 else 0.0
    e = e[(e >= lo - margin) & (e <= hi + margin)]
    if len(e) == 0:
        return np.zeros(0)
    sl, sr = system.self_energies(e)
    bounds = np.cumsum([0] + plan_blocks(len(e), CHUNK, min_block=4))
    ends = map_blocks(
        len(bounds) - 1,
        lambda k: _end_components(ab, kd, e[bounds[k] : bounds[k + 1]], b, compiled),
        part or Partition(),
    )
    p0 = np.concatenate([x[0] for x in ends])  # (k, b) each
    p1 = np.concatenate([x[1] for x in ends])
    shift = np.einsum("ki,kij,kj->k", p0.conj(), sl, p0) + np.einsum(
        "ki,kij,kj->k", p1.conj(), sr, p1
    )
    er = e + shift.real
    width = -2 * shift.imag
    if refine and b > 2:  # strips: closed channels shift narrow resonances (docstring);
        # a narrow pole can also hide behind a broad-looking first-order estimate.
        er, width = refine_poles(system, ab, kd, e)
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
