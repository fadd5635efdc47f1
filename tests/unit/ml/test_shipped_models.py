"""Each shipped model file matches the deck that trains it (README: how to reproduce)."""

import pathlib

import pytest

from hpcspin.deck import parse_deck
from hpcspin.lattice import make_lattice
from hpcspin.ml import load_model
from hpcspin.ml.modelfile import read_model_file

ROOT = pathlib.Path(__file__).resolve().parents[3]
SHIPPED = {
    "models/chain_dw_Evector.pt": "input_decks/train_chain_dw.toml",
    "models/chain_dw_EA.pt": "input_decks/train_chain_dw_EA.toml",
    "models/chain_dw_E.pt": "input_decks/train_chain_dw_E.toml",
    "models/chain_dw_Evector_al1.pt": "input_decks/train_chain_dw_al1.toml",
    "models/strip_square_dw.pt": "input_decks/train_strip_walls_clean.toml",
}
#: Data added to the main training data: by active learning (docs/trust.md), and the
#: strip model's extra clean walls (docs/experiment.md).
EXTRA_DATA = {
    "models/chain_dw_Evector_al1.pt": ["input_decks/datagen_chain_dw_al1.toml"],
    "models/strip_square_dw.pt": [
        "input_decks/datagen_strip_walls_clean.toml",
        "input_decks/datagen_strip_walls_clean2.toml",
    ],
}
#: The datagen deck of each model's training data (default: the chain walls).
DATAGEN = {"models/strip_square_dw.pt": "input_decks/datagen_strip_walls.toml"}


@pytest.mark.parametrize("model_path, deck_path", sorted(SHIPPED.items()))
def test_model_file_matches_its_deck(model_path, deck_path):
    path = ROOT / model_path
    if not path.exists():
        pytest.skip(f"{model_path} is not shipped")
    deck_text = (ROOT / deck_path).read_text()
    cfg = parse_deck(deck_text, check_files=False)
    assert cfg.model.file == model_path
    meta = read_model_file(path)
    trained_by = parse_deck(meta["extra"]["deck"], check_files=False)
    # Comments may differ; every resolved setting must be the same.
    assert trained_by.to_dict() == cfg.to_dict(), "the model was trained by another deck"
    lat = cfg.lattice
    lattice = make_lattice(lat.kind, lat.length, lat.width, lat.periodic)
    model = load_model(path, lattice=lattice, expect_head=cfg.model.head)
    spec = model.spec
    assert spec.radius == cfg.model.radius
    assert tuple(spec.hidden) == tuple(cfg.model.hidden)
    assert tuple(spec.globals) == tuple(cfg.model.global_inputs)
    assert spec.bias_gate == cfg.model.bias_gate
    assert spec.chain_mirror == cfg.model.chain_mirror
    assert spec.dtype == cfg.model.dtype
    assert len(meta["fingerprint"]) == 64  # sha256 of the training arrays


def test_demo_uses_the_default_model():
    cfg = parse_deck((ROOT / "input_decks/demo_chain_ml.toml").read_text(), check_files=False)
    assert cfg.model.file == "models/chain_dw_Evector.pt"
    assert cfg.dynamics.forces == "ml"


@pytest.mark.parametrize("model_path", sorted(SHIPPED))
def test_shipped_model_records_its_domain_and_quality(model_path):
    """The domain matches the datagen deck of the training data; the verdict is recorded."""
    path = ROOT / model_path
    if not path.exists():
        pytest.skip(f"{model_path} is not shipped")
    meta = read_model_file(path)
    assert meta["checksum"] == "verified"
    gen_deck = DATAGEN.get(model_path, "input_decks/datagen_chain_walls.toml")
    gen = parse_deck((ROOT / gen_deck).read_text(), check_files=False)
    dom = meta["domain"]
    lat = gen.lattice
    assert dom["lattice"] == {
        "kind": lat.kind,
        "width": lat.width,
        "periodic": lat.periodic,
        "length": lat.length,
    }
    for key in ("t", "J", "mu", "temperature", "lead"):
        assert dom["electrons"][key] == getattr(gen.electrons, key)
    assert [dom["bias"]["min"], dom["bias"]["max"]] == [
        min(gen.datagen.biases),
        max(gen.datagen.biases),
    ]
    lo, hi = gen.datagen.width_range
    assert lo <= dom["wall_width"]["min"] < dom["wall_width"]["max"] <= hi
    extra = EXTRA_DATA.get(model_path, [])
    added = [parse_deck((ROOT / e).read_text(), check_files=False) for e in extra]
    n_extra = sum(a.datagen.n_configs for a in added)
    assert dom["n_configs"]["total"] == gen.datagen.n_configs + n_extra
    q = meta["metrics"]["quality"]
    # The default driven model and the strip model pass; the two-potential EA model cannot
    # represent the current-induced field of this half-metal (docs/ml.md) and is marked
    # failed.
    failing = ("models/chain_dw_EA.pt",)
    assert q["passed"] == (model_path not in failing), q["failed"]
