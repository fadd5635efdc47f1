"""An exception on any rank at any point of any task ends the whole job, quickly.

Faults are injected with HPCSPIN_FAULT=name@rank[:count] (hpcspin/faults.py) at task
start, in the middle of the run and while output is written, at 1 and 2 ranks. Every
case must end with exit status 1 within BOUND seconds (no rank left waiting in a
collective) and with the failing rank's traceback in the log. Errors the writers
expect (fault kinds "oserror", "error") raised on one rank inside an open parallel file
must end the job with exit 2 and the message instead. The normal suite runs a sample;
the full matrix is marked slow and runs with HPCSPIN_SLOW_TESTS=1.
"""

import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOUND = 40.0  # s: start-up of 1-2 ranks on a loaded 2-core machine is ~5-10 s of it
ENV = dict(
    os.environ,
    OMPI_ALLOW_RUN_AS_ROOT="1",
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
    OMPI_MCA_rmaps_base_oversubscribe="1",
    OMP_NUM_THREADS="1",
    PYTHONUNBUFFERED="1",
    PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
)
ENV.pop("HPCSPIN_FAULT", None)
ENV.pop("HPCSPIN_FAULT_RANK", None)

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpirun")

DATAGEN = """
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
n_configs = 8
biases = [-0.5, 0.5]
flush_every = 1
[output]
dir = "data"
progress_interval = 0
"""

TRAIN = """
[run]
task = "train"
seed = 5
[lattice]
kind = "chain"
length = 16
[electrons]
J = 2.0
mu = -1.0
temperature = 0.1
[model]
head = "E+vector"
radius = 2
hidden = [8]
file = "model/model.pt"
[train]
dataset = "{dataset}"
epochs = 4
batch_size = 4
patience = 4
[output]
dir = "model"
progress_interval = 0
plots = false
"""

DYNAMICS = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
NEGF = """
[run]
task = "negf"
[lattice]
kind = "chain"
length = 12
[spins]
initial = "wall"
[electrons]
J = 2.0
mu = -1.0
temperature = 0.1
bias = 0.2
[negf]
tol = 1e-7
[output]
dir = "negf"
plots = false
"""
VALIDATE = """
[run]
task = "validate"
[lattice]
kind = "chain"
length = 16
[electrons]
J = 2.0
mu = -1.0
temperature = 0.1
[spins]
initial = "wall"
[negf]
tol = 1e-5
[output]
dir = "validate"
progress_interval = 0
[validate]
models = ["{model}"]
dataset = "{dataset}"
velocity_biases = [0.2, 0.0]
velocity_t_end = 4.0
"""


def hpcspin(deck, ranks, fault, cwd, *sets, timeout=180):
    """(exit status, output, wall seconds) of a run; status None when it hung past timeout."""
    cmd = [sys.executable, "-m", "hpcspin", str(deck), "--set", "output.plots=false"]
    for s in sets:
        cmd += ["--set", s]
    if ranks > 1:
        cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", "--bind-to", "none", *cmd]
    t0 = time.perf_counter()
    env = dict(ENV, HPCSPIN_FAULT=fault) if fault else ENV
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as p:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # a hang: SIGTERM, which mpirun passes to its
            p.terminate()  # ranks (a SIGKILL of mpirun would leave them running)
            try:
                out, _ = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            return None, f"{out}\n[hung: terminated after {timeout} s]", time.perf_counter() - t0
    return p.returncode, out, time.perf_counter() - t0


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with the decks and a small dataset for training."""
    d = tmp_path_factory.mktemp("faults")
    (d / "datagen.toml").write_text(DATAGEN)
    (d / "negf.toml").write_text(NEGF)
    rc, out, _ = hpcspin(d / "datagen.toml", 1, None, d)
    assert rc == 0, out
    (d / "train.toml").write_text(TRAIN.format(dataset=d / "data" / "dataset.h5"))
    return d


@pytest.fixture(scope="module")
def trained(work):
    """A model trained on the module's dataset and a validate deck using it."""
    model = work / "trained" / "model.pt"
    rc, out, _ = hpcspin(work / "train.toml", 1, None, work, f'model.file="{model}"')
    assert rc == 0, out[-3000:]
    dataset = work / "data" / "dataset.h5"
    (work / "validate.toml").write_text(VALIDATE.format(model=model, dataset=dataset))
    return model


def deck_of(task, work, case):
    """(deck, --set overrides) of a task, writing into a directory of its own."""
    out = f'output.dir="{work / case}"'
    if task == "dynamics":
        return DYNAMICS, [out, "dynamics.t_end=40.0", "output.checkpoint_every=20"]
    if task == "train":
        return work / "train.toml", [f'model.file="{work / case / "model.pt"}"']
    return work / f"{task}.toml", [out]


