"""Warm starts of the window quadrature for sequences of nearby spin configurations.

In dynamics the spins move little per step, so the converged grid of one field
evaluation is close to what the next one needs. A :class:`WarmStart` carries the final
interval breakpoints of the window segments from one evaluation to the next; the
adaptive quadrature then starts from them and refines only where its error estimate
asks (it never coarsens). A cold start (the usual initial grid plus resonance seeds) is
taken on the first call, when the bias or mu changes, every ``max_reuse`` warm calls
(which also refreshes the resonance seeds and drops refinements that the moving spins
no longer need), and when the grid has grown by more than ``max_growth`` over the last
cold start.

Every decision depends only on the sequence of configurations and on the quadrature's
own results, which are the same on every rank, so results stay bit-identical at any
rank count.

On strips the resonances of the window are searched on cold starts only and followed
on warm ones, and the grid moves with them (:mod:`.pole_tracking`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hpcspin.negf.pole_tracking import PoleTracker


@dataclass
class WarmStart:
    """State carried between field evaluations (one per sequence; see module docstring).

    Attributes:
        max_reuse: warm evaluations between two cold starts.
        max_growth: a grid with more than this times the points of the last cold start
            is dropped.
        key: (bias, mu) of the stored grid.
        grid: per window segment, the sorted breakpoints of the last final intervals.
        cold_points: quadrature points of the last cold start.
        poles: the strip resonances followed from one evaluation to the next
            (:class:`~hpcspin.negf.pole_tracking.PoleTracker`; strips only).
        reused: warm evaluations since the last cold start.
        counts: number of cold and warm evaluations so far.
        segment_poles: per window segment, the resonances mapped into its variable at
            the last evaluation (scheme fast, strips; :mod:`.pole_map`).
    """

    max_reuse: int = 200
    max_growth: float = 2.0
    key: tuple | None = None
    grid: list | None = None
    cold_points: int = 0
    reused: int = 0
    counts: dict = field(default_factory=lambda: {"cold": 0, "warm": 0})
    poles: PoleTracker = field(default_factory=PoleTracker)
    segment_poles: list | None = None
    _was_cold: bool = True
    _plan: tuple | None = None

    def window_plan(self, key: tuple) -> list | None:
        """Copies of the window segments remembered under ``key`` (or None).

        The window plan depends on the bias, mu, temperature and tol only, never on the
        spins: a sequence plans it once (:meth:`remember_plan`).
        """
        if self._plan is None or self._plan[0] != key:
            return None
        return [replace(seg) for seg in self._plan[1]]

    def remember_plan(self, key: tuple, segments: list) -> None:
        """Keep copies of freshly planned window segments (before seeds are added)."""
        self._plan = (key, [replace(seg) for seg in segments])

    def grid_for(self, key: tuple, n_segments: int) -> list | None:
        """Breakpoints to start from, or None for a cold start."""
        usable = (
            self.grid is not None
            and key == self.key
            and len(self.grid) == n_segments
            and self.reused < self.max_reuse
        )
        self._was_cold = not usable
        if not usable:
            return None
        self.reused += 1
        return [np.array(bp) for bp in self.grid]

    def start_cold(self) -> None:
        """Take this evaluation as a cold start after all (the strip roots were lost)."""
        self._was_cold = True

    def update(self, key: tuple, grid: list, points: int) -> None:
        """Record the final grid of the evaluation that just finished."""
        self.key, self.grid = key, [np.array(bp) for bp in grid]
        if self._was_cold:
            self.counts["cold"] += 1
            self.cold_points, self.reused = int(points), 0
        else:
            self.counts["warm"] += 1
            if points > self.max_growth * max(1, self.cold_points):
                self.grid = None

    def reset(self) -> None:
        """Forget the stored grid (the next evaluation starts cold)."""
        self.grid, self.key = None, None


class BoundedCache:
    """A dict of at most ``max_bytes`` of values (oldest entries dropped first)."""

    def __init__(self, max_bytes: int = 32 << 20):
        self._items: dict = {}
        self.max_bytes, self.nbytes = int(max_bytes), 0

    def get(self, key):
        """The value stored under ``key``, or None."""
        hit = self._items.get(key)
        return None if hit is None else hit[0]

    def put(self, key, value, size: int) -> None:
        """Store ``value`` (``size`` bytes); values larger than the bound are not kept."""
        if size > self.max_bytes:
            return
        while self._items and self.nbytes + size > self.max_bytes:
            self.nbytes -= self._items.pop(next(iter(self._items)))[1]
        self._items[key] = (value, size)
        self.nbytes += size


class CachedLeads:
    """A :class:`~hpcspin.negf.leads.Leads` whose self-energies are memoised by energy.

    The leads do not depend on the spins, and a warm-started sequence evaluates the
    same energies again and again (the same grid, the same poles), so their
    self-energies are computed once. Keys are the exact bytes of the energy array;
    the cache holds at most ``max_bytes`` of self-energies (oldest dropped first).
    """

    def __init__(self, leads, max_bytes: int = 32 << 20):
        self._leads, self._cache = leads, BoundedCache(max_bytes)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self._cache.nbytes

    def __getattr__(self, name):
        return getattr(self._leads, name)

    @property
    def uncached(self):
        """The leads themselves (for one-off energies that would only crowd the cache)."""
        return self._leads

    def self_energies(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(Sigma_L, Sigma_R) as :meth:`Leads.self_energies` (cached)."""
        z = np.asarray(z)
        key = (z.dtype.str, z.shape, z.tobytes())
        hit = self._cache.get(key)
        if hit is None:
            hit = self._leads.self_energies(z)
            self._cache.put(key, hit, hit[0].nbytes + hit[1].nbytes)
        return hit
