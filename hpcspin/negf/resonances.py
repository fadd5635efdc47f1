"""Breakpoints for narrow transmission resonances of the bias window.

In long, strongly disordered chains (random spins at J = 2) electrons are localised and
resonances become far narrower than T_el; a quadrature that never puts a node near one
misses an O(1) contribution to the density. Narrow resonances are eigenstates psi_n of
the isolated centre that barely touch the contact slices; to first order they sit at

    E_r = E_n + Re <psi|Sigma(E_n)|psi>,   width Gamma_n = -2 Im <psi|Sigma(E_n)|psi>.

On strips the first-order position can be far off: a state of a transverse mode that is
closed in the leads (a bound state in the continuum of the row-uniform wall, made a
resonance of width ~1e-9 by a small tilt) couples to the real, O(1), square-root
self-energy of its closed channel, which shifts it by much more than its width. Strips
therefore use :func:`strip_poles` (the default there): roots of eps_n(E) = E of the
Hermitian part H + Herm Sigma(E), polished on the linearised H + Sigma (docs/negf.md,
narrow resonances on strips). Chains keep the first-order seeds, with a safety margin
for their errors (CHAIN_NARROW, CHAIN_CENTRE, CHAIN_LADDER).

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
from scipy.optimize import brentq

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
        rhs = kernels.seeded_rhs(n, 12345)
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


def _solve_shifted(full, kd: int, lam: complex, x: np.ndarray) -> np.ndarray:
    m = full.copy()
    m[kd] -= lam + 1e-13 * (1.0 + abs(lam))
    try:
        y = sla.solve_banded((kd, kd), m, x, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return x
    return y / max(np.linalg.norm(y), 1e-300)


#: Scan step (in t) of :func:`strip_poles` over the window: the roots of
#: eps_n(E) - E are bracketed between scan points, then polished.
SCAN_STEP = 0.05
#: Bracketed roots are located to this absolute accuracy (in t) before the polish.
ROOT_XTOL = 1e-13
#: Poles narrower than this (in t) are polished (:func:`_polish`).
POLISH_WIDTH = 1e-3
#: Resonances narrower than this get graded seeds: chains (first-order estimate) and
#: strips (strip_poles, accurate widths).
CHAIN_NARROW = 3e-4
STRIP_NARROW = 1e-2
#: Roots of eps_n(E) = E narrower than this (t) are bound states, not resonances: no
#: seeds (a width of round-off has no Lorentzian to resolve); they get the mean lead
#: occupation instead (bound_states.py). Measured <= 1e-16 on x-only strip walls; the
#: tilted walls' resonances are 1e-9 and wider.
BOUND_WIDTH = 1e-14
#: Chains: a resonance whose first-order width lies in [CHAIN_NARROW, CHAIN_CENTRE) gets
#: one breakpoint at its centre. Where levels mix, the first-order width is up to ~10x
#: off either way (random 50-site chain, J = 2: 5.1e-3 estimated, 4.0e-4 true) and a
#: resonance 1e-4..1e-3 wide between the nodes of a wide interval can go unseen by the
#: error estimate (errors 6.6e-6 and 1.1e-5 at tol 1e-6). A breakpoint on the peak makes
#: the adjacent intervals' estimates see it, and the adaptive rule then resolves it; a
#: full ladder for all of them would cost the reference wall 1730 instead of 1055 points.
CHAIN_CENTRE = 1e-2
#: Chains: the graded ladder starts at this fraction of the first-order width (which
#: overestimates the true width by 2-5x near a mixing level: 4.7e-4 for 9.1e-5).
CHAIN_LADDER = 0.25


def _herm_band(ab, kd: int, b: int, sl: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """Upper band of H + Herm(Sigma_L) + Herm(Sigma_R) (b x b blocks on the end slices)."""
    out = ab.copy()
    n = ab.shape[1]
    for blk, off in ((sl, 0), (sr, n - b)):
        h = 0.5 * (blk + blk.conj().T)
        for i in range(b):
            for j in range(i, b):
                out[kd + i - j, off + j] += h[i, j]
    return out


class _HermitianPart:
    """Eigenvalues eps_n(E) of H + Herm Sigma(E): real, continuous in E when sorted."""

    def __init__(self, system, ab, kd: int):
        self.system, self.ab, self.kd, self.b = system, ab, kd, system.block

    def band(self, e: float):
        sl, sr = self.system.self_energies(np.array([e]))
        return _herm_band(self.ab, self.kd, self.b, sl[0], sr[0]), sl[0], sr[0]

    def scan(self, energies: np.ndarray) -> np.ndarray:
        """All eigenvalues at each energy, (len(energies), n); self-energies in one call."""
        sl, sr = self.system.self_energies(energies)
        return np.array(
            [
                sla.eigvals_banded(_herm_band(self.ab, self.kd, self.b, a, c), check_finite=False)
                for a, c in zip(sl, sr)
            ]
        )

    def one(self, e: float, idx: int) -> float:
        hb = self.band(e)[0]
        return float(sla.eigvals_banded(hb, select="i", select_range=(idx, idx))[0])


def _bracketed_roots(
    hp: _HermitianPart, lo: float, hi: float, method: str = "newton"
) -> list[tuple[float, int, tuple | None]]:
    """Every root of eps_n(E) = E in [lo, hi], over all n (sign changes on a scan).

    ``method``: "newton" (:mod:`.root_search`: Newton in each bracket, checked, Brent's
    method where a check fails) or "brent" (Brent's method in every bracket: the
    reference).

    Returns:
        (root, n, first) triples; ``first`` is (first-order width, eigenvector) from the
        Newton iteration, or None.
    """
    if method not in ("newton", "brent"):
        raise ValueError(f"unknown root method {method!r}")
    grid = np.linspace(lo, hi, max(3, int(np.ceil((hi - lo) / SCAN_STEP)) + 1))
    g = hp.scan(grid) - grid[:, None]
    got = None
    if method == "newton":
        from hpcspin.negf.root_search import newton_search

        got = newton_search(hp, grid, g)
    if got is None:  # Brent's method everywhere (also where the band is not by slices)
        js, ids = np.nonzero(g[:-1] * g[1:] <= 0)  # ordered by interval, then n
        found = {}
    else:
        js, ids, found = got
    roots: list[tuple[float, int, tuple | None]] = []
    for k, (j, idx) in enumerate(zip(js, ids)):
        if k in found:
            r, first = found[k]
        else:
            f = lambda e, i=int(idx): hp.one(e, i) - e  # noqa: E731
            try:
                r = brentq(f, grid[j], grid[j + 1], xtol=ROOT_XTOL, rtol=1e-15)
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                continue
            first = None
        if not any(i == idx and abs(r - q) < 1e-12 for q, i, _ in roots):  # on a scan point
            roots.append((float(r), int(idx), first))
    return roots


#: Step (in t) of the central difference for d Sigma / dE in :func:`_polish`.
SIGMA_STEP = 1e-8
#: Step (in t) of the central difference for d Sigma / dE in the Hellmann-Feynman slopes
#: d eps_n/dE = <psi| d Herm Sigma/dE |psi> (first-order widths, root following, bound
#: states).
SLOPE_STEP = 1e-7


def _linearised_band(system, ab, kd: int, lam: complex):
    """H + Sigma(E) + (lambda - E) Sigma'(E) at E = Re lambda (general band), and Sigma'.

    Near a pole of width 1e-9 the self-energy is linear in E to round-off, so the pole
    of this matrix is the Lorentzian the real axis sees (position and width), also
    next to a lead threshold where Sigma' is large (fixed-point iteration on Sigma(Re
    lambda) alone does not converge there).
    """
    e = lam.real
    z = np.array([e, e - SIGMA_STEP, e + SIGMA_STEP])
    sl, sr = system.self_energies(z)
    dl = (sl[2] - sl[1]) / (2 * SIGMA_STEP)
    dr = (sr[2] - sr[1]) / (2 * SIGMA_STEP)
    d = lam - e
    return _effective_band(ab, kd, system.block, sl[0] + d * dl, sr[0] + d * dr), dl, dr


def _polish(system, ab, kd: int, lam: complex, x: np.ndarray) -> complex | None:
    """Newton-like inverse iteration for the pole of the linearised H + Sigma; None if it fails.

    Each step: the Rayleigh quotient rho0 of H + Sigma(E) and rho1 of Sigma'(E) (E = Re
    lambda) give the pole of the linearised problem, lambda = (rho0 - E rho1) / (1 - rho1).
    """
    b = system.block
    for _ in range(REFINE_STEPS):
        full, dl, dr = _linearised_band(system, ab, kd, lam)
        x = _solve_shifted(full, kd, lam, x)
        e = lam.real
        rho = complex(np.vdot(x, _band_matvec(full, kd, x))) - (lam - e) * (
            complex(np.vdot(x[:b], dl @ x[:b]) + np.vdot(x[-b:], dr @ x[-b:]))
        )  # <x|H + Sigma(E)|x>
        rho1 = complex(np.vdot(x[:b], dl @ x[:b]) + np.vdot(x[-b:], dr @ x[-b:]))
        new = (rho - e * rho1) / (1.0 - rho1)
        done = abs(new - lam) < 1e-4 * abs(new.imag) + 1e-15
        lam = new
        if done:
            break
    full = _linearised_band(system, ab, kd, lam)[0]
    r = np.linalg.norm(_band_matvec(full, kd, x) - lam * x)
    return lam if r < 1e-10 * max(1.0, float(np.abs(full).max())) else None


def _first_order_width(hp: _HermitianPart, r: float, idx: int) -> tuple[float, np.ndarray]:
    """Width of the root (r, n): -2 Im <psi|Sigma|psi> / (1 - d eps_n/dE), and psi."""
    hb, sl, sr = hp.band(r)
    b = hp.b
    full = _effective_band(hb, hp.kd, b, np.zeros((b, b)), np.zeros((b, b)))
    x = _solve_shifted(full, hp.kd, complex(r), _rhs(hb.shape[1]))
    x = _solve_shifted(full, hp.kd, complex(r), x)
    g0 = -2.0 * float(np.imag(x[:b].conj() @ sl @ x[:b] + x[-b:].conj() @ sr @ x[-b:]))
    # d eps_n/dE = <psi| d Herm Sigma/dE |psi> (Hellmann-Feynman; psi normalised)
    step = SLOPE_STEP
    sl2, sr2 = hp.system.self_energies(np.array([r - step, r + step]))
    dl, dr = (sl2[1] - sl2[0]) / (2 * step), (sr2[1] - sr2[0]) / (2 * step)
    slope = float(np.real(x[:b].conj() @ dl @ x[:b] + x[-b:].conj() @ dr @ x[-b:]))
    return g0 / max(1.0 - slope, 1e-3), x


def strip_poles(system, ab, kd: int, lo: float, hi: float):
    """Positions and widths of the strip's resonances in [lo, hi].

    A state of a transverse channel that is closed in the leads feels that channel's
    real self-energy to all orders, so the pole is found as a root of eps_n(E) = E,
    with eps_n the sorted (continuous) eigenvalues of the Hermitian H + Herm Sigma(E):
    bracketed on a scan of the window, whatever the shift from the isolated centre.
    The width follows from the eigenvector (first order in the open channels, with the
    factor 1 / (1 - d eps_n / dE)); narrow poles are then polished by inverse
    iteration on the full H + Sigma(Re lambda) and the polish is kept only at a small
    residual and near its start.

    Returns:
        (positions, widths), (n,) each.
    """
    pos, wid, _ = strip_roots(system, ab, kd, lo, hi)
    return pos, wid


def strip_roots(system, ab, kd: int, lo: float, hi: float, method: str = "newton"):
    """:func:`strip_poles` with the index n of eps_n of every root: (pos, widths, n).

    ``method``: how bracketed roots are located, "newton" (default) or "brent" (the
    earlier search, kept as the reference); see :func:`_bracketed_roots`.
    """
    hp = _HermitianPart(system, ab, kd)
    pos, wid, index = [], [], []
    for r, idx, first in _bracketed_roots(hp, lo, hi, method):
        r, g = root_pole(hp, r, idx, first)
        pos.append(r)
        wid.append(g)
        index.append(idx)
    return np.array(pos), np.array(wid), np.array(index, dtype=int)


def root_pole(hp: _HermitianPart, r: float, idx: int, first=None) -> tuple[float, float]:
    """(position, width) of the resonance at the root (r, n) of eps_n(E) = E.

    First-order width from the eigenvector (``first``: (width, eigenvector) when already
    known); narrow poles polished (:func:`_polish`), the polish kept only with a
    negative imaginary part and within 10 widths of r.
    """
    g, x = _first_order_width(hp, r, idx) if first is None else first
    if 0 < g < POLISH_WIDTH:
        lam = _polish(hp.system, hp.ab, hp.kd, complex(r, -0.5 * g), x)
        if lam is not None and lam.imag < 0 and abs(lam.real - r) < 10 * g:
            r, g = lam.real, -2.0 * lam.imag
    return r, g


def centre_band(system, compiled: bool = False):
    """Upper band storage (ab, kd) of the isolated centre's Hamiltonian (real diagonal)."""
    band = kernels.chain_band(system.hd, system.v) if compiled and kernels.AVAILABLE else None
    ab, kd = band if band is not None else banded_upper(system.matrix())
    ab[kd] = ab[kd].real  # a broadening eta of the centre is not part of its spectrum
    return ab, kd


