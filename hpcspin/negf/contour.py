"""Energy integration paths: Fermi functions, Ozaki poles, equilibrium contour, bias window.

Density matrix (docs/physics.md, steady-state NEGF):

    rho = rho_eq(mu_R) + int dE/2pi G^r Gamma_L G^a (f_L - f_R)

``rho_eq(mu) = -(1/pi) Im_h int dE G^r(E) f(E)`` (Im_h X = (X - X^+)/2i) is taken off the
real axis, where G^r is smooth, so bound states below the lead band are included
automatically. Two exact rewritings are offered:

* ``ozaki`` (T > 0, tight-binding leads): Ozaki's continued-fraction expansion
  f(x) = 1/2 - sum_p R_p [1/(x - i z_p) + 1/(x + i z_p)] (x = (E - mu)/T), exact for
  |x| below a range that grows like 0.35 P^2 (P poles), so
  rho_eq = 1/2 + 2T sum_p R_p Re_h G(mu + i z_p T). P is chosen from the Gershgorin
  bounds of the whole spectrum so that the error of f there is below tol/20.
* ``contour`` (any T >= 0, also wide-band leads): a circular arc from E_B (below the
  spectrum) to mu - a + i gamma, a line mu - a .. mu + b at height gamma = 2 pi T N_p
  (where f(E + i gamma) = f(E)), and the N_p enclosed Matsubara poles:
  rho_eq = -(1/pi) Im_h int_C G f dz + 2T sum_n Re_h G(mu + i pi T (2n+1)).
  At T = 0 the arc ends at mu and there are no poles. Wide-band leads have Lorentzian
  tails below E_B; that part is integrated on the real axis (u -> E_B - w u/(1-u)).

The arc, line, tail and the bias window are integrated by the adaptive Gauss-Kronrod
scheme of :mod:`hpcspin.negf.quadrature`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np
import scipy.linalg as sl

from hpcspin.negf.pole_map import PoleMap


def fermi(e, mu: float, temperature: float) -> np.ndarray:
    """Fermi function of real or complex energies (T = 0: a step, 1/2 at mu)."""
    e = np.asarray(e)
    if temperature <= 0:
        re = np.real(e)
        return np.where(re < mu, 1.0, np.where(re > mu, 0.0, 0.5))
    x = (e - mu) / temperature
    if np.iscomplexobj(x):
        xr = np.clip(x.real, -700, 700)
        x = xr + 1j * x.imag
        return np.where(xr > 0, np.exp(-x) / (1 + np.exp(-x)), 1 / (1 + np.exp(x)))
    return 0.5 * (1.0 - np.tanh(0.5 * x))


@lru_cache(maxsize=64)
def ozaki_poles(n_poles: int) -> tuple[np.ndarray, np.ndarray]:
    """Ozaki's poles z_p > 0 and residues R_p (P of each), see module docstring."""
    n = 2 * n_poles
    m = np.arange(1, n)
    off = 1.0 / (2.0 * np.sqrt((2 * m - 1) * (2 * m + 1)))
    w, v = sl.eigh_tridiagonal(np.zeros(n), off)
    sel = w > 0
    z = 1.0 / w[sel]
    r = np.abs(v[0, sel]) ** 2 / (4.0 * w[sel] ** 2)
    order = np.argsort(z)
    return z[order], r[order]


def ozaki_fermi(x: np.ndarray, n_poles: int) -> np.ndarray:
    """The P-pole Ozaki approximation of 1/(1 + e^x)."""
    z, r = ozaki_poles(n_poles)
    x = np.asarray(x, dtype=float)[..., None]
    return 0.5 - np.sum(r * 2 * x / (x**2 + z**2), axis=-1)


