"""Snapshots files: spin configurations flagged during dynamics, for datagen to label.

A snapshots file holds ``spins`` (n_frames, N, 3) plus ``step`` and ``time`` of each
frame; datagen reads it as ``[datagen] snapshots``
(:func:`hpcspin.io.spins_file.read_spin_frames`). Frames are appended one at a
time by one process (rank 0).
"""

from __future__ import annotations

import os

import numpy as np

from hpcspin.errors import DataFileError
from hpcspin.io import keys


def append_snapshot(path: str, spins, step: int = 0, time: float = 0.0) -> int:
    """Append one configuration (N, 3); create the file on first use.

    Returns:
        The number of frames in the file afterwards.

    Raises:
        DataFileError: the file exists with another layout, or cannot be written.
    """
    import h5py

    s = np.asarray(spins, dtype=np.float64).reshape(1, -1, 3)
    try:
        with h5py.File(path, "a") as f:
            if keys.SPINS not in f:
                f.create_dataset(
                    keys.SPINS,
                    shape=(0,) + s.shape[1:],
                    maxshape=(None,) + s.shape[1:],
                    dtype="f8",
                    chunks=(1,) + s.shape[1:],
                )
                f.create_dataset(keys.STEP, shape=(0,), maxshape=(None,), dtype="i8")
                f.create_dataset(keys.TIME, shape=(0,), maxshape=(None,), dtype="f8")
            d = f[keys.SPINS]
            if not isinstance(d, h5py.Dataset) or d.shape[1:] != s.shape[1:]:
                raise DataFileError(
                    f"{path}: '{keys.SPINS}' is not a (frames, {s.shape[1]}, 3) dataset: "
                    "not a snapshots file of this system (choose another file)"
                )
            n = d.shape[0] + 1
            for name, value in ((keys.SPINS, s[0]), (keys.STEP, step), (keys.TIME, time)):
                f[name].resize(n, axis=0)
                f[name][n - 1] = value
            return n
    except OSError as err:
        raise DataFileError(f"cannot write snapshots file {path}: {err}") from None


def count_snapshots(path: str) -> int:
    """Frames in a snapshots file (0 when it does not exist)."""
    if not os.path.exists(path):
        return 0
    import h5py

    with h5py.File(path, "r") as f:
        return int(f[keys.SPINS].shape[0])
