"""Exported TorchScript models give the in-process field, without hpcspin."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from hpcspin.lattice import make_lattice
from hpcspin.ml import HEADS, ModelSpec, build_model, load_model
from hpcspin.ml.export import META, export_model, main

ROOT = pathlib.Path(__file__).resolve().parents[3]
# The chain models (strip designs are not exportable: test_ml_strip.py checks the refusal).
SHIPPED = sorted(p for p in (ROOT / "models").glob("*.pt") if p.stem.startswith("chain_"))

# Runs in a fresh interpreter that never imports hpcspin: torch alone loads and calls.
LOADER = """
import sys, numpy as np, torch
out = {}
for path in sys.argv[1:]:
    m = torch.jit.load(path)
    s = torch.as_tensor(np.load(path + ".in.npy"))
    out[path] = m(s, torch.tensor([[0.5], [-0.3]], dtype=s.dtype)).detach().numpy()
    np.save(path + ".out.npy", out[path])
assert "hpcspin" not in sys.modules
"""


def unit_spins(shape, seed=0):
    s = np.random.default_rng(seed).normal(size=shape)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def test_shipped_models_export_and_load_without_hpcspin(tmp_path):
    assert SHIPPED
    s = unit_spins((2, 40, 3))
    paths, refs = [], {}
    for p in SHIPPED:
        model = load_model(p)
        out = tmp_path / (p.stem + ".ts")
        export_model(model, out)
        np.save(str(out) + ".in.npy", s.reshape(2, 40, 1, 3))
        refs[str(out)] = model.field(s, make_lattice("chain", 40), {"bias": np.array([0.5, -0.3])})
        paths.append(str(out))
    r = subprocess.run([sys.executable, "-c", LOADER, *paths], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for p, ref in refs.items():
        got = np.load(p + ".out.npy").reshape(2, 40, 3)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    _, extra = None, {META: ""}
    torch.jit.load(paths[0], _extra_files=extra)
    meta = json.loads(extra[META])
    assert meta["global_names"] == ["bias"] and meta["lattice"]["kind"] == "chain"


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("kind,periodic", [("square", False), ("triangular", True)])
def test_strip_export_equals_model(head, kind, periodic, tmp_path):
    spec = ModelSpec(head=head, kind=kind, radius=1.5, hidden=(8,), globals=("bias",))
    model = build_model(spec, seed=1)
    model.meta = {"lattice": {"kind": kind, "width": 5, "periodic": periodic}}
    export_model(model, tmp_path / "m.ts")
    dep = torch.jit.load(str(tmp_path / "m.ts"))
    lat = make_lattice(kind, 6, 5, periodic)
    s = unit_spins((1, 30, 3), seed=3)
    ref = model.field(s, lat, {"bias": 0.2})
    got = dep(torch.as_tensor(s).reshape(1, 6, 5, 3), torch.tensor([[0.2]], dtype=torch.float64))
    got = got.reshape(1, 30, 3).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_float32_export_and_command_line(tmp_path, capsys):
    src = SHIPPED[0]
    out = tmp_path / "m32.ts"
    assert main([str(src), str(out), "--dtype", "float32"]) == 0
    dep = torch.jit.load(str(out))
    model = load_model(src)
    s = unit_spins((1, 30, 3), seed=5)
    ref = model.field(s, make_lattice("chain", 30), {"bias": 0.5})
    x = torch.as_tensor(s, dtype=torch.float32).reshape(1, 30, 1, 3)
    got = dep(x, torch.tensor([[0.5]])).reshape(1, 30, 3).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert main([str(tmp_path / "missing.pt"), str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
