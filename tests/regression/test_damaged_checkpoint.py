"""A run whose newest checkpoint is damaged resumes from the older one, bit-identically."""

import os
import subprocess
import sys

import numpy as np
import pytest

from hpcspin.io.trajectory import read_trajectory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DECK = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
ENV = dict(
    os.environ,
    OMPI_ALLOW_RUN_AS_ROOT="1",
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
    OMPI_MCA_rmaps_base_oversubscribe="1",
    OMP_NUM_THREADS="1",
)


def run(out, *extra, ranks=1, env=None):
    cmd = [sys.executable, "-m", "hpcspin", DECK, "--set", f'output.dir="{out}"']
    cmd += ["--set", "output.plots=false", "--set", "dynamics.t_end=100.0"]
    cmd += ["--set", "output.checkpoint_every=40", *extra]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", *cmd]
    return subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, timeout=120)


def test_damaged_newest_checkpoint_falls_back_and_the_result_is_identical(tmp_path):
    ref = run(tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "run"
    r = run(out, env=dict(ENV, HPCSPIN_FAULT="checkpoint_write@0:4"))  # dies at step 160
    assert r.returncode == 1, r.stdout + r.stderr
    ckdir = out / "checkpoints"
    assert sorted(os.listdir(ckdir)) == ["checkpoint_0000000080.h5", "checkpoint_0000000120.h5"]
    newest, older = ckdir / "checkpoint_0000000120.h5", ckdir / "checkpoint_0000000080.h5"
    with open(newest, "r+b") as fh:  # one flipped bit in the middle of the file
        fh.seek(os.path.getsize(newest) // 2)
        b = fh.read(1)[0]
        fh.seek(-1, 1)
        fh.write(bytes([b ^ 0x10]))
    r = run(out, "--restart", str(newest))  # asked for explicitly: refused
    assert r.returncode == 2 and "SHA-256 checksum" in r.stderr, r.stderr
    r = run(out, ranks=2)  # automatic resume: the older one, with a warning naming both
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    assert f"skipping checkpoint {newest}" in log
    assert f"using the older checkpoint {older}" in log
    a = read_trajectory(tmp_path / "ref" / "trajectory.h5")
    b = read_trajectory(out / "trajectory.h5")
    assert np.array_equal(a["step"], b["step"])
    assert np.array_equal(a["spins"], b["spins"])  # bit-identical


@pytest.mark.parametrize("ranks", [1, 2])
def test_absurd_initial_spins_end_with_exit_2_on_every_rank(tmp_path, ranks):
    import h5py

    bad = tmp_path / "init.h5"
    with h5py.File(bad, "w") as f:
        f["spins"] = np.full((200, 3), 1e308)  # finite, but |S|^2 overflows
    r = run(tmp_path / "out", "--set", 'spins.initial="file"', "--set", f'spins.file="{bad}"',
            ranks=ranks)  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{bad}: dataset 'spins' at site 0 holds [1e+308" in r.stderr
    assert "Traceback" not in r.stderr
