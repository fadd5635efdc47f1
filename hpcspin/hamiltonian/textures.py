"""Initial spin textures: Walker domain walls, one or many. Pure numpy.

Walls lie across the transport direction x (the same profile in every row of a
strip); positions are column indices x. The wall profile is the Walker solution
theta(x) = 2 atan(exp((x - X0) / lambda)), S = (sin th cos phi, sin th sin phi, cos th):
S^z = +1 on the left of a wall and -1 on its right. Bloch walls turn in the y-z plane
(phi = pi/2), Neel walls in the x-z plane (phi = 0).
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.lattice import Lattice

#: exp(700) is finite in float64, and 2 atan(exp(+-700)) is already 0 or pi to round-off:
#: clipping the exponent there changes no value and avoids the overflow of far sites.
_MAX_EXPONENT = 700.0
#: (cos phi, sin phi) of the wall kinds: exact, so the out-of-plane component is exactly 0.
WALL_KINDS = {"bloch": (0.0, 1.0), "neel": (1.0, 0.0)}


def wall_angles(x: np.ndarray, x0: float, width: float) -> np.ndarray:
    """Polar angle of the Walker profile theta = 2 atan(exp((x - X0) / lambda))."""
    if width <= 0:
        raise HpcspinError(f"wall width must be > 0, got {width}")
    u = (np.asarray(x, dtype=float) - x0) / width
    return 2.0 * np.arctan(np.exp(np.clip(u, -_MAX_EXPONENT, _MAX_EXPONENT)))


def _direction(kind: str, phi: float | None) -> tuple[float, float]:
    if phi is not None:
        return float(np.cos(phi)), float(np.sin(phi))
    if kind not in WALL_KINDS:
        raise HpcspinError(f"domain wall kind must be 'bloch' or 'neel', got {kind!r}")
    return WALL_KINDS[kind]


def _spins(theta: np.ndarray, cphi: float, sphi: float) -> np.ndarray:
    return np.stack([np.sin(theta) * cphi, np.sin(theta) * sphi, np.cos(theta)], axis=-1)


def domain_wall(
    n: int | Lattice, x0: float, width: float, kind: str = "bloch", phi: float | None = None
) -> np.ndarray:
    """A 180-degree wall: S^z = +1 on the left, -1 on the right (docs/physics.md).

    Args:
        n: number of chain sites, or a Lattice (x_i = column index, same in every row).
        x0: centre X0 in site units (e.g. 29.5 for the middle bond of 60 sites).
        width: lambda (e.g. sqrt(J_H / (2 K))).
        kind: "bloch" or "neel"; ignored if phi is given.
        phi: azimuth of the in-wall spin direction, overrides kind.

    Returns:
        (N, 3) unit spins.
    """
    cphi, sphi = _direction(kind, phi)
    x = n.coords[:, 0] if isinstance(n, Lattice) else np.arange(int(n))
    return _spins(wall_angles(x, x0, width), cphi, sphi)


def alternating_walls(lattice: Lattice, n_walls: int, width: float, kind: str = "bloch"):
    """``n_walls`` walls of alternating sign at the centres of equal segments of x.

    Segment k of the L columns, [k L/n, (k+1) L/n), holds wall k at its centre;
    domains alternate +z | -z | +z ... from the left.

    Args:
        lattice: the lattice.
        n_walls: number of walls (>= 1; 1 gives one wall at the middle bond).
        width: wall width lambda.
        kind: "bloch" or "neel".

    Returns:
        (N, 3) unit spins.
    """
    if n_walls < 1:
        raise HpcspinError(f"number of walls must be >= 1, got {n_walls}")
    cphi, sphi = _direction(kind, None)
    x = lattice.coords[:, 0].astype(float)
    theta = np.zeros_like(x)
    seg = lattice.length / n_walls
    for k in range(n_walls):
        th = wall_angles(x, (k + 0.5) * seg - 0.5, width)
        lo, hi = k * seg - 0.5, (k + 1) * seg - 0.5
        m = (x > lo) & (x <= hi) if k else x <= hi
        theta[m] = th[m] if k % 2 == 0 else np.pi - th[m]
    return _spins(theta, cphi, sphi)


def wall_centres_of(lattice: Lattice, n_walls: int) -> np.ndarray:
    """The centres X_k of :func:`alternating_walls` (column units)."""
    seg = lattice.length / n_walls
    return (np.arange(n_walls) + 0.5) * seg - 0.5
