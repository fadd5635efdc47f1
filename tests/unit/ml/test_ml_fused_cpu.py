"""Compiled CPU kernels of the inference path (hpcspin.ml.fused_cpu).

Both analytic paths (compiled kernels and the torch path kept for GPUs) must equal
the autograd reference: fields and summed potentials, every head, chain and strips,
batches, ghost halos with holes, blocks cut across rows, float32, and buffers that
are reused between calls of other sizes and after the weights change.
"""

import copy
import pickle

import numpy as np
import pytest
import torch

from hpcspin.lattice import make_lattice
from hpcspin.ml import HEADS, ModelSpec, build_model, cpu_kernels, fused, fused_cpu

pytestmark = pytest.mark.skipif(not cpu_kernels.AVAILABLE, reason="numba not installed")

LATTICES = [("chain", 23, 1, False), ("square", 7, 5, False), ("triangular", 6, 6, True)]


def spins(shape, seed=0):
    s = np.random.default_rng(seed).normal(size=(*shape, 3))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def model_for(head, kind="chain", symm=True, gate=True, seed=4):
    spec = ModelSpec(
        head=head, kind=kind, radius=2 if kind == "chain" else 1.5, hidden=(8, 8),
        globals=("bias", "mu"), symmetrize=symm, chain_mirror=symm, bias_gate=gate,
    )  # fmt: skip
    return build_model(spec, seed=seed)


def local(model, path, monkeypatch, *args, **kw):
    """local_field(parts, potentials) by "reference", "torch" or "kernels"."""
    model.fused = path != "reference"
    monkeypatch.setattr(fused, "USE_CPU_KERNELS", path == "kernels")
    try:
        return model.local_field(*args, parts=True, potentials=True, **kw)
    finally:
        model.fused = True
        monkeypatch.setattr(fused, "USE_CPU_KERNELS", True)


def assert_same(got, ref, tol):
    (f, p), (rf, rp) = got, ref
    scale = rf["total"].abs().max()
    assert scale > 1e-3
    for k in ("eq", "neq", "total"):
        torch.testing.assert_close(f[k], rf[k], rtol=0, atol=tol * scale)
    assert p.keys() == rp.keys() and "E" in p
    for k in p:
        torch.testing.assert_close(p[k], rp[k], rtol=0, atol=tol * rp[k].abs().max())


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("symm_gate", [(True, True), (False, False), (True, False)])
def test_both_analytic_paths_equal_reference(head, lattice, symm_gate, monkeypatch):
    kind, ln, wd, periodic = lattice
    model = model_for(head, kind, *symm_gate)
    assert fused_cpu.available(model)
    monkeypatch.setitem(fused_cpu.BLOCK_SITES, torch.float64, 37)  # blocks cut across rows
    s = spins((2, ln, wd))
    g = {"bias": np.array([0.3, -0.2]), "mu": -1.0}
    ref = local(model, "reference", monkeypatch, s, None, (0, 0), g)
    for path in ("kernels", "torch"):
        assert_same(local(model, path, monkeypatch, s, None, (0, 0), g), ref, 1e-12)


@pytest.mark.parametrize("head", HEADS)
def test_domain_with_halo_and_holes(head, monkeypatch):
    """A strip domain with ghost rows on both axes (one run per row) and missing sites."""
    model = model_for(head, "square")
    monkeypatch.setitem(fused_cpu.BLOCK_SITES, torch.float64, 5)
    s = spins((9, 8), seed=2)
    valid = np.ones((9, 8), bool)
    valid[4, 3] = valid[2, 6] = valid[0, 0] = False
    g = {"bias": 0.4, "mu": -1.0}
    ref = local(model, "reference", monkeypatch, s, valid, (2, 2), g)
    assert_same(local(model, "kernels", monkeypatch, s, valid, (2, 2), g), ref, 1e-12)


@pytest.mark.parametrize("head", HEADS)
def test_float32_kernels_against_float64_reference(head, monkeypatch):
    m64 = model_for(head)
    m32 = model_for(head).to(torch.float32)
    s = spins((200, 1), seed=3)
    g = {"bias": 0.4, "mu": -1.0}
    ref = local(m64, "reference", monkeypatch, s, None, (0, 0), g)
    f, p = local(m32, "kernels", monkeypatch, torch.as_tensor(s, dtype=torch.float32), None,
                 (0, 0), g)  # fmt: skip
    assert f["total"].dtype == torch.float32
    got = ({k: x.double() for k, x in f.items()}, {k: x.double() for k, x in p.items()})
    assert_same(got, ref, 1e-5)


def test_buffers_reused_across_sizes_and_new_weights(monkeypatch):
    """Buffers kept between calls never carry stale sizes or weights."""
    model = model_for("EA")
    monkeypatch.setitem(fused_cpu.BLOCK_SITES, torch.float64, 16)
    g = {"bias": 0.2, "mu": -1.0}
    for n, seed in ((40, 0), (23, 1), (40, 2), (57, 3)):
        lat = make_lattice("chain", n)
        s = spins((n,), seed=seed)
        got = model.field(s, lat, g)
        model.fused = False
        np.testing.assert_allclose(got, model.field(s, lat, g), rtol=0, atol=1e-12)
        model.fused = True
        with torch.no_grad():  # new weights between calls
            for p in model.parameters():
                p.mul_(1.1)
    assert len(fused_cpu._WORK[model]) <= fused_cpu._KEEP


def test_copied_model_does_not_share_or_alias_buffers():
    """A deepcopy of an evaluated model gives the same field (no stale numpy views)."""
    model = model_for("E+vector")
    lat = make_lattice("chain", 50)
    s, g = spins((50,), seed=5), {"bias": 0.3, "mu": -1.0}
    want = model.field(s, lat, g)
    twin = copy.deepcopy(model)
    np.testing.assert_array_equal(twin.field(s, lat, g), want)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).field(s, lat, g), want)
