"""Damaged and hostile files: seals, checkpoint fallback, layout faults, non-finite data."""

import json
import logging
import os

import h5py
import numpy as np
import pytest

from hpcspin.errors import DataFileError
from hpcspin.io import dataset as ds
from hpcspin.io import keys, seal
from hpcspin.io.checkpoint import (
    checkpoint_path,
    find_latest_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from hpcspin.io.spins_file import read_spin_frames, read_spins_file
from hpcspin.parallel.decomp import Decomposition

L, W = 5, 2


def unit(shape, seed=0):
    s = np.random.default_rng(seed).standard_normal(shape)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def ckpt(directory, step, seed=0):
    d = Decomposition.for_rank(L, W, True, 1, 0)
    state = {"time": 0.5 * step, "step": step, "extra": {"phase": "drive"}}
    return write_checkpoint(
        checkpoint_path(directory, step), None, d, unit((L * W, 3), seed), state
    )


def flip(path, offset, bit=0):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([b ^ (1 << bit)]))


# -- seals -------------------------------------------------------------------------------
def test_checkpoint_is_sealed_and_every_byte_after_the_user_block_is_covered(tmp_path):
    p = ckpt(tmp_path, 10)
    assert seal.verify_seal(p) == seal.SEALED
    size = os.path.getsize(p)
    for offset in (seal.USERBLOCK, seal.USERBLOCK + 100, size // 2, size - 1):
        flip(p, offset)
        with pytest.raises(DataFileError, match="checksum"):
            read_checkpoint(p)
        flip(p, offset)  # undo
    read_checkpoint(p)


def test_damaged_seal_header_and_truncation_are_errors(tmp_path):
    p = ckpt(tmp_path, 10)
    flip(p, 20)  # inside the digest text
    with pytest.raises(DataFileError, match="checksum"):
        read_checkpoint(p)
    flip(p, 20)
    with open(p, "r+b") as fh:
        fh.truncate(os.path.getsize(p) - 7)
    with pytest.raises(DataFileError, match="truncated"):
        read_checkpoint(p)


def test_damaged_seal_tag_is_an_error_and_an_empty_header_reads_as_open(tmp_path):
    p = ckpt(tmp_path, 10)
    flip(p, 3)  # inside "HPCSPIN-SEAL": must not pass for an older, unsealed file
    with pytest.raises(DataFileError, match="damaged checksum header"):
        read_checkpoint(p)
    with open(p, "r+b") as fh:
        fh.write(b"\0" * seal.USERBLOCK)
    assert seal.verify_seal(p) == seal.OPEN


def test_file_without_user_block_is_read_with_a_warning(tmp_path, caplog):
    """Files of older versions (no user block) still load: same data, one warning."""
    p = ckpt(tmp_path, 10)
    spins, state = read_checkpoint(p)
    old = tmp_path / "old.h5"
    with h5py.File(p, "r") as src, h5py.File(old, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for name in src:
            src.copy(name, dst)
    assert not seal.has_userblock(old)
    with caplog.at_level(logging.WARNING):
        got, st = read_checkpoint(old)
    assert np.array_equal(got, spins) and st["step"] == state["step"]
    assert "no checksum" in caplog.text


def test_damaged_newest_checkpoint_falls_back_with_a_warning_naming_both(tmp_path, caplog):
    old, new = ckpt(tmp_path, 10), ckpt(tmp_path, 20, seed=1)
    flip(new, os.path.getsize(new) - 100, 3)
    with caplog.at_level(logging.WARNING):
        assert find_latest_checkpoint(tmp_path) == old
    assert new in caplog.text and f"using the older checkpoint {old}" in caplog.text


# -- checkpoint layout faults (unsealed files: the reader's own validation) --------------------
def _unsealed_copy(src, dst, edit):
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for k, v in a.attrs.items():
            b.attrs[k] = v
        for name in a:
            a.copy(name, b)
        edit(b)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda f: (f.__delitem__(keys.SPINS), f.create_group(keys.SPINS)), "spins"),
        (lambda f: f.attrs.__setitem__(keys.LATTICE_SHAPE, np.array([3, 3])), "lattice"),
        (lambda f: f.attrs.__setitem__(keys.N_SITES, 11), "lattice"),
        (lambda f: f.attrs.__setitem__(keys.EXTRA, "{not json"), "damaged"),
        (lambda f: f.attrs.__setitem__(keys.CK_STEP, -5), "step"),
        (lambda f: f.attrs.__setitem__(keys.CK_TIME, np.inf), "time"),
        (lambda f: f.attrs.__delitem__(keys.CK_STEP), "damaged"),
        (
            lambda f: (f.__delitem__(keys.RNG_STATE), f.create_dataset(keys.RNG_STATE, data=[1.0])),
            "byte array",
        ),
    ],
)
def test_checkpoint_with_damaged_metadata_is_a_clear_error(tmp_path, edit, match):
    bad = tmp_path / "bad.h5"
    _unsealed_copy(ckpt(tmp_path, 10), bad, edit)
    with pytest.raises(DataFileError, match=match):
        read_checkpoint(bad)


def test_checkpoint_with_nan_spins_is_refused(tmp_path):
    from hpcspin.io.checkpoint import _spins_hash

    def edit(f):
        s = f[keys.SPINS][...]
        s[3, 1] = np.nan
        f[keys.SPINS][...] = s
        f.attrs[keys.CHECKSUM] = np.uint64(_spins_hash(s))

    bad = tmp_path / "bad.h5"
    _unsealed_copy(ckpt(tmp_path, 10), bad, edit)
    with pytest.raises(DataFileError, match="non-finite spin at site 3"):
        read_checkpoint(bad)


