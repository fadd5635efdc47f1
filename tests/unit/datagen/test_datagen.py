"""The datagen task in one process: file layout, resume, refusals (cheap stand-in engine)."""

import os
import signal
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from hpcspin.datagen.samplers import sample_config
from hpcspin.deck.load import parse_deck
from hpcspin.errors import DataFileError, RunInterrupted
from hpcspin.io import dataset as ds
from hpcspin.io import keys
from hpcspin.io.seal import seal_file
from hpcspin.lattice import make_lattice
from hpcspin.parallel.context import ParallelContext
from hpcspin.tasks import datagen

DECK = """
[run]
task = "datagen"
seed = 5
[lattice]
kind = "chain"
length = 12
[electrons]
J = 2.0
mu = -1.0
[negf]
tol = 1e-4
[datagen]
n_configs = 10
biases = [-0.5, 0.0, 0.5]
mix = [0.5, 0.3, 0.2]
flush_every = 2
[output]
dir = "{dir}"
progress_interval = 0
"""


class FakeEngine:
    """A cheap deterministic stand-in for NEGFEngine (same call signature)."""

    tol = 1e-6  # datagen compares each configuration's error estimate with it

    def __init__(self, log, stop_after=None):
        self.log, self.stop_after = log, stop_after

    def compute(self, spins, bias=None, mu=None):
        self.log.append((spins.copy(), bias))
        if self.stop_after is not None and len(self.log) == self.stop_after:
            os.kill(os.getpid(), signal.SIGUSR1)
        s = fake_density(spins, bias)
        return SimpleNamespace(spin_density=s, field=2.0 * s, current=fake_current(spins, bias))


def fake_density(spins, bias):
    return np.roll(spins, 1, 0) + 0.5 * np.roll(spins, -1, 0) + bias * np.cross(spins, spins[0])


def fake_current(spins, bias):
    return bias * (1.0 + 0.1 * spins[:, 2].mean())


@pytest.fixture
def ctx():
    c = ParallelContext()
    yield c
    c.free()


def make_cfg(tmp_path, **datagen):
    text = DECK.format(dir=tmp_path / "out")
    return parse_deck(text, "test.toml", overrides={f"datagen.{k}": v for k, v in datagen.items()})


def run_fake(monkeypatch, cfg, ctx, stop_after=None, restart=None, calls=None):
    calls = [] if calls is None else calls
    monkeypatch.setattr(
        datagen, "negf_engine_from", lambda cfg, lat, comm=None: FakeEngine(calls, stop_after)
    )
    datagen.run(cfg, ctx, restart=restart)
    return calls


def path_of(cfg):
    return os.path.join(cfg.output.dir, "dataset.h5")


def test_layout_and_values(tmp_path, monkeypatch, ctx):
    cfg = make_cfg(tmp_path)
    calls = run_fake(monkeypatch, cfg, ctx)
    d = ds.read_dataset(path_of(cfg))
    n, lat = 10, make_lattice("chain", 12)
    assert d["done"].all() and d["index"].tolist() == list(range(n))
    assert d["spins"].shape == d["field"].shape == d["field_eq"].shape == (n, 12, 3)
    st = datagen.sampler_settings(cfg)
    n_bias0 = 0
    for k in range(n):
        s = sample_config(k, 5, lat, st)
        assert np.array_equal(d["spins"][k], s.spins)
        assert (d["bias"][k], d["mu"][k], d["kind"][k]) == (s.bias, -1.0, s.kind)
        np.testing.assert_array_equal(d["field"][k], 2 * fake_density(s.spins, s.bias))
        np.testing.assert_array_equal(d["field_eq"][k], 2 * fake_density(s.spins, 0.0))
        np.testing.assert_array_equal(d["spin_density"][k], fake_density(s.spins, s.bias))
        assert d["current"][k] == fake_current(s.spins, s.bias)
        n_bias0 += s.bias == 0.0
    # One engine call per configuration, plus one at V = 0 unless V is 0 already.
    assert len(calls) == 2 * n - n_bias0
    a = d["attrs"]
    assert a[keys.KIND] == "dataset" and a[keys.N_RANKS] == 1 and a[ds.SESSIONS] == 1
    assert a[keys.DECK_TEXT] == cfg.deck_text and a[ds.N_CONFIGS] == n
    assert d["lattice"]["length"] == 12 and d["electrons"]["J"] == 2.0
    assert d["kind_names"] == ["wall", "wall_noisy", "texture", "random", "snapshot"]
    assert (d["session"] == 0).all()
    summary = os.path.join(cfg.output.dir, datagen.SUMMARY_FILE)
    assert os.path.isfile(summary)


