"""Lead surface Green's functions and self-energies (pure numpy kernels).

Leads are non-magnetic, spin-degenerate, semi-infinite copies of the clean lattice
(hopping ``t_lead``) attached to slice 0 (left) and slice L-1 (right) through the
contact hopping ``t_contact``; or the wide-band limit Sigma = -i Gamma/2 on the contact
slices. Everything is vectorised over a batch of energies ``z`` (shape (n,)):

* ``Im z > 0``: the retarded function, analytic in the upper half plane (contour points);
* ``Im z == 0``: the retarded limit E + i0 (closed forms take the correct branch
  exactly; Sancho-Rubio decimation adds a tiny ``eta``).

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

LEAD_KINDS = ("tight-binding", "wide-band")
STRIP_METHODS = ("auto", "modes", "sancho-rubio")


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
    for _ in range(maxiter):
        g = _inv(zi - eps)
        agb = a @ g @ b
        bga = b @ g @ a
        eps_s = eps_s + agb
        eps = eps + agb + bga
        a = a @ g @ a
        b = b @ g @ b
        if max(np.abs(a).max(), np.abs(b).max()) < 1e-15 * scale:
            break
    else:
        raise HpcspinError("Sancho-Rubio decimation did not converge (increase eta)")
    return _inv(zi - eps_s)


class Leads:
    """Self-energies of the two leads of a strip, spin-degenerate, (n, 2W, 2W).

    Args:
        lattice: the central region (defines the lead slices).
        kind: "tight-binding" or "wide-band".
        t_lead: lead hopping.
        t_contact: hopping between lead surface and central slice.
        gamma: wide-band coupling (Sigma = -i gamma/2 on every contact orbital).
        method: strip surface GF: "auto" (modes when possible, else Sancho-Rubio),
            "modes" or "sancho-rubio". The chain always uses the closed form.
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
        if kind == "tight-binding" and method != "sancho-rubio":
            self.modes = simultaneous_modes(self.h0, self.v)
            if self.modes is None and method == "modes":
                raise HpcspinError("transverse modes need commuting lead H0 and V")
        self.method = "modes" if self.modes is not None else "sancho-rubio"

    @property
    def energy_independent(self) -> bool:
        """True for the wide-band limit."""
        return self.kind == "wide-band"

    def surface_gf(self, z, side: str) -> np.ndarray:
        """Orbital surface Green's function (n, W, W) of the ``side`` lead."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        if self.width == 1:
            return surface_gf_1d(z, self.t_lead)[:, None, None]
        if self.method == "modes":
            return surface_gf_modes(z, self.h0, self.v, self.modes)
        return surface_gf_sancho_rubio(z, self.h0, self.v, side, eta=self.eta)

    def orbital_self_energies(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(Sigma_L, Sigma_R), each (n, W, W), without spin."""
        z = np.atleast_1d(np.asarray(z, dtype=complex))
        w = self.width
        if self.kind == "wide-band":
            s = np.broadcast_to(-0.5j * self.gamma * np.eye(w), (len(z), w, w)).copy()
            return s, s.copy()
        vc = self.vc
        gl = self.surface_gf(z, "left")
        sl = vc.conj().T @ gl @ vc
        if self.method == "modes" or w == 1:
            gr = gl
        else:
            gr = self.surface_gf(z, "right")
        sr = vc @ gr @ vc.conj().T
        return sl, sr

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