@lru_cache(maxsize=256)
def _ozaki_count_cached(xmax_bucket: float, eps_exp: int) -> int:
    eps = 10.0**eps_exp
    p = max(8, int(np.ceil(np.sqrt(xmax_bucket / 0.3))) // 2)
    x = np.linspace(0.0, xmax_bucket, 3001)
    f = 0.5 * (1.0 - np.tanh(0.5 * x))
    while True:
        if np.abs(ozaki_fermi(x, p) - f).max() < eps:
            return p
        p = int(np.ceil(p * 1.1)) + 1


def ozaki_pole_count(x_max: float, eps: float) -> int:
    """Smallest (cached, slightly rounded-up) P with |f_P - f| < eps on |x| <= x_max."""
    bucket = float(2.0 ** (np.ceil(4 * np.log2(max(x_max, 8.0))) / 4))
    return _ozaki_count_cached(bucket, int(np.floor(np.log10(eps))))


@dataclass
class Segment:
    """One piece of an integration path, parametrised by u over its breakpoints.

    Attributes:
        kind: "contour" (complex z, integrand -(1/pi) Im[.. f(z) dz/du]),
            "tail" (real E below the spectrum, same integrand, wide-band leads only),
            or "window" (real E, G Gamma_L G^+ (f_L - f_R) / 2pi).
        breakpoints: initial sorted breakpoints in u.
        center, radius, theta0, theta1: arc geometry (arcs only).
        height: line height (lines only).
        origin, width: tail map E = origin - width u/(1-u) (tails), or the window piece
            [origin, origin + width] mapped by E = origin + width (1 - cos(pi v))/2,
            v = s (plain) or v = S^-1(s) with :attr:`poles` (:mod:`.pole_map`).
        poles: "cos" pieces only: (E_r, Gamma_r, n_r) of the resonances mapped into the
            variable (scheme fast, strips; n_r: the root's eigenvalue index); set by
            :meth:`set_poles`.
    """

    kind: str
    breakpoints: np.ndarray
    shape: str = "line"
    center: float = 0.0
    radius: float = 0.0
    theta0: float = np.pi
    theta1: float = 0.0
    height: float = 0.0
    origin: float = 0.0
    width: float = 1.0
    poles: tuple = ()

    def contains(self, e: float) -> bool:
        """True if real energy e lies strictly inside a "cos" segment."""
        return self.shape == "cos" and self.origin < e < self.origin + self.width

    def add_energies(self, energies) -> None:
        """Add real energies inside a "cos" segment as breakpoints (in s)."""
        e = np.asarray([x for x in energies if self.contains(x)], dtype=float)
        if len(e):
            self.breakpoints = np.unique(np.concatenate([self.breakpoints, self.to_param(e)]))

    def to_v(self, e) -> np.ndarray:
        """The cosine variable v of real energies in a "cos" piece."""
        x = 1.0 - 2.0 * (np.asarray(e, dtype=float) - self.origin) / self.width
        return np.arccos(np.clip(x, -1.0, 1.0)) / np.pi

    def to_param(self, e) -> np.ndarray:
        """The segment variable s of real energies in a "cos" piece."""
        v = self.to_v(e)
        return v if self.pole_map is None else self.pole_map.forward(v)

    @cached_property
    def pole_map(self) -> PoleMap | None:
        """The map s -> v of :attr:`poles` (None: s = v)."""
        if not self.poles:
            return None
        er = np.array([p[0] for p in self.poles])
        vr = self.to_v(er)
        dvde = 2.0 / (np.pi * self.width * np.sin(np.pi * vr))
        return PoleMap.build(vr, 0.5 * np.array([p[1] for p in self.poles]) * dvde)

    def set_poles(self, poles) -> None:
        """Map the resonances ``poles`` ((E_r, Gamma_r, n_r), inside) into s.

        The breakpoints keep their energies (converted to the new variable).
        """
        v = self.breakpoints if self.pole_map is None else self.pole_map.inverse(self.breakpoints)
        self.poles = tuple(sorted(tuple(float(x) for x in p) for p in poles))
        self.__dict__.pop("pole_map", None)
        inner = v[1:-1] if self.pole_map is None else self.pole_map.forward(v[1:-1])
        self.breakpoints = np.unique(np.concatenate([v[:1], inner, v[-1:]]))

    def map(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies z(u) and dz/du."""
        u = np.asarray(u, dtype=float)
        if self.shape == "arc":
            th = self.theta0 + (self.theta1 - self.theta0) * u
            e = np.exp(1j * th)
            return self.center + self.radius * e, 1j * self.radius * e * (self.theta1 - self.theta0)
        if self.shape == "cos":
            pm = self.pole_map
            v = u if pm is None else pm.inverse(u)
            z = self.origin + 0.5 * self.width * (1.0 - np.cos(np.pi * v))
            dz = 0.5 * np.pi * self.width * np.sin(np.pi * v)
            return z + 0j, (dz if pm is None else dz / pm.density(v)) + 0j
        if self.shape == "tail":
            z = self.origin - self.width * u / (1.0 - u)
            return z + 0j, self.width / (1.0 - u) ** 2 + 0j  # int_{-inf}^{E_B}: |dE/du|
        return u + 1j * self.height, np.ones_like(u) + 0j


@dataclass
class EquilibriumPlan:
    """How rho_eq(mu) is integrated.

    Attributes:
        method: "ozaki" or "contour".
        constant: added to the charge per site (1 for Ozaki's 1/2 term: Tr 1/2 = 1).
        poles: complex pole energies.
        pole_weights: real weights w_p, rho += sum_p w_p Re_h G(z_p).
        segments: adaptive segments (contour method).
        fixed_error: bound on the error of the pole expansion itself.
    """

    method: str
    constant: float = 0.0
    poles: np.ndarray = field(default_factory=lambda: np.zeros(0, complex))
    pole_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segments: list = field(default_factory=list)
    fixed_error: float = 0.0


def window_tail(tol: float) -> float:
    """Number of temperatures kept beyond a Fermi edge for accuracy ``tol``."""
    return float(np.ceil(np.log(1.0 / tol)) + 3.0)


def plan_equilibrium(
    mu: float,
    temperature: float,
    bounds: tuple[float, float],
    tol: float,
    method: str = "auto",
    wide_band: bool = False,
    max_ozaki: int = 2000,
    gamma_target: float = 1.0,
) -> EquilibriumPlan:
    """Choose and build the equilibrium integration (see module docstring).

    Args:
        mu: chemical potential.
        temperature: electron temperature (>= 0).
        bounds: (lo, hi) bounds of the whole spectrum.
        tol: accuracy knob.
        method: "auto", "ozaki" or "contour".
        wide_band: wide-band leads (spectral tails to infinity: Ozaki not applicable).
        max_ozaki: "auto" falls back to the contour above this many poles.
        gamma_target: approximate line height of the contour method.
    """
    lo, hi = bounds
    lo, hi = min(lo, mu) - 0.5, max(hi, mu) + 0.5
    t = float(temperature)
    p = None
    if method == "auto":
        method = "contour"
        if t > 0 and not wide_band:
            p = ozaki_pole_count(max(mu - lo, hi - mu) / t, tol / 20)
            if p <= max_ozaki:
                method = "ozaki"
    if method == "ozaki":
        if t <= 0 or wide_band:
            raise ValueError("Ozaki poles need T > 0 and tight-binding leads")
        return _ozaki_plan(mu, t, lo, hi, tol, p)
    return _contour_plan(mu, t, lo, hi, tol, wide_band, gamma_target)


def _ozaki_plan(
    mu: float, t: float, lo: float, hi: float, tol: float, p: int | None = None
) -> EquilibriumPlan:
    """Ozaki poles covering the padded spectrum [lo, hi] to tol/20 in f (p: their count)."""
    if p is None:
        p = ozaki_pole_count(max(mu - lo, hi - mu) / t, tol / 20)
    poles, weights = _ozaki_energies(mu, t, p)
    return EquilibriumPlan(
        "ozaki",
        constant=1.0,
        poles=poles.copy(),
        pole_weights=weights.copy(),
        fixed_error=2 * tol / 20,
    )


@lru_cache(maxsize=64)
def _ozaki_energies(mu: float, t: float, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Pole energies mu + i z_p T and weights 2 T R_p of P = p poles (cached).

    A sequence of field evaluations at fixed mu and T meets the same few pole counts.
    """
    z, r = ozaki_poles(p)
    return mu + 1j * z * t, 2 * t * r


def _contour_plan(mu, t, lo, hi, tol, wide_band, gamma_target) -> EquilibriumPlan:
    """Contour plan: arc from E_B = lo, line, enclosed poles, wide-band tail.

    The line lies at height 2 pi T N_p (T > 0 only); the tail is the real axis below
    E_B (wide-band leads only).
    """
    segs = []
    nt = window_tail(tol)
    if t > 0:
        n_p = max(1, int(round(gamma_target / (2 * np.pi * t))))
        gamma = 2 * np.pi * t * n_p
        a = b = nt * t
        end = complex(mu - a, gamma)
        poles = mu + 1j * np.pi * t * (2 * np.arange(n_p) + 1)
        weights = np.full(n_p, 2 * t)
        line = Segment("contour", np.array([mu - a, mu, mu + b]), shape="line", height=gamma)
    else:
        end = complex(mu, 0.0)
        poles, weights, line = np.zeros(0, complex), np.zeros(0), None
    eb = lo
    # Circle through E_B and the end point, centred on the real axis.
    c = (end.real**2 + end.imag**2 - eb**2) / (2 * (end.real - eb))
    r = c - eb
    th1 = float(np.angle(end - c))
    arc = Segment(
        "contour",
        np.linspace(0.0, 1.0, 5),
        shape="arc",
        center=c,
        radius=r,
        theta0=np.pi,
        theta1=th1,
    )
    segs.append(arc)
    if line is not None:
        segs.append(line)
    if wide_band:
        tail_bp = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
        segs.append(Segment("tail", tail_bp, shape="tail", origin=eb, width=max(1.0, hi - lo)))
    return EquilibriumPlan("contour", poles=poles, pole_weights=weights, segments=segs)


def plan_window(
    mu_l: float,
    mu_r: float,
    temperature: float,
    tol: float,
    band_edges=(),
    band=None,
    init_spacing: float = 2.0,
) -> list[Segment]:
    """Bias-window segments covering [min mu - nT, max mu + nT] (empty at zero bias).

    The window is clipped to the lead band ``band`` (Gamma_L = 0 outside) and cut at the
    lead band edges (mode thresholds), where Gamma has square-root onsets. Each piece
    [a, b] uses E = a + (b - a)(1 - cos(pi s))/2, which makes those onsets smooth in s.
    The chemical potentials are breakpoints.
    """
    if mu_l == mu_r:
        return []
    lo, hi = min(mu_l, mu_r), max(mu_l, mu_r)
    nt = window_tail(tol) * temperature
    a, b = lo - nt, hi + nt
    if band is not None:
        a, b = max(a, band[0]), min(b, band[1])
    if b <= a:
        return []
    cuts = np.unique(np.array([a, b] + [e for e in band_edges if a < e < b], dtype=float))
    segs = []
    for x0, x1 in zip(cuts[:-1], cuts[1:]):
        seg = Segment("window", np.array([0.0, 1.0]), shape="cos", origin=x0, width=x1 - x0)
        seg.add_energies([lo, hi])
        if temperature > 0:  # start near the Fermi-function scale: fewer wasted rounds
            k = int(np.ceil((x1 - x0) / (init_spacing * temperature)))
            seg.add_energies(np.linspace(x0, x1, k + 1)[1:-1])
        segs.append(seg)
    return segs
