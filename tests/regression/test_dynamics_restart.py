"""A dynamics run stopped by a signal and resumed equals an uninterrupted run, bit for bit."""

import os
import signal
import subprocess
import sys
import time

import h5py
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


def hpcspin(out, *extra, ranks=1):
    cmd = [
        sys.executable,
        "-m",
        "hpcspin",
        DECK,
        "--set",
        f'output.dir="{out}"',
        "--set",
        "output.plots=false",
        "--set",
        "dynamics.t_end=100.0",
        "--set",
        "output.checkpoint_every=40",
        *extra,
    ]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", *cmd]
    return cmd


@pytest.mark.slow
def test_sigusr1_checkpoint_and_resume_is_bit_identical(tmp_path):
    ref = tmp_path / "ref"
    r = subprocess.run(hpcspin(ref), env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    p = subprocess.Popen(
        hpcspin(run, ranks=2), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ckdir = run / "checkpoints"
    deadline = time.time() + 90
    while time.time() < deadline and not (
        ckdir.exists() and any(n.endswith(".h5") for n in os.listdir(ckdir))
    ):
        time.sleep(0.2)
    p.send_signal(signal.SIGUSR1)  # mpirun forwards SIGUSR1 to the ranks
    out, _ = p.communicate(timeout=90)
    assert p.returncode == 75, out
    assert "checkpoint" in out and "run again to resume" in out
    partial = read_trajectory(run / "trajectory.h5")
    assert partial["step"][-1] < 500  # stopped before the end
    r = subprocess.run(hpcspin(run, ranks=2), env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming from" in r.stdout
    a, b = read_trajectory(ref / "trajectory.h5"), read_trajectory(run / "trajectory.h5")
    assert np.array_equal(a["step"], b["step"])
    assert np.array_equal(a["spins"], b["spins"])  # bit-identical
    assert np.array_equal(a["wall_x"], b["wall_x"])
    # Started again when complete: nothing to do, exit 0.
    r = subprocess.run(hpcspin(run), env=ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "nothing to do" in r.stdout


def test_fault_on_one_rank_ends_the_job_quickly(tmp_path):
    env = dict(ENV, HPCSPIN_FAULT_RANK="1")
    t0 = time.time()
    r = subprocess.run(
        hpcspin(tmp_path / "f", ranks=2), env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0
    assert "injected fault on rank 1" in r.stdout + r.stderr
    assert time.time() - t0 < 60


def test_fresh_start_discards_stale_checkpoints(tmp_path):
    out = tmp_path / "run"
    stale = out / "checkpoints"
    stale.mkdir(parents=True)
    with h5py.File(stale / "checkpoint_0000099999.h5", "w") as f:
        f.attrs["hpcspin_kind"] = "checkpoint"  # one hpcspin wrote: removed
    with h5py.File(stale / "checkpoint_0000099998.h5", "w") as f:
        f["mine"] = [1.0]  # a user's file of the same name pattern: kept
    r = subprocess.run(
        hpcspin(out, "--set", 'output.resume="never"', "--set", "dynamics.t_end=4.0"),
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "removing 1 checkpoint(s) of an earlier run" in r.stdout
    assert not (stale / "checkpoint_0000099999.h5").exists()
    assert (stale / "checkpoint_0000099998.h5").exists()
    assert (stale / "checkpoint_0000000020.h5").exists()
