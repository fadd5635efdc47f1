"""NEGF training datasets (file kind "dataset"): layout, reader; the writer is in dataset_writer.py.

One file per dataset, preallocated at its full size ``n_cfg`` when created, so that a
configuration's rows can be written by any rank in any order. Row k holds configuration
k. A configuration counts as present only when ``done[k] == 1``; the flag is written
after its data has been flushed, so a run killed at any moment leaves either a complete
row or one that is not flagged (and is recomputed on resume). Creation is atomic: the
file is built as ``<path>.tmp`` and renamed once its layout and attributes are in place.

Datasets (``n_cfg`` configurations of ``N`` sites; units t = 1, hbar = 1, |S| = 1):

    spins         (n_cfg, N, 3) float64  unit spins S_i (site order i = x*W + y)
    field         (n_cfg, N, 3) float64  electron field H_i^el = J s_i at the bias V
    field_eq      (n_cfg, N, 3) float64  the same at V = 0 (only if with_equilibrium)
    spin_density  (n_cfg, N, 3) float64  electron spin density s_i at the bias V
    bias          (n_cfg,) float64       V = mu_L - mu_R
    mu            (n_cfg,) float64       mean chemical potential (mu_L + mu_R) / 2
    current       (n_cfg,) float64       particle current I at V (left to right > 0)
    kind          (n_cfg,) int8          sampler kind 0..4 (names: attribute kind_names)
    noise         (n_cfg,) float64       thermal tilt of noisy walls (radians rms)
    wall_center   (n_cfg,) float64       wall centre X0 (NaN: not a wall)
    wall_width    (n_cfg,) float64       wall width lambda (NaN: not a wall)
    negf_error    (n_cfg,) float64       NEGF quadrature error estimate (largest of the calls)
    session       (n_cfg,) int16         run session that computed row k (-1: none)
    done          (n_cfg,) uint8         1: row k complete

Unwritten float entries are NaN. Root attributes: the provenance of
:func:`hpcspin.io.h5.write_provenance` plus those named below.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import h5py
import numpy as np

from hpcspin.errors import DataFileError
from hpcspin.io import keys, seal
from hpcspin.io.h5 import check_kind, open_h5, plain_attr
from hpcspin.log import get_logger

log = get_logger(__name__)

FILE_KIND = "dataset"
DATASET_FILE = keys.DATASET_FILE  # file name inside [output] dir

# -- per-configuration datasets and root attributes: names, shapes and units are
# defined once, in keys.DATASETS["dataset"] and keys.ATTRS["dataset"] ----------------
SPINS, FIELD, FIELD_EQ, DENSITY = keys.SPINS, keys.FIELD, keys.FIELD_EQ, keys.DENSITY
BIAS, MU, CURRENT = keys.BIAS, keys.MU, keys.CURRENT
SAMPLE_KIND, NOISE = keys.SAMPLE_KIND, keys.NOISE
WALL_CENTER, WALL_WIDTH = keys.WALL_CENTER, keys.WALL_WIDTH
NEGF_ERROR, SESSION, DONE = keys.NEGF_ERROR, keys.SESSION, keys.DONE  # DONE: written last
FINGERPRINT, FINGERPRINT_JSON = keys.FINGERPRINT, keys.FINGERPRINT_JSON
N_CONFIGS, SESSIONS, KIND_NAMES = keys.N_CONFIGS, keys.SESSIONS, keys.KIND_NAMES
LATTICE_JSON, ELECTRONS_JSON = keys.LATTICE_JSON, keys.ELECTRONS_JSON
SAMPLER_JSON, NEGF_JSON = keys.SAMPLER_JSON, keys.NEGF_JSON

_VECTORS = (SPINS, FIELD, FIELD_EQ, DENSITY)
_FLOAT_SCALARS = (BIAS, MU, CURRENT, NOISE, WALL_CENTER, WALL_WIDTH, NEGF_ERROR)
_INT_SCALARS = {SAMPLE_KIND: (np.int8, -1), SESSION: (np.int16, -1), DONE: (np.uint8, 0)}
#: Added after the first files were written: readers and resumes do without them.
_OPTIONAL = (NEGF_ERROR,)
#: Row data a writer passes for each configuration (everything but done).
ROW_FIELDS = (SPINS, FIELD, FIELD_EQ, DENSITY, *_FLOAT_SCALARS, SAMPLE_KIND, SESSION)


def layout(n_configs: int, n_sites: int, with_equilibrium: bool) -> dict:
    """Every dataset of a file: ``{name: (shape, dtype, fill value)}``."""
    out = {}
    for name in _VECTORS:
        if name != FIELD_EQ or with_equilibrium:
            out[name] = ((n_configs, n_sites, 3), np.float64, np.nan)
    for name in _FLOAT_SCALARS:
        out[name] = ((n_configs,), np.float64, np.nan)
    for name, (dtype, fill) in _INT_SCALARS.items():
        out[name] = ((n_configs,), dtype, fill)
    return out


def fingerprint_of(data: dict) -> tuple[str, str]:
    """Canonical JSON of ``data`` and its sha256 hex digest."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()


