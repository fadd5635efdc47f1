"""Collective trajectory and checkpoint writes at every rank count up to the job size."""

import os
import shutil
import tempfile

import h5py
import numpy as np
import pytest

from hpcspin.io import keys
from hpcspin.io.checkpoint import checkpoint_path, read_checkpoint, write_checkpoint
from hpcspin.io.h5 import h5py_has_mpi
from hpcspin.io.trajectory import TrajectoryWriter, read_trajectory
from hpcspin.parallel.decomp import Decomposition

pytestmark = pytest.mark.mpi

# (L, W, periodic, dims-or-None for (n, 1))
LAYOUTS = [(13, 1, False, None), (7, 5, True, None), (6, 5, False, "2d")]


@pytest.fixture
def shared_dir(comm):
    path = tempfile.mkdtemp(prefix="hpcspin_io_") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    yield path
    comm.Barrier()
    if comm.rank == 0:
        shutil.rmtree(path, ignore_errors=True)


def groups(comm):
    """Sub-communicators of the first n ranks, n = 1..size (None where not a member)."""
    for n in range(1, comm.size + 1):
        sub = comm.Split(0 if comm.rank < n else 1, key=comm.rank)
        if comm.rank >= n:
            sub.Free()
            sub = None
        yield n, sub
        if sub is not None:
            sub.Free()


def layouts(n, rank):
    for L, W, per, kind in LAYOUTS:
        if kind == "2d":
            if n % 2:
                continue
            dims = (n // 2, 2)
        else:
            dims = (n, 1)
        yield Decomposition.for_rank(L, W, per, n, rank, (1, 1 if W > 1 else 0), dims)


def global_frames(d, n_frames, seed=4):
    return np.random.default_rng(seed).standard_normal((n_frames, d.length * d.width, 3))


@pytest.mark.parametrize("mode", ["mpio", "gather"])
def test_trajectory_written_at_p_reads_back(comm, shared_dir, mode):
    if mode == "mpio" and comm.size > 1 and not h5py_has_mpi():
        pytest.skip("h5py without MPI")
    parallel = None if mode == "mpio" else False
    for n, sub in groups(comm):
        if sub is not None:
            for k, d in enumerate(layouts(n, sub.rank)):
                frames = global_frames(d, 3)
                path = os.path.join(shared_dir, f"traj_{mode}_{n}_{k}.h5")
                with TrajectoryWriter(path, sub, d, deck_text="d", parallel=parallel) as w:
                    for s in range(3):
                        m = frames[s].mean(axis=0)
                        w.write_frame(s, 0.5 * s, d.owned_from_global(frames[s]), {"m": m})
                sub.Barrier()
                t = read_trajectory(path)  # every rank reads serially
                assert np.array_equal(t[keys.SPINS], frames), (n, d.dims)
                assert np.array_equal(t[keys.STEP], [0, 1, 2])
                assert np.allclose(t["m"], frames.mean(axis=1), rtol=0, atol=0)
                with h5py.File(path, "r") as f:
                    assert f.attrs[keys.N_RANKS] == n
        comm.Barrier()


def test_trajectory_restart_at_other_rank_count(comm, shared_dir):
    """Frames 0-4 at one rank, restart from step 2 at the full size, then read."""
    path = os.path.join(shared_dir, "restart.h5")
    d1 = Decomposition.for_rank(10, 3, True, 1, 0, (1, 1))
    frames = global_frames(d1, 8)
    if comm.rank == 0:
        with TrajectoryWriter(path, None, d1) as w:
            for s in range(5):
                w.write_frame(s, float(s), frames[s])
    comm.Barrier()
    d = Decomposition.for_rank(10, 3, True, comm.size, comm.rank, (1, 1))
    with TrajectoryWriter(path, comm, d, append=True, restart_step=2) as w:
        assert w.n_frames == 3
        for s in range(3, 8):
            w.write_frame(s, float(s), d.owned_from_global(frames[s]))
    comm.Barrier()
    t = read_trajectory(path)
    assert np.array_equal(t[keys.STEP], np.arange(8))
    assert np.array_equal(t[keys.SPINS], frames)


@pytest.mark.parametrize("mode", ["mpio", "gather"])
def test_checkpoint_written_at_p_reads_back(comm, shared_dir, mode):
    parallel = None if mode == "mpio" else False
    for n, sub in groups(comm):
        if sub is not None:
            for k, d in enumerate(layouts(n, sub.rank)):
                spins = global_frames(d, 1, seed=n + k)[0]
                path = checkpoint_path(os.path.join(shared_dir, f"ck_{mode}_{n}_{k}"), 7)
                if sub.rank == 0:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                sub.Barrier()
                state = {"time": 1.5, "step": 7, "rng_state": {"seed": 3}, "extra": {"n": n}}
                write_checkpoint(path, sub, d, d.owned_from_global(spins), state, parallel)
                assert not os.path.exists(path + ".tmp")
                got, st = read_checkpoint(path)
                assert np.array_equal(got, spins), (n, d.dims)
                assert st["step"] == 7 and st["rng_state"] == {"seed": 3}
                assert st["n_ranks"] == n and st["extra"] == {"n": n}
        comm.Barrier()
