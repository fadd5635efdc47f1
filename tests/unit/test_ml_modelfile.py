"""Model files: round trip, refusal of models that do not fit, corrupt files."""

import numpy as np
import pytest
import torch

from hpcspin.errors import HpcspinError, ModelMismatchError
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.modelfile import ModelFileError, load_model, read_model_file, save_model


def spins(n, seed=0):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


@pytest.fixture
def saved(tmp_path):
    lat = make_lattice("square", 6, 4, periodic=True)
    spec = ModelSpec(head="E+vector", kind="square", radius=1.5, hidden=(8,), globals=("bias",))
    model = build_model(spec, seed=2)
    model.scale_neq.fill_(0.37)
    path = tmp_path / "m.pt"
    save_model(
        path,
        model,
        lat,
        metrics={"val_r2": np.float64(0.98), "n": np.int64(3)},
        fingerprint="abc123",
    )
    return path, model, lat


def test_round_trip(saved):
    path, model, lat = saved
    m2 = load_model(path, lattice=lat, expect_head="E+vector")
    s = spins(lat.n_sites)
    np.testing.assert_array_equal(
        m2.field(s, lat, {"bias": 0.2}), model.field(s, lat, {"bias": 0.2})
    )
    assert m2.meta["fingerprint"] == "abc123"
    assert m2.meta["metrics"] == {"val_r2": 0.98, "n": 3}
    assert m2.meta["lattice"] == {"kind": "square", "width": 4, "periodic": True}
    assert m2.meta["globals"] == ["bias"] and m2.meta["radius"] == 1.5
    assert float(m2.scale_neq) == 0.37
    assert not m2.training


@pytest.mark.parametrize(
    "lat,match",
    [
        (make_lattice("square", 6, 5, periodic=True), "width"),
        (make_lattice("square", 6, 4, periodic=False), "periodic"),
        (make_lattice("chain", 6), "chain"),
    ],
)
def test_lattice_mismatch_names_both_sides(saved, lat, match):
    path, _, _ = saved
    with pytest.raises(ModelMismatchError, match=match) as exc:
        load_model(path, lattice=lat)
    assert "trained on" in str(exc.value) and "system is" in str(exc.value)


def test_length_may_differ(saved):
    path, _, _ = saved
    load_model(path, lattice=make_lattice("square", 40, 4, periodic=True))


def test_head_mismatch(saved):
    path, _, _ = saved
    with pytest.raises(ModelMismatchError, match="'E\\+vector'.*'EA'"):
        load_model(path, expect_head="EA")


def test_descriptor_mismatch(saved, tmp_path):
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["descriptor"]["n_features"] += 1
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(ModelMismatchError, match="descriptor"):
        load_model(bad)


def test_corrupt_foreign_missing_newer(saved, tmp_path):
    path, _, _ = saved
    raw = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_version"] = 99
    torch.save(payload, tmp_path / "newer.pt")
    for name, match in [
        ("cut.pt", "corrupt"),
        ("text.pt", "corrupt"),
        ("foreign.pt", "not an hpcspin"),
        ("missing.pt", "does not exist"),
        ("newer.pt", "version 99"),
    ]:
        with pytest.raises(ModelFileError, match=match):
            load_model(tmp_path / name)
    assert issubclass(ModelFileError, HpcspinError)


def test_read_metadata_without_building(saved):
    path, _, _ = saved
    meta = read_model_file(path)
    assert meta["head"] == "E+vector" and meta["units"]["energy"].startswith("t")
    assert meta["hpcspin_version"]
