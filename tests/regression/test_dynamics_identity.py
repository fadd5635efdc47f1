"""An automatic resume never continues (or reports) a run of other settings."""

import json
import os
import subprocess
import sys

import pytest

from hpcspin.io.trajectory import read_trajectory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DECK = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def run(out, *sets, extra=()):
    cmd = [sys.executable, "-m", "hpcspin", DECK, "--set", f'output.dir="{out}"']
    for s in ("output.plots=false", "dynamics.t_end=20.0", "output.checkpoint_every=20", *sets):
        cmd += ["--set", s]
    return subprocess.run([*cmd, *extra], env=ENV, capture_output=True, text=True, timeout=120)


def summary(out):
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)


@pytest.mark.slow
def test_changed_deck_is_refused_matching_restarts_and_longer_runs_continue(tmp_path):
    out = tmp_path / "run"
    r = run(out)
    assert r.returncode == 0, r.stderr
    n0 = len(read_trajectory(str(out / "trajectory.h5"))["time"])

    # same deck: nothing to do
    r = run(out)
    assert r.returncode == 0 and "nothing to do" in r.stderr + r.stdout

    # a physics change: refused with the changed keys named, exit 2, nothing touched
    r = run(out, "spins.B=[0.0, 0.0, 0.02]", "electrons.bias=0.1")
    assert r.returncode == 2
    msg = r.stderr + r.stdout
    assert "spins.B: [0.0, 0.0, 0.01] -> [0.0, 0.0, 0.02]" in msg
    assert "electrons.bias: 0.0 -> 0.1" in msg
    assert "Traceback" not in msg
    assert len(read_trajectory(str(out / "trajectory.h5"))["time"]) == n0

    # resume = "matching": the old run is replaced by a fresh one of the new settings
    r = run(out, "spins.B=[0.0, 0.0, 0.02]", 'output.resume="matching"')
    assert r.returncode == 0, r.stderr
    assert "starting afresh" in r.stderr + r.stdout
    v2 = summary(out)["velocity"]
    fresh = tmp_path / "fresh"
    assert run(fresh, "spins.B=[0.0, 0.0, 0.02]").returncode == 0
    assert summary(fresh)["velocity"] == v2

    # how long is not what: a longer t_end continues the same run
    r = run(out, "spins.B=[0.0, 0.0, 0.02]", "dynamics.t_end=30.0")
    assert r.returncode == 0, r.stderr
    assert "resuming from" in r.stderr + r.stdout
    assert read_trajectory(str(out / "trajectory.h5"))["time"][-1] == pytest.approx(30.0)


@pytest.mark.slow
def test_explicit_restart_may_change_settings(tmp_path):
    out = tmp_path / "run"
    assert run(out).returncode == 0
    ck = sorted((out / "checkpoints").glob("*.h5"))[-1]
    other = tmp_path / "other"
    r = run(other, "spins.B=[0.0, 0.0, 0.02]", extra=("--restart", str(ck)))
    assert r.returncode == 0, r.stderr
    assert "with changed settings: spins.B" in r.stderr + r.stdout