# (task, fault, ranks): start, middle of the run, while writing output.
CASES = [
    ("dynamics", "task_start@1", 2),
    ("dynamics", "dynamics_step@0:30", 2),
    ("dynamics", "dynamics_step@1:3", 2),
    ("dynamics", "trajectory_frame@1:3", 2),
    ("dynamics", "checkpoint_write@0", 2),
    ("dynamics", "checkpoint_write@1:2", 2),
    ("dynamics", "checkpoint_fill@1", 2),
    ("dynamics", "checkpoint_fill@0:2", 2),
    ("dynamics", "dynamics_finish@1", 2),
    ("dynamics", "dynamics_step@0:10", 1),
    ("dynamics", "trajectory_frame@0:2", 1),
    ("datagen", "task_start@0", 2),
    ("datagen", "datagen_config@1:2", 2),
    ("datagen", "datagen_config@0:3", 2),
    ("datagen", "datagen_write@1", 2),
    ("datagen", "datagen_write@0:2", 2),
    ("datagen", "datagen_config@0:2", 1),
    ("train", "task_start@1", 2),
    ("train", "train_epoch@1:2", 2),
    ("train", "train_epoch@0", 2),
    ("train", "train_save@0", 2),
    ("train", "train_save@1", 2),
    ("train", "train_epoch@0:2", 1),
    ("negf", "task_start@1", 2),
    ("negf", "task_start@0", 1),
    ("negf", "negf_energy_block@1:3", 2),  # tol 1e-7: 5 blocks on rank 1, 6 on rank 0
    ("negf", "negf_energy_block@0:4", 2),
    ("negf", "negf_energy_block@0:5", 1),
    ("validate", "validate_run@1", 2),
    ("validate", "validate_run@0", 1),
]
SAMPLE = {
    ("dynamics", "dynamics_step@1:3", 2),
    ("dynamics", "checkpoint_fill@1", 2),
    ("datagen", "datagen_config@1:2", 2),
    ("train", "train_epoch@1:2", 2),
    ("train", "train_save@1", 2),
    ("negf", "negf_energy_block@1:3", 2),
}


def _param(case, sample=SAMPLE):
    full = pytest.mark.skipif(
        os.environ.get("HPCSPIN_SLOW_TESTS") != "1", reason="full matrix: HPCSPIN_SLOW_TESTS=1"
    )
    marks = () if case in sample else (pytest.mark.slow, full)
    return pytest.param(*case, marks=marks, id=f"{case[0]}-{case[1]}-{case[2]}r")


@pytest.mark.parametrize(("task", "fault", "ranks"), [_param(c) for c in CASES])
def test_fault_ends_the_job(request, work, task, fault, ranks):
    if task == "validate":
        request.getfixturevalue("trained")
    case = f"{task}-{fault.replace('@', '-').replace(':', '-')}-{ranks}"
    deck, sets = deck_of(task, work, case)
    rc, out, wall = hpcspin(deck, ranks, fault, work, *sets)
    rank = fault.split("@")[1].split(":")[0]
    assert rc == 1, out[-3000:]
    assert wall < BOUND, f"took {wall:.1f} s"
    assert f"injected fault on rank {rank}" in out, out[-3000:]
    assert "Traceback" in out and "InjectedFault" in out


# An error the writers expect (OSError, HpcspinError: fault kinds "oserror", "error")
# raised on ONE rank inside an open parallel file: the file must not be closed (closing
# is collective and the other rank is inside a collective write); the CLI ends the job
# with exit 2 and the failing rank's message. Each case hung before that rule.
EDGE_CASES = [
    ("dynamics", "checkpoint_fill@1:1:oserror", 2),
    ("dynamics", "trajectory_open@1:1:oserror", 2),
    ("dynamics", "trajectory_write@1:2:oserror", 2),
    ("dynamics", "checkpoint_fill@0:2:error", 2),
    ("dynamics", "trajectory_open@0:1:error", 2),
    ("dynamics", "trajectory_write@0:3:error", 2),
    ("dynamics", "checkpoint_fill@0:1:oserror", 1),
    ("dynamics", "trajectory_write@0:2:oserror", 1),
]
EDGE_SAMPLE = set(EDGE_CASES[:3])
EDGE_BOUND = 20.0  # s; a hang is cut at 60 s


@pytest.mark.parametrize(("task", "fault", "ranks"), [_param(c, EDGE_SAMPLE) for c in EDGE_CASES])
def test_expected_error_on_one_rank_inside_open_file_ends_the_job(work, task, fault, ranks):
    case = f"edge-{fault.replace('@', '-').replace(':', '-')}-{ranks}"
    deck, sets = deck_of(task, work, case)
    rc, out, wall = hpcspin(deck, ranks, fault, work, *sets, timeout=60)
    rank = fault.split("@")[1].split(":")[0]
    assert rc == 2, out[-3000:]
    assert wall < EDGE_BOUND, f"took {wall:.1f} s"
    assert "hpcspin: error: " in out and f"injected fault on rank {rank}" in out, out[-3000:]
    assert "Traceback" not in out, out[-3000:]


def test_no_fault_runs_complete(work):
    """The same decks without a fault complete (the cases above fail for the fault)."""
    for task in ("dynamics",):
        deck, sets = deck_of(task, work, f"{task}-clean")
        rc, out, _ = hpcspin(deck, 2, None, work, *sets)
        assert rc == 0, out[-3000:]


def test_model_file_not_written_by_hpcspin_is_not_overwritten(work):
    """(Uses this module's dataset.) train refuses, before training, to replace a file
    that is not an hpcspin model."""
    target = work / "precious.pt"
    target.write_bytes(b"someone's file")
    rc, out, _ = hpcspin(work / "train.toml", 1, None, work, f'model.file="{target}"')
    assert rc == 2 and "not a file hpcspin wrote: refusing to overwrite" in out, out[-2000:]
    assert "Traceback" not in out and target.read_bytes() == b"someone's file"
