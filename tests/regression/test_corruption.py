"""Random single-bit flips and truncations of a checkpoint, a dataset and a model file.

Every damaged copy must read back identical to the original or be refused with an
HpcspinError (exit status 2), quickly: never a crash, a hang or a different result.
The cases run in a worker subprocess (this file run as a script) with a watchdog per
case, so a segfault or a hang fails the test instead of killing pytest. A sample of
200 cases runs in the normal suite; the 1000-case sweep per file kind is marked
``slow`` and runs with HPCSPIN_SLOW_TESTS=1.
"""

import faulthandler
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASE_LIMIT_S = 10.0  # watchdog per case (a hang)
SLOW_CASE_S = 2.0  # a case slower than this fails the time bound


# -- the three files ---------------------------------------------------------------------
def make_checkpoint(directory):
    from hpcspin.io.checkpoint import checkpoint_path, write_checkpoint
    from hpcspin.parallel.decomp import Decomposition

    d = Decomposition.for_rank(8, 3, True, 1, 0)
    s = np.random.default_rng(1).standard_normal((24, 3))
    state = {
        "time": 12.5,
        "step": 250,
        "rng_state": np.random.default_rng(7).bit_generator.state,
        "deck_text": "[run]\ntask = 'dynamics'\n",
        "config_json": '{"dynamics": {"dt": 0.05}}',
        "extra": {"phase": "drive", "relax_time": 3.0, "wall_x": 4.25},
    }
    return write_checkpoint(checkpoint_path(directory, 250), None, d, s, state)


def read_checkpoint(path):
    from hpcspin.io.checkpoint import read_checkpoint as read

    return read(path)


def make_dataset(directory):
    from hpcspin.io import dataset as ds
    from hpcspin.io import keys

    n, n_sites = 5, 6
    rng = np.random.default_rng(3)
    fp_json, fp = ds.fingerprint_of({"test": 1})
    attrs = {
        ds.FINGERPRINT: fp,
        ds.FINGERPRINT_JSON: fp_json,
        ds.N_CONFIGS: n,
        keys.N_SITES: n_sites,
        ds.KIND_NAMES: json.dumps(["wall", "wall_noisy", "texture", "random"]),
        ds.LATTICE_JSON: json.dumps({"kind": "chain", "length": n_sites}),
    }
    path = os.path.join(directory, "dataset.h5")
    w = ds.DatasetWriter.create(path, None, ds.layout(n, n_sites, True), {"n_ranks": 1}, attrs)
    rows = np.arange(4)  # row 4 stays unwritten (NaN, done = 0)
    s = rng.standard_normal((4, n_sites, 3))
    data = {
        ds.SPINS: s / np.linalg.norm(s, axis=2, keepdims=True),
        ds.FIELD: rng.standard_normal((4, n_sites, 3)),
        ds.FIELD_EQ: rng.standard_normal((4, n_sites, 3)),
        ds.DENSITY: rng.standard_normal((4, n_sites, 3)),
        ds.SAMPLE_KIND: np.array([0, 1, 2, 3]),
        ds.SESSION: np.zeros(4),
        ds.WALL_CENTER: np.array([2.0, 3.0, np.nan, np.nan]),
        ds.WALL_WIDTH: np.array([1.5, 2.0, np.nan, np.nan]),
    }
    for name in (ds.BIAS, ds.MU, ds.CURRENT, ds.NOISE, ds.NEGF_ERROR):
        data[name] = rng.standard_normal(4)
    w.write_rows(rows, data)
    w.flush()
    w.mark_done(rows)
    w.close()
    return path


def read_dataset(path):
    from hpcspin.io.dataset import read_dataset as read

    return read(path, only_done=False)


def make_model(directory):
    from hpcspin.lattice import make_lattice
    from hpcspin.ml import ModelSpec, build_model
    from hpcspin.ml.modelfile import save_model

    lat = make_lattice("chain", 10, 1)
    spec = ModelSpec(head="E+vector", kind="chain", radius=2.0, hidden=(6,), globals=("bias",))
    path = os.path.join(directory, "model.pt")
    save_model(path, build_model(spec, seed=4), lat, metrics={"r2": 0.5}, fingerprint="f")
    return path