def test_without_equilibrium(tmp_path, monkeypatch, ctx):
    cfg = make_cfg(tmp_path, with_equilibrium=False)
    calls = run_fake(monkeypatch, cfg, ctx)
    d = ds.read_dataset(path_of(cfg))
    assert "field_eq" not in d and len(calls) == 10


def test_signal_stop_then_resume_equals_uninterrupted(tmp_path, monkeypatch, ctx):
    ref_cfg = make_cfg(tmp_path / "ref")
    run_fake(monkeypatch, ref_cfg, ctx)
    cfg = make_cfg(tmp_path / "int")
    first = []
    with pytest.raises(RunInterrupted):
        run_fake(monkeypatch, cfg, ctx, stop_after=5, calls=first)
    part = ds.read_dataset(path_of(cfg), only_done=False)
    n_done = int(part["done"].sum())
    assert 0 < n_done < 10
    assert np.isnan(part["field"][~part["done"].astype(bool)]).all()
    second = run_fake(monkeypatch, cfg, ctx)
    # No configuration computed twice: the resumed run only did the missing ones.
    first_spins = {tuple(s.ravel()) for s, _ in first}
    assert not any(tuple(s.ravel()) in first_spins for s, _ in second)
    ref, got = ds.read_dataset(path_of(ref_cfg)), ds.read_dataset(path_of(cfg))
    for name in [n for n in ds.ROW_FIELDS if n != ds.SESSION] + [ds.DONE]:
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    assert set(got["session"].tolist()) == {0, 1} and got["attrs"][ds.SESSIONS] == 2


def test_unflagged_rows_are_recomputed(tmp_path, monkeypatch, ctx):
    """A crash between a batch's data write and its done flags loses only that batch."""
    cfg = make_cfg(tmp_path)
    real = ds.DatasetWriter.mark_done
    seen = []

    def crash_on_second(self, rows):
        seen.append(list(rows))
        if len(seen) == 2:
            raise KeyboardInterrupt("simulated node failure")
        real(self, rows)

    monkeypatch.setattr(ds.DatasetWriter, "mark_done", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_fake(monkeypatch, cfg, ctx)
    monkeypatch.setattr(ds.DatasetWriter, "mark_done", real)
    part = ds.read_dataset(path_of(cfg), only_done=False)
    assert np.nonzero(part["done"])[0].tolist() == seen[0]
    assert np.isfinite(part["field"][seen[1]]).all()  # data there, but not flagged
    calls = run_fake(monkeypatch, cfg, ctx)
    assert len({tuple(s.ravel()) for s, _ in calls}) == 10 - len(seen[0])
    assert ds.read_dataset(path_of(cfg))["done"].all()


def _snapshot(path):
    st = os.stat(path)
    with open(path, "rb") as fh:
        return fh.read(), st.st_mtime_ns


def test_refuses_dataset_of_another_deck(tmp_path, monkeypatch, ctx):
    cfg = make_cfg(tmp_path)
    run_fake(monkeypatch, cfg, ctx)
    before = _snapshot(path_of(cfg))
    other = make_cfg(tmp_path, width_range=[2.0, 3.0])
    with pytest.raises(DataFileError, match="different deck.*width_range"):
        run_fake(monkeypatch, other, ctx)
    assert _snapshot(path_of(cfg)) == before


@pytest.mark.parametrize("content", ["garbage", "truncated", "foreign", "trajectory"])
def test_refuses_corrupt_or_foreign_file(tmp_path, monkeypatch, ctx, content):
    cfg = make_cfg(tmp_path)
    path = path_of(cfg)
    if content == "truncated":
        run_fake(monkeypatch, cfg, ctx)
        with open(path, "rb") as fh:
            data = fh.read()
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 3])
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content == "garbage":
            with open(path, "wb") as fh:
                fh.write(b"not an HDF5 file\n" * 100)
        else:
            with h5py.File(path, "w") as f:
                f["x"] = np.arange(3)
                if content == "trajectory":
                    f.attrs[keys.KIND] = "trajectory"
    before = _snapshot(path)
    with pytest.raises(DataFileError):
        run_fake(monkeypatch, cfg, ctx)
    assert _snapshot(path) == before


