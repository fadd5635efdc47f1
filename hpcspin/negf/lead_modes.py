"""Lead surface Green's functions of any lead from its Bloch modes (pure numpy/scipy).

A lead is a semi-infinite repetition of a slice (Hamiltonian H0, W x W) coupled to the
next slice along +x by V = H_{x, x+1}. Its solutions psi_{x+1} = lambda psi_x solve the
generalised eigenproblem of the unit cell (x = [psi_x; psi_{x-1}])

    [z - H0, -V^+] x = lambda [V, 0] x
    [  1   ,   0 ]           [0, 1]

which stays well posed when V is singular (lambda = 0 or infinity then). The retarded
surface Green's function of the lead to the right (x >= L) is built from the W modes
that leave the surface: the evanescent ones decaying towards +x (|lambda| < 1), as an
orthonormal basis of their deflating subspace from the ordered QZ decomposition (stable
where evanescent modes coalesce), and the propagating ones (|lambda| = 1) of positive
velocity. Degenerate propagating modes (the same lambda) are split by diagonalising the
velocity form  i (lambda Phi^+ V Phi - h.c.)  against the metric Phi^+ Phi, which is the
first-order splitting of the degeneracy when E moves off the real axis. With the basis
S = [S1; S2] (S1 = psi_x, S2 = psi_{x-1} parts) the propagator x -> x+1 is
F = S1 S2^-1 and

    g_R = [z - H0 - V F]^-1;   the left lead likewise with lambda -> 1/lambda:
    g_L = [z - H0 - V^+ F_L]^-1,  F_L = S2 S1^-1 over the modes leaving towards -x.

At a mode threshold (a propagating mode of zero velocity) the split is ambiguous;
:func:`surface_gf_eigen` reports such energies as failed and the caller retries them
slightly off the axis (see :mod:`.leads`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

#: |lambda| within this of 1: a propagating mode.
UNIT_TOL = 1e-9
#: Propagating eigenvalues within this of each other form one degenerate cluster.
CLUSTER_TOL = 1e-7
#: |velocity| below this (relative to |V|): a mode threshold, ambiguous on the axis.
VEL_TOL = 1e-9


def _pencil(z: complex, h0: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = h0.shape[0]
    a = np.zeros((2 * w, 2 * w), dtype=complex)
    a[:w, :w] = z * np.eye(w) - h0
    a[:w, w:] = -v.conj().T
    a[w:, :w] = np.eye(w)
    b = np.eye(2 * w, dtype=complex)
    b[:w, :w] = v
    return a, b


def _clusters(lam: np.ndarray) -> list[np.ndarray]:
    """Index groups of (nearly) equal eigenvalues."""
    left = list(np.argsort(np.angle(lam)))
    out = []
    while left:
        i = left.pop(0)
        near = [j for j in left if abs(lam[j] - lam[i]) < CLUSTER_TOL]
        left = [j for j in left if j not in near]
        out.append(np.array([i] + near))
    return out


def _propagating(a, b, lam, idx, v, sign: int):
    """Propagating modes of velocity sign ``sign`` among eigenvalues ``lam[idx]``.

    Returns:
        (2W, k) mode vectors, or None at a threshold (a velocity near zero).
    """
    w = v.shape[0]
    vscale = max(1.0, float(np.abs(v).max()))
    cols = []
    for grp in _clusters(lam[idx]):
        lc = lam[idx][grp].mean()
        lc = lc / abs(lc)
        # Orthonormal basis of the cluster's eigenspace: the smallest singular vectors.
        _, s, vh = np.linalg.svd(a - lc * b)
        x = vh[-len(grp) :].conj().T
        phi = x[:w]
        m = lc * (phi.conj().T @ v @ phi)
        jm = 1j * (m - m.conj().T)
        gram = phi.conj().T @ phi
        try:
            vel, c = sla.eigh(jm, gram)
        except np.linalg.LinAlgError:
            return None
        if np.any(np.abs(vel) < VEL_TOL * vscale):
            return None
        cols.append(x @ c[:, sign * vel > 0])
    return np.concatenate(cols, axis=1) if cols else np.zeros((2 * w, 0), dtype=complex)


def leaving_basis(z: complex, h0: np.ndarray, v: np.ndarray, side: str):
    """Basis (2W, W) of the modes leaving the surface of the ``side`` lead, or None.

    Args:
        z: one energy (complex; real means E + i0).
        h0: slice Hamiltonian (W, W).
        v: coupling H_{x, x+1} (W, W).
        side: "right" (lead at x >= L: modes towards +x) or "left".

    Returns:
        S (2W, W) or None where the split is ambiguous (threshold, wrong count).
    """
    w = h0.shape[0]
    a, b = _pencil(z, h0, v)
    right = side == "right"

    def decaying(alpha, beta):
        if right:
            return np.abs(alpha) < (1 - UNIT_TOL) * np.abs(beta)
        return np.abs(alpha) > (1 + UNIT_TOL) * np.abs(beta)

    _, _, alpha, beta, _, zz = sla.ordqz(a, b, sort=decaying, output="complex")
    n_dec = int(np.count_nonzero(decaying(alpha, beta)))
    basis = zz[:, :n_dec]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = alpha / beta
    prop = np.flatnonzero(np.isfinite(lam) & (np.abs(np.abs(lam) - 1) <= UNIT_TOL))
    if len(prop):
        modes = _propagating(a, b, lam, prop, v, 1 if right else -1)
        if modes is None:
            return None
        basis = np.concatenate([basis, modes], axis=1)
    if basis.shape[1] != w:
        return None
    return basis


def surface_gf_eigen(z, h0: np.ndarray, v: np.ndarray, side: str) -> np.ndarray:
    """Surface Green's functions (n, W, W) from the lead modes; NaN where ambiguous.

    Args:
        z: energies (n,), complex (Im z >= 0; real means the retarded limit).
        h0: slice Hamiltonian (W, W).
        v: coupling H_{x, x+1} (W, W).
        side: "left" or "right".
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    h0 = np.asarray(h0, dtype=complex)
    v = np.asarray(v, dtype=complex)
    w = h0.shape[0]
    out = np.full((len(z), w, w), np.nan, dtype=complex)
    hop = v if side == "right" else v.conj().T
    for k, zk in enumerate(z):
        s = leaving_basis(zk, h0, v, side)
        if s is None:
            continue
        s1, s2 = s[:w], s[w:]
        try:
            # right: F = S1 S2^-1 (x -> x+1); left: F = S2 S1^-1 (x -> x-1)
            f = sla.solve(s2.T, s1.T).T if side == "right" else sla.solve(s1.T, s2.T).T
            out[k] = np.linalg.inv(zk * np.eye(w) - h0 - hop @ f)
        except (np.linalg.LinAlgError, ValueError):
            continue
    return out
