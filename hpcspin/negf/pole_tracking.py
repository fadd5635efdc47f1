"""Strip resonances followed from one field evaluation to the next (warm starts).

On strips the narrow resonances of the bias window are the roots of eps_n(E) = E, with
eps_n the sorted eigenvalues of H + Herm Sigma(E) (:func:`.resonances.strip_roots`).
The full search (a scan of the window with banded eigenvalue solves, Brent's method,
a polish) costs 0.2-0.4 s on a 20 x 4 strip, more than the window integral itself.
In dynamics the spins move little between evaluations, and so do the roots (and the
widths, which on a tilting wall range over 1e-10..1e-2), so a warm-started sequence
searches once (on a cold start) and then follows every root:

* Newton on f(E) = eps_n(E) - E from the previous root, with eps_n from inverse
  iteration at E (started from the previous eigenvector: the eigenvalue nearest E) and
  f'(E) = <psi| d Herm Sigma/dE |psi> - 1 (Hellmann-Feynman), to ROOT_XTOL as the search;
  then the width (and polish) of the search itself (:func:`.resonances.root_pole`);
* checks: Newton converges within TRACK_STEPS and moves a root by at most MAX_JUMP; no
  two roots of one eps_n meet; and the number of roots in the window, which is
  #{eps_n(hi) < hi} - #{eps_n(lo) < lo} since every root crosses with slope
  d eps_n/dE < 1, differs from the tracked count by what it did at the search (the
  search may miss pairs within one scan step; the difference stays fixed while the
  roots move). A failed check (a root entering the window, two roots born or
  annihilated, Newton lost) makes the engine start cold: a full search again.

:func:`follow_grid` moves the warm grid's breakpoints with the resonances that moved,
and adds the graded seeds of the new widths where the grid lacks them, so the grid does
not grow step after step. Everything runs the same on every rank (no communication), so
results stay bit-identical at any rank count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from hpcspin.negf.pole_map import follow_v, seeds_v
from hpcspin.negf.resonances import (
    BOUND_WIDTH,
    ROOT_XTOL,
    SLOPE_STEP,
    _effective_band,
    _HermitianPart,
    _rhs,
    ladder,
    root_pole,
)

#: Newton steps allowed per root and evaluation (2-3 needed after a dynamics step).
TRACK_STEPS = 8
#: A root that moves farther than this (t) in one evaluation is taken as lost.
MAX_JUMP = 1e-2


def _count_below(hp: _HermitianPart, e: float) -> int:
    """#{n: eps_n(e) < e}."""
    return int(np.sum(sla.eigvals_banded(hp.band(e)[0], check_finite=False) < e))


class _Band:
    """H + Herm Sigma(E) - sigma in LAPACK's gbsv layout (the end blocks added by index).

    Rows kd..3kd hold the general band (row 2 kd the diagonal), rows 0..kd-1 LU fill-in.
    """

    def __init__(self, ab, kd: int, b: int):
        n = ab.shape[1]
        self.kd = kd
        self.base = np.zeros((3 * kd + 1, n), dtype=complex)
        self.base[kd:] = _effective_band(ab, kd, b, np.zeros((b, b)), np.zeros((b, b)))
        i, j = np.meshgrid(np.arange(b), np.arange(b), indexing="ij")
        self.rows, self.left, self.right = (2 * kd + i - j).ravel(), j.ravel(), (n - b + j).ravel()
        self.gbsv = sla.get_lapack_funcs("gbsv", (self.base,))

    def solve(self, sl: np.ndarray, sr: np.ndarray, sigma: float, x: np.ndarray):
        """(H + Herm Sigma - sigma)^-1 x, or None if singular."""
        m = self.base.copy()
        m[self.rows, self.left] += (0.5 * (sl + sl.conj().T)).ravel()
        m[self.rows, self.right] += (0.5 * (sr + sr.conj().T)).ravel()
        m[2 * self.kd] -= sigma
        _, _, y, info = self.gbsv(self.kd, self.kd, m, x, overwrite_ab=1)
        return y if info == 0 else None


