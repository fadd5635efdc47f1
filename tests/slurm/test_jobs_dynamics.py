"""jobs/dynamics.sbatch: a plain run, a warned run that resubmits itself, a real time limit."""

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.slurm

DECKS = Path(__file__).resolve().parent / "decks"
PER_FRAME = ("spins", "time", "step", "wall_x", "magnetisation", "energy", "current")


def _frames(path):
    with h5py.File(path, "r") as f:
        n = int(f.attrs["n_frames_done"])
        return n, {k: f[k][:n] for k in PER_FRAME}


def _finished(s, jobs):
    last = jobs[-1]
    if last["JobState"] != "COMPLETED" or last["ExitCode"] != "0:0":
        s.fail(f"last job {last['JobId']}: {last['JobState']} exit {last['ExitCode']}")


@pytest.fixture(scope="module")
def reference(job_dyn_reference):
    s = job_dyn_reference
    jobs = s.wait_chain(timeout=180)
    _finished(s, jobs)
    if len(jobs) != 1:
        s.fail("an uninterrupted run must not resubmit")
    return s


def test_dynamics_job_writes_its_outputs(reference):
    s = reference
    out = s.workdir / "out"
    for p in ("trajectory.h5", "summary.json"):
        if not (out / p).is_file():
            s.fail(f"missing output {p}")
    if not list((out / "checkpoints").glob("*.h5")):
        s.fail("no checkpoint written")
    summary = json.loads((out / "summary.json").read_text())
    n, fr = _frames(out / "trajectory.h5")
    # t_end = 200, dt = 0.1, a frame every 20 steps, plus the initial frame
    assert summary["n_ranks"] == 2 and summary["steps"] == 2000
    assert n == 101 and fr["step"][-1] == 2000
    assert "segment 1/10" in s.log() and "finished (segment 1)" in s.log()


def test_finished_run_submitted_again_does_no_work(reference):
    """A segment that starts after the run is complete must exit 0 at once, unchanged."""
    s = reference
    traj = s.workdir / "out" / "trajectory.h5"
    before = traj.read_bytes()
    jobid = s.slurm.sbatch(
        "dynamics.sbatch",
        str(DECKS / "dynamics.toml"),
        workdir=s.workdir,
        options=["-n", "2", "--job-name=t-dyn_again", "--output=again-%j.out"],
    )
    job = s.slurm.wait_job(jobid, timeout=90)
    log = (s.workdir / f"again-{jobid}.out").read_text()
    if job.get("JobState") != "COMPLETED" or "finished (segment 1)" not in log:
        s.fail(f"job {jobid} ended {job.get('JobState')} {job.get('ExitCode')}:\n{log}")
    if traj.read_bytes() != before:
        s.fail("a finished run started again changed its trajectory")
    if re.search(r"progress: (relax )?steps", log):
        s.fail(f"a finished run started again computed steps:\n{log}")


def test_warned_dynamics_job_resumes_bit_identical(reference, job_dyn_interrupted):
    s = job_dyn_interrupted
    jobs = s.wait_chain(timeout=180)
    log = s.log()
    if len(jobs) != 2:
        s.fail(f"expected 2 segments, got {len(jobs)}")
    _finished(s, jobs)
    first, second = jobs
    # the warned segment checkpoints, exits 75, resubmits and ends COMPLETED
    if first["JobState"] != "COMPLETED":
        s.fail(f"the warned segment ended {first['JobState']} {first['ExitCode']}")
    for text in (
        "warned by SLURM (SIGUSR1)",
        f"segment 2 submitted as job {second['JobId']} (starts after job {first['JobId']} ends)",
        f"job {second['JobId']} segment 2/10",
        "resuming from",
        "finished (segment 2)",
    ):
        if text not in log:
            s.fail(f"missing in the log: {text!r}")
    if not re.search(r"signal SIGUSR1: checkpoint \S+ written", log):
        s.fail("the ranks did not report a checkpoint on SIGUSR1")
    n_ref, ref = _frames(reference.workdir / "out" / "trajectory.h5")
    n, got = _frames(s.workdir / "out" / "trajectory.h5")
    if n != n_ref:
        s.fail(f"{n} frames after the restart, {n_ref} without")
    for key in PER_FRAME:
        if ref[key].tobytes() != got[key].tobytes():
            bad = np.flatnonzero([a.tobytes() != b.tobytes() for a, b in zip(ref[key], got[key])])
            s.fail(f"'{key}' differs from the uninterrupted run at frames {bad[:10]}")


def test_warning_during_start_up_is_not_lost(reference, job_dyn_early):
    """SLURM may warn seconds after the start: the ranks must neither die of SIGUSR1
    nor lose it (they start with it ignored; the batch shell repeats it)."""
    s = job_dyn_early
    jobs = s.wait_chain(timeout=180)
    if len(jobs) != 2:
        s.fail(f"expected 2 segments, got {len(jobs)}")
    _finished(s, jobs)
    log = s.log()
    if "User defined signal 1" in log or "finished (segment 2)" not in log:
        s.fail("the early warning killed the ranks or the chain did not finish")
    n_ref, ref = _frames(reference.workdir / "out" / "trajectory.h5")
    n, got = _frames(s.workdir / "out" / "trajectory.h5")
    if n != n_ref or any(ref[k].tobytes() != got[k].tobytes() for k in PER_FRAME):
        s.fail("the trajectory differs from the uninterrupted run")


def test_time_limit_warning_checkpoints_and_chain_is_bounded(reference, job_dyn_timelimit):
    """--time=1 --signal=B:USR1@45 and HPCSPIN_MAX_SEGMENTS=2 on a run far too long: SLURM
    warns both segments (15-45 s in, on its 30 s tick); the second does not resubmit."""
    s = job_dyn_timelimit
    jobs = s.wait_chain(timeout=240)
    log = s.log()
    if len(jobs) != 2:
        s.fail(f"expected exactly 2 segments (HPCSPIN_MAX_SEGMENTS=2), got {len(jobs)}")
    first, second = jobs
    if first["JobState"] != "COMPLETED":
        s.fail(f"the first segment ended {first['JobState']} {first['ExitCode']}")
    # the last segment stops at the bound: exit 75, nothing more submitted
    if second["JobState"] != "FAILED" or not second["ExitCode"].startswith("75:"):
        s.fail(f"the last segment ended {second['JobState']} {second['ExitCode']}")
    if log.count("warned by SLURM (SIGUSR1)") != 2:
        s.fail("SLURM's --signal=B:USR1 did not reach the batch shell of both segments")
    if "this was segment 2 of at most 2 (HPCSPIN_MAX_SEGMENTS): not resubmitted" not in log:
        s.fail("the bound on segments was not reported")
    # what was computed agrees bit for bit with the reference on their common frames
    n_ref, ref = _frames(reference.workdir / "out" / "trajectory.h5")
    n, got = _frames(s.workdir / "out" / "trajectory.h5")
    # (a warning seconds after a start may leave a segment no time for the drive)
    m = min(n, n_ref)
    for key in PER_FRAME:
        if ref[key][:m].tobytes() != got[key][:m].tobytes():
            s.fail(f"'{key}' differs from the reference within the first {m} frames")
