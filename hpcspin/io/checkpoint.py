"""Checkpoints: everything a bit-identical restart needs, written atomically.

A checkpoint holds the global spins (N, 3) in site order (so a restart may use
another rank count), time, step, the RNG state, the deck text, the version and
a JSON dict of further state. It is written to ``path + ".tmp"`` (collectively
with parallel HDF5, else gathered to rank 0), flushed to disk with fsync, then
renamed onto ``path`` by rank 0: a reader sees the old file or the new one,
never half of one. The last attribute written is ``complete``; a position-mixed
64-bit hash of the spins is checked on read.

Keep one file per step (:func:`checkpoint_path`) and let
:func:`find_latest_checkpoint` pick the newest valid one: a damaged newest file
is skipped with a warning, and :func:`prune_checkpoints` deletes old ones only
while newer valid ones remain.

The RNG state stored is the one passed by rank 0; runs with per-rank streams
should derive them from it (or put them in ``extra``).
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager

import h5py
import numpy as np

from hpcspin import __version__
from hpcspin.errors import DataFileError, HpcspinError
from hpcspin.faults import fault_point
from hpcspin.io import keys, seal
from hpcspin.io.h5 import is_parallel, open_checked, open_h5, write_owned_sites, write_provenance
from hpcspin.io.storage import require_space, storage_error
from hpcspin.log import get_logger

log = get_logger(__name__)
_NAME = re.compile(r"^checkpoint_(\d+)\.h5$")
_MAX_RNG_BYTES = 1 << 20  # generator states are a few kB: more means a damaged file


def checkpoint_path(directory, step: int) -> str:
    """File name of the checkpoint of ``step`` inside ``directory``."""
    return os.path.join(os.fspath(directory), f"checkpoint_{int(step):010d}.h5")


#: Failures of a checkpoint write that every rank reports alike (and agrees on below).
_WRITE_ERRORS = (OSError, RuntimeError, HpcspinError, KeyError, TypeError, ValueError)


@contextmanager
def closed_unless_local(f, parallel: bool):
    """Close ``f`` on the way out, unless a parallel file meets a rank-local exception.

    Closing an mpio file is collective. Any exception not marked ``collective`` (an
    error decided on one rank and raised on every rank at the same point) may have hit
    this rank alone while the others are inside a collective write: a close here would
    wait for them, and they for this rank, forever. Such an exception leaves the file
    open and propagates to the CLI, which ends the whole job (MPI abort) and so
    releases the file. Serial files are always closed.
    """
    try:
        yield f
    except BaseException as exc:
        if not parallel or getattr(exc, "collective", False):
            f.close()
        raise
    f.close()


def write_checkpoint(
    path, comm, decomposition, owned_spins, state: dict, parallel: bool | None = None
) -> str:
    """Write a checkpoint atomically. Collective over comm.

    Args:
        path: final file name (e.g. from :func:`checkpoint_path`).
        comm: communicator of the process grid (None: serial).
        decomposition: this rank's block.
        owned_spins: this rank's owned spins, (ox, oy, 3) or (n_owned, 3).
        state: ``time``, ``step`` (required); ``rng_state`` (bytes, or a
            JSON-serialisable object), ``deck_text``, ``config_json``, ``version``,
            ``extra`` (JSON-serialisable dict), all optional; rank 0's is stored.
        parallel: collective mpio write (True) or gather to rank 0 (False); None:
            mpio when the communicator has several ranks and h5py has MPI.

    Returns:
        ``path``.
    """
    missing = [k for k in ("time", "step") if k not in state]
    if missing:  # checked before any collective: every rank passes a state
        raise HpcspinError(f"checkpoint state lacks {missing}")
    path = os.fspath(path)
    tmp = path + ".tmp"
    d = decomposition
    rank = 0 if comm is None else comm.Get_rank()
    parallel = is_parallel(comm) if parallel is None else bool(parallel)
    _check_space(path, comm, d, state)
    spins = None if parallel else d.gather(comm, owned_spins, root=0)
    digest = _spins_hash_block(d, owned_spins)
    if comm is not None and comm.Get_size() > 1:
        from mpi4py import MPI  # noqa: PLC0415

        digest = comm.allreduce(digest, op=MPI.BXOR)
    err = None
    try:
        f = open_h5(tmp, "w", comm, parallel=parallel, userblock=True)
        if f is not None:
            with closed_unless_local(f, parallel):
                _fill(f, d, owned_spins if parallel else spins, state, parallel, comm, digest)
    except _WRITE_ERRORS as e:
        if parallel and not getattr(e, "collective", False):
            # Possibly this rank alone (the others may be in a collective write): no
            # barrier or agreement; the CLI ends the job with this message (exit 2).
            raise DataFileError(_describe(e, path)) from e
        err = _describe(e, path)
    if comm is not None and comm.Get_size() > 1:
        comm.Barrier()  # every rank has closed the file
    if rank == 0 and err is None:
        try:
            seal.seal_file(tmp)
            _commit(tmp, path)
        except OSError as e:
            err = _describe(e, path)
    if rank == 0 and err is not None:
        _remove_quietly(tmp)  # frees the space a full disk needs; older checkpoints stay
    if comm is not None and comm.Get_size() > 1:
        errs = [e for e in comm.allgather(err) if e]
        err = errs[0] if errs else None
    if err:
        raise DataFileError(err)
    return path


def _check_space(path: str, comm, d, state: dict) -> None:
    """Refuse (on every rank) to start a checkpoint the disk cannot hold. Collective."""
    text = sum(len(str(state.get(k, ""))) for k in ("deck_text", "config_json", "extra"))
    size = 24.0 * d.length * d.width + 2 * text + len(str(state.get("rng_state", "")))
    require_space(comm, path, size, f"checkpoint {path}")


def _describe(err: BaseException, path: str) -> str:
    """Message of a failed checkpoint write (a full or read-only disk named as such)."""
    return str(storage_error(err, path, "a checkpoint"))


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass  # absent, or the file system refuses: the error already reported says why


def _fill(f, d, spins, state, parallel, comm, digest) -> None:
    fault_point("checkpoint_fill")  # inside the open (parallel) file
    n = d.length * d.width
    write_provenance(
        f,
        state.get("deck_text", ""),
        state.get("config_json", ""),
        1 if comm is None else comm.Get_size(),
        "checkpoint",
    )
    f.attrs[keys.VERSION] = state.get("version", __version__)
    f.attrs[keys.N_SITES] = n
    f.attrs[keys.LATTICE_SHAPE] = np.array([d.length, d.width])
    f.attrs[keys.CK_TIME] = float(state["time"])
    f.attrs[keys.CK_STEP] = int(state["step"])
    f.attrs[keys.EXTRA] = json.dumps(state.get("extra", {}), sort_keys=True)
    fmt, raw = _encode_rng(state.get("rng_state"))
    f.attrs[keys.RNG_FORMAT] = fmt
    rng = f.create_dataset(keys.RNG_STATE, (len(raw),), dtype="u1")
    dset = f.create_dataset(keys.SPINS, (n, 3), dtype="f8")
    if parallel:
        write_owned_sites(dset, d, spins, (), True)
    else:
        dset[...] = spins
    if len(raw) and (not parallel or comm.Get_rank() == 0):
        rng[...] = np.frombuffer(raw, dtype="u1")
    f.attrs[keys.CHECKSUM] = np.uint64(digest)
    f.flush()
    f.attrs[keys.COMPLETE] = True


def _commit(tmp: str, path: str) -> None:
    """Sync the finished temporary file, rename it onto ``path``, fsync the directory."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_checkpoint(path) -> tuple[np.ndarray, dict]:
    """Read and validate a checkpoint (serial; any rank count may restart from it).

    The file's SHA-256 seal (:mod:`hpcspin.io.seal`) is checked before HDF5 opens
    it; files of older versions without one are read with a warning. Every HDF5
    or decoding failure of a damaged file becomes a DataFileError.

    Returns:
        ``(spins, state)``: global spins (N, 3) and a dict with ``time``, ``step``,
        ``rng_state``, ``deck_text``, ``config_json``, ``version``, ``extra``,
        ``n_ranks``, ``lattice_shape``.

    Raises:
        DataFileError: missing, foreign, incomplete or corrupt file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileError(f"checkpoint {path} not found")
    state = seal.verify_seal(path)
    if state != seal.SEALED:
        _warn_once(path, f"{path} has no checksum (older hpcspin): read unverified")
    try:
        with open_checked(path, "checkpoint") as f:
            return _read_open(path, f)
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DataFileError(f"{path}: damaged checkpoint ({type(err).__name__}: {err})") from None


def _read_open(path: str, f) -> tuple[np.ndarray, dict]:
    """Validate the layout of an open checkpoint, then read it."""
    a = f.attrs
    if not a.get(keys.COMPLETE, False):
        raise DataFileError(f"{path}: incomplete checkpoint (interrupted write)")
    n = int(a[keys.N_SITES])
    shape = tuple(int(v) for v in np.asarray(a[keys.LATTICE_SHAPE]).reshape(-1))
    if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] != n:
        raise DataFileError(f"{path}: lattice shape {shape} does not hold {n} sites")
    dset, rng = f.get(keys.SPINS), f.get(keys.RNG_STATE)
    if not _is_array(dset, 2, "f") or dset.shape != (n, 3):
        raise DataFileError(f"{path}: '{keys.SPINS}' is not a ({n}, 3) float dataset")
    if not _is_array(rng, 1, "u") or rng.shape[0] > _MAX_RNG_BYTES:
        raise DataFileError(f"{path}: '{keys.RNG_STATE}' is not a byte array")
    spins = np.asarray(dset[...], dtype=np.float64)
    raw = rng[...].tobytes()
    if _spins_hash(spins) != int(a[keys.CHECKSUM]):
        raise DataFileError(f"{path}: spins fail their checksum (corrupt file)")
    bad = np.argwhere(~np.isfinite(spins))
    if bad.size:
        raise DataFileError(f"{path}: non-finite spin at site {int(bad[0][0])}")
    state = {
        "time": float(a[keys.CK_TIME]),
        "step": int(a[keys.CK_STEP]),
        "rng_state": _decode_rng(str(_s(a[keys.RNG_FORMAT])), raw),
        "deck_text": _s(a[keys.DECK_TEXT]),
        "config_json": _s(a[keys.CONFIG]),
        "version": _s(a[keys.VERSION]),
        "extra": json.loads(_s(a[keys.EXTRA])),
        "n_ranks": int(a[keys.N_RANKS]),
        "lattice_shape": shape,
    }
    if not np.isfinite(state["time"]) or state["step"] < 0 or not isinstance(state["extra"], dict):
        raise DataFileError(f"{path}: damaged time, step or extra state")
    return spins, state


def _is_array(obj, ndim: int, kind: str) -> bool:
    """Whether ``obj`` is an h5py dataset of ``ndim`` axes and numpy dtype kind ``kind``."""
    return isinstance(obj, h5py.Dataset) and obj.ndim == ndim and obj.dtype.kind == kind


_WARNED: set[str] = set()


def _warn_once(path: str, message: str) -> None:
    if path not in _WARNED:
        _WARNED.add(path)
        log.warning("%s", message)


def find_latest_checkpoint(directory) -> str | None:
    """Newest valid checkpoint in ``directory`` (None if there is none). Serial.

    Files are ordered by the step in their name; a damaged or incomplete newest
    file is skipped with a warning; ``.tmp`` files are never considered. Call it on
    one rank and broadcast the answer.
    """
    skipped = []
    for path in _candidates(directory):
        try:
            read_checkpoint(path)
        except DataFileError as err:
            log.warning("skipping checkpoint %s: %s", path, err)
            skipped.append(path)
            continue
        if skipped:
            log.warning("using the older checkpoint %s instead", path)
        return path
    return None


def prune_checkpoints(directory, keep: int = 2) -> list[str]:
    """Delete all but the ``keep`` newest valid checkpoints (and damaged older ones). Serial.

    Returns:
        the deleted paths.
    """
    valid, removed = 0, []
    for path in _candidates(directory):
        if valid >= keep:
            os.remove(path)
            removed.append(path)
            continue
        try:
            read_checkpoint(path)
            valid += 1
        except DataFileError:
            pass  # kept: an older valid file may still be needed after it
    return removed


def _candidates(directory) -> list[str]:
    """Checkpoint files of a directory, newest step first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), n) for n in names if (m := _NAME.match(n))]
    return [os.path.join(directory, n) for _, n in sorted(found, reverse=True)]