def read_model(path):
    from hpcspin.ml.modelfile import load_model

    m = load_model(path)
    return {"meta": m.meta, "state": {k: v.numpy() for k, v in m.state_dict().items()}}


KINDS = {
    "checkpoint": (make_checkpoint, read_checkpoint),
    "dataset": (make_dataset, read_dataset),
    "model": (make_model, read_model),
}


# -- comparison and damage ---------------------------------------------------------------
def same(a, b) -> bool:
    """Exact equality of nested results (NaN equal to NaN, dtypes and shapes too)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def damage(raw: bytes, rng) -> tuple[bytes, str]:
    """One single-bit flip (two cases in three) or a truncation."""
    if rng.random() < 2 / 3:
        pos, bit = int(rng.integers(len(raw))), int(rng.integers(8))
        out = bytearray(raw)
        out[pos] ^= 1 << bit
        return bytes(out), f"flip byte {pos} bit {bit}"
    size = int(rng.integers(len(raw)))
    return raw[:size], f"truncate to {size} of {len(raw)} bytes"


def sweep(kind: str, seed: int, n_cases: int) -> dict:
    """Run the cases in this process; returns counts, timings and failures."""
    from hpcspin.errors import HpcspinError

    make, read = KINDS[kind]
    work = tempfile.mkdtemp(prefix=f"hpcspin-corrupt-{kind}-")
    path = make(work)
    raw = open(path, "rb").read()
    ref = read(path)
    rng = np.random.default_rng([seed, len(kind)])
    victim = os.path.join(work, "victim" + os.path.splitext(path)[1])
    counts = {"identical": 0, "error": 0}
    failures, worst = [], 0.0
    for case in range(n_cases):
        bad, what = damage(raw, rng)
        with open(victim, "wb") as fh:
            fh.write(bad)
        faulthandler.dump_traceback_later(CASE_LIMIT_S, exit=True)  # a hang ends the worker
        t0 = time.perf_counter()
        try:
            got = read(victim)
            outcome = "identical" if same(got, ref) else "DIFFERENT RESULT"
        except HpcspinError as exc:
            outcome = "error" if exc.exit_code == 2 else f"exit code {exc.exit_code}"
        except Exception as exc:  # noqa: BLE001  (any other exception is a failure)
            outcome = f"{type(exc).__name__}: {exc}"
        faulthandler.cancel_dump_traceback_later()
        dt = time.perf_counter() - t0
        worst = max(worst, dt)
        if outcome in counts and dt <= SLOW_CASE_S:
            counts[outcome] += 1
        else:
            failures.append(f"case {case} ({what}): {outcome} in {dt:.2f} s")
    shutil.rmtree(work, ignore_errors=True)
    return {"kind": kind, "cases": n_cases, **counts, "max_s": worst, "failures": failures}


def run_worker(kind: str, seed: int, n_cases: int, timeout: float) -> dict:
    """The sweep in a subprocess: a segfault or a hang shows as a failed worker."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), kind, str(seed), str(n_cases)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"worker died (status {r.returncode}):\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def check(result: dict) -> None:
    assert not result["failures"], "\n".join(result["failures"])
    assert result["identical"] + result["error"] == result["cases"]
    assert result["error"] > 0  # the damage was seen (a test that cannot fail is no test)


#: Cases per file kind of the long sweep (HPCSPIN_SWEEP_CASES for another number).
SWEEP_CASES = int(os.environ.get("HPCSPIN_SWEEP_CASES", "1000"))


@pytest.mark.parametrize(
    "kind, n_cases",
    [("checkpoint", 80), ("dataset", 60), ("model", 60)],
)
def test_random_damage_is_refused_or_harmless(kind, n_cases):
    check(run_worker(kind, seed=11, n_cases=n_cases, timeout=120))


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("HPCSPIN_SLOW_TESTS") != "1", reason="long sweep: HPCSPIN_SLOW_TESTS=1"
)
@pytest.mark.parametrize("kind", ["checkpoint", "dataset", "model"])
def test_random_damage_long_sweep(kind):
    check(run_worker(kind, seed=2026, n_cases=SWEEP_CASES, timeout=60 + SWEEP_CASES))


if __name__ == "__main__":
    faulthandler.enable()
    print(json.dumps(sweep(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
