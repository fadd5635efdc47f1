"""One round of active learning on tiny data: flag -> label -> train on the union.

The committee's flag action writes a snapshots file; datagen labels exactly those
frames; train reads the original dataset plus the new one ([train] extra_datasets).
NEGF is replaced by a cheap deterministic stand-in (as in the datagen tests).
"""

import os
from types import SimpleNamespace

import numpy as np
import pytest

from hpcspin.datagen.samplers import KIND_NAMES
from hpcspin.deck.load import parse_deck
from hpcspin.dynamics.forces import ClassicalForce, MLForce
from hpcspin.dynamics.simulation import DRIVE, Simulation
from hpcspin.dynamics.uncertainty import CommitteeObserver
from hpcspin.errors import DataFileError, DeckError, HpcspinError
from hpcspin.hamiltonian.spin import SpinParams
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.io.dataset import read_dataset
from hpcspin.io.dataset_union import read_datasets
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model, load_model
from hpcspin.ml.modelfile import read_model_file
from hpcspin.parallel.context import ParallelContext
from hpcspin.tasks import datagen, train

N = 12
LAT = make_lattice("chain", N)
SPEC = ModelSpec(head="E+vector", kind="chain", radius=2, hidden=(6,), globals=("bias",))

DATAGEN = """
[run]
task = "datagen"
seed = {seed}
[lattice]
kind = "chain"
length = 12
[electrons]
J = {J}
mu = -1.0
[datagen]
n_configs = {n}
biases = [-0.5, 0.5]
mix = [0.8, 0.2, 0.0]
snapshots = "{snapshots}"
snapshot_share = {share}
flush_every = 2
[output]
dir = "{out}"
progress_interval = 0
"""

TRAIN = """
[run]
task = "train"
seed = 3
[lattice]
kind = "chain"
length = 12
[model]
head = "E+vector"
radius = 2
hidden = [6]
global_inputs = ["bias"]
bias_gate = true
file = "{model}"
[train]
dataset = "{first}"
extra_datasets = {extra}
epochs = 2
batch_size = 4
val_fraction = 0.25
neq_kinds = ["wall", "wall_noisy", "snapshot"]
[output]
dir = "{out}"
progress_interval = 0
"""


class FakeEngine:
    """Deterministic stand-in for NEGFEngine: a local field linear in the spins."""

    tol = 1e-4  # exact: its error estimate is never above

    def compute(self, spins, bias=None, mu=None):
        s = np.roll(spins, 1, 0) + 0.5 * np.roll(spins, -1, 0) + bias * np.cross(spins, spins[0])
        return SimpleNamespace(spin_density=s, field=2.0 * s, current=bias * 0.3)


@pytest.fixture
def ctx():
    c = ParallelContext()
    yield c
    c.free()


def member(seed):
    m = build_model(SPEC, seed=seed)
    m.scale_neq.fill_(0.5)
    m.meta = {"spec": SPEC.to_dict(), "lattice": {"kind": "chain"}, "globals": ["bias"]}
    return m


def flag_two_frames(path):
    """Two narrow walls written by the committee's flag action; returns their spins."""
    ml = MLForce(member(1), {"bias": 0.5})
    sim = Simulation(LAT, [ClassicalForce("chain", SpinParams(K=0.3)), ml], None, dt=0.1)
    obs = CommitteeObserver(
        [MLForce(member(1), {}), MLForce(member(2), {})], ml, 1e-12, "flag", path
    )
    frames = [domain_wall(LAT, x0, 1.29) for x0 in (4.5, 6.2)]
    for k, s in enumerate(frames):
        obs(sim, sim.state(s, phase=DRIVE, step=10 * k, time=float(k)))
    assert obs.n_flagged == 2
    return frames


def make_dataset(monkeypatch, ctx, tmp_path, name, n, seed, J=2.0, snapshots=""):
    text = DATAGEN.format(
        seed=seed,
        J=J,
        n=n,
        snapshots=snapshots,
        share=1.0 if snapshots else 0.0,
        out=tmp_path / name,
    )
    monkeypatch.setattr(datagen, "negf_engine_from", lambda cfg, lat, comm=None: FakeEngine())
    datagen.run(parse_deck(text, f"{name}.toml"), ctx)
    return str(tmp_path / name / "dataset.h5")