# -- datasets --------------------------------------------------------------------------------
def make_dataset(path, n=3, n_sites=4):
    fp_json, fp = ds.fingerprint_of({"x": 1})
    attrs = {
        ds.FINGERPRINT: fp,
        ds.FINGERPRINT_JSON: fp_json,
        ds.N_CONFIGS: n,
        keys.N_SITES: n_sites,
        ds.KIND_NAMES: json.dumps(["wall"]),
    }
    w = ds.DatasetWriter.create(str(path), None, ds.layout(n, n_sites, False), {}, attrs)
    rng = np.random.default_rng(0)
    rows = np.arange(n)
    data = {name: rng.standard_normal((n, n_sites, 3)) for name in (ds.SPINS, ds.FIELD, ds.DENSITY)}
    data[ds.SPINS] = unit((n, n_sites, 3))
    for name in (ds.BIAS, ds.MU, ds.CURRENT, ds.NOISE, ds.NEGF_ERROR):
        data[name] = rng.standard_normal(n)
    data.update({ds.WALL_CENTER: np.full(n, np.nan), ds.WALL_WIDTH: np.full(n, np.nan)})
    data.update({ds.SAMPLE_KIND: np.zeros(n), ds.SESSION: np.zeros(n)})
    w.write_rows(rows, data)
    w.mark_done(rows)
    w.close()
    return str(path)


def edit_dataset(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)
    seal.seal_file(path)  # a deliberate edit: resealed, so the reader's checks are what is tested


def test_dataset_is_sealed_open_while_written_and_reads_back(tmp_path):
    p = make_dataset(tmp_path / "d.h5")
    assert seal.verify_seal(p) == seal.SEALED
    d = ds.read_dataset(p)
    assert d[ds.FIELD].shape == (3, 4, 3) and np.isnan(d[ds.WALL_CENTER]).all()
    w = ds.DatasetWriter(p)
    assert seal.verify_seal(p) == seal.OPEN  # a kill now leaves an unsealed file
    w.close()
    assert seal.verify_seal(p) == seal.SEALED


def test_dataset_bit_flip_is_refused(tmp_path):
    p = make_dataset(tmp_path / "d.h5")
    flip(p, os.path.getsize(p) - 10)
    with pytest.raises(DataFileError, match="checksum"):
        ds.read_dataset(p)


def test_nan_in_a_complete_row_is_named(tmp_path):
    p = make_dataset(tmp_path / "d.h5")

    def put_nan(f):
        v = f[ds.FIELD][...]
        v[1, 2, 0] = np.nan
        f[ds.FIELD][...] = v

    edit_dataset(p, put_nan)
    with pytest.raises(
        DataFileError, match=r"'field' holds a non-finite value \(nan\) at index \[1, 2, 0\]"
    ):
        ds.read_dataset(p)


def test_field_as_a_group_and_malformed_json_are_clear_errors(tmp_path):
    p = make_dataset(tmp_path / "d.h5")
    edit_dataset(p, lambda f: (f.__delitem__(ds.FIELD), f.create_group(ds.FIELD)))
    with pytest.raises(DataFileError, match="'field' is a group"):
        ds.read_dataset(p)
    q = make_dataset(tmp_path / "e.h5")
    edit_dataset(q, lambda f: f.attrs.__setitem__(ds.KIND_NAMES, '["wall"'))
    with pytest.raises(DataFileError, match="'kind_names' is not valid JSON"):
        ds.read_dataset(q)


# -- spins and snapshot files ------------------------------------------------------------------
def spins_file(path, value=None, group=False):
    with h5py.File(path, "w") as f:
        if group:
            f.create_group(keys.SPINS)
        else:
            f.create_dataset(keys.SPINS, data=value)
    return str(path)


BAD_SPINS = [
    ("group", None, "is a group"),
    ("strings", np.array([[b"a", b"b", b"c"]] * 4), "real numbers"),
    ("compound", np.zeros(4, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")]), "real numbers"),
    ("zero frames", np.zeros((0, 4, 3)), "zero frames"),
    ("wrong shape", np.ones((4, 2)), "shape"),
    ("overflowing", np.full((4, 3), 1e308), "site 0 holds"),
    ("nan", np.array([[1.0, 0, 0]] * 2 + [[np.nan, 0, 0]] + [[0, 0, 1.0]]), "site 2 holds"),
    ("zero", np.array([[1.0, 0, 0]] * 3 + [[0.0, 0, 0]]), "site 3 holds"),
]


@pytest.mark.parametrize("name, value, match", BAD_SPINS, ids=[b[0] for b in BAD_SPINS])
@pytest.mark.parametrize("reader", [read_spins_file, read_spin_frames])
def test_bad_spins_files_are_clear_errors(tmp_path, name, value, match, reader):
    p = spins_file(tmp_path / "s.h5", value, group=name == "group")
    with pytest.raises(DataFileError, match=match):
        reader(p, 4)


def test_good_spins_file_is_normalised_exactly_as_before(tmp_path):
    s = np.random.default_rng(2).standard_normal((3, 4, 3)) * 5
    p = spins_file(tmp_path / "s.h5", s)
    want = s / np.linalg.norm(s, axis=2, keepdims=True)
    assert np.array_equal(read_spin_frames(p, 4), want)
    assert np.array_equal(read_spins_file(p, 4), want[-1])
    assert np.array_equal(read_spins_file(p, 4, frame=0), want[0])
    with pytest.raises(DataFileError, match="no frame 3"):
        read_spins_file(p, 4, frame=3)


def test_not_hdf5_is_a_clear_error(tmp_path):
    p = tmp_path / "s.h5"
    p.write_text("hello")
    with pytest.raises(DataFileError, match="cannot read spins"):
        read_spins_file(str(p), 4)