@dataclass
class DatasetInfo:
    """What a resume needs from an existing file (read on one rank).

    Attributes:
        path: file path.
        n_configs: preallocated configurations.
        n_sites: N.
        with_equilibrium: whether field_eq exists.
        fingerprint: FINGERPRINT attribute.
        fingerprint_json: FINGERPRINT_JSON attribute.
        done: (n_configs,) bool completion flags.
        sessions: SESSIONS attribute.
        version: hpcspin version of the writer.
    """

    path: str
    n_configs: int
    n_sites: int
    with_equilibrium: bool
    fingerprint: str
    fingerprint_json: str
    done: np.ndarray
    sessions: int
    version: str


def inspect_dataset(path: str, verify: bool = True) -> DatasetInfo:
    """Open an existing dataset serially and check its seal, kind and layout.

    Args:
        path: file path.
        verify: check the file's SHA-256 seal first (:mod:`hpcspin.io.seal`).

    Raises:
        DataFileError: missing, not HDF5, corrupt, foreign, or a damaged layout.
    """
    if not os.path.isfile(path):
        raise DataFileError(f"dataset file {path} not found")
    if verify:
        verify_dataset_seal(path)
    f = open_h5(path, "r")
    try:
        return _inspect_open(path, f)
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DataFileError(f"{path}: damaged HDF5 content ({err})") from err
    finally:
        f.close()


def verify_dataset_seal(path: str, writing: bool = False) -> str:
    """Check the seal of a dataset; an unsealed file is accepted with a message.

    Args:
        path: file path.
        writing: the caller resumes writing (an open seal after an interrupted
            run is then expected and only noted).

    Returns:
        The seal state (:data:`hpcspin.io.seal.SEALED`, ``OPEN`` or ``UNSEALED``).
    """
    state = seal.verify_seal(path)
    if state == seal.OPEN:
        say = log.info if writing else log.warning
        say("%s was not closed by its writer (datagen running or interrupted): no checksum", path)
    elif state == seal.UNSEALED:
        log.warning("%s has no checksum (older hpcspin): read unverified", path)
    return state


