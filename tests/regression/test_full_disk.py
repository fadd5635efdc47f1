"""A dynamics run on a full (real, small tmpfs) or read-only file system.

Exit 2 with "no space left on <dir>", finished frames and checkpoints intact, and a
bit-identical result once space is freed. Needs permission to mount a tmpfs (root in
a container); skipped otherwise.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hpcspin.io.checkpoint import read_checkpoint
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


def run(out, ranks=1):
    cmd = [sys.executable, "-m", "hpcspin", DECK, "--set", f'output.dir="{out}"']
    cmd += ["--set", "output.plots=false", "--set", "dynamics.t_end=100.0"]
    cmd += ["--set", "output.checkpoint_every=40"]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", *cmd]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Trajectory of the uninterrupted run."""
    out = tmp_path_factory.mktemp("ref")
    r = run(out)
    assert r.returncode == 0, r.stderr
    return read_trajectory(out / "trajectory.h5")


@pytest.fixture
def tmpfs(tmp_path):
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount command")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=250k", "tmpfs", str(mnt)],
                       capture_output=True)  # fmt: skip
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def remount(mnt, options):
    subprocess.run(["mount", "-o", f"remount,{options}", str(mnt)], check=True)


@pytest.mark.parametrize("ranks", [1, 2])
def test_full_disk_exit_2_files_intact_and_identical_resume(tmpfs, reference, ranks):
    out = tmpfs / "run"
    r = run(out, ranks)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"no space left on {out}" in r.stderr and "Traceback" not in r.stderr
    names = os.listdir(out / "checkpoints")
    assert names  # the disk filled after the first checkpoint
    for name in names:  # what is there is complete and valid
        assert name.endswith(".h5"), name
        read_checkpoint(out / "checkpoints" / name)
    partial = read_trajectory(out / "trajectory.h5")
    full = reference
    n = len(partial["step"])
    assert 0 < n < len(full["step"])
    assert np.array_equal(partial["spins"], full["spins"][:n])
    remount(tmpfs, "size=4m")  # space freed
    r = run(out, ranks)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming from" in r.stdout + r.stderr
    got = read_trajectory(out / "trajectory.h5")
    assert np.array_equal(got["step"], full["step"])
    assert np.array_equal(got["spins"], full["spins"])  # bit-identical


def test_read_only_file_system_is_exit_2(tmpfs):
    remount(tmpfs, "size=4m,ro")
    r = run(tmpfs / "run")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Read-only file system" in r.stderr or "read-only file system" in r.stderr
    assert "Traceback" not in r.stderr


def test_datagen_refuses_a_dataset_the_disk_cannot_hold(tmpfs):
    from hpcspin.io.dataset import read_dataset

    deck = os.path.join(ROOT, "input_decks", "datagen_chain_dw.toml")
    out = tmpfs / "data"
    cmd = [sys.executable, "-m", "hpcspin", deck, "--set", f'output.dir="{out}"']
    cmd += ["--set", "datagen.n_configs=64"]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"no space left on {out}" in r.stderr and "Traceback" not in r.stderr
    assert not any(n.startswith("dataset.h5") for n in os.listdir(out))
    remount(tmpfs, "size=4m")
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(read_dataset(str(out / "dataset.h5"))["index"]) == 64
