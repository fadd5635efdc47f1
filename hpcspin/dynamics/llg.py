"""Landau-Lifshitz-Gilbert right-hand side, angular-momentum convention (docs/physics.md).

    dS/dt = S x H - alpha S x dS/dt
    <=> (1 + alpha^2) dS/dt = S x H + alpha (S x H) x S

gamma = 1, |S| = 1, time in hbar/t. Precession is clockwise about H seen from the
tip of H (phi decreases at rate |H|/(1+alpha^2)); damping turns S towards H at rate
alpha |H|/(1+alpha^2). Equivalently dS/dt = S x A with the effective rotation field

    A = (H + alpha H x S) / (1 + alpha^2),

which the norm-preserving integrators use (dS/dt = omega x S with omega = -A).

All functions take spins of shape (..., 3), e.g. (N, 3) or a grid (nx, ny, 3);
cells with S = 0 (invalid grid cells) stay at rest.
"""

from __future__ import annotations

import numpy as np


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product along the last axis (faster than np.cross for small arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product along the last axis, keepdims (shape (..., 1))."""
    return np.einsum("...c,...c->...", a, b)[..., None]


def normalize(spins: np.ndarray) -> np.ndarray:
    """Project every nonzero spin onto |S| = 1; zero spins stay zero."""
    n = np.sqrt(np.einsum("...c,...c->...", spins, spins))[..., None]
    return np.divide(spins, n, out=np.zeros_like(spins), where=n > 0)


def transverse(field: np.ndarray, *, spins: np.ndarray) -> np.ndarray:
    """H - (H.S) S: the part of a field transverse to each unit spin (exerts the torque).

    The one projection of the package: numpy arrays (dynamics, metrics, validation)
    or torch tensors (training losses); ``spins`` is keyword-only so that the two
    arrays cannot be swapped.

    Args:
        field: (..., 3) fields H.
        spins: (..., 3) unit spins S.
    """
    return field - (field * spins).sum(-1)[..., None] * spins


def llg_rhs(spins: np.ndarray, field: np.ndarray, alpha: float) -> np.ndarray:
    """dS/dt of the LLG equation.

    Args:
        spins: (..., 3) unit spins.
        field: (..., 3) effective field H = -dE/dS (+ non-conservative parts).
        alpha: Gilbert damping.

    Returns:
        (..., 3) dS/dt = [S x H + alpha (S x H) x S] / (1 + alpha^2).
    """
    sxh = cross(spins, field)
    return (sxh + alpha * cross(sxh, spins)) / (1.0 + alpha * alpha)


def rotation_field(spins: np.ndarray, field: np.ndarray, alpha: float) -> np.ndarray:
    """Effective rotation field A with dS/dt = S x A (see module docstring).

    Args:
        spins: (..., 3) spins.
        field: (..., 3) effective field H.
        alpha: Gilbert damping.

    Returns:
        (..., 3) A = (H + alpha H x S) / (1 + alpha^2).
    """
    return (field + alpha * cross(field, spins)) / (1.0 + alpha * alpha)


def max_torque(spins: np.ndarray, field: np.ndarray) -> float:
    """max_i |S_i x H_i| (local, not reduced over ranks): the relaxation criterion."""
    t = cross(spins, field)
    if t.size == 0:
        return 0.0
    return float(np.sqrt(np.einsum("...c,...c->...", t, t)).max())
