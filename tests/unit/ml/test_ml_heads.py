"""Head interface, the analytic inference path, and the model-file radius in --check."""

import pathlib

import numpy as np
import pytest
import torch

from hpcspin.cli import main
from hpcspin.lattice import make_lattice
from hpcspin.ml import HEADS, ModelSpec, build_model, fused, heads

ROOT = pathlib.Path(__file__).resolve().parents[3]
LATTICES = [("chain", 23, 1, False), ("square", 7, 5, False), ("triangular", 6, 6, True)]


def spins(n, batch=2, seed=0):
    s = np.random.default_rng(seed).normal(size=(batch, n, 3))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def both_paths(model, s, lat, g, dtype=torch.float64):
    model.fused = False
    ref = model.field(torch.as_tensor(s, dtype=dtype), lat, g, parts=True)
    model.fused = True
    got = model.field(torch.as_tensor(s, dtype=dtype), lat, g, parts=True)
    return ref, got


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("lattice", LATTICES)
@pytest.mark.parametrize("symm_gate", [(True, True), (False, False)])
def test_fused_equals_reference(head, lattice, symm_gate):
    kind, ln, wd, periodic = lattice
    symm, gate = symm_gate
    spec = ModelSpec(
        head=head, kind=kind, radius=2 if kind == "chain" else 1.5, hidden=(8, 8),
        globals=("bias", "mu"), symmetrize=symm, chain_mirror=symm, bias_gate=gate,
    )  # fmt: skip
    model = build_model(spec, seed=4)
    lat = make_lattice(kind, ln, wd, periodic)
    g = {"bias": np.array([0.3, -0.2]), "mu": -1.0}
    ref, got = both_paths(model, spins(lat.n_sites), lat, g)
    scale = ref["total"].abs().max()
    assert scale > 1e-3
    for k in ("eq", "neq", "total"):
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("head", HEADS)
def test_fused_float32_and_blocks(head, monkeypatch):
    """float32 agrees with the float64 reference to 1e-5; small blocks change nothing."""
    spec = ModelSpec(head=head, radius=3, hidden=(16, 16), globals=("bias",), chain_mirror=True)
    m64 = build_model(spec, seed=1)
    lat = make_lattice("chain", 300)
    s, g = spins(300, batch=1)[0], {"bias": 0.4}
    m64.fused = False
    ref = m64.field(s, lat, g)
    m32 = build_model(spec, seed=1).to(torch.float32)
    got = m32.field(torch.as_tensor(s, dtype=torch.float32), lat, g).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    m64.fused = True
    whole = m64.field(s, lat, g)
    monkeypatch.setattr(fused, "BLOCK_SITES", 37)  # 9 blocks, the last one short
    np.testing.assert_allclose(m64.field(s, lat, g), whole, rtol=0, atol=1e-14)


def test_a_new_head_is_one_table_entry(monkeypatch):
    """A head with energy, torque and vector terms works from its HEAD_TERMS entry alone."""
    terms = (heads.ENERGY, heads.TORQUE, heads.VECTOR)
    monkeypatch.setitem(heads.HEAD_TERMS, "EA+vector", terms)
    spec = ModelSpec(head="EA+vector", radius=2, hidden=(8,), globals=("bias",))
    model = build_model(spec, seed=2)
    assert {"energy_net", "a_net", "vec_net"} <= {n for n, _ in model.named_children()}
    lat = make_lattice("chain", 15)
    ref, got = both_paths(model, spins(15), lat, {"bias": 0.5})
    torch.testing.assert_close(got["total"], ref["total"], rtol=0, atol=1e-12)
    # the torque and the vector parts both enter neq
    ea = build_model(ModelSpec(head="EA", radius=2, hidden=(8,), globals=("bias",)), seed=2)
    ea.load_state_dict({k: v for k, v in model.state_dict().items() if "vec_net" not in k})
    neq_ea = ea.field(spins(15), lat, {"bias": 0.5}, parts=True)["neq"]
    assert np.abs(got["neq"].numpy() - neq_ea).max() > 1e-4


def test_check_uses_the_model_file_radius(monkeypatch, capsys):
    """The deck says radius 1, the file 3: 60 sites on 30 ranks leave 2 columns < 3."""
    monkeypatch.chdir(ROOT)
    deck = "input_decks/demo_chain_ml.toml"
    assert main([deck, "--check", "--ranks", "20", "--set", "model.radius=1"]) == 0
    assert main([deck, "--check", "--ranks", "30", "--set", "model.radius=1"]) == 2
    err = capsys.readouterr().err
    assert "[lattice] length" in err and "halo of 3" in err


def test_deck_offers_exactly_the_registered_heads():
    """The deck cannot import ml (layering): its list of heads is checked here instead."""
    from hpcspin.deck.schema import HEADS as DECK_HEADS

    assert tuple(DECK_HEADS) == HEADS
