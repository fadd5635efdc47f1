"""Reading an initial spin configuration from an HDF5 file."""

from __future__ import annotations

import numpy as np

from hpcspin.errors import DataFileError
from hpcspin.io import keys


def read_spins_file(path: str, n_sites: int, frame: int = -1) -> np.ndarray:
    """Spins (N, 3) from ``path``: a ``spins`` dataset of shape (N, 3) or (n_frames, N, 3).

    A trajectory gives its frame ``frame`` (default: the last). Spins are normalised.

    Raises:
        DataFileError: missing file, no ``spins`` dataset, wrong shape, zero vectors.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if keys.SPINS not in f:
                raise DataFileError(f"{path}: no '{keys.SPINS}' dataset")
            d = f[keys.SPINS]
            s = np.asarray(d[frame] if d.ndim == 3 else d[()], dtype=np.float64)
    except OSError as exc:
        raise DataFileError(f"cannot read spins from {path}: {exc}") from None
    if s.shape != (n_sites, 3):
        raise DataFileError(f"{path}: spins have shape {s.shape}, the lattice needs ({n_sites}, 3)")
    norm = np.linalg.norm(s, axis=1, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(s)):
        raise DataFileError(f"{path}: spins contain zero or non-finite vectors")
    return s / norm


def read_spin_frames(path: str, n_sites: int) -> np.ndarray:
    """All spin configurations (n_frames, N, 3) of a trajectory or a spins file.

    Raises:
        DataFileError: missing file, no ``spins`` dataset, wrong shape, zero vectors.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if keys.SPINS not in f:
                raise DataFileError(f"{path}: no '{keys.SPINS}' dataset")
            s = np.asarray(f[keys.SPINS][()], dtype=np.float64)
    except OSError as exc:
        raise DataFileError(f"cannot read spins from {path}: {exc}") from None
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or s.shape[1:] != (n_sites, 3) or len(s) == 0:
        raise DataFileError(
            f"{path}: spins have shape {s.shape}, the lattice needs (n_frames, {n_sites}, 3)"
        )
    norm = np.linalg.norm(s, axis=2, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(s)):
        raise DataFileError(f"{path}: spins contain zero or non-finite vectors")
    return s / norm
