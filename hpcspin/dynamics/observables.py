"""Domain-wall observables (docs/physics.md). Pure numpy.

Walls lie across the transport direction x. The profile is the row-averaged S^z per
column x (the chain: S^z itself); the wall centre X is where it changes sign, linearly
interpolated, in units of the column index x (for the triangular strip the column index,
not the Cartesian x, which is shifted by y/2 per row).
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.textures import domain_wall, wall_angles  # noqa: F401  (re-exported)
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


def link_walls(centres: np.ndarray, max_jump: float = 2.0) -> np.ndarray:
    """Tracks of individual walls from the per-frame wall centres.

    Frame by frame, each known wall takes the nearest centre within ``max_jump``
    (closest pairs first, each centre used once); a centre left over starts a new
    track, and a wall without a centre ends (it annihilated or left the sample).

    Args:
        centres: (n_frames, k) centres of each frame (any order, NaN-padded), as in
            the trajectory's ``wall_centres`` dataset.
        max_jump: largest move of a wall between two frames (column units).

    Returns:
        (n_frames, n_tracks) positions of each wall, NaN where it does not exist;
        tracks ordered by first appearance, then by position.
    """
    c = np.asarray(centres, dtype=float).reshape(len(centres), -1)
    rows: list[list[float]] = []  # per track: positions per frame
    active: list[int] = []  # track ids alive in the previous frame
    for f, frame in enumerate(c):
        xs = np.sort(frame[np.isfinite(frame)])
        last = np.array([rows[j][f - 1] for j in active])
        taken, matched = np.zeros(xs.size, bool), {}
        if last.size and xs.size:
            d = np.abs(last[:, None] - xs[None, :])
            for a, b in zip(*np.unravel_index(np.argsort(d, axis=None), d.shape), strict=True):
                if d[a, b] > max_jump:
                    break
                if a not in matched and not taken[b]:
                    matched[a], taken[b] = b, True
        for j in range(len(rows)):
            rows[j].append(np.nan)
        for a, b in matched.items():
            rows[active[a]][f] = xs[b]
        active = [active[a] for a in matched]
        for b in np.nonzero(~taken)[0]:
            rows.append([np.nan] * f + [xs[b]])
            active.append(len(rows) - 1)
    return np.array(rows, dtype=float).T.reshape(len(c), len(rows))


def wall_report(
    t: np.ndarray,
    centres: np.ndarray,
    length: int,
    t_min: float,
    t_max: float,
    edge: float = 3.0,
) -> dict:
    """Per-wall velocities and walls that left the sample, for the run summary.

    Args:
        t: (n_frames,) times.
        centres: (n_frames, k) wall centres per frame (trajectory ``wall_centres``).
        length: L, columns of the sample (edges at 0 and L - 1).
        t_min: start of the velocity fit window.
        t_max: end of the velocity fit window.
        edge: a wall whose last position is within this distance of an edge and
            that disappears before the last frame has left the sample (a wall of
            width ~2 loses its sign change a site or two before its centre leaves).

    Returns:
        ``n_walls_start``, ``n_walls_end``, ``wall_velocities`` (per track, fit over
        the window; None with fewer than 2 points there), ``wall_x_start`` and
        ``wall_x_end`` per track (None where absent), ``walls_left`` (track, time,
        side) and ``warnings`` (text lines).
    """
    t = np.asarray(t, dtype=float)
    tracks = link_walls(centres)
    out: dict = {"n_walls_start": 0, "n_walls_end": 0, "wall_velocities": []}
    out.update(wall_x_start=[], wall_x_end=[], walls_left=[], warnings=[])
    if tracks.size == 0:
        return out
    alive = np.isfinite(tracks)
    out["n_walls_start"], out["n_walls_end"] = int(alive[0].sum()), int(alive[-1].sum())
    for j in range(tracks.shape[1]):
        x, ok = tracks[:, j], alive[:, j]
        try:
            v = wall_velocity(t, x, t_min, t_max)
        except HpcspinError:
            v = None
        out["wall_velocities"].append(v)
        out["wall_x_start"].append(float(x[ok][0]))
        out["wall_x_end"].append(float(x[-1]) if ok[-1] else None)
        last = int(np.nonzero(ok)[0][-1])
        xl = float(x[last])
        side = "left" if xl < edge else "right" if xl > length - 1 - edge else None
        if last < len(t) - 1 and side is not None:
            out["walls_left"].append({"wall": j, "time": float(t[last]), "side": side})
            out["warnings"].append(
                f"wall {j} left the sample at the {side} edge at t = {t[last]:.4g} "
                f"(last seen at X = {xl:.3f}); a longer sample or a shorter run keeps it"
            )
    return out
