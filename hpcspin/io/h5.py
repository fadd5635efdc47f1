"""Opening HDF5 files serially or in parallel, provenance attributes, kind checks.

Parallel files use h5py's ``mpio`` driver. Debian's h5py loads its MPI build
only under mpirun (Open MPI's job-size variable set) or with ``H5PY_ALWAYS_USE_MPI``;
without it a multi-rank writer falls back to rank 0 writing alone (callers gather).
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import h5py
import numpy as np

from hpcspin import __version__
from hpcspin.errors import DataFileError
from hpcspin.io import keys
from hpcspin.io.seal import USERBLOCK
from hpcspin.io.storage import os_error_text, storage_problem

_READ_MODES = ("r",)


def h5py_has_mpi() -> bool:
    """Whether this h5py was built with (and loaded) parallel HDF5."""
    return bool(h5py.get_config().mpi)


def is_parallel(comm) -> bool:
    """Whether files for ``comm`` are opened with the mpio driver."""
    return comm is not None and comm.Get_size() > 1 and h5py_has_mpi()


def open_h5(
    path,
    mode: str = "r",
    comm=None,
    locking: bool | None = None,
    parallel: bool | None = None,
    userblock: bool = False,
):
    """Open an HDF5 file for a run. Collective over comm when parallel.

    * ``comm`` with more than one rank and h5py with MPI: one shared file,
      ``driver='mpio'``, on every rank (collective open).
    * otherwise, mode ``"r"``: every rank opens the file serially.
    * otherwise, a writing mode: rank 0 opens it, other ranks get None.

    Args:
        path: file path.
        mode: h5py mode ("r", "r+", "w", "a", "x").
        comm: communicator, or None for serial.
        locking: HDF5 file locking (False lets a reader open a file that a run
            is writing; see :mod:`hpcspin.io.trajectory`). None: HDF5's default.
        parallel: force the mpio driver on (True) or off (False, e.g. to gather
            to rank 0); None: :func:`is_parallel`.
        userblock: create the file with the user block that :mod:`hpcspin.io.seal`
            stores its checksum in (new files only).

    Returns:
        An open ``h5py.File``, or None on ranks that do not hold the file.

    Raises:
        DataFileError: the file is missing, not HDF5 or corrupt.
    """
    kw = {} if locking is None else {"locking": locking}
    if userblock and mode in ("w", "x", "w-"):
        kw["userblock_size"] = USERBLOCK
    try:
        if is_parallel(comm) if parallel is None else parallel:
            return h5py.File(path, mode, driver="mpio", comm=comm, **kw)
        if mode in _READ_MODES or comm is None or comm.Get_rank() == 0:
            return h5py.File(path, mode, **kw)
        return None
    except (OSError, ValueError) as err:
        why = storage_problem(err, path) or os_error_text(err)
        raise DataFileError(f"cannot open {path} (mode {mode!r}): {why}") from err


def write_provenance(
    f, deck_text: str = "", config_json: str = "", n_ranks: int = 1, kind: str = "", **extra
) -> None:
    """Stamp a file with deck, config, version, units, rank count and kind.

    Collective when ``f`` is a parallel file: every rank passes the same values.

    Args:
        f: open writable h5py file.
        deck_text: the input deck, verbatim.
        config_json: resolved configuration (a JSON string, or a dict to dump).
        n_ranks: number of ranks writing the file.
        kind: one of :data:`hpcspin.io.keys.KINDS`.
        **extra: further root attributes.
    """
    if kind not in keys.KINDS:
        raise ValueError(f"unknown file kind {kind!r}; choose from {keys.KINDS}")
    if not isinstance(config_json, str):
        config_json = json.dumps(config_json, sort_keys=True, default=str)
    f.attrs[keys.DECK_TEXT] = deck_text
    f.attrs[keys.CONFIG] = config_json
    f.attrs[keys.VERSION] = __version__
    f.attrs[keys.UNITS] = keys.UNITS_TEXT
    f.attrs[keys.N_RANKS] = int(n_ranks)
    f.attrs[keys.KIND] = kind
    for k, v in extra.items():
        f.attrs[k] = v


def provenance(f) -> dict:
    """Provenance attributes of an open file as plain Python values."""
    out = {}
    for k in (keys.DECK_TEXT, keys.CONFIG, keys.VERSION, keys.UNITS, keys.N_RANKS, keys.KIND):
        if k in f.attrs:
            out[k] = plain_attr(f.attrs[k])
    return out


def check_kind(f, kind: str) -> None:
    """Raise DataFileError unless ``f`` is an hpcspin file of the given kind."""
    try:
        found = f.attrs.get(keys.KIND)
    except (OSError, KeyError) as err:
        raise DataFileError(f"{f.filename}: unreadable attributes ({err})") from err
    if found is None:
        raise DataFileError(f"{f.filename} is not an hpcspin file (no '{keys.KIND}' attribute)")
    found = plain_attr(found)
    if found != kind:
        raise DataFileError(f"{f.filename} is a {found!r} file, expected {kind!r}")


@contextmanager
def open_checked(path, kind: str, comm=None, locking: bool | None = None):
    """Open an existing hpcspin file for reading and check its kind (context manager).

    Raises:
        DataFileError: missing, foreign, corrupt or of another kind.
    """
    f = open_h5(path, "r", comm, locking=locking)
    try:
        check_kind(f, kind)
        yield f
    except (OSError, KeyError) as err:  # h5py raises these on damaged objects
        raise DataFileError(f"{path}: damaged HDF5 content ({err})") from err
    finally:
        f.close()


def plain_attr(v):
    """h5py attribute value as str / int / float / list."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def write_owned_sites(dset, decomposition, block, lead: tuple = (), parallel: bool = False):
    """Write one rank's owned sites into a dataset of shape ``lead + (N,) + trailing``.

    The owned sites ``x*W + y`` (x in [x0, x1), y in [y0, y1)) form one regular
    hyperslab (start ``x0*W + y0``, stride W, block ``y1 - y0``), so each rank makes
    one write call; for a chain or an x-only split it is one contiguous run.
    Collective over the file's communicator when ``parallel``.

    Args:
        dset: h5py dataset.
        decomposition: this rank's :class:`~hpcspin.parallel.decomp.Decomposition`.
        block: owned values, (ox, oy) + trailing or (n_owned,) + trailing.
        lead: indices of the leading axes (e.g. ``(frame,)``).
        parallel: use a collective MPI-IO transfer.
    """
    d = decomposition
    (x0, x1), (y0, y1) = d.x_range, d.y_range
    ox, oy = x1 - x0, y1 - y0
    trailing = tuple(dset.shape[len(lead) + 1 :])
    data = np.ascontiguousarray(block, dtype=dset.dtype).reshape((ox * oy,) + trailing)
    nl, nt = len(lead), len(trailing)
    fspace = dset.id.get_space()
    fspace.select_hyperslab(
        tuple(int(i) for i in lead) + (x0 * d.width + y0,) + (0,) * nt,
        (1,) * nl + (ox,) + (1,) * nt,
        (1,) * nl + (d.width,) + (1,) * nt,
        (1,) * nl + (oy,) + trailing,
    )
    mspace = h5py.h5s.create_simple(data.shape)
    # Collective I/O into chunks that were allocated incrementally (datasets made by
    # serial HDF5 without ALLOC_TIME_EARLY) fails in HDF5 1.10: write those independently.
    early = dset.id.get_create_plist().get_alloc_time() == h5py.h5d.ALLOC_TIME_EARLY
    dxpl = _collective_dxpl() if parallel and early else None
    dset.id.write(mspace, fspace, data, dxpl=dxpl)


def create_frames_dataset(f, name: str, shape: tuple, dtype, chunks: tuple, fillvalue=None):
    """Dataset resizable along axis 0, chunks allocated early.

    Parallel HDF5 allocates chunks early anyway; doing the same in serial files
    lets a parallel run append to a file a serial run began (restarts at another
    rank count) with collective I/O.
    """
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    return f.create_dataset(
        name,
        shape,
        maxshape=(None,) + tuple(shape[1:]),
        dtype=dtype,
        chunks=chunks,
        fillvalue=fillvalue,
        dcpl=dcpl,
    )


def _collective_dxpl():
    dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
    dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)
    return dxpl
