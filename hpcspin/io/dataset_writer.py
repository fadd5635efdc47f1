"""Writing a datagen dataset: a preallocated file that ranks fill row by row.

The layout, reader and names are in :mod:`hpcspin.io.dataset`. The file is sealed
(:mod:`hpcspin.io.seal`) when the writer closes it and marked open while rows change.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from hpcspin.errors import DataFileError
from hpcspin.io import keys, seal
from hpcspin.io.dataset import DONE, FILE_KIND, ROW_FIELDS
from hpcspin.io.h5 import is_parallel, open_h5, write_provenance
from hpcspin.io.storage import require_space, storage_error


class DatasetWriter:
    """An open dataset file that ranks write rows into. Collective over comm.

    Parallel h5py: one shared file (mpio); each rank writes its own rows, by default
    in collective mode (MPI-IO can aggregate the rows of all ranks into large
    contiguous writes: what parallel file systems need at scale). Independent mode
    avoids the rendezvous of every write: on one node with few ranks it is cheaper
    (see docs/datagen.md). Without parallel h5py rank 0 holds the file and the other
    ranks send it their rows.

    Args:
        path: file path.
        comm: communicator, or None for serial.
        collective: collective (True) or independent (False) MPI-IO data writes.
    """

    def __init__(self, path: str, comm=None, collective: bool = True):
        self.path, self.comm = path, comm
        self.parallel = is_parallel(comm)
        self.size = 1 if comm is None else comm.Get_size()
        self.rank = 0 if comm is None else comm.Get_rank()
        _seal_call(seal.mark_open, path, comm)  # the digest is void while rows change
        self.f = open_h5(path, "r+", comm)
        self._dxpl = None
        if self.parallel and collective:
            self._dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
            self._dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)

    @classmethod
    def create(cls, path: str, comm, layout_: dict, provenance: dict, attrs: dict, collective=True):
        """Create a preallocated file atomically, then open it. Collective over comm.

        Args:
            path: final file path (built as ``path + '.tmp'`` and renamed).
            comm: communicator or None.
            layout_: from :func:`layout`.
            provenance: keyword arguments of :func:`write_provenance` (without kind).
            attrs: further root attributes.
            collective: see the class.
        """
        tmp = path + ".tmp"
        size = sum(float(np.prod(sh)) * np.dtype(dt).itemsize for sh, dt, _ in layout_.values())
        require_space(comm, tmp, size, f"dataset {path}")
        f = open_h5(tmp, "w", comm, userblock=True)
        if f is not None:
            write_provenance(f, kind=FILE_KIND, **provenance)
            for k, v in attrs.items():
                f.attrs[k] = v
            for name, (shape, dtype, fill) in layout_.items():
                # storage (with its fill) reserved now: a disk that fills up later
                # cannot fail a row write half-way
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                dset = f.create_dataset(name, shape=shape, dtype=dtype, fillvalue=fill, dcpl=dcpl)
                if name in keys.DATASETS[FILE_KIND]:
                    keys.annotate(dset, FILE_KIND)  # unit and description attributes
            f.close()
        if comm is not None:
            comm.Barrier()
        if comm is None or comm.Get_rank() == 0:
            os.replace(tmp, path)
        if comm is not None:
            comm.Barrier()
        return cls(path, comm, collective)

    def write_rows(self, rows, data: dict) -> None:
        """Write this rank's configurations. Collective over comm.

        Args:
            rows: configuration indices of this rank (any order, possibly empty).
            data: ``{name: array}`` with one leading entry per row, for every name
                in the file among :data:`ROW_FIELDS` (others are ignored).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        order = np.argsort(rows, kind="stable")  # file selections iterate in row order
        names = [n for n in ROW_FIELDS if self._has(n)]
        if self.parallel or self.size == 1:
            for name in names:
                arr = np.asarray(data[name])[order] if rows.size else None
                self._write_local(name, rows[order], arr)
            return
        gathered = self.comm.gather(
            (rows[order], {n: np.asarray(data[n])[order] for n in names} if rows.size else {}),
            root=0,
        )
        if self.rank == 0:
            for r, d in gathered:
                for name in names if len(r) else ():
                    self._write_local(name, r, d[name])

    def mark_done(self, rows) -> None:
        """Set done = 1 for rows whose data has been flushed. Collective over comm."""
        rows = np.sort(np.asarray(rows, dtype=np.int64).reshape(-1))
        if self.parallel or self.size == 1:
            self._write_local(DONE, rows, np.ones(rows.size, dtype=np.uint8))
            return
        all_rows = self.comm.gather(rows, root=0)
        if self.rank == 0:
            r = np.sort(np.concatenate(all_rows))
            if r.size:
                self._write_local(DONE, r, np.ones(r.size, dtype=np.uint8))

    def set_attrs(self, **attrs) -> None:
        """Set root attributes (same values on every rank). Collective over comm."""
        if self.f is not None:
            for k, v in attrs.items():
                self.f.attrs[k] = v

    def flush(self) -> None:
        """Push everything written so far to the file. Collective over comm."""
        if self.f is not None:
            self.f.flush()

    def close(self) -> None:
        """Flush, close and seal (SHA-256 of the finished file). Collective over comm."""
        if self.f is not None:
            self.f.close()
            self.f = None
        if self.comm is not None:
            self.comm.Barrier()
        _seal_call(seal.seal_file, self.path, self.comm)  # sealed when close returns

    def _has(self, name: str) -> bool:
        if self.f is not None:
            has = name in self.f
        else:
            has = None
        if not self.parallel and self.size > 1:
            has = self.comm.bcast(has, root=0)
        return bool(has)

    def _write_local(self, name: str, rows: np.ndarray, arr) -> None:
        """Hyperslab write of whole rows; an empty selection still joins a collective."""
        if rows.size == 0 and self._dxpl is None:
            return  # independent or serial: nothing to do
        dset = self.f[name]
        tail = dset.shape[1:]
        fspace = dset.id.get_space()
        fspace.select_none()
        if rows.size:
            for r in rows:
                fspace.select_hyperslab(
                    (int(r),) + (0,) * len(tail), (1, *tail), op=h5py.h5s.SELECT_OR
                )
            buf = np.ascontiguousarray(arr, dtype=dset.dtype).reshape((rows.size, *tail))
            mspace = h5py.h5s.create_simple(buf.shape)
        else:
            buf = np.zeros((1, *tail), dtype=dset.dtype)
            mspace = h5py.h5s.create_simple(buf.shape)
            mspace.select_none()
        dset.id.write(mspace, fspace, buf, dxpl=self._dxpl)


def _seal_call(fn, path: str, comm) -> None:
    """Run a seal operation on rank 0; every rank returns after it, or raises its error.

    Collective over comm (a failing file system becomes the same DataFileError on
    every rank, so none waits for the others).
    """
    problem = None
    if comm is None or comm.Get_rank() == 0:
        try:
            fn(path)
        except OSError as err:
            problem = str(storage_error(err, path, "the dataset checksum"))
    if comm is not None and comm.Get_size() > 1:
        problem = comm.bcast(problem, root=0)
    if problem:
        err = DataFileError(problem)
        err.collective = True
        raise err