def _rhs(n: int) -> np.ndarray:
    return np.random.default_rng(2024).normal(size=n) + 0.0j


def ladder(
    er, width, narrow: float, coarse: float, ratio: float = 4.0, start: float = 1.0
) -> list[tuple[float, float, float]]:
    """(breakpoint, E_r, Gamma) of E_r and E_r +- s Gamma r^k (up to ``coarse``).

    For every resonance with BOUND_WIDTH <= Gamma < ``narrow`` (s: ``start``, r:
    ``ratio``); bound states get no seeds.
    """
    out = []
    for x, g in zip(er, width):
        if not BOUND_WIDTH <= g < narrow:
            continue
        out.append((x, x, g))
        d = g * start
        while d < coarse:
            out += [(x - d, x, g), (x + d, x, g)]
            d *= ratio
    return out


def _graded(
    er,
    width,
    lo: float,
    hi: float,
    narrow: float,
    coarse: float,
    centre: float = 0.0,
    start: float = 1.0,
    ratio: float = 4.0,
) -> np.ndarray:
    """The :func:`ladder` seeds of the resonances in (lo, hi), inside (lo, hi).

    Resonances with ``narrow <= Gamma < centre`` get their centre E_r only.
    """
    pts = [x for x, g in zip(er, width) if lo < x < hi and narrow <= g < centre]
    pts += [p for p, x, _ in ladder(er, width, narrow, coarse, ratio, start) if lo < x < hi]
    pts = np.array(pts)
    return np.unique(pts[(pts > lo) & (pts < hi)])


