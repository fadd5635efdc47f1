"""jobs/hpcspin_job.sh when the launcher itself is signalled (no SLURM needed).

A stand-in ``srun`` on PATH runs the ranks with ``mpirun``, which returns 1 on SIGTERM
although every rank checkpoints and exits 75. The template must go by the ranks'
statuses (recorded in $HPCSPIN_EXIT_FILE) and report 75, not a failure; a rank that
really fails must still fail the job.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DECK = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
FAKE_SRUN = """#!/bin/bash
# srun stand-in: options dropped, the rest run under mpirun (which gets the signals).
n=1
while [[ $1 == --* ]]; do
    [[ $1 == --ntasks=* ]] && n=${1#--ntasks=}
    shift
done
exec mpirun -n "$n" --oversubscribe --bind-to none "$@"
"""

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None, reason="needs mpirun")


def job(tmp_path, *sets, fault=None):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "srun").write_text(FAKE_SRUN)
    (bindir / "srun").chmod(stat.S_IRWXU)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "HPCSPIN_"))}
    env.update(
        PATH=f"{bindir}{os.pathsep}{env['PATH']}",
        SLURM_NTASKS="2",
        HPCSPIN_PYTHON=sys.executable,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
    )
    if fault:
        env["HPCSPIN_FAULT"] = fault
    cmd = ["bash", os.path.join(ROOT, "jobs", "dynamics.sbatch"), DECK]
    cmd += ["--set", f'output.dir="{tmp_path / "run"}"', "--set", "output.plots=false"]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_sigterm_to_the_batch_shell_reports_the_ranks_status(tmp_path):
    p = job(tmp_path, "dynamics.t_end=1e5", "output.checkpoint_every=40")
    ckdir = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 90
    while time.time() < deadline and not (ckdir.exists() and os.listdir(ckdir)):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)  # scancel: the batch shell forwards it to "srun"
    out, _ = p.communicate(timeout=90)
    assert "the launcher returned 1 after the signal, but all 2 ranks exited 75" in out, out
    assert p.returncode == 75, out
    assert "not resubmitted" in out and "run failed" not in out
    assert not list(tmp_path.glob(".hpcspin-exit.*"))


def test_a_rank_failure_after_a_signal_still_fails(tmp_path):
    # The first checkpoint is the one the signal asks for; rank 1 fails writing it.
    p = job(tmp_path, "dynamics.t_end=1e5", fault="checkpoint_write@1")
    traj = tmp_path / "run" / "trajectory.h5"
    deadline = time.time() + 90
    while time.time() < deadline and not traj.exists():
        time.sleep(0.2)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=90)
    assert "injected fault on rank 1 at 'checkpoint_write'" in out, out
    assert p.returncode not in (0, 75) and "the run failed" in out, out
