"""Lead surface Green's functions and self-energies (pure numpy kernels).

Leads are non-magnetic, spin-degenerate, semi-infinite copies of the clean lattice
(hopping ``t_lead``) attached to slice 0 (left) and slice L-1 (right) through the
contact hopping ``t_contact``; or the wide-band limit Sigma = -i Gamma/2 on the contact
slices. Everything is vectorised over a batch of energies ``z`` (shape (n,)):

* ``Im z > 0``: the retarded function, analytic in the upper half plane (contour points);
* ``Im z == 0``: the retarded limit E + i0 (closed forms and lead modes take the
  correct branch exactly; Sancho-Rubio decimation adds a tiny ``eta``).

Methods: the chain uses the closed form; strips whose slice Hamiltonian and coupling
commute (square strips, periodic triangular strips) the transverse-mode closed form;
any other lead (the open triangular strip) the lead modes of the unit cell's
generalised eigenproblem (:mod:`.lead_modes`). Every surface Green's function is
checked: the Dyson residual |(z - H0 - V^+ g V) g - 1| and causality (Im g <= 0) at
every energy. An energy that fails (a mode threshold where the split of the modes is
ambiguous, an overflow) is retried slightly above the axis (z + i ETA_RETRY) and then by
Sancho-Rubio decimation; one that still fails raises :class:`LeadError` (exit 1: a
numerical failure, not a user error) naming the energy.

Conventions. The lead slice Hamiltonian is H0 (W, W) and the coupling from a slice to
the next one along +x is V = H_{x, x+1} (W, W). The left lead occupies x <= -1,
the right lead x >= L. Surface Green's functions:

    g_L = [z - H0 - V^+ g_L V]^-1   (left lead, surface slice x = -1)
    g_R = [z - H0 - V g_R V^+]^-1   (right lead, surface slice x = L)

and, with the contact coupling V_c = (t_c / t_lead) V,

    Sigma_L = V_c^+ g_L V_c,    Sigma_R = V_c g_R V_c^+.
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.sd import interslice_hopping, intraslice_hopping, spin_kron
from hpcspin.negf.lead_modes import surface_gf_eigen

LEAD_KINDS = ("tight-binding", "wide-band")
STRIP_METHODS = ("auto", "modes", "eigen", "sancho-rubio")
#: Largest accepted Dyson residual and causality violation (relative; a correct
#: surface function is ~1e-14 off, ~1e-8 right at a mode threshold).
CHECK_TOL = 1e-6
#: Imaginary part (relative to the lead bandwidth) of the retry of a failed energy.
ETA_RETRY = 1e-12


class LeadError(HpcspinError):
    """A lead surface Green's function failed every method: a numerical failure."""

    exit_code = 1


def _retarded(z) -> np.ndarray:
    """Complex array with +0.0 imaginary part on the real axis (E + i0 branch)."""
    z = np.asarray(z, dtype=complex)
    return np.where(z.imag == 0, z.real + 0j, z)


def surface_gf_1d(z, t: float = 1.0, eps: float = 0.0) -> np.ndarray:
    """Surface Green's function of a semi-infinite chain (closed form).

    g(z) = (w - sqrt(w - 2|t|) sqrt(w + 2|t|)) / (2 |t|^2), w = z - eps. The product of
    principal square roots has its branch cut on [-2|t|, 2|t|] only and behaves like w at
    infinity, so this is the decaying root for Im z > 0 and the retarded limit
    (Im g <= 0) on the real axis: inside the band Im g = -sqrt(4t^2 - E^2) / (2 t^2).

    Args:
        z: energies (any shape), complex or real (then E + i0).
        t: hopping of the chain (only |t| matters).
        eps: on-site energy (scalar or broadcastable to z).

    Returns:
        complex array of the shape of ``z``.
    """
    w = _retarded(np.asarray(z, dtype=complex) - eps)
    t = np.abs(t)
    tt = np.broadcast_to(t, w.shape)
    small = tt < 1e-14
    ts = np.where(small, 1.0, tt)
    root = np.sqrt(w - 2 * ts) * np.sqrt(w + 2 * ts)
    g = (w - root) / (2 * ts**2)
    return np.where(small, 1.0 / np.where(w == 0, 1e-300, w), g)


