"""jobs/datagen.sbatch: a plain run, and a warned run that resumes without recomputing."""

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

pytestmark = pytest.mark.slurm

DECKS = Path(__file__).resolve().parent / "decks"
N_CONFIGS = 128  # tests/slurm/decks/datagen.toml
ROWS = ("spins", "field", "field_eq", "spin_density", "bias", "mu", "current", "kind")


def _read(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in (*ROWS, "done", "session")}, dict(f.attrs)


def _completed(s, jobs):
    for j in jobs:
        if j["JobState"] != "COMPLETED" or j["ExitCode"] != "0:0":
            s.fail(f"job {j['JobId']}: {j['JobState']} exit {j['ExitCode']}")


@pytest.fixture(scope="module")
def gen_reference(job_datagen_reference):
    s = job_datagen_reference
    jobs = s.wait_chain(timeout=180)
    _completed(s, jobs)
    if len(jobs) != 1:
        s.fail("an uninterrupted run must not resubmit")
    return s


def test_datagen_job_writes_the_dataset(gen_reference):
    s = gen_reference
    path = s.workdir / "data" / "dataset.h5"
    if not path.is_file():
        s.fail("no data/dataset.h5")
    d, attrs = _read(path)
    assert d["done"].all() and d["field"].shape == (N_CONFIGS, 16, 3)
    assert np.isfinite(d["field"]).all() and (d["session"] == 0).all()
    assert int(attrs["n_ranks"]) == 2
    assert f"{N_CONFIGS} configs computed this run ({N_CONFIGS}/{N_CONFIGS} done)" in s.log()


def test_warned_datagen_job_computes_only_the_missing_configurations(
    gen_reference, job_datagen_interrupted
):
    s = job_datagen_interrupted
    jobs = s.wait_chain(timeout=180)
    log = s.log()
    if len(jobs) != 2:
        s.fail(f"expected 2 segments, got {len(jobs)}")
    _completed(s, jobs)
    m = re.search(r"datagen stopped on a signal: (\d+)/(\d+) configurations complete", log)
    if not m or "warned by SLURM (SIGUSR1)" not in log:
        s.fail("the first segment did not stop on the warning")
    k = int(m.group(1))
    if not 0 < k < N_CONFIGS:
        s.fail(f"stopped with {k} configurations done: the warning came too early or late")
    rest = N_CONFIGS - k
    for text in (
        f"{N_CONFIGS} configurations, {k} done, {rest} to compute (session 1)",
        f"{rest} configs computed this run ({N_CONFIGS}/{N_CONFIGS} done)",
    ):
        if text not in log:
            s.fail(f"missing in the log: {text!r}")
    got, attrs = _read(s.workdir / "data" / "dataset.h5")
    ref, _ = _read(gen_reference.workdir / "data" / "dataset.h5")
    # each row computed exactly once: by session 0 (before the warning) or 1 (after)
    assert got["done"].all() and int(attrs["sessions"]) == 2
    assert (got["session"] == 0).sum() == k and (got["session"] == 1).sum() == rest
    for key in ROWS:
        if got[key].tobytes() != ref[key].tobytes():
            s.fail(f"'{key}' differs from the uninterrupted run")


def test_user_error_at_run_time_fails_without_resubmission(gen_reference):
    """A mistake only the run can see (resume = "never" onto an existing dataset): the
    ranks exit 2 together, the job is FAILED with exit 2 and nothing is resubmitted."""
    s = gen_reference
    before = (s.workdir / "data" / "dataset.h5").read_bytes()
    jobid = s.slurm.sbatch(
        "datagen.sbatch",
        str(DECKS / "datagen.toml"),
        "--set",
        'output.resume="never"',
        workdir=s.workdir,
        options=["-n", "2", "--job-name=t-gen_never", "--output=never-%j.out"],
    )
    job = s.slurm.wait_job(jobid, timeout=90)
    log = (s.workdir / f"never-{jobid}.out").read_text()
    if job.get("JobState") != "FAILED" or not job.get("ExitCode", "").startswith("2:"):
        s.fail(f"job {jobid} ended {job.get('JobState')} {job.get('ExitCode')}:\n{log}")
    for text in ("resume = 'never'", "the run failed (exit 2): not resubmitted"):
        if text not in log:
            s.fail(f"missing {text!r} in the log:\n{log}")
    if "Traceback" in log or "submitted as job" in log:
        s.fail(f"a traceback or a resubmission:\n{log}")
    if (s.workdir / "data" / "dataset.h5").read_bytes() != before:
        s.fail("the refused run changed the dataset")
