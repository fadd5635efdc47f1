"""Fixtures for the SLURM suite: the cluster guard, sbatch/scontrol helpers, job waits.

The suite submits real jobs (jobs/*.sbatch) to the private one-node cluster that
tests/slurm/cluster.sh started (SLURM_CONF from ``cluster.sh env``), or, only when the
user asks for it with HPCSPIN_SLURM_PARTITION=..., to that partition of whatever SLURM
the environment points at. Anything else is refused before a single sbatch.

Jobs are slow to start and the machine is small, so every scenario is a session
fixture that only *submits* (and, for interruptions, starts a watcher thread that sends
the signal at the right moment); a session-wide autouse fixture submits the scenarios
of all collected tests at once, and each test then waits for its own jobs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "jobs"
DECKS = Path(__file__).resolve().parent / "decks"
CLUSTER_NAME = "hpcspin-test"
PARTITION = "hpcspin"
TERMINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}


def _run(cmd: list[str], env=None, check=True, timeout=30) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def parse_scontrol(line: str) -> dict:
    """One ``scontrol show job -o`` line as a dict (values are the text after '=')."""
    out = {}
    for tok in line.split():
        key, sep, val = tok.partition("=")
        if sep and key not in out:
            out[key] = val
    return out


@dataclass
class Slurm:
    """The cluster the suite may use: partition and helpers around the SLURM clients."""

    partition: str
    private: bool

    def sbatch(self, script: str, *args: str, workdir: Path, options=(), env=None) -> int:
        """Submit ``jobs/<script>`` with hpcspin arguments; returns the job id."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        cmd = [
            "sbatch",
            "--parsable",
            f"--partition={self.partition}",
            f"--chdir={workdir}",
            "--output=job-%j.out",
            *options,
            str(JOBS / script),
            *args,
        ]
        r = _run(cmd, env=full_env)
        return int(r.stdout.strip().split(";")[0])

    def job(self, jobid: int) -> dict:
        """The job's record (empty once slurmctld forgot it, MinJobAge after its end)."""
        r = _run(["scontrol", "show", "job", "-o", str(jobid)], check=False)
        return parse_scontrol(r.stdout) if r.returncode == 0 else {}

    def jobs_in(self, workdir: Path) -> list[dict]:
        """Every job that slurmctld knows with this working directory, by job id."""
        r = _run(["scontrol", "show", "job", "-o"], check=False)
        jobs = [parse_scontrol(line) for line in r.stdout.splitlines() if line.strip()]
        jobs = [j for j in jobs if j.get("WorkDir") == str(workdir)]
        return sorted(jobs, key=lambda j: int(j["JobId"]))

    def wait_job(self, jobid: int, timeout: float) -> dict:
        """Wait until one job has ended; its record (fails the test on time-out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(jobid)
            if job.get("JobState") in TERMINAL:
                return job
            time.sleep(0.5)
        pytest.fail(f"job {jobid} still not ended after {timeout:.0f} s: {self.job(jobid)}")
        return {}

    def signal_batch(self, jobid: int, sig: str = "USR1") -> None:
        """Signal the batch shell only, as ``--signal=B:SIG@T`` does before the limit."""
        _run(["scancel", "--batch", f"--signal={sig}", str(jobid)])


def logs_text(workdir: Path) -> str:
    """All job logs of a scenario, for failure messages."""
    parts = []
    for p in sorted(workdir.glob("job-*.out")):
        parts.append(f"===== {p} =====\n{p.read_text(errors='replace')}")
    return "\n".join(parts) or f"(no job log in {workdir})"


@dataclass
class Scenario:
    """Jobs submitted for one test, in their own working directory."""

    slurm: Slurm
    workdir: Path
    first: int
    name: str
    notes: list[str] = field(default_factory=list)
    watcher: threading.Thread | None = None

    def jobs(self) -> list[dict]:
        """This scenario's jobs: its directory's, from the first one on (a kept cluster
        may remember jobs of an earlier run in the same directory)."""
        return [j for j in self.slurm.jobs_in(self.workdir) if int(j["JobId"]) >= self.first]

    def log(self) -> str:
        """The job logs (every segment appends to the first job's log)."""
        return logs_text(self.workdir)

    def fail(self, msg: str) -> None:
        """Fail the test with the scenario's job records and logs attached."""
        recs = "\n".join(
            f"job {j['JobId']}: {j.get('JobState')} exit {j.get('ExitCode')}" for j in self.jobs()
        )
        notes = "\n".join(self.notes)
        pytest.fail(f"{self.name}: {msg}\n{notes}\n{recs}\n{self.log()}", pytrace=False)

    def wait_chain(self, timeout: float) -> list[dict]:
        """Wait until every job of the working directory has ended; returns them by id.

        A segment submits the next one just before it ends, so the chain is over when
        no job is pending or running and the newest job is in a terminal state.
        """
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            jobs = self.jobs()
            if jobs and all(j.get("JobState") in TERMINAL for j in jobs):
                # a resubmission is seen before its parent ends; give it a moment
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.5:
                    if self.watcher is not None:
                        self.watcher.join(timeout=5)
                    return jobs
            else:
                quiet_since = None
            time.sleep(0.5)
        self.fail(f"jobs still running after {timeout:.0f} s (not a hang: a time-out of the test)")
        return []

    def wait_for_text(self, pattern: str, timeout: float) -> bool:
        """Wait until the job log matches ``pattern`` (regex); False on time-out."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            if rx.search(self.log()):
                return True
            time.sleep(0.25)
        return False


def _cluster_problem() -> str | None:
    """Why this environment is not a cluster the suite may submit to (None: it is)."""
    conf = os.environ.get("SLURM_CONF", "")
    if not conf:
        return "SLURM_CONF is not set; run the suite with `make test-slurm`"
    marker = Path(os.environ.get("HPCSPIN_SLURM_MARKER", Path(conf).parent / "hpcspin-test.marker"))
    if not marker.is_file() or Path(conf).parent != marker.parent:
        return f"no marker {marker} next to {conf}: not the cluster tests/slurm/cluster.sh started"
    try:
        r = _run(["scontrol", "show", "config"], timeout=15)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"scontrol does not answer: {exc}"
    m = re.search(r"^ClusterName\s*=\s*(\S+)", r.stdout, re.M)
    if not m or m.group(1) != CLUSTER_NAME:
        return f"cluster name is {m.group(1) if m else '?'}, not {CLUSTER_NAME}"
    return None


@pytest.fixture(scope="session")
def slurm() -> Slurm:
    """The cluster to submit to; refuses anything but the private test cluster."""
    part = os.environ.get("HPCSPIN_SLURM_PARTITION")
    if part:  # the user points the suite at a test partition of a real cluster on purpose
        return Slurm(partition=part, private=False)
    problem = _cluster_problem()
    if problem:
        msg = f"refusing to submit jobs: {problem}"
        if os.environ.get("HPCSPIN_SLURM_SUITE"):
            pytest.exit(msg, returncode=3)
        pytest.skip(msg)
    return Slurm(partition=PARTITION, private=True)


@pytest.fixture(scope="session")
def workroot(tmp_path_factory) -> Path:
    """Where scenario directories go: a temporary directory, or a shared one for a real
    cluster (HPCSPIN_SLURM_WORKDIR; compute nodes rarely see the login node's /tmp)."""
    shared = os.environ.get("HPCSPIN_SLURM_WORKDIR")
    if shared:
        root = Path(shared) / f"hpcspin-slurm-{os.getpid()}"
        root.mkdir(parents=True, exist_ok=True)
        return root
    if os.environ.get("HPCSPIN_SLURM_PARTITION"):
        pytest.exit("with HPCSPIN_SLURM_PARTITION, set HPCSPIN_SLURM_WORKDIR to a shared directory")
    return tmp_path_factory.mktemp("slurm")


def signal_when(scen: Scenario, pattern: str, sig: str = "USR1", timeout: float = 120) -> None:
    """Start a thread that sends SIG to the first job's batch shell once its log matches
    (sig "cancel": a plain ``scancel JOB``, SIGTERM to everything as a user's cancel)."""

    def watch():
        if scen.wait_for_text(pattern, timeout):
            scen.notes.append(f"{time.strftime('%T')} sent {sig} to job {scen.first}")
            if sig == "cancel":
                _run(["scancel", str(scen.first)])
            else:
                scen.slurm.signal_batch(scen.first, sig)
        else:
            scen.notes.append(f"never saw /{pattern}/ in the log; no signal sent")

    scen.watcher = threading.Thread(target=watch, daemon=True)
    scen.watcher.start()


def submit(slurm: Slurm, workroot: Path, name: str, script: str, deck: str, *args, **kw):
    """Submit one scenario in a new directory ``workroot/name``; returns a Scenario."""
    wd = workroot / name
    wd.mkdir(parents=True, exist_ok=True)
    options = ["-n", "2", f"--job-name=t-{name}", *kw.pop("options", ())]
    jobid = slurm.sbatch(script, str(DECKS / deck), *args, workdir=wd, options=options, **kw)
    return Scenario(slurm=slurm, workdir=wd, first=jobid, name=name)


# -- the scenarios: each a session fixture that submits and returns at once -----------------
# The order of SCENARIO_ORDER is the submission order (longest first).

SCENARIO_ORDER = [
    "job_dyn_timelimit",
    "job_dyn_interrupted",
    "job_dyn_early",
    "job_dyn_reference",
    "job_datagen_interrupted",
    "job_train",  # right after the chain it waits for
    "job_datagen_reference",
    "job_fault",
    "job_cancel",
    "job_bad_deck",
]


@pytest.fixture(scope="session")
def job_dyn_reference(slurm, workroot) -> Scenario:
    """dynamics deck, run without interruption."""
    return submit(slurm, workroot, "dyn_ref", "dynamics.sbatch", "dynamics.toml")


@pytest.fixture(scope="session")
def job_dyn_interrupted(slurm, workroot) -> Scenario:
    """The same deck, warned (batch-shell SIGUSR1) once the drive is under way."""
    s = submit(slurm, workroot, "dyn_int", "dynamics.sbatch", "dynamics.toml")
    signal_when(s, r"INFO hpcspin\.progress: steps [1-9]\d*/")
    return s


@pytest.fixture(scope="session")
def job_dyn_early(slurm, workroot) -> Scenario:
    """The same deck, warned while the ranks start (before hpcspin has its handler)."""
    s = submit(slurm, workroot, "dyn_early", "dynamics.sbatch", "dynamics.toml")
    signal_when(s, r"hpcspin task 'dynamics' on 2 rank")
    return s


@pytest.fixture(scope="session")
def job_dyn_timelimit(slurm, workroot) -> Scenario:
    """A run far too long for --time=1 --signal=B:USR1@45: SLURM warns each segment."""
    return submit(
        slurm,
        workroot,
        "dyn_time",
        "dynamics.sbatch",
        "dynamics.toml",
        "--set",
        "dynamics.t_end=100000.0",
        options=["--time=1", "--signal=B:USR1@45"],
        env={"HPCSPIN_MAX_SEGMENTS": "2"},
    )


@pytest.fixture(scope="session")
def job_datagen_reference(slurm, workroot) -> Scenario:
    """datagen deck, run without interruption (its dataset also feeds the train job)."""
    return submit(slurm, workroot, "gen_ref", "datagen.sbatch", "datagen.toml")


@pytest.fixture(scope="session")
def job_datagen_interrupted(slurm, workroot) -> Scenario:
    """The same deck, warned once some configurations are flagged done."""
    s = submit(slurm, workroot, "gen_int", "datagen.sbatch", "datagen.toml")
    signal_when(s, r"INFO hpcspin\.progress: configs [1-9]\d*/")
    return s


@pytest.fixture(scope="session")
def job_train(slurm, workroot, request) -> Scenario:
    """train deck on the dataset of the *warned* datagen chain, submitted with
    ``--dependency=afterok:<its first segment>`` as a user would: the chain must make
    the train job wait for its last segment, not its first."""
    gen = request.getfixturevalue("job_datagen_interrupted")
    dataset = gen.workdir / "data" / "dataset.h5"
    return submit(
        slurm,
        workroot,
        "train",
        "train.sbatch",
        "train.toml",
        "--set",
        f'train.dataset="{dataset}"',
        options=[f"--dependency=afterok:{gen.first}"],
    )


@pytest.fixture(scope="session")
def job_fault(slurm, workroot) -> Scenario:
    """An exception on rank 1 at task start (HPCSPIN_FAULT_RANK=1) in a long run."""
    return submit(
        slurm,
        workroot,
        "fault",
        "dynamics.sbatch",
        "dynamics.toml",
        "--set",
        "dynamics.t_end=100000.0",
        env={"HPCSPIN_FAULT_RANK": "1"},
    )


@pytest.fixture(scope="session")
def job_cancel(slurm, workroot) -> Scenario:
    """A long run cancelled by the user (scancel) once it computes: the chain must end."""
    s = submit(
        slurm, workroot, "cancel", "dynamics.sbatch", "dynamics.toml", "--set", "dynamics.t_end=1e5"
    )
    signal_when(s, r"INFO hpcspin\.progress: steps [1-9]\d*/", sig="cancel")
    return s


@pytest.fixture(scope="session")
def job_bad_deck(slurm, workroot) -> Scenario:
    """A deck with mistakes: the job must fail at --check."""
    return submit(slurm, workroot, "bad", "dynamics.sbatch", "bad.toml")


@pytest.fixture(scope="session", autouse=True)
def _submit_all(request):
    """Submit the scenarios of every collected test up front, longest first."""
    wanted = {n for item in request.session.items for n in getattr(item, "fixturenames", ())}
    for name in SCENARIO_ORDER:
        if name in wanted:
            try:
                request.getfixturevalue(name)
            except pytest.skip.Exception:
                pass  # the test that uses it is skipped with the reason