def simultaneous_modes(h0: np.ndarray, v: np.ndarray, tol: float = 1e-10):
    """Common eigenbasis of a Hermitian H0 and a normal V that commutes with it.

    Returns:
        (U, e, c) with H0 = U diag(e) U^+ and V = U diag(c) U^+, or None when H0 and V
        cannot be diagonalised together (e.g. the open triangular strip).
    """
    h0 = np.asarray(h0, dtype=complex)
    v = np.asarray(v, dtype=complex)
    # A generic Hermitian combination splits degeneracies of H0 that V lifts.
    m = h0 + 0.6180339887 * (v + v.conj().T) + 0.4142135623j * (v - v.conj().T)
    _, u = np.linalg.eigh(m)
    e = u.conj().T @ h0 @ u
    c = u.conj().T @ v @ u
    scale = max(1.0, np.abs(h0).max(), np.abs(v).max())
    off = max(np.abs(e - np.diag(np.diag(e))).max(), np.abs(c - np.diag(np.diag(c))).max())
    if off > tol * scale:
        return None
    return u, np.real(np.diag(e)), np.diag(c)


def surface_gf_modes(z, h0: np.ndarray, v: np.ndarray, modes=None) -> np.ndarray:
    """Lead surface Green's function by transverse-mode decomposition.

    Valid when H0 and V are simultaneously diagonalisable (square strips, periodic
    triangular strips). Each mode is a chain with on-site e_m and hopping |c_m|; then
    g_L = g_R.

    Args:
        z: energies (n,).
        h0: lead slice Hamiltonian (W, W).
        v: coupling H_{x, x+1} (W, W).
        modes: output of :func:`simultaneous_modes` (computed if None).

    Returns:
        (n, W, W) complex.
    """
    if modes is None:
        modes = simultaneous_modes(h0, v)
        if modes is None:
            raise HpcspinError("lead H0 and V do not commute: use Sancho-Rubio decimation")
    u, e, c = modes
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    gm = surface_gf_1d(z[:, None], np.abs(c)[None, :], e[None, :])
    return np.einsum("ym,nm,km->nyk", u, gm, u.conj())


def _inv(a: np.ndarray) -> np.ndarray:
    if a.shape[-1] == 1:
        return 1.0 / a
    return np.linalg.inv(a)


def surface_gf_sancho_rubio(
    z, h0: np.ndarray, v: np.ndarray, side: str, eta: float = 1e-12, maxiter: int = 200
) -> np.ndarray:
    """Lead surface Green's function by Sancho-Rubio decimation (any lead).

    Args:
        z: energies (n,); on the real axis ``eta`` is added (E + i eta).
        h0: lead slice Hamiltonian (W, W).
        v: coupling H_{x, x+1} (W, W).
        side: "left" (lead at x < 0) or "right" (lead at x > L-1).
        eta: broadening added to real energies; the error is O(eta) (O(sqrt eta) at
            band edges).
        maxiter: maximum number of decimation steps (each doubles the layers).

    Returns:
        (n, W, W) complex.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    z = np.where(z.imag == 0, z + 1j * eta, z)
    w = h0.shape[0]
    v = np.asarray(v, dtype=complex)
    # The surface sees its neighbour through alpha (surface -> bulk hopping).
    alpha = v if side == "right" else v.conj().T
    beta = alpha.conj().T
    zi = z[:, None, None] * np.eye(w)
    eps_s = np.broadcast_to(np.asarray(h0, complex), zi.shape).copy()
    eps = eps_s.copy()
    a = np.broadcast_to(alpha, zi.shape).copy()
    b = np.broadcast_to(beta, zi.shape).copy()
    scale = max(1.0, np.abs(h0).max(), np.abs(v).max())
    with np.errstate(all="ignore"):  # an overflow marks that energy as failed
        for _ in range(maxiter):
            g = _inv(zi - eps)
            agb = a @ g @ b
            bga = b @ g @ a
            eps_s = eps_s + agb
            eps = eps + agb + bga
            a = a @ g @ a
            b = b @ g @ b
            left = np.maximum(np.abs(a).max(axis=(1, 2)), np.abs(b).max(axis=(1, 2)))
            if not np.any(left >= 1e-15 * scale):  # NaN counts as done (failed)
                break
        out = _inv(zi - eps_s)
    # Energies that did not converge (or overflowed) are returned as NaN.
    out[~(left < 1e-15 * scale)] = np.nan
    return out


def dyson_check(z, g: np.ndarray, h0: np.ndarray, v: np.ndarray, side: str) -> np.ndarray:
    """Per-energy failure measure of surface Green's functions (n,): <= CHECK_TOL is ok.

    The larger of the relative Dyson residual |(z - H0 - V g V^+) g - 1| (right lead;
    V^+ g V for the left one) and the causality violation max eig[(g - g^+) / 2i] / |g|;
    NaN or inf entries give inf.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    w = h0.shape[0]
    hop = np.asarray(v, complex) if side == "right" else np.asarray(v, complex).conj().T
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(g).all(axis=(1, 2))
        gg = np.where(bad[:, None, None], 0.0, g)
        inv = z[:, None, None] * np.eye(w) - h0 - hop @ gg @ hop.conj().T
        res = np.abs(inv @ gg - np.eye(w)).max(axis=(1, 2))
        gmax = np.abs(gg).max(axis=(1, 2))
        res = res / (1.0 + np.abs(inv).max(axis=(1, 2)) * gmax * w)
        im = np.linalg.eigvalsh((gg - np.conj(np.swapaxes(gg, 1, 2))) / 2j)[:, -1]
        caus = np.maximum(im, 0.0) / np.maximum(gmax, 1e-300)
    return np.where(bad, np.inf, np.maximum(res, caus))