def _inspect_open(path: str, f) -> DatasetInfo:
    check_kind(f, FILE_KIND)
    a = f.attrs
    for att in (FINGERPRINT, FINGERPRINT_JSON, N_CONFIGS, keys.N_SITES):
        if att not in a:
            raise DataFileError(f"{path}: not a datagen dataset (no '{att}' attribute)")
    n, n_sites = int(a[N_CONFIGS]), int(a[keys.N_SITES])
    if n < 0 or n_sites < 1:
        raise DataFileError(f"{path}: damaged size attributes ({n} configs, {n_sites} sites)")
    with_eq = FIELD_EQ in f
    for name, (shape, dtype, _) in layout(n, n_sites, with_eq).items():
        if name in _OPTIONAL and name not in f:
            continue
        obj = f.get(name)
        if not isinstance(obj, h5py.Dataset):
            what = "missing" if obj is None else "a group, not a dataset"
            raise DataFileError(f"{path}: '{name}' is {what}")
        if obj.shape != shape or obj.dtype != np.dtype(dtype):
            raise DataFileError(
                f"{path}: dataset '{name}' has shape {obj.shape} and dtype {obj.dtype}, "
                f"expected {shape} {np.dtype(dtype)}"
            )
    return DatasetInfo(
        path=path,
        n_configs=n,
        n_sites=n_sites,
        with_equilibrium=with_eq,
        fingerprint=_str(a[FINGERPRINT]),
        fingerprint_json=_str(a[FINGERPRINT_JSON]),
        done=f[DONE][()] == 1,
        sessions=int(a.get(SESSIONS, 0)),
        version=_str(a.get(keys.VERSION, "?")),
    )


def read_dataset(path: str, only_done: bool = True) -> dict:
    """Read a dataset file on one process (training, validation, analysis).

    The seal is verified first; kept rows must hold finite values (wall_center and
    wall_width are NaN by design for configurations that are not walls).

    Args:
        path: file path.
        only_done: keep only completed configurations (``done == 1``).

    Returns:
        ``{name: array}`` for every dataset in the file (rows = configurations), plus
        ``"index"`` (configuration indices kept), ``"attrs"`` (root attributes as
        plain values) and ``"lattice"``, ``"electrons"``, ``"sampler"``, ``"negf"``
        (parsed JSON dicts), ``"kind_names"`` (list).

    Raises:
        DataFileError: missing, foreign, damaged file, or non-finite data.
    """
    info = inspect_dataset(path)
    keep = info.done if only_done else np.ones(info.n_configs, dtype=bool)
    f = open_h5(path, "r")
    try:
        out = {name: f[name][()][keep] for name in f if isinstance(f[name], h5py.Dataset)}
        attrs = {k: plain_attr(v) for k, v in f.attrs.items()}
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise DataFileError(f"{path}: damaged HDF5 content ({err})") from err
    finally:
        f.close()
    if only_done:
        check_finite(path, out)
    out["index"] = np.nonzero(keep)[0]
    out["attrs"] = attrs
    for key, att in (
        ("lattice", LATTICE_JSON),
        ("electrons", ELECTRONS_JSON),
        ("sampler", SAMPLER_JSON),
        ("negf", NEGF_JSON),
        ("kind_names", KIND_NAMES),
    ):
        out[key] = _json_attr(path, attrs, att)
    return out


#: Row data that may hold NaN in a complete row (not a wall; no estimate).
_MAY_BE_NAN = (WALL_CENTER, WALL_WIDTH, NEGF_ERROR)


def check_finite(path: str, data: dict) -> None:
    """Raise DataFileError at the first non-finite value of a complete row.

    Args:
        path: file name for the message.
        data: ``{name: array}`` of complete rows (as :func:`read_dataset` reads them).
    """
    for name, arr in data.items():
        if name in _MAY_BE_NAN or not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            continue
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            where = ", ".join(str(int(i)) for i in bad[0])
            raise DataFileError(
                f"{path}: dataset '{name}' holds a non-finite value "
                f"({arr[tuple(bad[0])]}) at index [{where}] of the complete rows; "
                "regenerate the dataset (datagen)"
            )


def _json_attr(path: str, attrs: dict, att: str):
    """A JSON root attribute parsed (None if absent); malformed JSON is a DataFileError."""
    if att not in attrs:
        return None
    try:
        return json.loads(attrs[att])
    except (TypeError, ValueError) as err:
        raise DataFileError(f"{path}: attribute '{att}' is not valid JSON ({err})") from None


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# The writer lives in its own module; importing it here keeps ``dataset.DatasetWriter``.
from hpcspin.io.dataset_writer import DatasetWriter  # noqa: E402, F401
