"""Run lock and file ownership of an output directory; the fault-injection plan."""

import json
import os
import socket
import subprocess
import sys
import time

import h5py
import pytest

from hpcspin import faults
from hpcspin.errors import HpcspinError
from hpcspin.io import keys
from hpcspin.io.outdir import (
    LockHeld,
    RunLock,
    check_replaceable,
    h5_kind,
    lock_path,
    read_lock,
    removable,
)


def _write_lock(path, **rec):
    base = {"host": socket.gethostname(), "pid": os.getpid(), "task": "dynamics"}
    path.write_text(json.dumps({**base, **rec}))


@pytest.fixture
def live_hpcspin_process():
    """A live process whose command line names hpcspin (a stand-in for a running run)."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "hpcspin"])
    deadline = time.time() + 10
    while time.time() < deadline:  # until the command line is visible in /proc
        with open(f"/proc/{p.pid}/cmdline", "rb") as fh:
            if b"hpcspin" in fh.read():
                break
        time.sleep(0.05)
    yield p.pid
    p.kill()
    p.wait()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid  # reaped: no such process any more (pids are not reused this fast)


def test_lock_records_holder_and_is_released(tmp_path):
    lock = RunLock(lock_path(str(tmp_path)), "datagen")
    assert lock.acquire() is None
    rec = read_lock(lock.path)
    assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname()
    assert rec["task"] == "datagen" and "job_id" in rec and "started" in rec
    lock.release()
    assert not os.path.exists(lock.path)


def test_second_run_is_refused_naming_the_holder(tmp_path, live_hpcspin_process):
    path = tmp_path / ".hpcspin.lock"
    _write_lock(path, pid=live_hpcspin_process, job_id="4711")
    with pytest.raises(LockHeld) as err:
        RunLock(str(path), "dynamics").acquire()
    msg = str(err.value)
    assert f"pid {live_hpcspin_process}" in msg and "SLURM job 4711" in msg
    assert str(path) in msg and err.value.exit_code == 2
    assert read_lock(str(path))["pid"] == live_hpcspin_process  # untouched


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / ".hpcspin.lock"
    _write_lock(path, pid=dead_pid())
    lock = RunLock(str(path), "dynamics")
    note = lock.acquire()
    assert note and "stale" in note and "is gone" in note
    assert read_lock(str(path))["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_lock_of_another_host_is_refused(tmp_path):
    path = tmp_path / ".hpcspin.lock"
    _write_lock(path, host="some-other-node", pid=dead_pid())
    with pytest.raises(LockHeld, match="some-other-node.*remove"):
        RunLock(str(path), "dynamics").acquire()


def test_lock_of_an_earlier_attempt_of_this_slurm_job_is_stale(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    path = tmp_path / ".hpcspin.lock"
    _write_lock(path, host="other-node", pid=1, job_id="99")
    assert "earlier attempt" in RunLock(str(path), "dynamics").acquire()


def test_release_leaves_a_lock_someone_else_took(tmp_path):
    lock = RunLock(str(tmp_path / "x.lock"), "train")
    lock.acquire()
    _write_lock(tmp_path / "x.lock", pid=12345, token="theirs")
    lock.release()
    assert (tmp_path / "x.lock").exists()


def _h5(path, kind=None):
    with h5py.File(path, "w") as f:
        if kind:
            f.attrs[keys.KIND] = kind
        f["x"] = [1.0]


def test_ownership_by_name_and_kind(tmp_path):
    ours, foreign, other_kind = (str(tmp_path / n) for n in ("a.h5", "b.h5", "c.h5"))
    _h5(ours, "checkpoint")
    _h5(foreign)
    _h5(other_kind, "dataset")
    (tmp_path / "d.h5").write_bytes(b"not hdf5")
    assert h5_kind(ours) == "checkpoint" and h5_kind(foreign) is None
    assert h5_kind(str(tmp_path / "d.h5")) is None
    mine, rest = removable([ours, foreign, other_kind, str(tmp_path / "d.h5")], "checkpoint")
    assert mine == [ours] and len(rest) == 3


def test_check_replaceable(tmp_path):
    check_replaceable(str(tmp_path / "missing.h5"), "trajectory", "[x] file")
    ours, foreign = str(tmp_path / "t.h5"), str(tmp_path / "notes.txt")
    _h5(ours, "trajectory")
    check_replaceable(ours, "trajectory", "[x] file")
    with pytest.raises(HpcspinError, match="an hpcspin 'trajectory' file: refusing"):
        check_replaceable(ours, "dataset", "[x] file")
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(HpcspinError, match="not a file hpcspin wrote"):
        check_replaceable(foreign, "model", "[model] file", probe=lambda p: None)
    with pytest.raises(HpcspinError, match="is a directory"):
        check_replaceable(str(tmp_path), "model", "[model] file")


def test_fault_plan_parsing_and_counting(monkeypatch):
    assert faults.parse("a@1:3, b@*") == {"a": ("1", 3), "b": ("*", 1)}
    for bad in ("a", "a@x", "@1", "a@1:z"):
        with pytest.raises(ValueError):
            faults.parse(bad)
    monkeypatch.setenv(faults.ENV, "here@0:2")
    monkeypatch.setenv("HPCSPIN_FAULT_RANK", "1")
    faults.reset()
    try:
        faults.set_rank(0)
        faults.fault_point("here")  # first call: passes
        faults.fault_point("task_start")  # planned for rank 1 only
        with pytest.raises(faults.InjectedFault, match="injected fault on rank 0 at 'here'"):
            faults.fault_point("here")
        faults.fault_point("here")  # only the count-th call raises
        faults.set_rank(1)
        with pytest.raises(faults.InjectedFault):
            faults.fault_point("task_start")  # HPCSPIN_FAULT_RANK = task_start@1
    finally:
        monkeypatch.delenv(faults.ENV)
        monkeypatch.delenv("HPCSPIN_FAULT_RANK")
        faults.reset()
        faults.set_rank(0)