def test_resume_never_refuses_existing_and_restart_needs_file(tmp_path, monkeypatch, ctx):
    cfg = make_cfg(tmp_path)
    run_fake(monkeypatch, cfg, ctx)
    never = cfg.replace("output", resume="never")
    with pytest.raises(DataFileError, match="resume = 'never'"):
        run_fake(monkeypatch, never, ctx)
    with pytest.raises(DataFileError, match="not found"):
        run_fake(monkeypatch, cfg, ctx, restart=str(tmp_path / "missing.h5"))
    # --restart FILE resumes into that file (complete: nothing to compute).
    assert run_fake(monkeypatch, never, ctx, restart=path_of(cfg)) == []


def test_fingerprint_ignores_flush_interval_and_bias_key(tmp_path):
    a = datagen.fingerprint_data(make_cfg(tmp_path))
    b = datagen.fingerprint_data(make_cfg(tmp_path, flush_every=5))
    assert a == b
    c = datagen.fingerprint_data(make_cfg(tmp_path, n_configs=11))
    assert a != c


def test_real_engine_rows_match_direct_calls(tmp_path, ctx):
    from hpcspin.negf import ElectronParams, NEGFEngine

    cfg = parse_deck(
        DECK.format(dir=tmp_path / "out"),
        "t.toml",
        overrides={"lattice.length": 8, "datagen.n_configs": 3},
    )
    datagen.run(cfg, ctx)
    d = ds.read_dataset(path_of(cfg))
    lat = make_lattice("chain", 8)
    eng = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, temperature=0.05), tol=1e-4)
    for k in range(3):
        s = sample_config(k, 5, lat, datagen.sampler_settings(cfg))
        res, eq = eng.compute(s.spins, bias=s.bias), eng.compute(s.spins, bias=0.0)
        np.testing.assert_array_equal(d["field"][k], res.field)
        np.testing.assert_array_equal(d["spin_density"][k], res.spin_density)
        np.testing.assert_array_equal(d["field_eq"][k], eq.field)
        assert d["current"][k] == res.current
        assert d["negf_error"][k] == max(res.error_estimate, eq.error_estimate)


def test_files_without_optional_columns_resume_and_read(tmp_path, monkeypatch, ctx):
    """Files written before ``negf_error`` existed stay readable and resumable."""
    cfg = make_cfg(tmp_path)
    with pytest.raises(RunInterrupted):
        run_fake(monkeypatch, cfg, ctx, stop_after=5)
    with h5py.File(path_of(cfg), "a") as f:
        del f[ds.NEGF_ERROR]
    seal_file(path_of(cfg))  # edited on purpose: a new checksum, else it reads as corrupt
    run_fake(monkeypatch, cfg, ctx)
    d = ds.read_dataset(path_of(cfg))
    assert d["done"].all() and ds.NEGF_ERROR not in d
