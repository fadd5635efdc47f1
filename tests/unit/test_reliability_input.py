"""Values that used to pass --check and fail at run time; full disks; training inputs."""

import errno
import os
from types import SimpleNamespace

import numpy as np
import pytest

from hpcspin import resources
from hpcspin.cli import main
from hpcspin.deck.load import parse_deck
from hpcspin.errors import DataFileError, DeckError, HpcspinError
from hpcspin.io import checkpoint as ck
from hpcspin.io import storage
from hpcspin.parallel.decomp import Decomposition

BASE = '[run]\ntask = "dynamics"\n[dynamics]\nforces = "none"\n'


def problems(text, n_ranks=1):
    with pytest.raises(DeckError) as info:
        parse_deck(BASE + text, n_ranks=n_ranks, check_files=False)
    return "\n".join(info.value.problems)


@pytest.mark.parametrize(
    "text, expect",
    [
        ("t_end = inf", "[dynamics] t_end = inf: must be a finite number"),
        ("dt = inf", "[dynamics] dt = inf: must be a finite number"),
        ("alpha = nan", "[dynamics] alpha = nan: must be a finite number"),
        ("dt = 600.0", "[dynamics] dt = 600.0: must be <= t_end = 500.0"),
    ],
)
def test_non_finite_and_empty_runs_are_refused(text, expect):
    assert expect in problems(text)


def test_nul_in_a_path_and_oversized_lengths_are_refused():
    p = problems('[output]\ndir = "runs/a\\u0000b"\n[lattice]\nlength = 100000000000000000000000\n')
    assert "[output] dir = 'runs/a\\x00b': must not contain a NUL character" in p
    assert "[lattice] length = 100000000000000000000000: must be a 64-bit integer" in p
    assert "[lattice] length = 1e+23: must be an integer" in problems("[lattice]\nlength = 1e23\n")


def test_a_billion_site_chain_is_refused_by_check_with_the_estimate(tmp_path, capsys):
    deck = tmp_path / "big.toml"
    deck.write_text(BASE + "[lattice]\nlength = 1000000000\n")
    assert main([str(deck), "--check"]) == 2
    err = capsys.readouterr().err
    assert "[lattice] length = 1000000000" in err and "GiB per rank" in err
    assert "GiB are available" in err and "Traceback" not in err


def test_memory_estimate_scales_and_compares_with_what_is_available(monkeypatch):
    cfg = parse_deck(BASE + "[lattice]\nlength = 4000000\n", check_files=False)
    one, root1 = resources.estimate_bytes(cfg, 1)
    four, root4 = resources.estimate_bytes(cfg, 4)
    # measured peak RSS of this run on 1 rank: 1.56 GiB (docs/reliability.md); the
    # estimate must bound it from above without being absurd
    assert 1.56 * 2**30 < root1 < 2.5 * 2**30
    base = resources._BASE  # libraries: the same on every rank
    assert four - base < (one - base) / 3 and root4 > four  # rank 0 holds gathered frames
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE", raising=False)
    monkeypatch.setattr(resources, "available_bytes", lambda: (root1 - 1.0, "test"))
    assert resources.memory_problems(cfg, 1)
    assert not resources.memory_problems(cfg, 4)
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")  # 4 ranks on this node
    monkeypatch.setattr(resources, "available_bytes", lambda: (root4 + 2 * four, "test"))
    assert "for the 4 rank(s) on this node" in resources.memory_problems(cfg, 4)[0]


# -- full and read-only file systems ------------------------------------------------------------
@pytest.mark.parametrize(
    "err, expect",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on /d/f.h5"),
        (RuntimeError("Can't write data (errno = 28, error message = 'x')"), "no space left on"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only file system: /d/f.h5"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "disk quota exceeded on /d/f.h5"),
    ],
)
def test_storage_errors_are_named(err, expect):
    assert expect in str(storage.storage_error(err, "/d/f.h5", "a checkpoint"))
    assert storage.storage_problem(OSError(errno.EIO, "I/O error"), "/d") is None


def fake_statvfs(free):
    return lambda _: SimpleNamespace(f_bavail=free, f_frsize=1, f_flag=0)


def write(directory, step):
    d = Decomposition.for_rank(4, 1, True, 1, 0)
    spins = np.tile([0.0, 0.0, 1.0], (4, 1))
    return ck.write_checkpoint(
        ck.checkpoint_path(directory, step), None, d, spins, {"time": 1.0, "step": step}
    )


def test_full_disk_refuses_a_checkpoint_before_hdf5_and_keeps_older_ones(tmp_path, monkeypatch):
    old = write(tmp_path, 1)
    monkeypatch.setattr(storage.os, "statvfs", fake_statvfs(1000))
    with pytest.raises(DataFileError, match=f"no space left on {tmp_path}") as info:
        write(tmp_path, 2)
    assert info.value.collective
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(old)]
    assert ck.read_checkpoint(old)[1]["step"] == 1


def test_disk_full_during_the_write_removes_the_partial_file(tmp_path, monkeypatch):
    def fail(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "_fill", fail)
    with pytest.raises(DataFileError, match="no space left on .*checkpoint_0000000003.h5"):
        write(tmp_path, 3)
    assert os.listdir(tmp_path) == []


def test_check_writable(tmp_path, monkeypatch):
    storage.check_writable(tmp_path / "model.pt", "[model] file =")
    assert os.listdir(tmp_path) == []  # the probe file is removed
    with pytest.raises(DataFileError, match="does not exist"):
        storage.check_writable(tmp_path / "no" / "model.pt", "[model] file =")

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.tempfile, "mkstemp", full)
    with pytest.raises(DataFileError, match=f"model.pt: no space left on {tmp_path}"):
        storage.check_writable(tmp_path / "model.pt", "[model] file =")


# -- training inputs ------------------------------------------------------------------------
def test_train_restart_must_exist_and_be_the_model_checkpoint(tmp_path):
    from hpcspin.tasks.train import _output_problem

    model = str(tmp_path / "m.pt")
    assert "--restart nope.ckpt: file not found" in _output_problem(model, "nope.ckpt")
    other = tmp_path / "other.ckpt"
    other.write_bytes(b"x")
    assert "only from its own checkpoint" in _output_problem(model, str(other))
    assert _output_problem(model, None) is None
    (tmp_path / "m.pt.ckpt").write_bytes(b"x")
    assert _output_problem(model, model + ".ckpt") is None


def test_training_stops_on_a_non_finite_loss():
    from hpcspin.lattice import make_lattice
    from hpcspin.ml import ModelSpec
    from hpcspin.ml.train import TrainConfig, train_model

    lat = make_lattice("chain", 8, 1)
    s = np.random.default_rng(0).standard_normal((6, 8, 3))
    s /= np.linalg.norm(s, axis=2, keepdims=True)
    h = np.zeros_like(s)
    h[2, 3, 0] = np.nan  # the dataset reader refuses this; train_model must too
    spec = ModelSpec(head="E", radius=1, hidden=(4,))
    cfg = TrainConfig(epochs=3, batch_size=2, val_fraction=0.34, patience=None)
    with pytest.raises(HpcspinError, match="not finite at epoch 1") as info:
        train_model(s, h, lat, spec, cfg)
    assert info.value.collective