def resonance_breakpoints(
    system,
    lo: float,
    hi: float,
    narrow: float | None = None,
    coarse: float = 0.05,
    part: Partition | None = None,
    refine: bool | None = None,
    compiled: bool = False,
    roots: tuple | None = None,
    ratio: float = 4.0,
) -> np.ndarray:
    """Graded breakpoints around the narrow resonances inside [lo, hi].

    Args:
        system: an :class:`~hpcspin.negf.system.OpenSystem`.
        lo: lower end of the window.
        hi: upper end of the window.
        narrow: resonances with estimated width below this are seeded (default
            CHAIN_NARROW on chains, STRIP_NARROW with ``refine``); on chains the
            resonances up to CHAIN_CENTRE (or ``narrow`` if larger) get a centre
            breakpoint.
        coarse: grading stops at this distance from the resonance.
        part: rank partition sharing the inverse iterations (None: serial).
        refine: poles from :func:`strip_poles` (roots of the Hermitian part, polished)
            instead of the first-order estimate; None: on strips (2W > 2), not on chains.
        compiled: the band of a chain straight from its blocks and the end components
            in one compiled call (scheme "fast"; the same seeds to round-off).
        roots: the :func:`strip_roots` of this system and window when already found
            (with ``refine``).
        ratio: grading ratio of the strip poles' ladders (E_r +- Gamma ratio^k).

    Returns:
        sorted breakpoints (may be empty).
    """
    b = system.block
    if refine is None:
        refine = b > 2
    if narrow is None:
        narrow = STRIP_NARROW if refine else CHAIN_NARROW
    if refine:
        if roots is None:
            try:
                roots = strip_roots(system, *centre_band(system, compiled), lo, hi)
            except (np.linalg.LinAlgError, ValueError):
                return np.zeros(0)
        return _graded(roots[0], roots[1], lo, hi, narrow, coarse, ratio=ratio)
    ab, kd = centre_band(system, compiled)
    try:
        e = sla.eigvals_banded(ab, lower=False, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return np.zeros(0)
    e = e[(e >= lo) & (e <= hi)]
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
    centre = max(narrow, CHAIN_CENTRE)
    width = -2 * shift.imag
    return _graded(e + shift.real, width, lo, hi, narrow, coarse, centre, CHAIN_LADDER)
