"""A window variable in which narrow resonances are flat (scheme fast, strips).

A window piece [a, a + w] is integrated in s in [0, 1]. The plain piece uses the
cosine variable v: E = a + w (1 - cos(pi v))/2 (smooth square-root onsets at the
ends). A narrow resonance (E_r, Gamma) is a Lorentzian of half width h = (Gamma/2)
dv/dE in v, and a GK15 interval over a few of its widths needs graded breakpoints and
bisections: about 240 points per resonance. :class:`PoleMap` instead puts the
resonances into the variable itself: s = S(v) with density

    dS/dv = c + sum_r alpha_r (h_r / pi) / ((v - v_r)^2 + h_r^2) / n_r,

(n_r: the Lorentzian's mass in [0, 1] over pi, so that S(1) = 1 with c = 1 - sum alpha),
so dE/ds = (dE/dv) / S'(v). A resonance's own Lorentzian times dE/ds is flat in the
core |v - v_r| << y_r, where y_r (the junction) is where the resonance's term equals
c; there the integrand is the resonance's weight over alpha_r, and each half of the
core is one GK15 interval. Beyond the junction the map is the cosine variable scaled
by c (the background is as smooth in s as in v). The map is exact: any S integrates
correctly; the widths set only where the points go, so first-order widths and roots
that moved since the map was built cost points, not accuracy. Near the segment ends
S' is smooth (the resonances lie inside), so the square-root onsets stay smooth.

A resonance keeps its share of s while it moves or narrows, so a grid in s follows
its resonances (warm starts reuse it unchanged while the mapped set is the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: Share of s given to each mapped resonance, ...
MAP_SHARE = 0.04
#: ... and to all of one piece together at most (the background keeps the rest).
MAP_TOTAL = 0.5
#: Seeds of a mapped resonance (:func:`seeds_v`): inside the junction at y / MAP_INNER,
#: beyond it at y MAP_TAIL^k.
MAP_INNER = 32.0
MAP_TAIL = 128.0
#: Newton steps of the inversion S(v) = s (each from a bracket of a monotone table;
#: 3-5 are used).
INVERT_STEPS = 30
#: Knots per resonance of the inversion table (uniform in the Lorentzian's angle).
_KNOTS = 33


@dataclass(frozen=True)
class PoleMap:
    """The map s -> v of one window piece with mapped resonances (module docstring).

    Attributes:
        vr: resonance centres in v.
        h: half widths in v.
        alpha: shares of s.
        c: share of the background (1 - sum alpha).
    """

    vr: np.ndarray
    h: np.ndarray
    alpha: np.ndarray
    c: float

    @classmethod
    def build(cls, vr, h) -> PoleMap:
        """Map with resonances at ``vr`` (inside (0, 1)) of half widths ``h`` (in v)."""
        vr, h = np.asarray(vr, dtype=float), np.asarray(h, dtype=float)
        share = min(MAP_SHARE, MAP_TOTAL / max(1, len(vr)))
        alpha = np.full(len(vr), share)
        return cls(vr, h, alpha, 1.0 - float(alpha.sum()))

    @property
    def _lo(self) -> np.ndarray:
        return np.arctan(-self.vr / self.h)

    @property
    def _mass(self) -> np.ndarray:
        return np.arctan((1.0 - self.vr) / self.h) - self._lo

    def forward(self, v) -> np.ndarray:
        """The variable s = S(v)."""
        v = np.asarray(v, dtype=float)
        x = (v[..., None] - self.vr) / self.h
        frac = (np.arctan(x) - self._lo) / self._mass
        return self.c * v + frac @ self.alpha

    def density(self, v) -> np.ndarray:
        """dS/dv."""
        v = np.asarray(v, dtype=float)
        x = (v[..., None] - self.vr) / self.h
        lor = 1.0 / (self.h * self._mass * (1.0 + x * x))
        return self.c + lor @ self.alpha

    def inverse(self, s) -> np.ndarray:
        """The v with S(v) = s: bracketed Newton from a monotone table (vectorised)."""
        s = np.asarray(s, dtype=float)
        kv, ks = self._knots
        i = np.clip(np.searchsorted(ks, s, side="right"), 1, len(ks) - 1)
        lo, hi = kv[i - 1], kv[i]
        slo, shi = ks[i - 1], ks[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(shi > slo, (s - slo) / (shi - slo), 0.5)
        v = lo + t * (hi - lo)
        for _ in range(INVERT_STEPS):
            f = self.forward(v) - s
            lo = np.where(f < 0, v, lo)
            hi = np.where(f > 0, v, hi)
            step = f / self.density(v)
            nv = v - step
            out = (nv < lo) | (nv > hi)
            nv = np.where(out, 0.5 * (lo + hi), nv)
            done = np.abs(nv - v) <= 4 * np.finfo(float).eps  # v in [0, 1]: absolute
            v = nv
            if done.all():
                break
        return np.clip(v, 0.0, 1.0)

    @cached_property
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        return self._table()

    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """Knots in v (sorted) and S there: uniform, angles in each core, geometric tails.

        Between two knots S is close to linear or to one Lorentzian's arctan over a
        factor 2 in distance, where the bracketed Newton converges in a few steps.
        """
        th = np.linspace(-0.5 * np.pi, 0.5 * np.pi, _KNOTS)[1:-1]
        knots = [np.linspace(0.0, 1.0, 33)]
        for r, w in zip(self.vr, self.h):
            d = w * 2.0 ** np.arange(0, max(1, int(np.ceil(np.log2(1.0 / w)))) + 1)
            knots += [r + w * np.tan(th), r - d, r + d]
        kv = np.unique(np.clip(np.concatenate(knots), 0.0, 1.0))
        ks = np.maximum.accumulate(self.forward(kv))
        ks[0], ks[-1] = 0.0, 1.0
        return kv, ks

    def junctions(self) -> np.ndarray:
        """Distances y_r (in v) where a resonance's term of dS/dv equals c (>= 2 h_r)."""
        y2 = self.alpha / (self._mass * self.c) * self.h - self.h**2
        return np.maximum(np.sqrt(np.maximum(y2, 0.0)), 2.0 * self.h)


