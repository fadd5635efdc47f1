import os
import shutil

import h5py
import numpy as np
import pytest

from hpcspin.errors import DataFileError, HpcspinError
from hpcspin.io import keys
from hpcspin.io.checkpoint import (
    checkpoint_path,
    find_latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    write_checkpoint,
)
from hpcspin.io.h5 import check_kind, open_h5, write_provenance
from hpcspin.parallel.decomp import Decomposition

L, W = 6, 3


def spins_of(seed):
    s = np.random.default_rng(seed).standard_normal((L * W, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def write(directory, step, spins, **state):
    d = Decomposition.for_rank(L, W, True, 1, 0)
    st = {"time": 0.1 * step, "step": step, **state}
    return write_checkpoint(checkpoint_path(directory, step), None, d, spins, st)


def test_round_trip_exact(tmp_path):
    rng = np.random.default_rng(5)
    bitgen_state = rng.bit_generator.state
    s = spins_of(1)
    p = write(
        tmp_path,
        40,
        s,
        rng_state=bitgen_state,
        deck_text="[run]\ntask='dynamics'\n",
        config_json='{"a": 1}',
        extra={"field": [0, 0, 1]},
    )
    assert os.path.basename(p) == "checkpoint_0000000040.h5"
    assert not os.path.exists(p + ".tmp")
    spins, state = read_checkpoint(p)
    assert np.array_equal(spins, s)
    assert state["step"] == 40 and state["time"] == 4.0
    assert state["deck_text"].startswith("[run]")
    assert state["extra"] == {"field": [0, 0, 1]}
    assert state["lattice_shape"] == (L, W) and state["n_ranks"] == 1
    # the generator resumes bit-identically
    rng2 = np.random.default_rng()
    rng2.bit_generator.state = state["rng_state"]
    assert np.array_equal(rng2.standard_normal(5), rng.standard_normal(5))


def test_rng_bytes_and_none(tmp_path):
    _, st = read_checkpoint(write(tmp_path, 1, spins_of(0), rng_state=b"\x00\x01abc"))
    assert st["rng_state"] == b"\x00\x01abc"
    _, st = read_checkpoint(write(tmp_path, 2, spins_of(0)))
    assert st["rng_state"] is None


def test_gathered_from_blocks_of_a_2d_grid(tmp_path):
    """Serial helper: blocks of a 2x2 layout placed into the global array read back."""
    s = spins_of(3)
    out = np.zeros_like(s)
    for r in range(4):
        d = Decomposition.for_rank(L, W, True, 4, r, dims=(2, 2))
        d.place_owned(out, d.owned_from_global(s))
    spins, _ = read_checkpoint(write(tmp_path, 3, out))
    assert np.array_equal(spins, s)


def test_truncated_newest_is_skipped(tmp_path, caplog):
    old = write(tmp_path, 10, spins_of(1))
    new = write(tmp_path, 20, spins_of(2))
    size = os.path.getsize(new)
    with open(new, "r+b") as fh:  # a crash half-way through copying/writing
        fh.truncate(size // 2)
    with pytest.raises(DataFileError):
        read_checkpoint(new)
    assert find_latest_checkpoint(tmp_path) == old
    assert "skipping checkpoint" in caplog.text


def test_leftover_tmp_ignored(tmp_path):
    old = write(tmp_path, 10, spins_of(1))
    shutil.copy(old, checkpoint_path(tmp_path, 30) + ".tmp")
    with open(checkpoint_path(tmp_path, 40) + ".tmp", "wb") as fh:
        fh.write(b"garbage")
    assert find_latest_checkpoint(tmp_path) == old


def test_incomplete_and_corrupt_data_refused(tmp_path):
    p = write(tmp_path, 5, spins_of(1))
    q = checkpoint_path(tmp_path, 6)
    shutil.copy(p, q)
    with h5py.File(q, "r+") as f:
        del f.attrs[keys.COMPLETE]
    with pytest.raises(DataFileError, match="incomplete"):
        read_checkpoint(q)
    r = checkpoint_path(tmp_path, 7)
    shutil.copy(p, r)
    with h5py.File(r, "r+") as f:
        f[keys.SPINS][3, 1] += 1e-15  # one flipped bit pattern
    with pytest.raises(DataFileError, match="checksum"):
        read_checkpoint(r)
    assert find_latest_checkpoint(tmp_path) == p


def test_foreign_and_missing_files(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(DataFileError, match="not an hpcspin file"):
        read_checkpoint(foreign)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(DataFileError):
        read_checkpoint(text)
    with pytest.raises(DataFileError):
        read_checkpoint(tmp_path / "missing.h5")
    traj = tmp_path / "t.h5"
    f = open_h5(traj, "w")
    write_provenance(f, "deck", "{}", 1, "trajectory")
    f.close()
    with pytest.raises(DataFileError, match="'trajectory' file, expected 'checkpoint'"):
        read_checkpoint(traj)
    with h5py.File(traj, "r") as f:
        check_kind(f, "trajectory")
    assert find_latest_checkpoint(tmp_path / "nowhere") is None


def test_state_without_step_rejected(tmp_path):
    d = Decomposition.for_rank(L, W, True, 1, 0)
    with pytest.raises(HpcspinError, match="step"):
        write_checkpoint(tmp_path / "c.h5", None, d, spins_of(0), {"time": 0.0})


def test_prune_keeps_newest_valid(tmp_path):
    paths = [write(tmp_path, s, spins_of(s)) for s in (1, 2, 3, 4)]
    with open(paths[-1], "r+b") as fh:
        fh.truncate(100)
    removed = prune_checkpoints(tmp_path, keep=2)
    assert sorted(removed) == [paths[0]]
    assert find_latest_checkpoint(tmp_path) == paths[2]
