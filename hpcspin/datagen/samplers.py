"""Samplers of spin configurations for NEGF training data. Pure numpy.

What the wall dynamics visits (docs/physics.md): 180-degree walls across the
transport direction x, of any centre, width, in-wall angle and polarity, with thermal
tilts; plus smooth random textures and a few fully random configurations so a model also
sees strong gradients; optionally frames of a trajectory (snapshots).

A configuration is drawn from one of four *families* (the ``[datagen] mix`` shares and
``snapshot_share``): "wall", "texture", "random", "snapshot". What is stored is its
*kind*, an integer label into :data:`KIND_NAMES` (the file attribute ``kind_names``);
the wall family gives two kinds, clean or noisy:

    0 KIND_WALL        family wall: clean Walker wall (no noise)
    1 KIND_WALL_NOISY  family wall: the same with a random thermal tilt of every spin
    2 KIND_TEXTURE     family texture: smooth random texture (a few Fourier modes)
    3 KIND_RANDOM      family random: independent uniformly random spins
    4 KIND_SNAPSHOT    family snapshot: a frame of the snapshot file

Reproducibility: configuration k depends on ``(seed, k)`` only, through
``np.random.default_rng([seed, k])``, so a dataset is the same at any rank count and
whichever rank computes which configuration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hpcspin.dynamics.llg import transverse
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import Lattice

KIND_WALL, KIND_WALL_NOISY, KIND_TEXTURE, KIND_RANDOM, KIND_SNAPSHOT = 0, 1, 2, 3, 4
#: Stored kind labels -> names (the dataset attribute ``kind_names``).
KIND_NAMES = ("wall", "wall_noisy", "texture", "random", "snapshot")
#: Families a configuration is drawn from, in the order of the ``mix`` shares.
FAMILIES = ("wall", "texture", "random", "snapshot")
#: Kinds each family can give.
FAMILY_KINDS = {
    "wall": (KIND_WALL, KIND_WALL_NOISY),
    "texture": (KIND_TEXTURE,),
    "random": (KIND_RANDOM,),
    "snapshot": (KIND_SNAPSHOT,),
}

#: Share of walls drawn without noise when the noise range starts at 0 (no deck key
#: yet; clean walls are where docs/physics.md (two potentials) asks for the headline metrics).
CLEAN_WALL_SHARE = 0.25
#: Largest row-to-row shift of a wall centre on strips (sites per row): tilted walls.
MAX_WALL_TILT = 0.3
#: Fourier modes of a smooth texture.
TEXTURE_MODES = 6


@dataclass(frozen=True)
class SamplerSettings:
    """What to sample (the ``[datagen]`` keys plus the chemical potential).

    Attributes:
        mix: relative shares of walls, smooth textures and random spins (any scale).
        noise: [low, high] range of the thermal tilt of noisy walls (radians rms).
        width_range: [low, high] range of wall widths lambda (sites).
        biases: the biases V one is drawn from per configuration (units of t / e).
        mu: mean chemical potential stored with every configuration (units of t).
        clean_share: share of walls without noise (used when noise[0] == 0).
        snapshot_share: share of configurations copied from snapshot frames (e.g. of
            an NEGF-driven trajectory), drawn uniformly among ``snapshot_frames``.
        snapshot_frames: number of snapshot frames available.
        snapshot_sha256: digest of the snapshot frames (part of the fingerprint).
    """

    mix: tuple = (0.7, 0.2, 0.1)
    noise: tuple = (0.0, 0.3)
    width_range: tuple = (1.5, 3.5)
    biases: tuple = (0.5,)
    mu: float = -1.0
    clean_share: float = CLEAN_WALL_SHARE
    snapshot_share: float = 0.0
    snapshot_frames: int = 0
    snapshot_sha256: str = ""

    def __post_init__(self):
        if not 0 <= self.snapshot_share <= 1:
            raise ValueError("snapshot_share must lie in [0, 1]")
        if self.snapshot_share > 0 and self.snapshot_frames < 1:
            raise ValueError("snapshot_share > 0 needs snapshot frames")
        mix = np.asarray(self.mix, dtype=float)
        if mix.shape != (3,) or np.any(mix < 0) or mix.sum() <= 0:
            raise ValueError(f"mix must be 3 non-negative shares, not all 0: {self.mix}")
        for name in ("noise", "width_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high")
        if self.width_range[0] <= 0:
            raise ValueError("wall widths must be > 0")
        if len(self.biases) == 0:
            raise ValueError("need at least one bias")

    def to_dict(self) -> dict:
        """Plain-data form (for file attributes and fingerprints)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True)
