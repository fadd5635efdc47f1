"""Domain-wall observables and initial states (docs/physics.md). Pure numpy.

Walls lie across the transport direction x. The profile is the row-averaged S^z per
column x (the chain: S^z itself); the wall centre X is where it changes sign, linearly
interpolated, in units of the column index x (for the triangular strip the column index,
not the Cartesian x, which is shifted by y/2 per row).
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.lattice import Lattice


def sz_profile(spins: np.ndarray, lattice: Lattice, axis: int = 2) -> np.ndarray:
    """Row-averaged spin component per column.

    Args:
        spins: (N, 3) spins, site i = x*W + y.
        lattice: the lattice.
        axis: spin component (2 = z).

    Returns:
        (L,) mean over y of S^axis in each column.
    """
    s = np.asarray(spins, dtype=float).reshape(lattice.length, lattice.width, 3)
    return s[:, :, axis].mean(axis=1)


def wall_centres(sz: np.ndarray) -> np.ndarray:
    """All sign changes of a profile, linearly interpolated.

    A value of exactly 0 counts as positive, so a zero at site i between a positive
    and a negative neighbour gives X = i exactly once.

    Args:
        sz: (L,) profile.

    Returns:
        Sorted positions X (float array, possibly empty) in site-index units.
    """
    sz = np.asarray(sz, dtype=float)
    pos = sz >= 0
    i = np.nonzero(pos[:-1] != pos[1:])[0]
    a, b = sz[i], sz[i + 1]
    return i + a / (a - b)


def wall_centre(sz: np.ndarray, previous: float | None = None) -> float:
    """The wall centre: the sign change nearest ``previous`` (or the first one).

    Args:
        sz: (L,) profile.
        previous: last known position, to follow one wall when noise makes several
            crossings.

    Returns:
        X, or NaN if the profile does not change sign.
    """
    xs = wall_centres(sz)
    if xs.size == 0:
        return float("nan")
    if previous is None or not np.isfinite(previous):
        return float(xs[0])
    return float(xs[np.argmin(np.abs(xs - previous))])


def wall_velocity(
    t: np.ndarray, x: np.ndarray, t_min: float = -np.inf, t_max: float = np.inf
) -> float:
    """Slope of a least-squares line through X(t) over t_min <= t <= t_max.

    Args:
        t: (n,) times.
        x: (n,) wall centres.
        t_min: start of the fit window.
        t_max: end of the fit window.

    Returns:
        v = dX/dt.

    Raises:
        HpcspinError: fewer than two finite points in the window.
    """
    t = np.asarray(t, dtype=float)
    x = np.asarray(x, dtype=float)
    m = (t >= t_min) & (t <= t_max) & np.isfinite(x)
    if m.sum() < 2:
        raise HpcspinError(f"wall_velocity: fewer than 2 points in [{t_min}, {t_max}]")
    return float(np.polyfit(t[m], x[m], 1)[0])


def magnetisation(spins: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Total magnetisation sum_i S_i (local; sum over ranks for the global value).

    Args:
        spins: (..., 3) spins (site or grid form).
        valid: optional bool mask of spins.shape[:-1]; only those cells count.

    Returns:
        (3,) total spin.
    """
    s = np.asarray(spins, dtype=float)
    if valid is not None:
        s = s[np.asarray(valid, dtype=bool)]
    return s.reshape(-1, 3).sum(axis=0)


def wall_angles(x: np.ndarray, x0: float, width: float) -> np.ndarray:
    """Polar angle of the Walker profile theta = 2 atan(exp((x - X0) / lambda))."""
    if width <= 0:
        raise HpcspinError(f"wall width must be > 0, got {width}")
    return 2.0 * np.arctan(np.exp((np.asarray(x, dtype=float) - x0) / width))


def domain_wall(
    n: int | Lattice, x0: float, width: float, kind: str = "bloch", phi: float | None = None
) -> np.ndarray:
    """A 180-degree wall: S^z = +1 on the left, -1 on the right (docs/physics.md).

    theta_i = 2 atan(exp((x_i - X0) / lambda)); S = (sin th cos phi, sin th sin phi,
    cos th). Bloch wall: rotation in the y-z plane (phi = pi/2); Neel: x-z plane
    (phi = 0).

    Args:
        n: number of chain sites, or a Lattice (x_i = column index, same in every row).
        x0: centre X0 in site units (e.g. 29.5 for the middle bond of 60 sites).
        width: lambda (e.g. sqrt(J_H / (2 K))).
        kind: "bloch" or "neel"; ignored if phi is given.
        phi: azimuth of the in-wall spin direction, overrides kind.

    Returns:
        (N, 3) unit spins.
    """
    if phi is None:
        # exact in-plane directions, so the out-of-plane component is exactly zero
        dirs = {"bloch": (0.0, 1.0), "neel": (1.0, 0.0)}
        if kind not in dirs:
            raise HpcspinError(f"domain wall kind must be 'bloch' or 'neel', got {kind!r}")
        cphi, sphi = dirs[kind]
    else:
        cphi, sphi = np.cos(phi), np.sin(phi)
    x = n.coords[:, 0] if isinstance(n, Lattice) else np.arange(int(n))
    th = wall_angles(x, x0, width)
    return np.stack([np.sin(th) * cphi, np.sin(th) * sphi, np.cos(th)], axis=-1)
