"""jobs/train.sbatch after a warned datagen chain (afterok on its first segment)."""

import re

import pytest

pytestmark = pytest.mark.slurm


def test_train_job_waits_for_the_whole_datagen_chain(job_train, job_datagen_interrupted):
    gen = job_datagen_interrupted
    gen_jobs = gen.wait_chain(timeout=180)
    s = job_train
    jobs = s.wait_chain(timeout=180)
    if len(jobs) != 1:
        s.fail(f"{len(jobs)} jobs; a finished training run must not resubmit")
    job = jobs[0]
    if job["JobState"] != "COMPLETED" or job["ExitCode"] != "0:0":
        s.fail(f"state {job['JobState']} exit {job['ExitCode']}")
    # the first datagen segment ended COMPLETED after resubmitting; the train job must
    # have been moved on to the last segment and started only after it
    moved = f"job {s.first} now waits for job {gen_jobs[-1]['JobId']}"
    if len(gen_jobs) < 2 or moved not in gen.log():
        s.fail("the datagen chain did not point the train job at its next segment")
    ended = gen_jobs[-1]["EndTime"]
    if job["StartTime"] < ended:
        s.fail(f"train started {job['StartTime']}, the datagen chain ended {ended}")
    m = re.search(r"on (\d+) configurations", s.log())
    if m and int(m.group(1)) != 128:
        s.fail(f"trained on {m.group(1)} configurations, not the whole dataset (128)")
    model = s.workdir / "model.pt"
    if not model.is_file() or model.stat().st_size == 0:
        s.fail("no model file model.pt")
    from hpcspin.lattice import make_lattice
    from hpcspin.ml import load_model

    m = load_model(str(model), lattice=make_lattice("chain", 16))
    assert m.head == "E+vector" and m.spec.radius == 2
    assert "finished (segment 1)" in s.log() and "ranks 2 x 1" in s.log()