# -- encoding helpers ---------------------------------------------------------------
def _encode_rng(rng_state) -> tuple[str, bytes]:
    if rng_state is None:
        return "none", b""
    if isinstance(rng_state, bytes | bytearray):
        return "bytes", bytes(rng_state)
    return "json", json.dumps(rng_state, sort_keys=True).encode()


def _decode_rng(fmt: str, raw: bytes):
    if fmt == "none":
        return None
    if fmt == "bytes":
        return raw
    if fmt == "json":
        return json.loads(raw.decode())
    raise DataFileError(f"unknown RNG state format {fmt!r}")


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


_MIX1, _MIX2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9)


def _mix(values: np.ndarray, flat_index: np.ndarray) -> int:
    """XOR of position-mixed bit patterns: independent of how sites are split."""
    u = np.ascontiguousarray(values, dtype="<f8").view("<u8").ravel()
    with np.errstate(over="ignore"):
        h = (u ^ (flat_index.astype(np.uint64) * _MIX1)) * _MIX2
        h ^= h >> np.uint64(31)
    return int(np.bitwise_xor.reduce(h)) if h.size else 0


def _spins_hash(spins: np.ndarray) -> int:
    return _mix(spins, np.arange(spins.size))


def _spins_hash_block(d, owned_spins) -> int:
    sites = d.owned_sites
    idx = (3 * sites[:, None] + np.arange(3)[None, :]).ravel()
    return _mix(np.asarray(owned_spins).reshape(-1, 3), idx)
