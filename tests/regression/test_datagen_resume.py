"""datagen through the command line at 2 ranks: interrupted, killed, resumed, refused.

One chain of runs on the same dataset file: SIGTERM to the ranks (as srun delivers it),
SIGUSR1 to mpirun (which forwards it), SIGKILL of the whole job (a node failure), and a
final run. The result must equal an uninterrupted run's dataset, with no configuration
computed twice except those of a killed run that never got their done flag.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
N_CONFIGS = 48
DECK = f"""
[run]
task = "datagen"
seed = 3
[lattice]
kind = "chain"
length = 16
[electrons]
J = 2.0
mu = -1.0
temperature = 0.1
[negf]
tol = 1e-6
[datagen]
n_configs = {N_CONFIGS}
biases = [-0.5, 0.5]
flush_every = 1
[output]
dir = "out"
progress_interval = 0
"""
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
    "HDF5_USE_FILE_LOCKING": "FALSE",  # let this test read the file while it is written
}
COMPUTED = re.compile(r"computed config (\d+)")

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpirun")


def env():
    e = dict(os.environ, **MPI_ENV)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return e


def cli(n_ranks, *args):
    hp = [PY, "-m", "hpcspin", "deck.toml", "--log-level", "DEBUG", "--all-ranks-log", *args]
    if n_ranks == 0:
        return hp
    return ["timeout", "120", "mpirun", "-n", str(n_ranks), "-x", "PYTHONPATH", *hp]


def start(workdir, n_ranks=2, *args):
    return subprocess.Popen(
        cli(n_ranks, *args),
        cwd=workdir,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc, timeout=120):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_all(proc)
        out, _ = proc.communicate()
        pytest.fail(f"run did not finish:\n{out[-3000:]}")
    return proc.returncode, out


def kill_all(proc):
    """SIGKILL a run we started: its ranks (mpirun may give them their own process
    group), then its process group."""
    for pid in _descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _descendants(pid):
    out = []
    for c in _children(pid):
        out += [c, *_descendants(c)]
    return out


def computed(out):
    return [int(k) for k in COMPUTED.findall(out)]


def done_flags(path):
    try:
        with h5py.File(path, "r", locking=False) as f:
            return f["done"][()].astype(bool)
    except (OSError, KeyError):
        return None


def wait_for_done(proc, path, more_than, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        d = done_flags(path)
        if d is not None and d.sum() > more_than:
            return int(d.sum())
        if proc.poll() is not None:
            out = proc.stdout.read()
            pytest.fail(f"run ended (rc {proc.returncode}) before any progress:\n{out[-3000:]}")
        time.sleep(0.02)
    kill_all(proc)
    pytest.fail("no progress in the dataset file")


def rank_pids(proc):
    """The python ranks: children of mpirun, itself the child of timeout."""
    pids = []
    for _ in range(100):
        pids = _children(proc.pid)
        pids = [c for p in pids for c in _children(p)]  # timeout -> mpirun -> ranks
        if len(pids) >= 2:
            return pids
        time.sleep(0.05)
    pytest.fail("ranks not found")


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}, dict(f.attrs)


def snapshot(path):
    with open(path, "rb") as fh:
        return fh.read(), os.stat(path).st_mtime_ns


def make_workdir(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    (d / "deck.toml").write_text(DECK)
    return d


@pytest.mark.slow
def test_interrupt_kill_resume_equals_uninterrupted(tmp_path):
    ref_dir = make_workdir(tmp_path, "ref")
    ref = start(ref_dir, 0)  # uninterrupted, serial: also checks rank-count invariance
    work = make_workdir(tmp_path, "work")
    path = str(work / "out" / "dataset.h5")

    # 1. SIGTERM to every rank (what srun does): finish the current config, exit 75.
    p = start(work)
    n0 = wait_for_done(p, path, 1)
    for pid in rank_pids(p):
        os.kill(pid, signal.SIGTERM)
    rc, out1 = finish(p)
    assert rc == 75, out1[-3000:]
    assert "stopped on a signal" in out1
    d1 = done_flags(path)
    assert n0 <= d1.sum() < N_CONFIGS
    assert sorted(computed(out1)) == np.nonzero(d1)[0].tolist()

    # 2. SIGUSR1 to mpirun, which forwards it to the ranks.
    p = start(work)
    wait_for_done(p, path, d1.sum() + 1)
    mpirun = _children(p.pid)
    os.kill(mpirun[0], signal.SIGUSR1)
    rc, out2 = finish(p)
    assert rc == 75, out2[-3000:]
    d2 = done_flags(path)
    assert d2.sum() < N_CONFIGS
    assert sorted(computed(out2)) == np.nonzero(d2 & ~d1)[0].tolist()

    # 3. SIGKILL of the whole job: a node failure at an arbitrary moment.
    p = start(work)
    wait_for_done(p, path, d2.sum() + 1)
    kill_all(p)
    finish(p)
    d3 = done_flags(path)
    assert d3 is not None and (d3 >= d2).all() and d3.sum() < N_CONFIGS

    # 4. The last run computes exactly the configurations not flagged done.
    rc, out4 = finish(start(work))
    assert rc == 0, out4[-3000:]
    assert sorted(computed(out4)) == np.nonzero(~d3)[0].tolist()

    rc, out_ref = finish(ref)
    assert rc == 0, out_ref[-3000:]
    got, attrs = read(path)
    want, ref_attrs = read(str(ref_dir / "out" / "dataset.h5"))
    assert got["done"].all()
    for name in want:
        if name != "session":
            assert np.array_equal(got[name], want[name], equal_nan=True), name
    assert attrs["sessions"] == 4 and ref_attrs["sessions"] == 1
    assert set(np.unique(got["session"])) <= {0, 1, 2, 3}

    # 5. A different deck on the complete file: clear error, exit 2, file untouched.
    before = snapshot(path)
    rc, out5 = finish(start(work, 2, "--set", "datagen.width_range=[2.0, 3.0]"))
    assert rc == 2, out5[-3000:]
    assert "different deck" in out5 and "width_range" in out5
    assert "Traceback" not in out5
    assert snapshot(path) == before


@pytest.mark.parametrize("content", [b"garbage " * 512, b""])
def test_corrupt_dataset_refused_untouched(tmp_path, content):
    work = make_workdir(tmp_path, "bad")
    (work / "out").mkdir()
    path = work / "out" / "dataset.h5"
    path.write_bytes(content)
    before = snapshot(path)
    rc, out = finish(start(work, 0))
    assert rc == 2, out[-3000:]
    assert "error" in out and "dataset.h5" in out and "Traceback" not in out
    assert snapshot(path) == before