class Sample:
    """One configuration and its drive.

    Attributes:
        index: configuration index k.
        spins: (N, 3) unit spins, site order i = x*W + y.
        bias: V (units of t / e).
        mu: mean chemical potential (units of t).
        kind: stored label, one of KIND_* (an index into KIND_NAMES).
        noise: thermal tilt applied (radians rms; 0 for clean walls, textures, random).
        center: wall centre X0 in column units (NaN for non-walls).
        width: wall width lambda (NaN for non-walls).
    """

    index: int
    spins: np.ndarray
    bias: float
    mu: float
    kind: int
    noise: float = 0.0
    center: float = float("nan")
    width: float = float("nan")


def config_rng(seed: int, k: int) -> np.random.Generator:
    """The generator of configuration k: depends on (seed, k) only."""
    return np.random.default_rng([int(seed), int(k)])


def sample_config(
    k: int, seed: int, lattice: Lattice, settings: SamplerSettings, snapshots=None
) -> Sample:
    """Configuration k of the dataset of ``seed``.

    Args:
        k: configuration index (>= 0).
        seed: master seed (``[run] seed``).
        lattice: the central region.
        settings: sampler settings.
        snapshots: (n_frames, N, 3) snapshot frames, when ``settings.snapshot_share > 0``.

    Returns:
        The sample; identical for identical (k, seed, lattice, settings, snapshots).
    """
    rng = config_rng(seed, k)
    bias, family = _head(rng, settings)
    common = {"index": int(k), "bias": bias, "mu": float(settings.mu)}
    if family == "snapshot":
        if snapshots is None or len(snapshots) != settings.snapshot_frames:
            raise ValueError("this configuration is a snapshot: pass the snapshot frames")
        frame = int(rng.integers(settings.snapshot_frames))
        return Sample(spins=np.array(snapshots[frame], dtype=float), kind=KIND_SNAPSHOT, **common)
    if family == "wall":
        return _wall_sample(rng, lattice, settings, common)
    if family == "texture":
        spins = smooth_texture(lattice, rng, settings.width_range)
        return Sample(spins=spins, kind=KIND_TEXTURE, **common)
    return Sample(spins=random_spins(lattice.n_sites, rng), kind=KIND_RANDOM, **common)


def _head(rng: np.random.Generator, settings: SamplerSettings) -> tuple[float, str]:
    """The first draws of every configuration: the bias, then the family (:data:`FAMILIES`).

    The family's own draws follow, in :func:`sample_config`.
    """
    bias = float(settings.biases[int(rng.integers(len(settings.biases)))])
    shares = np.cumsum(np.asarray(settings.mix, dtype=float))
    family = int(np.searchsorted(shares / shares[-1], rng.random(), side="right"))
    # One more draw only when snapshots are in use, so other datasets stay unchanged.
    if settings.snapshot_share > 0 and rng.random() < settings.snapshot_share:
        return bias, "snapshot"
    return bias, FAMILIES[min(family, 2)]


#: Relative NEGF cost of the families, measured on the reference chain at tol 1e-7:
#: random spins localise the electrons and need about 5x the energy points.
FAMILY_COST = {"wall": 1.0, "texture": 1.0, "random": 5.0, "snapshot": 1.0}


def cost_estimate(k: int, seed: int, settings: SamplerSettings) -> float:
    """Expected relative cost of configuration k (for scheduling; draws 2 numbers)."""
    return FAMILY_COST[_head(config_rng(seed, k), settings)[1]]