def seeds_v(pm: PoleMap, coarse: np.ndarray) -> np.ndarray:
    """Seeds (in v, inside (0, 1)) of every mapped resonance.

    v_r +- y_r / MAP_INNER, where the core's flat Lorentzian meets the background and
    the resonance's Fano (1/x) part, which grow there (without these the core interval
    hides them: errors ~4e-6 instead of 2e-8 at tol 1e-5 on a driven 20 x 4 strip
    wall); the junctions v_r +- y_r; beyond, where the variable is linear in v, tail
    rungs v_r +- y_r MAP_TAIL^k up to ``coarse`` (per resonance, in v). The core
    itself is one interval (flat: a breakpoint at the centre cost 10 % more points for
    the same errors at tol 1e-4).
    """
    out = []
    for r, y, c in zip(pm.vr, pm.junctions(), coarse):
        d = [y / MAP_INNER, y]
        while d[-1] * MAP_TAIL < c:
            d.append(d[-1] * MAP_TAIL)
        d = np.array(d)
        out += [r - d, r + d]
    v = np.concatenate(out)
    return v[(v > 0.0) & (v < 1.0)]


def follow_v(v: np.ndarray, old: PoleMap, new: PoleMap, coarse: np.ndarray):
    """Interior grid points (in v) moved with their resonances, or None (order broken).

    ``old`` and ``new`` map the same resonances (matched in order). A point within its
    nearest resonance's junction is scaled with the core (centre to centre, junction
    to junction); beyond, it is translated with the junction, the shift tapered to 0
    at ``coarse`` (in v, per resonance) from the resonance.
    """
    if len(v) == 0 or len(old.vr) == 0:
        return v
    t = v[:, None] - old.vr[None, :]
    near = np.argmin(np.abs(t), axis=1)
    tn = t[np.arange(len(v)), near]
    yo, yn = old.junctions()[near], new.junctions()[near]
    core = new.vr[near] + tn * (yn / yo)
    shift = (new.vr - old.vr)[near] + np.sign(tn) * (yn - yo)
    c = coarse[near]
    taper = np.clip((c - np.abs(tn)) / np.maximum(c - yo, 1e-300), 0.0, 1.0)
    out = np.where(np.abs(tn) <= yo, core, v + taper * shift)
    if np.any(np.diff(out) <= 0) or out[0] <= 0.0 or out[-1] >= 1.0:
        return None
    return out