def sigma_with_slopes(system, e: np.ndarray):
    """Sigma at e, e - SLOPE_STEP, e + SLOPE_STEP (3 x len(e)), past any energy cache."""
    leads = getattr(system.leads, "uncached", system.leads)
    return leads.self_energies(np.concatenate([e, e - SLOPE_STEP, e + SLOPE_STEP]))


def newton_step(band: _Band, b: int, e: float, x: np.ndarray, sl, sr, j: int):
    """One inverse-iteration step at e from the unit vector x, and the Newton step.

    ``sl``, ``sr``: :func:`sigma_with_slopes` of k energies, e their j-th. The
    eigenvalue nearest sigma (just off e) is sigma + <v|x>/|y| (error second order in
    the error of x); Newton on eps(E) - E with the Hellmann-Feynman slope.

    Returns:
        (v, Newton step, first-order width), or None if the solve failed.
    """
    k = len(sl) // 3
    sigma = e + 1e-13 * (1.0 + abs(e))
    y = band.solve(sl[j], sr[j], sigma, x)
    if y is None or not np.all(np.isfinite(y)):
        return None
    ny = float(np.linalg.norm(y))
    v = y / ny
    eps = sigma + float(np.vdot(v, x).real) / ny
    dl = (sl[2 * k + j] - sl[k + j]) / (2 * SLOPE_STEP)
    dr = (sr[2 * k + j] - sr[k + j]) / (2 * SLOPE_STEP)
    slope = float(np.real(v[:b].conj() @ dl @ v[:b] + v[-b:].conj() @ dr @ v[-b:]))
    gam = -2.0 * float(np.imag(v[:b].conj() @ sl[j] @ v[:b] + v[-b:].conj() @ sr[j] @ v[-b:]))
    damp = max(1.0 - slope, 1e-3)  # as resonances._first_order_width
    return v, (eps - e) / damp, gam / damp


def _newton(hp: _HermitianPart, e0: np.ndarray, x0: list):
    """Every root of eps(E) = E near ``e0`` (eps: the eigenvalue nearest E), together.

    Returns:
        (roots, eigenvectors, first-order widths), or None if one did not converge.
    """
    band = _Band(hp.ab, hp.kd, hp.b)
    e, wid = np.array(e0, dtype=float), np.zeros(len(e0))
    x = [v / np.linalg.norm(v) for v in x0]
    todo = np.arange(len(e))
    for _ in range(TRACK_STEPS):
        if not len(todo):
            return e, x, wid
        sl, sr = sigma_with_slopes(hp.system, e[todo])
        left = []
        for j, r in enumerate(todo):
            got = newton_step(band, hp.b, e[r], x[r], sl, sr, j)
            if got is None:
                return None
            x[r], step, wid[r] = got
            e[r] += step
            if abs(step) > ROOT_XTOL:
                left.append(r)
        todo = np.array(left, dtype=int)
    return None if len(todo) else (e, x, wid)


