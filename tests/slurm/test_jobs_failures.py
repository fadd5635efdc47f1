"""Jobs that must end at once: a bad deck, an exception on one rank, a user's scancel."""

import re

import pytest

pytestmark = pytest.mark.slurm


def _ended_seconds(job: dict) -> float:
    from datetime import datetime

    fmt = "%Y-%m-%dT%H:%M:%S"
    return (
        datetime.strptime(job["EndTime"], fmt) - datetime.strptime(job["StartTime"], fmt)
    ).total_seconds()


def test_bad_deck_fails_at_check_without_resubmission(job_bad_deck):
    s = job_bad_deck
    jobs = s.wait_chain(timeout=90)
    log = s.log()
    if len(jobs) != 1:
        s.fail(f"{len(jobs)} jobs in the directory; a bad deck must not be resubmitted")
    job = jobs[0]
    if job["JobState"] != "FAILED" or not job["ExitCode"].startswith("2:"):
        s.fail(f"state {job['JobState']} exit {job['ExitCode']}; expected FAILED with exit 2")
    # the deck's own messages, every problem at once, no traceback, no srun
    for text in (
        "[dynamics] dt = -0.1: must be > 0",
        "[dynamics] t_ned = 100.0: unknown key (did you mean 't_end'?)",
        "failed --check (exit 2): not started, not resubmitted",
    ):
        if text not in log:
            s.fail(f"missing in the job log: {text!r}")
    if "Traceback" in log or "srun" in log:
        s.fail("a bad deck must stop before srun, without a traceback")
    if _ended_seconds(job) > 20:
        s.fail(f"the job took {_ended_seconds(job)} s to fail")


def test_exception_on_one_rank_ends_the_job(job_fault):
    s = job_fault
    jobs = s.wait_chain(timeout=120)
    log = s.log()
    if len(jobs) != 1:
        s.fail("a crashed run must not be resubmitted")
    job = jobs[0]
    if job["JobState"] != "FAILED" or job["ExitCode"].startswith("0:"):
        s.fail(f"state {job['JobState']} exit {job['ExitCode']}; expected FAILED, non-zero")
    if "injected fault on rank 1" not in log:
        s.fail("the traceback of rank 1 is not in the log")
    if not re.search(r"the run failed \(exit [1-9]\d*\): not resubmitted", log):
        s.fail("the template did not report the failure")
    # t_end = 1e5 would take hours: the other rank was ended, not left to the time limit
    if _ended_seconds(job) > 60:
        s.fail(f"the job ran {_ended_seconds(job)} s after the fault")


def test_scancel_ends_the_chain(job_cancel):
    """scancel sends SIGTERM, not the warning: the ranks may checkpoint, but the job must
    not resubmit itself, or a chain could never be stopped."""
    s = job_cancel
    jobs = s.wait_chain(timeout=120)
    log = s.log()
    if len(jobs) != 1 or "submitted as job" in log:
        s.fail("a cancelled job resubmitted itself")
    if jobs[0]["JobState"] != "CANCELLED":
        s.fail(f"state {jobs[0]['JobState']}; expected CANCELLED")
    if "not warned of" not in log:
        s.fail("the batch shell did not report the unwarned stop")
