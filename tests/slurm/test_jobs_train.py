"""jobs/train.sbatch: fits the small model to the datagen job's dataset (afterok on it)."""

import pytest

pytestmark = pytest.mark.slurm


def test_train_job_writes_the_model(job_train):
    s = job_train
    jobs = s.wait_chain(timeout=240)
    if len(jobs) != 1:
        s.fail(f"{len(jobs)} jobs; a finished training run must not resubmit")
    job = jobs[0]
    if job["JobState"] != "COMPLETED" or job["ExitCode"] != "0:0":
        s.fail(f"state {job['JobState']} exit {job['ExitCode']}")
    model = s.workdir / "model.pt"
    if not model.is_file() or model.stat().st_size == 0:
        s.fail("no model file model.pt")
    from hpcspin.lattice import make_lattice
    from hpcspin.ml import load_model

    m = load_model(str(model), lattice=make_lattice("chain", 16))
    assert m.head == "E+vector" and m.spec.radius == 2
    assert "finished (segment 1)" in s.log() and "ranks 2 x 1" in s.log()
