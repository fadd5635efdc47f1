"""Reading spin configurations from an HDF5 file (initial spins, datagen snapshots).

The file is validated before any data is read: ``spins`` must be a real
floating-point (or integer) dataset of shape (N, 3) or (n_frames, N, 3) with at
least one frame, every vector finite with a finite nonzero norm. Anything else,
and every HDF5 failure, is a DataFileError naming the file, the dataset and the
first bad index.
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import DataFileError
from hpcspin.io import keys
from hpcspin.io.storage import os_error_text


def read_spins_file(path: str, n_sites: int, frame: int = -1) -> np.ndarray:
    """Spins (N, 3) from ``path``: a ``spins`` dataset of shape (N, 3) or (n_frames, N, 3).

    A trajectory gives its frame ``frame`` (default: the last). Spins are normalised.

    Raises:
        DataFileError: missing or damaged file, no usable ``spins`` dataset, wrong
            shape or dtype, zero frames, zero or non-finite vectors.
    """

    def pick(d):
        if d.ndim == 2:
            return d[()]
        if not -d.shape[0] <= frame < d.shape[0]:
            raise DataFileError(f"{path}: no frame {frame} in '{keys.SPINS}' ({d.shape[0]} frames)")
        return d[frame]

    s = _read(path, n_sites, pick)
    return _normalised(path, s)


def read_spin_frames(path: str, n_sites: int) -> np.ndarray:
    """All spin configurations (n_frames, N, 3) of a trajectory or a spins file.

    Raises:
        DataFileError: as :func:`read_spins_file`.
    """
    s = _read(path, n_sites, lambda d: d[()])
    if s.ndim == 2:
        s = s[None]
    return _normalised(path, s)


def _read(path: str, n_sites: int, pick) -> np.ndarray:
    """Open, validate the ``spins`` dataset, and read what ``pick(dataset)`` selects."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            d = f.get(keys.SPINS)
            _check_dataset(path, d, n_sites, h5py)
            return np.asarray(pick(d), dtype=np.float64)
    except DataFileError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise DataFileError(f"cannot read spins from {path}: {os_error_text(exc)}") from None


def _check_dataset(path: str, d, n_sites: int, h5py) -> None:
    """Raise DataFileError unless ``d`` is a usable spins dataset (checked before reading)."""
    name = keys.SPINS
    if d is None:
        raise DataFileError(f"{path}: no '{name}' dataset")
    if not isinstance(d, h5py.Dataset):
        raise DataFileError(f"{path}: '{name}' is a group, not a dataset of spins")
    if d.dtype.kind not in "fiu" or d.dtype.names is not None:
        raise DataFileError(f"{path}: '{name}' has dtype {d.dtype}; spins must be real numbers")
    if d.ndim not in (2, 3) or d.shape[-2:] != (n_sites, 3):
        raise DataFileError(
            f"{path}: '{name}' has shape {d.shape}, the lattice needs ({n_sites}, 3) "
            f"or (n_frames, {n_sites}, 3)"
        )
    if d.ndim == 3 and d.shape[0] == 0:
        raise DataFileError(f"{path}: '{name}' has zero frames")


def _normalised(path: str, s: np.ndarray) -> np.ndarray:
    """Unit vectors; the first non-finite, zero or overflowing vector is an error."""
    bad = ~np.all(np.isfinite(s), axis=-1)
    with np.errstate(over="ignore"):
        norm = np.sqrt(np.add.reduce(s * s, axis=-1))  # as np.linalg.norm
    bad |= ~np.isfinite(norm) | (norm < 1e-12)  # 1e308 overflows: not a spin direction
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        site = where[-1]
        frame = f"frame {where[0]}, " if len(where) > 1 else ""
        raise DataFileError(
            f"{path}: dataset '{keys.SPINS}' at {frame}site {site} holds {s[where].tolist()}: "
            "spins must be finite, nonzero and of a moderate size (|S| is normalised to 1)"
        )
    return s / norm[..., None]
