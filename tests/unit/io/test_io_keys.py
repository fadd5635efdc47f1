"""io/keys.py agrees with the files hpcspin actually writes.

Each kind of file (trajectory, checkpoint, dataset, negf) is written by its task on a
small chain, and its datasets (names, shapes, dtypes) and root attributes are compared
with the tables of :mod:`hpcspin.io.keys`; trajectory datasets carry their unit and
description.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re

import h5py
import numpy as np
import pytest

from hpcspin.deck.load import parse_deck
from hpcspin.driver import run_task
from hpcspin.io import keys
from hpcspin.parallel.context import ParallelContext

N = 8


@pytest.fixture(scope="module")
def ctx():
    c = ParallelContext()
    yield c
    c.free()


DECK = """
[run]
task = "{task}"
[lattice]
kind = "chain"
length = 8
[electrons]
bias = 0.5
[spins]
wall_width = 1.5
[negf]
tol = 1e-4
[output]
dir = "{out}"
plots = false
"""


def run(ctx, task: str, out, **overrides) -> None:
    """Run ``task`` in-process; overrides as ``section__key=value``."""
    sets = {k.replace("__", "."): v for k, v in overrides.items()}
    run_task(parse_deck(DECK.format(task=task, out=out), "test.toml", sets), ctx)


def dims(shape_text: str, sizes: dict) -> tuple:
    names = [s.strip() for s in shape_text.strip("()").split(",") if s.strip()]
    return tuple(sizes.get(n, int(n) if n.isdigit() else None) for n in names)


def compare(path: str, kind: str, sizes: dict) -> None:
    """Every dataset and attribute of ``path`` is in the keys tables, with its shape."""
    with h5py.File(path, "r") as f:
        assert f.attrs[keys.KIND] == kind
        table = keys.DATASETS[kind]
        names = set(f.keys())
        required = {k for k, e in table.items() if not e.optional}
        assert names <= set(table), f"{kind}: written but not in keys: {names - set(table)}"
        assert required <= names, f"{kind}: in keys but not written: {required - names}"
        for name in names:
            e, d = table[name], f[name]
            want = dims(e.shape, sizes)
            assert d.ndim == len(want), (name, d.shape, e.shape)
            assert all(w is None or w == s for w, s in zip(want, d.shape, strict=True)), (
                name,
                d.shape,
                e.shape,
            )
            assert d.dtype == np.dtype(e.dtype), (name, d.dtype, e.dtype)
        attrs = set(f.attrs)
        want_attrs = {k for k, e in keys.ATTRS[kind].items() if not e.optional}
        assert attrs <= set(keys.ATTRS[kind]), f"{kind}: attrs not in keys: {attrs - want_attrs}"
        assert want_attrs <= attrs, f"{kind}: attrs in keys but not written: {want_attrs - attrs}"


def test_negf_file(tmp_path, ctx):
    out = tmp_path / "negf"
    run(ctx, "negf", out, negf__transmission=True, negf__transmission_points=11)
    compare(str(out / keys.NEGF_FILE), "negf", {"N": N, "n_E": 11})
    with h5py.File(out / keys.NEGF_FILE, "r") as f:
        for name in f:
            assert f[name].attrs[keys.DESCRIPTION_ATTR] == keys.DATASETS["negf"][name].description
    assert (out / keys.NEGF_SUMMARY_FILE).is_file()


def test_dataset_file(tmp_path, ctx):
    out = tmp_path / "dg"
    run(ctx, "datagen", out, datagen__n_configs=2)
    compare(str(out / keys.DATASET_FILE), "dataset", {"N": N, "n_cfg": 2})
    with h5py.File(out / keys.DATASET_FILE, "r") as f:
        for name in f:
            assert f[name].attrs[keys.UNIT_ATTR] == keys.DATASETS["dataset"][name].unit
    assert (out / keys.DATAGEN_SUMMARY_FILE).is_file()


def test_trajectory_and_checkpoint_files(tmp_path, ctx):
    out = tmp_path / "dyn"
    dyn = dict(dynamics__t_end=0.4, dynamics__dt=0.2, dynamics__relax=False)
    run(ctx, "dynamics", out, dynamics__forces="negf", output__every=1, **dyn)
    traj = str(out / keys.TRAJECTORY_FILE)
    with h5py.File(traj, "r") as f:
        n_walls = f[keys.WALL_CENTRES].shape[1]
        for name in f:
            assert keys.UNIT_ATTR in f[name].attrs, name
            assert keys.DESCRIPTION_ATTR in f[name].attrs, name
        assert np.isfinite(f[keys.CURRENT][()]).all()  # NEGF forces: a current
        assert keys.NAN_REASON_ATTR not in f[keys.CURRENT].attrs
    compare(traj, "trajectory", {"N": N, "n_frames": 3, "n_walls": n_walls})
    assert n_walls == 1
    ck = sorted(glob.glob(os.path.join(out, keys.CHECKPOINT_DIR, "checkpoint_*.h5")))
    assert ck
    with h5py.File(ck[-1], "r") as f:
        n_bytes = f[keys.RNG_STATE].shape[0]
    compare(ck[-1], "checkpoint", {"N": N, "n_bytes": n_bytes})
    assert (out / keys.SUMMARY_FILE).is_file()


def test_ml_free_trajectory_says_why_current_is_nan(tmp_path, ctx):
    out = tmp_path / "cl"
    dyn = dict(dynamics__t_end=0.4, dynamics__dt=0.2, dynamics__relax=False)
    run(ctx, "dynamics", out, dynamics__forces="none", **dyn)
    with h5py.File(out / keys.TRAJECTORY_FILE, "r") as f:
        assert np.isnan(f[keys.CURRENT][()]).all()
        assert "NEGF" in f[keys.CURRENT].attrs[keys.NAN_REASON_ATTR]


def test_every_entry_is_documented():
    """docs/outputs.md names every dataset and attribute of the tables."""
    root = pathlib.Path(__file__).resolve().parents[3]
    with open(os.path.join(root, "docs", "outputs.md")) as fh:
        text = fh.read()
    names = {n for t in (keys.DATASETS, keys.ATTRS) for kind in t.values() for n in kind}
    missing = sorted(n for n in names if not re.search(rf"`{re.escape(n)}`", text))
    assert not missing, f"docs/outputs.md lacks {missing}"