def test_flagged_frames_are_what_datagen_labels(tmp_path, monkeypatch, ctx):
    flagged = str(tmp_path / "flagged.h5")
    frames = flag_two_frames(flagged)
    path = make_dataset(monkeypatch, ctx, tmp_path, "al", 6, 7, snapshots=flagged)
    d = read_dataset(path)
    assert d["kind"].tolist() == [KIND_NAMES.index("snapshot")] * 6
    seen = set()
    for s, bias, h in zip(d["spins"], d["bias"], d["field"], strict=True):
        # every label is one of the flagged frames (unit spins as the run held them)
        match = [k for k, f in enumerate(frames) if np.abs(s - f).max() < 1e-14]
        assert len(match) == 1
        seen.add(match[0])
        np.testing.assert_array_equal(h, FakeEngine().compute(s, bias).field)
    assert seen == {0, 1}


def test_train_on_the_union_of_two_datasets(tmp_path, monkeypatch, ctx):
    flagged = str(tmp_path / "flagged.h5")
    flag_two_frames(flagged)
    first = make_dataset(monkeypatch, ctx, tmp_path, "base", 8, 5)
    extra = make_dataset(monkeypatch, ctx, tmp_path, "al", 4, 7, snapshots=flagged)
    union = read_datasets([first, extra])
    a, b = read_dataset(first), read_dataset(extra)
    for key in ("spins", "field", "field_eq", "bias", "kind", "current"):
        np.testing.assert_array_equal(union[key], np.concatenate([a[key], b[key]]))
    assert union["sources"] == [(first, 8), (extra, 4)]
    model = str(tmp_path / "m.pt")
    text = TRAIN.format(model=model, first=first, extra=f'["{extra}"]', out=tmp_path / "tr")
    train.run(parse_deck(text, "train.toml"), ctx)
    meta = read_model_file(model)
    assert meta["domain"]["n_configs"] == {"total": 12, **_families(union)}
    assert meta["extra"]["extra_datasets"] == [extra]
    assert os.path.exists(str(tmp_path / "m_train.json"))
    # Continued training ([train] init_model) starts from that model's weights: with a
    # vanishing learning rate the result is the same model.
    cont = str(tmp_path / "m2.pt")
    over = {"train.init_model": model, "train.lr": 1e-14, "train.epochs": 1, "model.file": cont}
    train.run(parse_deck(text, "train.toml", overrides=over), ctx)
    a, b = load_model(model).state_dict(), load_model(cont).state_dict()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(b[key].numpy(), a[key].numpy(), rtol=1e-9, atol=1e-12)
    over = {"train.init_model": model, "model.hidden": [5], "model.file": cont}
    with pytest.raises(HpcspinError, match=r"\[train\] init_model = .*differs from the deck"):
        train.run(parse_deck(text, "train.toml", overrides=over), ctx)


def _families(data):
    kinds, counts = np.unique(data["kind"], return_counts=True)
    return {KIND_NAMES[int(k)]: int(c) for k, c in zip(kinds, counts, strict=True)}


def test_union_of_two_systems_is_refused(tmp_path, monkeypatch, ctx):
    first = make_dataset(monkeypatch, ctx, tmp_path, "base", 4, 5)
    other = make_dataset(monkeypatch, ctx, tmp_path, "other", 4, 6, J=3.0)
    with pytest.raises(DataFileError, match=r"other/dataset.h5: its electrons .*'J': 3.0"):
        read_datasets([first, other])


def test_missing_extra_dataset_is_a_deck_problem(tmp_path):
    text = TRAIN.format(
        model=tmp_path / "m.pt", first=__file__, extra='["nowhere.h5"]', out=tmp_path / "tr"
    )
    with pytest.raises(DeckError, match=r"\[train\] extra_datasets = .*nowhere.h5.*not found"):
        parse_deck(text, "train.toml", check_files=True)
