"""A dynamics run whose field turns non-finite ends with exit 2; its checkpoints stay."""

import os
import subprocess
import sys

from hpcspin.io.trajectory import read_trajectory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DECK = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
ENV = dict(
    os.environ,
    OMP_NUM_THREADS="1",
    PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
)


def run(out, *sets, extra=()):
    cmd = [sys.executable, "-m", "hpcspin", DECK, "--set", f'output.dir="{out}"']
    cmd += ["--set", "output.plots=false", "--set", "output.checkpoint_every=5"]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run([*cmd, *extra], env=ENV, capture_output=True, text=True, timeout=120)


def test_overflowing_field_stops_with_exit_2_and_keeps_the_checkpoints(tmp_path):
    out = tmp_path / "run"
    assert run(out, "dynamics.t_end=2.0").returncode == 0  # 10 steps, checkpoints 5, 10
    ck = out / "checkpoints"
    before = {n: (ck / n).read_bytes() for n in os.listdir(ck)}
    frames = read_trajectory(out / "trajectory.h5")["step"]
    # Continue it (explicit restart: changed settings allowed) with a field that overflows.
    r = run(
        out,
        "dynamics.t_end=4.0",
        "spins.B=[0.0, 0.0, 1e308]",
        extra=("--restart", str(ck / "checkpoint_0000000010.h5")),
    )
    err = r.stdout + r.stderr
    assert r.returncode == 2, err
    assert "step 11 of the drive: non-finite value at site" in err
    assert "force provider 'classical'" in err and "Traceback" not in err
    assert {n: (ck / n).read_bytes() for n in os.listdir(ck)} == before
    assert list(read_trajectory(out / "trajectory.h5")["step"]) == list(frames)
    assert not (out / ".hpcspin.lock").exists()
