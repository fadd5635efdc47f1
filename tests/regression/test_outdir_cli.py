"""Ownership of the output directory through the command line (exit status 2 cases)."""

import os
import subprocess
import sys
import time

import pytest

from hpcspin.io.trajectory import read_trajectory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DECK = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
ENV = dict(
    os.environ,
    OMP_NUM_THREADS="1",
    PYTHONUNBUFFERED="1",
    PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
)


def run(out, *sets, deck=DECK):
    cmd = [sys.executable, "-m", "hpcspin", deck, "--set", f'output.dir="{out}"']
    cmd += ["--set", "output.plots=false", "--set", "dynamics.t_end=2.0"]
    for s in sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_log_names_directory_and_files_and_lock_is_released(tmp_path):
    rc, out = run(tmp_path / "a")
    assert rc == 0, out
    assert f"output directory {tmp_path / 'a'} (run lock" in out
    for f in ("trajectory.h5", "checkpoints/checkpoint_<step>.h5", "summary.json"):
        assert str(tmp_path / "a" / f) in out
    assert not (tmp_path / "a" / ".hpcspin.lock").exists()


def test_second_run_into_a_locked_directory_is_refused(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "hpcspin"])
    try:
        time.sleep(0.5)
        lock = f'{{"host": "{os.uname().nodename}", "pid": {holder.pid}, "job_id": "77"}}'
        (out / ".hpcspin.lock").write_text(lock)
        rc, log = run(out)
    finally:
        holder.kill()
        holder.wait()
    assert rc == 2, log
    assert f"pid {holder.pid}" in log and "SLURM job 77" in log and "Traceback" not in log
    assert not (out / "trajectory.h5").exists()
    rc, log = run(out)  # the holder is gone now: stale lock taken over
    assert rc == 0 and "took over the stale run lock" in log, log


def test_trajectory_of_other_settings_is_not_overwritten(tmp_path):
    out = tmp_path / "done"
    assert run(out)[0] == 0
    for f in os.listdir(out / "checkpoints"):
        os.remove(out / "checkpoints" / f)  # a finished run whose checkpoints were removed
    before = read_trajectory(out / "trajectory.h5")["spins"]
    rc, log = run(out, "dynamics.alpha=0.2")
    assert rc == 2 and "dynamics.alpha: 0.1 -> 0.2" in log and "Traceback" not in log, log
    assert (read_trajectory(out / "trajectory.h5")["spins"] == before).all()
    rc, log = run(out)  # same settings: redone from the start, with a warning
    assert rc == 0 and "same settings, no checkpoint to continue from" in log, log
    rc, log = run(out, "dynamics.alpha=0.2", 'output.resume="never"')
    assert rc == 0 and "will be overwritten (resume = 'never')" in log, log


@pytest.mark.parametrize("content", [b"my notes", b"\x89HDF\r\n\x1a\n garbage"])
def test_foreign_trajectory_file_is_refused(tmp_path, content):
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "trajectory.h5").write_bytes(content)
    rc, log = run(out)
    assert rc == 2 and "not a trajectory hpcspin wrote" in log, log
    assert (out / "trajectory.h5").read_bytes() == content
