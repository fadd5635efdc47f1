"""Stochastic thermal field for Langevin spin dynamics, decomposition-independent.

Stochastic LLG in the convention of :mod:`hpcspin.dynamics.llg` (gamma = 1, |S| = 1),
with the thermal field b added to H in the Gilbert form (Stratonovich):

    dS/dt = S x (H + b) - alpha S x dS/dt,   <b_a(t) b_c(t')> = 2 D delta_ac delta(t - t')

The Fokker-Planck equation has the Boltzmann distribution exp(-E/T) as its stationary
state iff D = alpha T (Brown 1963; derivation in docs/dynamics.md: with
dS/dt = M (H + b), M M^T = P_perp / (1 + alpha^2) and the damping part of M is
alpha P_perp / (1 + alpha^2), so the factors 1 + alpha^2 cancel). Held constant over a
step of length dt, each Cartesian component of b is Gaussian with

    sigma^2 = 2 alpha T / dt       (no 1/(1 + alpha^2) factor in this convention).

Random numbers are counter-based (Philox4x64, keyed by the seed; counter = (0, block,
step, stream)) and drawn per block of ``BLOCK`` consecutive *global* site indices, so
the value for (seed, step, global site) is the same at any rank count and decomposition.
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import HpcspinError

BLOCK = 1024
_MASK64 = (1 << 64) - 1


def langevin_sigma(alpha: float, temperature: float, dt: float) -> float:
    """Standard deviation of each thermal-field component held over one step.

    Args:
        alpha: Gilbert damping.
        temperature: spin temperature T (k_B = 1, energy units of t).
        dt: time step.

    Returns:
        sigma = sqrt(2 alpha T / dt).
    """
    if alpha < 0 or temperature < 0 or dt <= 0:
        raise HpcspinError("langevin_sigma needs alpha >= 0, T >= 0, dt > 0")
    return float(np.sqrt(2.0 * alpha * temperature / dt))


def _block_normals(seed: int, step: int, block: int, stream: int) -> np.ndarray:
    key = np.array([seed & _MASK64, (seed >> 64) & _MASK64], dtype=np.uint64)
    counter = np.array([0, block, step, stream], dtype=np.uint64)
    gen = np.random.Generator(np.random.Philox(key=key, counter=counter))
    return gen.standard_normal((BLOCK, 3))


def thermal_field(
    global_site_indices: np.ndarray, step: int, seed: int, sigma: float, stream: int = 0
) -> np.ndarray:
    """Gaussian thermal field for the given global sites at a given step.

    Args:
        global_site_indices: int array of any shape; negative entries (ghost or invalid
            cells of a grid) get zero field.
        step: step number (>= 0); a new independent field each step.
        seed: non-negative integer (< 2**128).
        sigma: standard deviation per component (see :func:`langevin_sigma`).
        stream: independent stream id (e.g. for several replicas), >= 0.

    Returns:
        Array of shape ``global_site_indices.shape + (3,)``.
    """
    idx = np.asarray(global_site_indices, dtype=np.int64)
    if step < 0 or seed < 0 or stream < 0 or seed >= 1 << 128:
        raise HpcspinError("thermal_field needs step >= 0, stream >= 0, 0 <= seed < 2**128")
    flat = idx.ravel()
    out = np.zeros((flat.size, 3))
    ok = flat >= 0
    blocks = flat // BLOCK
    for b in np.unique(blocks[ok]):
        m = ok & (blocks == b)
        out[m] = _block_normals(int(seed), int(step), int(b), int(stream))[flat[m] - b * BLOCK]
    return sigma * out.reshape(idx.shape + (3,))


class ThermalNoise:
    """Thermal field source for one run: fixed seed, damping, temperature and dt.

    Attributes:
        seed: RNG seed.
        sigma: per-component standard deviation, sqrt(2 alpha T / dt).
    """

    def __init__(self, seed: int, alpha: float, temperature: float, dt: float, stream: int = 0):
        self.seed = int(seed)
        self.stream = int(stream)
        self.sigma = langevin_sigma(alpha, temperature, dt)

    def field(self, global_site_indices: np.ndarray, step: int) -> np.ndarray:
        """Thermal field (shape indices.shape + (3,)) for this step; see thermal_field."""
        return thermal_field(global_site_indices, step, self.seed, self.sigma, self.stream)
