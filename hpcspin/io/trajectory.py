"""Trajectory files: spins and observables per frame, written collectively.

Layout (names, units and meanings in :mod:`hpcspin.io.keys`, documented in
docs/outputs.md): ``spins`` (n_frames, N, 3), ``step``, ``time`` and one dataset per
observable, (n_frames,) or (n_frames, k), all resizable along the frame axis;
``wall_centres`` (n_frames, n_walls) also grows along its second axis when a frame
has more walls than any before (NaN-padded). ``positions`` (N, 3) holds the
Cartesian site positions when the writer is given the lattice. Every dataset the
keys table knows carries ``unit`` and ``description`` attributes. The root
attribute ``n_frames_done`` is updated after each frame is complete; readers use
only frames below it.

Reading a file while the run writes it: parallel HDF5 (mpio) has no SWMR, so the
writer flushes after every ``flush_every`` frames and readers open the file
without HDF5 file locking, e.g. ``read_trajectory(path, live=True)`` or
``HDF5_USE_FILE_LOCKING=FALSE h5py.File(path, "r")``, and read frames below
``n_frames_done``. A reader that catches a flush half-way may get an OSError:
retry a moment later. The frame data below ``n_frames_done`` never changes.

A trajectory written at P ranks holds the global site order, so it reads back
identically at any rank count.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np

from hpcspin.errors import DataFileError, HpcspinError
from hpcspin.faults import fault_point
from hpcspin.io import keys
from hpcspin.io.h5 import (
    check_kind,
    create_frames_dataset,
    is_parallel,
    open_checked,
    open_h5,
    write_owned_sites,
)
from hpcspin.io.h5 import write_provenance as _stamp
from hpcspin.io.storage import require_space, storage_error
from hpcspin.log import get_logger

log = get_logger(__name__)
_CHUNK_SITES = 1 << 16  # sites per chunk of the spins dataset (1.5 MB of float64 x 3)
_KIND = "trajectory"
#: Observables whose length may change from frame to frame (NaN-padded columns).
_RAGGED = (keys.WALL_CENTRES,)
#: Why a dataset can hold NaN, stored as its ``nan_reason`` attribute.
NAN_REASONS = {
    keys.CURRENT: "the current is computed by the NEGF engine only ([dynamics] forces = "
    "'negf'); with ML or classical forces it is not known and stored as NaN",
}


class TrajectoryWriter:
    """Writes frames of a (decomposed) spin trajectory. Collective over comm.

    Args:
        path: output file.
        comm: communicator of the process grid (None: serial).
        decomposition: this rank's block; its owned block is what each frame writes.
        n_sites: N, checked against the decomposition.
        deck_text, config_json: provenance (identical on every rank).
        append: reopen an existing trajectory (restart) instead of overwriting it.
        restart_step: with ``append``, drop frames whose step is beyond this one
            (the checkpoint's step), so the resumed run writes no duplicates.
        flush_every: flush the file every this many frames (live readers).
        parallel: collective mpio writes (True) or gather to rank 0 (False);
            None: mpio when the communicator has several ranks and h5py has MPI.
        lattice: the :class:`~hpcspin.lattice.Lattice`, for the ``positions``
            dataset and the ``lattice_kind`` attribute (None: neither is written).
    """

    def __init__(
        self,
        path,
        comm,
        decomposition,
        n_sites: int | None = None,
        deck_text: str = "",
        config_json: str = "",
        append: bool = False,
        restart_step: int | None = None,
        flush_every: int = 1,
        parallel: bool | None = None,
        lattice=None,
    ):
        d = decomposition
        self.lattice = lattice
        self.path, self.comm, self.decomp = os.fspath(path), comm, d
        self.n_sites = d.length * d.width
        if n_sites is not None and int(n_sites) != self.n_sites:
            raise HpcspinError(f"n_sites {n_sites} != decomposition's {self.n_sites}")
        self.parallel = is_parallel(comm) if parallel is None else bool(parallel)
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.flush_every = max(1, int(flush_every))
        resume = append and _exists(path, comm)
        self.f = _agreed(
            comm, self.parallel, lambda: self._open(resume, restart_step, deck_text, config_json)
        )
        self.n_frames = int(_bcast(comm, self.f and self.f.attrs[keys.N_FRAMES_DONE]))

    # -- opening --------------------------------------------------------------------
    def _open(self, resume, restart_step, deck_text, config_json):
        f = open_h5(self.path, "r+" if resume else "w", self.comm, parallel=self.parallel)
        if f is None:
            return None
        with _open_unless_failed(f, self.parallel):
            fault_point("trajectory_open")
            if resume:
                self._reopen(f, restart_step)
            else:
                self._create(f, deck_text, config_json)
        return f

    def _create(self, f, deck_text, config_json):
        _stamp(f, deck_text, config_json, self.size, "trajectory")
        f.attrs[keys.N_SITES] = self.n_sites
        f.attrs[keys.LATTICE_SHAPE] = np.array([self.decomp.length, self.decomp.width])
        f.attrs[keys.N_FRAMES_DONE] = 0
        n = self.n_sites
        create_frames_dataset(f, keys.SPINS, (0, n, 3), "f8", (1, min(n, _CHUNK_SITES), 3))
        create_frames_dataset(f, keys.STEP, (0,), "i8", (1024,))
        create_frames_dataset(f, keys.TIME, (0,), "f8", (1024,))
        for name in (keys.SPINS, keys.STEP, keys.TIME):
            keys.annotate(f[name], _KIND)
        if self.lattice is not None:
            f.attrs[keys.LATTICE_KIND] = self.lattice.kind
            pos = np.zeros((n, 3))
            pos[:, :2] = self.lattice.positions
            dset = f.create_dataset(keys.POSITIONS, (n, 3), dtype="f8")  # collective
            if self.rank == 0:  # independent write of data every rank has
                dset[...] = pos
            keys.annotate(dset, _KIND)

    def _reopen(self, f, restart_step):
        # Rank 0 decides (a shrink on one rank rewrites data others read) and a problem
        # found is raised on every rank alike: the file is then closed collectively.
        decision = self._frames_to_keep(f, restart_step) if self.rank == 0 else None
        if self.parallel:
            decision = self.comm.bcast(decision, root=0)
        if isinstance(decision, str):
            err = DataFileError(decision)
            err.collective = self.parallel
            raise err
        done, keep = decision
        for name in _frame_datasets(f):
            f[name].resize(keep, axis=0)
        f.attrs[keys.N_FRAMES_DONE] = keep
        f.attrs[keys.N_RANKS] = self.size
        if keep < len(f[keys.STEP]) or keep < done:
            log.info(
                "trajectory %s: kept %d of %d frames (restart at step %s)",
                self.path,
                keep,
                done,
                restart_step,
            )

    def _frames_to_keep(self, f, restart_step) -> tuple[int, int] | str:
        """(frames done, frames kept) of a file to resume, or the problem with it."""
        try:
            check_kind(f, "trajectory")
            n = int(f.attrs[keys.N_SITES])
            if n != self.n_sites:
                return f"{self.path} has {n} sites, this run {self.n_sites}"
            done = int(f.attrs[keys.N_FRAMES_DONE])  # frames past it are half-written
            if restart_step is None:
                return done, done
            steps = f[keys.STEP][:done]
            return done, int(np.searchsorted(steps, restart_step, "right"))
        except DataFileError as err:
            return str(err)
        except (OSError, KeyError, ValueError, TypeError) as err:
            return f"{self.path}: damaged trajectory ({type(err).__name__}: {err})"

    # -- writing ----------------------------------------------------------------------
    def write_frame(self, step: int, time: float, owned_spins, observables: dict | None = None):
        """Append one frame. Collective over comm.

        Args:
            step: integrator step.
            time: simulated time.
            owned_spins: this rank's owned spins, (ox, oy, 3) or (n_owned, 3).
            observables: global per-frame values (the same on every rank), each a
                scalar or a 1D array, e.g. ``{"magnetisation": m, "energy": e}``.
        """
        obs = {k: np.asarray(v, dtype=float) for k, v in (observables or {}).items()}
        ragged = {k: obs.pop(k) for k in _RAGGED if k in obs}
        self._check_obs_keys({**obs, **{k: () for k in ragged}})
        i = self.n_frames
        frame_bytes = 24 * self.n_sites + 8192 * (2 + len(obs) + len(ragged))  # + new chunks
        require_space(self.comm, self.path, frame_bytes, f"trajectory frame {i}")
        with _storage_errors(self.path, f"trajectory frame {i}"):
            self._append(i, step, time, owned_spins, obs, ragged)
        self.n_frames = i + 1

    def _append(self, i, step, time, owned_spins, obs, ragged) -> None:
        """Write frame ``i`` (the body of :meth:`write_frame`). Collective."""
        if self.parallel:
            for name in (keys.SPINS, keys.STEP, keys.TIME, *obs):
                self._dataset(name, obs).resize(i + 1, axis=0)
            for name, v in ragged.items():
                self._ragged(name, v.size, i + 1)
            fault_point("trajectory_write")  # between collectives of the open file
            write_owned_sites(self.f[keys.SPINS], self.decomp, owned_spins, (i,), True)
        else:
            spins = self.decomp.gather(self.comm, owned_spins, root=0)
            if self.f is not None:
                for name in (keys.SPINS, keys.STEP, keys.TIME, *obs):
                    self._dataset(name, obs).resize(i + 1, axis=0)
                for name, v in ragged.items():
                    self._ragged(name, v.size, i + 1)
                fault_point("trajectory_write")
                self.f[keys.SPINS][i] = spins.reshape(self.n_sites, 3)
        if self.f is not None and self.rank == 0:  # independent writes of global scalars
            self.f[keys.STEP][i] = int(step)
            self.f[keys.TIME][i] = float(time)
            for k, v in obs.items():
                self.f[k][i] = v
            for k, v in ragged.items():
                row = np.full(self.f[k].shape[1], np.nan)
                row[: v.size] = v
                self.f[k][i] = row
        if self.f is not None:
            self.f.attrs[keys.N_FRAMES_DONE] = i + 1
            if (i + 1) % self.flush_every == 0:
                self.f.flush()

    def _dataset(self, name, obs):
        if name not in self.f:  # a new observable: earlier frames read as NaN
            shape = np.shape(obs[name])
            dset = create_frames_dataset(
                self.f, name, (self.n_frames,) + shape, "f8", (256,) + shape, np.nan
            )
            self._describe(dset, name, obs[name])
        return self.f[name]

    def _ragged(self, name, width, n_rows):
        """Resize a NaN-padded (n_frames, k) dataset to n_rows x max(k, width). Collective."""
        if name not in self.f:
            dset = self.f.create_dataset(
                name, (self.n_frames, 0), maxshape=(None, None), dtype="f8",
                chunks=(256, 8), fillvalue=np.nan,
            )  # fmt: skip
            self._describe(dset, name, None)
        dset = self.f[name]
        dset.resize((n_rows, max(dset.shape[1], int(width))))

    @staticmethod
    def _describe(dset, name, first):
        if name in keys.DATASETS[_KIND]:
            keys.annotate(dset, _KIND)
        if name in NAN_REASONS and first is not None and np.isnan(first).all():
            dset.attrs[keys.NAN_REASON_ATTR] = NAN_REASONS[name]

    def _check_obs_keys(self, obs):
        """Check that every rank passes the same observable names and shapes.

        Checked every frame: a mismatch would hang the collective dataset creation.
        """
        names = tuple(sorted((k, np.shape(v)) for k, v in obs.items()))
        agree = True
        if self.comm is not None and self.size > 1:
            agree = len(set(self.comm.allgather(names))) == 1
        bad = [k for k, _ in names if k in (keys.SPINS, keys.STEP, keys.TIME)]
        if bad or not agree:
            raise HpcspinError(
                f"observables {[k for k, _ in names]}: reserved names {bad} or "
                "keys/shapes differ between ranks"
            )

    def close(self) -> None:
        """Flush and close the file; rank 0 writes the VTKHDF sidecar. Collective over comm."""
        if self.f is not None:
            self.f.flush()
            sidecar = self._sidecar_args() if self.rank == 0 else None
            self.f.close()
            self.f = None
            if sidecar is not None:
                _write_sidecar(self.path, *sidecar)

    def _sidecar_args(self):
        """(n_frames, N, times) of the VTKHDF sidecar, or None without positions."""
        if keys.POSITIONS not in self.f:
            return None
        return self.n_frames, self.n_sites, self.f[keys.TIME][: self.n_frames]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_trajectory(path, live: bool = False) -> dict:
    """Read a whole trajectory (serial).

    Args:
        path: trajectory file.
        live: open without file locking, for a file a running job still writes.

    Returns:
        dict of numpy arrays: ``spins`` (n_frames, N, 3), ``step``, ``time`` and every
        observable, cut to the completed frames; ``positions`` (N, 3) when stored.

    Raises:
        DataFileError: missing, foreign or corrupt file.
    """
    with open_checked(path, "trajectory", locking=False if live else None) as f:
        n = int(f.attrs[keys.N_FRAMES_DONE])
        out = {name: f[name][:n] for name in _frame_datasets(f)}
        if keys.POSITIONS in f:
            out[keys.POSITIONS] = f[keys.POSITIONS][()]
        return out


def _write_sidecar(path: str, n_frames: int, n_sites: int, times) -> None:
    """<stem>.vtkhdf (trajectory.vtkhdf) next to the trajectory; a failure only warns."""
    from hpcspin.io.vtkhdf import write_vtkhdf

    try:
        write_vtkhdf(path, n_frames, n_sites, times)
    except (OSError, ValueError) as exc:
        log.warning("no VTKHDF sidecar for %s: %s", path, exc)


@contextmanager
def _open_unless_failed(f, parallel: bool):
    """Keep ``f`` open on success; close it on a failure unless that would hang.

    Closing a parallel file is collective: after an exception that may be this rank's
    alone (not marked ``collective``) the file stays open and the CLI's abort of the
    job releases it (see :func:`hpcspin.io.checkpoint.closed_unless_local`). An
    OSError (a failing or full disk) becomes a DataFileError naming the file (exit 2).
    """
    try:
        with _storage_errors(f.filename, "the trajectory header"):
            yield f
    except BaseException as exc:
        if not parallel or getattr(exc, "collective", False):
            f.close()
        raise


@contextmanager
def _storage_errors(path: str, what: str):
    """An OSError inside becomes :func:`~hpcspin.io.storage.storage_error` (not collective)."""
    try:
        yield
    except OSError as err:
        raise storage_error(err, path, what) from err


def _frame_datasets(f) -> list[str]:
    return [name for name in f if hasattr(f[name], "shape") and f[name].maxshape[0] is None]


def _exists(path, comm) -> bool:
    here = os.path.exists(path) if comm is None or comm.Get_rank() == 0 else None
    return bool(_bcast(comm, here))


def _bcast(comm, value):
    if comm is None or comm.Get_size() == 1:
        return value
    return comm.bcast(value, root=0)


def _agreed(comm, parallel, fn):
    """Run ``fn`` (rank 0 alone holds the file unless parallel); raise its error everywhere.

    A parallel ``fn`` raises collective errors on every rank itself; any other error
    may be this rank's alone, with the others inside collectives of the open file, so
    it propagates at once (the CLI ends the job) instead of waiting for an agreement.
    """
    if parallel:
        return fn()
    result, err = None, None
    try:
        result = fn()
    except (HpcspinError, OSError) as e:
        err = e
    if comm is not None and comm.Get_size() > 1:
        msgs = comm.allgather(None if err is None else f"{type(err).__name__}: {err}")
        first = next((m for m in msgs if m is not None), None)
        if first is not None:
            if result is not None:
                result.close()
            raise err if err is not None else DataFileError(f"on another rank: {first}")
    elif err is not None:
        raise err
    return result