def _wall_sample(rng, lattice: Lattice, settings: SamplerSettings, common: dict) -> Sample:
    lo, hi = settings.width_range
    width = float(rng.uniform(lo, hi))
    center = float(rng.uniform(*wall_center_range(lattice.length, width)))
    # In-wall angle: Bloch (y-z plane) or Neel (x-z plane), either chirality.
    phi = (np.pi / 2 if rng.random() < 0.5 else 0.0) + (np.pi if rng.random() < 0.5 else 0.0)
    polarity = 1 if rng.random() < 0.5 else -1
    tilt = float(rng.uniform(-MAX_WALL_TILT, MAX_WALL_TILT)) if lattice.width > 1 else 0.0
    spins = wall_config(lattice, center, width, phi, polarity, tilt)
    n_lo, n_hi = settings.noise
    clean = n_hi == 0 or (n_lo == 0 and rng.random() < settings.clean_share)
    if clean:
        return Sample(spins=spins, kind=KIND_WALL, center=center, width=width, **common)
    sigma = float(rng.uniform(n_lo, n_hi))
    spins = thermal_tilt(spins, sigma, rng)
    return Sample(
        spins=spins, kind=KIND_WALL_NOISY, noise=sigma, center=center, width=width, **common
    )


def wall_center_range(length: int, width: float) -> tuple[float, float]:
    """Range of wall centres: at least min(2 lambda, (L-1)/4) from either end."""
    margin = min(2.0 * width, (length - 1) / 4.0)
    return margin, (length - 1) - margin


def wall_config(
    lattice: Lattice,
    center: float,
    width: float,
    phi: float = np.pi / 2,
    polarity: int = 1,
    tilt: float = 0.0,
) -> np.ndarray:
    """A Walker wall across x: theta = 2 atan(exp((x - X0(y)) / lambda)).

    Args:
        lattice: the lattice (x = column index).
        center: X0 (column units), the mean over rows.
        width: lambda.
        phi: azimuth of the in-wall spins (pi/2 Bloch, 0 Neel; + pi flips chirality).
        polarity: +1: S^z = +1 on the left; -1: S^z = -1 on the left.
        tilt: shift of the centre per row, X0(y) = center + tilt (y - (W-1)/2).

    Returns:
        (N, 3) unit spins.
    """
    if tilt == 0.0 or lattice.width == 1:
        spins = domain_wall(lattice, center, width, phi=phi)
    else:
        x, y = lattice.coords[:, 0], lattice.coords[:, 1]
        x0 = center + tilt * (y - (lattice.width - 1) / 2.0)
        th = 2.0 * np.arctan(np.exp((x - x0) / width))
        spins = np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), np.cos(th)], axis=-1)
    if polarity < 0:
        spins[:, 2] *= -1.0
    return np.ascontiguousarray(spins, dtype=np.float64)


def thermal_tilt(spins: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Tilt every spin by a random transverse kick of rms angle ``sigma`` (radians).

    Args:
        spins: (N, 3) unit spins.
        sigma: rms tilt angle.
        rng: generator.

    Returns:
        (N, 3) unit spins.
    """
    s = np.asarray(spins, dtype=float)
    g = rng.normal(size=s.shape)
    g = transverse(g, spins=s)  # transverse part: 2 components
    out = s + (sigma / np.sqrt(2.0)) * g
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def smooth_texture(
    lattice: Lattice, rng: np.random.Generator, length_range: tuple = (1.5, 3.5)
) -> np.ndarray:
    """A smooth random texture: a constant plus a few random plane waves, normalised.

    The correlation length ell is drawn from 2 * length_range; wave vectors are
    Gaussian with rms 1/ell per direction (the chain uses the x component only).

    Args:
        lattice: the lattice (Cartesian site positions).
        rng: generator.
        length_range: range of the wall widths; textures vary on twice that scale.

    Returns:
        (N, 3) unit spins.
    """
    pos = lattice.positions
    ell = 2.0 * float(rng.uniform(*length_range))
    k = rng.normal(scale=1.0 / ell, size=(TEXTURE_MODES, 2))
    if lattice.width == 1:
        k[:, 1] = 0.0
    phase = rng.uniform(0.0, 2.0 * np.pi, size=TEXTURE_MODES)
    amp = rng.normal(size=(TEXTURE_MODES, 3))
    const = rng.normal(scale=0.5, size=3)
    waves = np.cos(pos @ k.T + phase)  # (N, M)
    v = const + waves @ amp
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    # A zero of the field is a measure-zero event; fall back to the constant there.
    bad = norm[:, 0] < 1e-12
    if np.any(bad):
        v[bad] = const + 1e-3
        norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / norm


def random_spins(n: int, rng: np.random.Generator) -> np.ndarray:
    """Independent random spins (n, 3), uniform on the unit sphere."""
    v = rng.normal(size=(int(n), 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)
