import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from hpcspin.errors import DataFileError, HpcspinError
from hpcspin.io import keys
from hpcspin.io.h5 import h5py_has_mpi, open_h5, provenance
from hpcspin.io.trajectory import TrajectoryWriter, read_trajectory
from hpcspin.parallel.decomp import Decomposition

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
L, W = 5, 4
N = L * W


@pytest.fixture
def frames():
    return np.random.default_rng(9).standard_normal((8, N, 3))


def decomp():
    return Decomposition.for_rank(L, W, False, 1, 0, halo=(1, 1))


def write_frames(path, frames, steps, **kw):
    d = decomp()
    with TrajectoryWriter(path, None, d, N, deck_text="deck!", config_json="{}", **kw) as w:
        for s in steps:
            m = frames[s].mean(axis=0)
            w.write_frame(s, 0.25 * s, d.owned_from_global(frames[s]), {"m": m, "e": -s})
    return d


def test_write_read(tmp_path, frames):
    p = tmp_path / "t.h5"
    write_frames(p, frames, range(4))
    t = read_trajectory(p)
    assert set(t) == {keys.SPINS, keys.STEP, keys.TIME, "m", "e"}
    assert np.array_equal(t[keys.SPINS], frames[:4])
    assert np.array_equal(t[keys.STEP], [0, 1, 2, 3])
    assert np.array_equal(t[keys.TIME], [0, 0.25, 0.5, 0.75])
    assert t["m"].shape == (4, 3) and np.array_equal(t["e"], [0, -1, -2, -3])
    with h5py.File(p, "r") as f:
        prov = provenance(f)
    assert prov[keys.KIND] == "trajectory" and prov[keys.DECK_TEXT] == "deck!"
    assert prov[keys.N_RANKS] == 1 and keys.VERSION in prov


def test_append_truncates_beyond_restart_step(tmp_path, frames):
    p = tmp_path / "t.h5"
    write_frames(p, frames, range(6))  # the run went on to step 5, checkpoint was at 3
    write_frames(p, frames, range(4, 8), append=True, restart_step=3)
    t = read_trajectory(p)
    assert np.array_equal(t[keys.STEP], np.arange(8))
    assert np.array_equal(t[keys.SPINS], frames)
    assert np.array_equal(t["e"], -np.arange(8))


def test_append_without_step_continues_and_missing_file_is_created(tmp_path, frames):
    p = tmp_path / "t.h5"
    write_frames(p, frames, range(2), append=True)  # nothing to append to: new file
    write_frames(p, frames, range(2, 5), append=True)
    assert np.array_equal(read_trajectory(p)[keys.STEP], np.arange(5))


def test_half_written_frame_dropped_on_append(tmp_path, frames):
    p = tmp_path / "t.h5"
    write_frames(p, frames, range(3))
    with h5py.File(p, "r+") as f:  # a crash after the resize, before the frame completed
        for name in (keys.SPINS, keys.STEP, keys.TIME, "m", "e"):
            f[name].resize(4, axis=0)
    assert len(read_trajectory(p)[keys.STEP]) == 3
    write_frames(p, frames, [3], append=True)
    t = read_trajectory(p)
    assert np.array_equal(t[keys.STEP], np.arange(4))
    assert np.array_equal(t[keys.SPINS], frames[:4])


def test_overwrite_without_append(tmp_path, frames):
    p = tmp_path / "t.h5"
    write_frames(p, frames, range(5))
    write_frames(p, frames, range(2))
    assert len(read_trajectory(p)[keys.STEP]) == 2


def test_live_read_while_open(tmp_path, frames):
    p = tmp_path / "t.h5"
    d = decomp()
    w = TrajectoryWriter(p, None, d, N)
    for s in range(3):
        w.write_frame(s, s, d.owned_from_global(frames[s]))
    # another process reads the file the writer holds open
    code = (
        "import sys, numpy as np; from hpcspin.io.trajectory import read_trajectory; "
        "t = read_trajectory(sys.argv[1], live=True); np.save(sys.argv[2], t['spins'])"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    subprocess.run(
        [sys.executable, "-c", code, str(p), str(tmp_path / "s.npy")],
        env=env,
        check=True,
        timeout=60,
    )
    assert np.array_equal(np.load(tmp_path / "s.npy"), frames[:3])
    w.close()


def test_new_observable_later_reads_nan_before(tmp_path, frames):
    p = tmp_path / "t.h5"
    d = decomp()
    with TrajectoryWriter(p, None, d) as w:
        w.write_frame(0, 0.0, d.owned_from_global(frames[0]))
        w.write_frame(1, 1.0, d.owned_from_global(frames[1]), {"current": 0.5})
    t = read_trajectory(p)
    assert np.isnan(t["current"][0]) and t["current"][1] == 0.5


def test_errors(tmp_path, frames):
    d = decomp()
    with pytest.raises(HpcspinError, match="n_sites"):
        TrajectoryWriter(tmp_path / "a.h5", None, d, N + 1)
    with TrajectoryWriter(tmp_path / "b.h5", None, d) as w:
        with pytest.raises(HpcspinError, match="reserved"):
            w.write_frame(0, 0.0, d.owned_from_global(frames[0]), {"step": 1})
    other = Decomposition.for_rank(L + 1, W, False, 1, 0)
    with pytest.raises(DataFileError, match="sites"):
        TrajectoryWriter(tmp_path / "b.h5", None, other, append=True)
    f = open_h5(tmp_path / "c.h5", "w")
    f.attrs[keys.KIND] = "checkpoint"
    f.close()
    with pytest.raises(DataFileError, match="expected 'trajectory'"):
        read_trajectory(tmp_path / "c.h5")
    with pytest.raises(DataFileError, match="expected 'trajectory'"):
        TrajectoryWriter(tmp_path / "c.h5", None, d, append=True)
    (tmp_path / "d.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(DataFileError):
        read_trajectory(tmp_path / "d.h5")


def test_h5py_has_mpi_is_bool():
    assert isinstance(h5py_has_mpi(), bool)
