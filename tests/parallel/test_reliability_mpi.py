"""Seals of files written by several ranks; a full disk seen by rank 0 stops every rank."""

import json
import os
import shutil
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from hpcspin.errors import DataFileError
from hpcspin.io import dataset as ds
from hpcspin.io import keys, seal, storage
from hpcspin.io.checkpoint import checkpoint_path, read_checkpoint, write_checkpoint
from hpcspin.io.h5 import h5py_has_mpi
from hpcspin.parallel.decomp import Decomposition

pytestmark = pytest.mark.mpi
L, W = 9, 2


@pytest.fixture
def shared_dir(comm):
    path = tempfile.mkdtemp(prefix="hpcspin_rel_") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    yield path
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def spins():
    s = np.random.default_rng(3).standard_normal((L * W, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


@pytest.mark.parametrize("parallel", [False, True])
def test_checkpoint_written_by_all_ranks_is_sealed_and_checked(comm, shared_dir, parallel):
    if parallel and not h5py_has_mpi():
        pytest.skip("h5py without MPI")
    d = Decomposition.for_rank(L, W, False, comm.size, comm.rank)
    path = checkpoint_path(shared_dir, 7)
    state = {"time": 1.5, "step": 7, "extra": {"phase": "drive"}}
    write_checkpoint(path, comm, d, d.owned_from_global(spins()), state, parallel)
    assert seal.verify_seal(path) == seal.SEALED
    got, st = read_checkpoint(path)
    assert np.array_equal(got, spins()) and st["step"] == 7
    comm.Barrier()
    if comm.rank == 0:
        with open(path, "r+b") as fh:
            fh.seek(os.path.getsize(path) - 50)
            b = fh.read(1)[0]
            fh.seek(-1, 1)
            fh.write(bytes([b ^ 4]))
    comm.Barrier()
    with pytest.raises(DataFileError, match="checksum"):
        read_checkpoint(path)


def test_dataset_written_by_all_ranks_is_sealed(comm, shared_dir):
    path = os.path.join(shared_dir, "dataset.h5")
    fp_json, fp = ds.fingerprint_of({"x": 1})
    attrs = {
        ds.FINGERPRINT: fp,
        ds.FINGERPRINT_JSON: fp_json,
        ds.N_CONFIGS: 2 * comm.size,
        keys.N_SITES: 3,
        ds.KIND_NAMES: json.dumps(["wall"]),
    }
    w = ds.DatasetWriter.create(path, comm, ds.layout(2 * comm.size, 3, False), {}, attrs)
    rows = np.array([comm.rank, comm.rank + comm.size])
    rng = np.random.default_rng(comm.rank)
    data = {n: rng.standard_normal((2, 3, 3)) for n in (ds.SPINS, ds.FIELD, ds.DENSITY)}
    for n in (ds.BIAS, ds.MU, ds.CURRENT, ds.NOISE, ds.NEGF_ERROR, ds.WALL_CENTER, ds.WALL_WIDTH):
        data[n] = rng.standard_normal(2)
    data.update({ds.SAMPLE_KIND: np.zeros(2), ds.SESSION: np.zeros(2)})
    w.write_rows(rows, data)
    w.flush()
    w.mark_done(rows)
    assert seal.verify_seal(path) == seal.OPEN
    w.close()
    assert seal.verify_seal(path) == seal.SEALED
    got = ds.read_dataset(path)
    assert got["index"].tolist() == list(range(2 * comm.size))


def test_full_disk_seen_by_rank_0_stops_every_rank(comm, shared_dir, monkeypatch):
    d = Decomposition.for_rank(L, W, False, comm.size, comm.rank)
    if comm.rank == 0:  # only rank 0 looks: the others must not wait in a collective
        monkeypatch.setattr(
            storage.os, "statvfs", lambda _: SimpleNamespace(f_bavail=10, f_frsize=1, f_flag=0)
        )
    path = checkpoint_path(shared_dir, 3)
    with pytest.raises(DataFileError, match="no space left on") as info:
        write_checkpoint(path, comm, d, d.owned_from_global(spins()), {"time": 0.0, "step": 3})
    assert info.value.collective
    comm.Barrier()
    assert not os.path.exists(path) and not os.path.exists(path + ".tmp")