class Leads:
    """Self-energies of the two leads of a strip, spin-degenerate, (n, 2W, 2W).

    Args:
        lattice: the central region (defines the lead slices).
        kind: "tight-binding" or "wide-band".
        t_lead: lead hopping.
        t_contact: hopping between lead surface and central slice.
        gamma: wide-band coupling (Sigma = -i gamma/2 on every contact orbital).
        method: strip surface GF: "auto" (transverse modes when H0 and V commute, else
            the lead modes of the unit cell's generalised eigenproblem), "modes",
            "eigen" or "sancho-rubio". The chain always uses the closed form. Every
            result is checked (see the module docstring).
        eta: Sancho-Rubio broadening for real energies.
    """

    def __init__(
        self,
        lattice,
        kind: str = "tight-binding",
        t_lead: float = 1.0,
        t_contact: float = 1.0,
        gamma: float = 1.0,
        method: str = "auto",
        eta: float = 1e-12,
    ):
        if kind not in LEAD_KINDS:
            raise HpcspinError(f"unknown lead kind {kind!r}; choose from {LEAD_KINDS}")
        if method not in STRIP_METHODS:
            raise HpcspinError(f"unknown lead method {method!r}; choose from {STRIP_METHODS}")
        self.kind, self.t_lead, self.t_contact = kind, float(t_lead), float(t_contact)
        self.gamma, self.eta = float(gamma), float(eta)
        self.width = lattice.width
        self.h0 = intraslice_hopping(lattice, t_lead)
        self.v = interslice_hopping(lattice, t_lead)
        self.vc = interslice_hopping(lattice, t_contact)
        self.modes = None
        if kind == "tight-binding" and method in ("auto", "modes"):
            self.modes = simultaneous_modes(self.h0, self.v)
            if self.modes is None and method == "modes":
                raise HpcspinError("transverse modes need commuting lead H0 and V")
        if self.modes is not None:
            self.method = "modes"
        else:
            self.method = "sancho-rubio" if method == "sancho-rubio" else "eigen"

    def _raw_surface_gf(self, z, side: str, method: str) -> np.ndarray:
        if self.width == 1:
            return surface_gf_1d(z, self.t_lead)[:, None, None]
        if method == "modes":
            return surface_gf_modes(z, self.h0, self.v, self.modes)
        if method == "eigen":
            return surface_gf_eigen(z, self.h0, self.v, side)
        return surface_gf_sancho_rubio(z, self.h0, self.v, side, eta=self.eta)

    def surface_gf(self, z, side: str) -> np.ndarray:
        """Orbital surface Green's function (n, W, W) of the ``side`` lead, checked.

        Raises:
            LeadError: at an energy where no method passes the check.
        """
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        if self.method == "modes" and self.width > 1:
            u, e, _ = self.modes
            gm, coupled = self._mode_gf(z)
            with np.errstate(all="ignore"):  # decoupled modes: 1/(z - e_m) (inf at e_m)
                gm = np.where(coupled, gm, 1.0 / (z[:, None] - e))
            return np.einsum("ym,nm,km->nyk", u, gm, u.conj())
        g = self._raw_surface_gf(z, side, self.method)
        bad = ~(dyson_check(z, g, self.h0, self.v, side) <= CHECK_TOL)
        if not bad.any():
            return g
        scale = max(1.0, abs(self.t_lead))
        retries = [(ETA_RETRY * scale, "eigen"), (0.0, "sancho-rubio")]
        if self.width == 1:
            retries = [(ETA_RETRY * scale, self.method)]
        for shift, method in retries:
            idx = np.flatnonzero(bad)
            zr = np.where(z[idx].imag == 0, z[idx] + 1j * shift, z[idx])
            g[idx] = self._raw_surface_gf(zr, side, method)
            bad[idx] = ~(dyson_check(z[idx], g[idx], self.h0, self.v, side) <= CHECK_TOL)
            if not bad.any():
                return g
        e = z[np.flatnonzero(bad)[0]]
        raise LeadError(
            f"lead surface Green's function failed at E = {e.real:.15g}"
            + (f" + {e.imag:.3g}i" if e.imag else "")
            + f" ({side} lead, {self.width}-site slices, every method): a numerical "
            "failure, not a problem of the input; please report it with the deck"
        )

    @property
    def energy_independent(self) -> bool:
        """True for the wide-band limit."""
        return self.kind == "wide-band"

    def orbital_self_energies(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(Sigma_L, Sigma_R), each (n, W, W), without spin."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        w = self.width
        if self.kind == "wide-band":
            s = np.broadcast_to(-0.5j * self.gamma * np.eye(w), (len(z), w, w)).copy()
            return s, s.copy()
        vc = self.vc
        if self.method == "modes" and w > 1:
            s = self._mode_self_energy(z)
            return s, s.copy()
        gl = self.surface_gf(z, "left")
        sl = vc.conj().T @ gl @ vc
        if w == 1:  # g_L = g_R (the chain's closed form)
            gr = gl
        else:
            gr = self.surface_gf(z, "right")
        sr = vc @ gr @ vc.conj().T
        return sl, sr

    def _mode_gf(self, z) -> np.ndarray:
        """Checked surface functions (n, W) of the transverse modes (chains e_m, |c_m|)."""
        _, e, c = self.modes
        ac = np.abs(c)
        gm = surface_gf_1d(z[:, None], ac[None, :], e[None, :])
        # A mode with c_m = 0 does not couple along x (a flat lead band): 1/(z - e_m)
        # exactly, and it never reaches the centre (V_c is proportional to V).
        coupled = ac > 1e-14 * max(1.0, abs(self.t_lead))
        zz = np.broadcast_to(z[:, None], gm.shape)
        with np.errstate(all="ignore"):
            inv = zz - e - ac**2 * gm
            res = np.abs(inv * gm - 1) / (1 + np.abs(inv * gm))
            bad = ~((res <= CHECK_TOL) & (gm.imag <= CHECK_TOL * np.abs(gm))) & coupled
        if bad.any():
            k = np.argwhere(bad)[0][0]
            raise LeadError(
                f"lead surface Green's function failed at E = {z[k]:.15g} (transverse "
                "modes): a numerical failure, not a problem of the input; please report it"
            )
        return np.where(coupled, gm, 0.0), coupled

    def _mode_self_energy(self, z) -> np.ndarray:
        """Sigma_L = Sigma_R (n, W, W) in the transverse-mode basis (mirror-symmetric)."""
        u, _, c = self.modes
        gm, _ = self._mode_gf(z)
        r = self.t_contact / self.t_lead if self.t_lead else 0.0
        sm = r**2 * np.abs(c) ** 2 * gm
        return np.einsum("ym,nm,km->nyk", u, sm, u.conj())

    def self_energies(self, z) -> tuple[np.ndarray, np.ndarray]:
        """Spin-degenerate (Sigma_L, Sigma_R), each (n, 2W, 2W), rows 2*y + s."""
        sl, sr = self.orbital_self_energies(z)
        return spin_kron(sl), spin_kron(sr)

    def band_bounds(self) -> tuple[float, float]:
        """Bounds (Gershgorin) of the lead bulk spectrum."""
        if self.kind == "wide-band":
            return 0.0, 0.0
        r = np.abs(self.h0).sum(1) + np.abs(self.v).sum(1) + np.abs(self.v).sum(0)
        return -float(r.max()), float(r.max())


def gamma_of(sigma: np.ndarray) -> np.ndarray:
    """Broadening Gamma = i (Sigma - Sigma^+) for stacked matrices (..., b, b)."""
    return 1j * (sigma - np.conj(np.swapaxes(sigma, -1, -2)))