@dataclass
class PoleTracker:
    """Roots of eps_n(E) = E of a strip's window, carried along a warm-started sequence.

    Attributes:
        window: (lo, hi) of the roots held.
        roots: (positions, widths, index) as :func:`.resonances.strip_roots`.
        vectors: eigenvectors at the roots (start of the next inverse iteration).
        deficit: roots counted by the eigenvalue inertia minus roots held, at the search.
        counts: searches, tracked evaluations and lost tracks so far.
    """

    window: tuple | None = None
    roots: tuple | None = None
    vectors: list | None = None
    deficit: int = 0
    counts: dict = field(default_factory=lambda: {"search": 0, "tracked": 0, "lost": 0})

    def start(self, system, ab, kd: int, lo: float, hi: float, roots) -> None:
        """Hold the roots of a full search (a cold start) in [lo, hi]."""
        self.counts["search"] += 1
        self.window, self.roots, self.vectors = (lo, hi), roots, None
        if roots is None:
            return
        hp = _HermitianPart(system, ab, kd)
        self.deficit = _count_below(hp, hi) - _count_below(hp, lo) - len(roots[0])

    def follow(self, system, ab, kd: int, lo: float, hi: float):
        """The held roots followed to ``system``'s spins, or None (search again)."""
        if self.roots is None or self.window != (lo, hi):
            return None
        out = self._follow(_HermitianPart(system, ab, kd), lo, hi)
        self.counts["tracked" if out is not None else "lost"] += 1
        if out is None:
            self.roots = None
        return out

    def _follow(self, hp: _HermitianPart, lo: float, hi: float):
        pos, _, index = self.roots
        starts = self.vectors or [_rhs(hp.ab.shape[1])] * len(pos)
        got = _newton(hp, pos, starts)
        if got is None or (len(pos) and np.abs(got[0] - pos).max() > MAX_JUMP):
            return None
        new, vecs, first = got
        if _merged(new, index):
            return None
        keep = (new >= lo) & (new <= hi)
        if _count_below(hp, hi) - _count_below(hp, lo) - int(keep.sum()) != self.deficit:
            return None
        poles = [
            root_pole(hp, float(new[i]), int(index[i]), (first[i], vecs[i]))
            for i in np.flatnonzero(keep)
        ]
        pos = np.array([p[0] for p in poles])
        wid = np.array([p[1] for p in poles])
        self.roots = (pos, wid, index[keep])
        self.vectors = [v for v, k in zip(vecs, keep) if k]
        return self.roots


def _merged(pos: np.ndarray, index: np.ndarray) -> bool:
    """True if two roots of the same eps_n fell onto one (a track was lost)."""
    for n in np.unique(index):
        p = np.sort(pos[index == n])
        if len(p) > 1 and np.diff(p).min() < 1e3 * ROOT_XTOL:
            return True
    return False


def _missing(e: np.ndarray, seeds, ratio: float) -> list[float]:
    """Seeds the grid ``e`` lacks.

    The centre is present if a breakpoint lies within Gamma / 4 of it; a seed at
    distance d if a breakpoint lies on its side at a distance in [d / ratio, ratio d]:
    an older ladder (graded from the width some steps ago) serves as well, so only the
    inner rungs of a resonance that became narrower (or the whole ladder of one that
    became narrow) are added.
    """
    out = []
    for p, x, g in seeds:
        d = p - x
        if d == 0.0:
            hit = np.any(np.abs(e - x) <= 0.25 * g)
        else:
            r = (e - x) / d
            hit = np.any((r >= 1.0 / ratio) & (r <= ratio))
        if not hit:
            out.append(p)
    return out


def _shift(e: np.ndarray, old: np.ndarray, new: np.ndarray, coarse: float) -> np.ndarray:
    """Energies moved with their nearest moved resonance, tapered to 0 at ``coarse``."""
    if len(old) == 0:
        return e
    dist = np.abs(e[:, None] - old[None, :])
    near = np.argmin(dist, axis=1)
    w = np.clip(1.0 - dist[np.arange(len(e)), near] / coarse, 0.0, 1.0)
    return e + w * (new - old)[near]


def follow_grid(
    segments, grid, old, new, narrow: float, coarse: float = 0.05, ratio: float = 4.0
) -> list:
    """Warm-grid breakpoints (per window segment, in s) moved with the resonances.

    Args:
        segments: the window segments ("cos" maps; their ends stay fixed).
        grid: breakpoints per segment, in the segment variable s.
        old: (positions, widths, index) of the roots the grid was refined for.
        new: the same roots followed to the new spins (a root that left the window
            is absent; roots are matched by (index, order within the index)).
        narrow: resonances narrower than this carry graded seeds.
        coarse: the grading range; breakpoints farther than this from a resonance stay.
        ratio: the grading ratio of the ladders (as the engine's seeds).

    Returns:
        breakpoints per segment (sorted, unique), with the missing graded seeds added.
    """
    x_old, x_new = _matched(old, new, narrow)
    seeds = ladder(new[0], new[1], narrow, coarse, ratio)
    out = []
    for seg, s in zip(segments, grid):
        a, w = seg.origin, seg.width
        e = a + 0.5 * w * (1.0 - np.cos(np.pi * s))
        moved = _shift(e[1:-1], x_old, x_new, coarse)
        bp = np.concatenate([s[:1], seg.to_v(moved), s[-1:]])
        if np.any(np.diff(bp) <= 0):  # moved past a neighbour: keep the grid as it was
            bp, moved = s, e[1:-1]
        missing = _missing(moved, [t for t in seeds if a < t[0] < a + w], ratio)
        if missing:
            bp = np.unique(np.concatenate([bp, seg.to_v(missing)]))
        out.append(bp)
    return out


