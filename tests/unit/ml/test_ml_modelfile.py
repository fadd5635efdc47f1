"""Model files: round trip, refusal of models that do not fit, corrupt files."""

import numpy as np
import pytest
import torch

from hpcspin.errors import HpcspinError, ModelMismatchError
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.modelfile import (
    HEADER_SIZE,
    ModelFileError,
    load_model,
    read_model_file,
    save_model,
    write_payload,
)


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
    payload = read_model_file(path)
    payload["descriptor"]["n_features"] += 1
    bad = tmp_path / "bad.pt"
    write_payload(bad, payload)
    with pytest.raises(ModelMismatchError, match="descriptor"):
        load_model(bad)


def test_corrupt_foreign_missing_newer(saved, tmp_path):
    path, _, _ = saved
    raw = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "text.pt").write_text("hello")
    write_payload(tmp_path / "foreign.pt", {"weights": torch.zeros(3)})
    payload = read_model_file(path)
    payload["model_version"] = 99
    write_payload(tmp_path / "newer.pt", payload)
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


def test_checksum_catches_flips_and_truncations(saved, tmp_path):
    """Any flipped bit (header or payload) or truncation is a ModelFileError naming the file."""
    path, _, _ = saved
    raw = path.read_bytes()
    assert read_model_file(path)["checksum"] == "verified"
    rng = np.random.default_rng(5)
    bad = tmp_path / "flip.pt"
    positions = [0, 20, 40, HEADER_SIZE - 1, HEADER_SIZE, len(raw) - 1]
    positions += rng.integers(0, len(raw), 24).tolist()
    for pos in positions:
        b = bytearray(raw)
        b[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(b))
        with pytest.raises(ModelFileError, match="flip.pt"):
            load_model(bad)
    for cut in (0, 10, HEADER_SIZE, len(raw) // 2, len(raw) - 1):
        bad.write_bytes(raw[:cut])
        with pytest.raises(ModelFileError, match="flip.pt"):
            load_model(bad)
    bad.write_bytes(raw + b"\0")
    with pytest.raises(ModelFileError, match="truncated or damaged"):
        load_model(bad)


@pytest.mark.parametrize("key", ["spec", "state_dict", "lattice", "head", "descriptor"])
def test_missing_or_mistyped_key(saved, tmp_path, key):
    path, _, _ = saved
    payload = read_model_file(path)
    del payload[key]
    write_payload(tmp_path / "m.pt", payload)
    with pytest.raises(ModelFileError, match=f"'{key}' is missing"):
        load_model(tmp_path / "m.pt")
    payload[key] = "text" if key != "head" else 3
    write_payload(tmp_path / "m.pt", payload)
    with pytest.raises(ModelFileError, match=f"'{key}' is"):
        load_model(tmp_path / "m.pt")


def test_non_finite_weight_refused(saved, tmp_path):
    path, _, _ = saved
    payload = read_model_file(path)
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name] = payload["state_dict"][name].clone()
    payload["state_dict"][name].view(-1)[0] = float("nan")
    write_payload(tmp_path / "nan.pt", payload)
    with pytest.raises(ModelFileError, match="non-finite"):
        load_model(tmp_path / "nan.pt")


def test_older_file_without_checksum_is_read(saved, tmp_path, caplog):
    path, model, lat = saved
    payload = read_model_file(path)
    del payload["checksum"]
    torch.save(payload, tmp_path / "old.pt")  # a bare torch zip, as hpcspin wrote before
    m2 = load_model(tmp_path / "old.pt")
    assert m2.meta["checksum"] == "none"
    assert "no checksum" in caplog.text