def _matched(old, new, narrow: float) -> tuple[np.ndarray, np.ndarray]:
    """Old and new positions of the narrow resonances present in both."""
    xo, xn = [], []
    for n in np.unique(new[2]):
        po, pn = old[0][old[2] == n], new[0][new[2] == n]
        wo = old[1][old[2] == n]
        if len(po) != len(pn):  # a root of this eps_n left the window: match by order
            continue
        for a, b, g in zip(np.sort(po), np.sort(pn), wo[np.argsort(po)]):
            if g < narrow:
                xo.append(a)
                xn.append(b)
    return np.array(xo), np.array(xn)


def mapped_poles(segments, roots, narrow: float) -> list[tuple]:
    """Per window segment, (E_r, Gamma_r, n_r) of the roots mapped into its variable.

    Every root with BOUND_WIDTH <= Gamma < ``narrow`` strictly inside the piece.
    """
    pos, wid, idx = roots
    out = []
    for seg in segments:
        sel = [
            (float(p), float(g), int(n))
            for p, g, n in zip(pos, wid, idx)
            if BOUND_WIDTH <= g < narrow and seg.contains(p)
        ]
        out.append(tuple(sorted(sel)))
    return out


def _coarse_v(seg, coarse: float) -> np.ndarray:
    """The grading range ``coarse`` (energy) in the cosine variable, per mapped pole."""
    vr = seg.pole_map.vr
    return np.minimum(2.0 * coarse / (np.pi * seg.width * np.sin(np.pi * vr)), 1.0)


def map_cold(segments, roots, narrow: float, coarse: float = 0.05):
    """Map the narrow roots into their pieces' variables, with centre, junction, tail seeds.

    Scheme fast, strips (:mod:`.pole_map`): instead of a graded ladder from Gamma, each
    resonance's core is two intervals (and two short ones at the junctions), and its
    tails are graded from the junction.
    """
    for seg, poles in zip(segments, mapped_poles(segments, roots, narrow)):
        seg.set_poles(poles)
        pm = seg.pole_map
        if pm is not None:
            seeds = pm.forward(seeds_v(pm, _coarse_v(seg, coarse)))
            seg.breakpoints = np.unique(np.concatenate([seg.breakpoints, seeds]))


def map_warm(segments, grid, old_poles, roots, narrow: float, coarse: float = 0.05):
    """Warm grid (in each piece's variable) moved to the followed roots, or None (cold).

    The mapped roots of every piece must be the same as at the last evaluation (the
    same eigenvalue indices in the same order); the grid's points then move with their
    resonances (:func:`.pole_map.follow_v`).
    """
    new_poles = mapped_poles(segments, roots, narrow)
    out = []
    for seg, s, po, pn in zip(segments, grid, old_poles, new_poles):
        if [p[2] for p in po] != [p[2] for p in pn]:
            return None
        seg.set_poles(po)
        old = seg.pole_map
        seg.set_poles(pn)
        if old is None:
            out.append(np.array(s))
            continue
        v = follow_v(old.inverse(s[1:-1]), old, seg.pole_map, _coarse_v(seg, coarse))
        if v is None:
            return None
        inner = seg.pole_map.forward(v)
        bp = np.concatenate([s[:1], inner, s[-1:]])
        if np.any(np.diff(bp) <= 0):
            return None
        out.append(bp)
    return out
