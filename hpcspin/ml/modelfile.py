"""Model files: weights plus everything needed to refuse a model that does not fit.

A model file is a 128-byte checksum header followed by a ``torch.save`` of a
plain dict (loaded with ``weights_only``, so no code runs on load)::

    HPCSPIN-MODEL v1
    sha256 <64 hex digits of the bytes after the header>
    size <number of bytes after the header>

The dict holds the format tag, model version, hpcspin version, the
:class:`ModelSpec`, the descriptor settings, the lattice it was trained on
(kind, width, periodic), units, global inputs, the training domain
(:mod:`hpcspin.ml.domain`), the training-data fingerprint, metrics, and the
state dict. The digest covers all of it, so a flipped bit or a truncation
anywhere is refused before torch parses a byte. Files written by hpcspin
before the header existed (a bare torch zip) are still read, with a warning.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np
import torch

from hpcspin import __version__
from hpcspin.errors import HpcspinError, ModelMismatchError
from hpcspin.log import get_logger
from hpcspin.ml.model import ForceModel, ModelSpec, build_model

log = get_logger("ml.modelfile")
FORMAT = "hpcspin-ml-model"
MODEL_VERSION = 1
HEADER_SIZE = 128
_MAGIC = b"HPCSPIN-MODEL v1\n"
_ZIP = b"PK\x03\x04"
#: A model file larger than this is refused unread (the shipped ones are ~100 kB).
MAX_BYTES = 1 << 31
#: Keys every model file holds, with their types (checked before use).
REQUIRED = {
    "format": str,
    "model_version": int,
    "head": str,
    "spec": dict,
    "descriptor": dict,
    "radius": float,
    "globals": list,
    "lattice": dict,
    "state_dict": dict,
}
UNITS = {"energy": "t (hopping)", "field": "t per unit spin", "time": "hbar/t", "spin": "|S| = 1"}


class ModelFileError(HpcspinError):
    """A model file is missing, corrupt, foreign or from a newer hpcspin."""


def _descriptor_meta(model: ForceModel) -> dict:
    w = model.window
    return {
        **w.settings(),
        "offsets": w.offsets.tolist(),
        "n_features": w.n_features(len(model.spec.globals)),
        "n_basis": w.n_basis,
        "symmetrize": bool(model.spec.symmetrize and model.spec.kind != "chain"),
    }


def _plain(x):
    """Metrics as plain Python numbers (weights_only-safe)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic | np.ndarray):
        return _plain(np.asarray(x).tolist())
    return x


def save_model(
    path,
    model: ForceModel,
    lattice,
    *,
    metrics: dict | None = None,
    fingerprint: str = "",
    extra: dict | None = None,
    domain: dict | None = None,
) -> None:
    """Write a model file atomically (temporary file, then rename).

    Args:
        path: destination.
        model: the trained model.
        lattice: the lattice it was trained on (kind, width and periodic are stored).
        metrics: training metrics (plain numbers).
        fingerprint: sha256 of the training arrays (:func:`~hpcspin.ml.train.data_fingerprint`).
        extra: anything else to keep (plain data), e.g. the deck text.
        domain: the training domain (:func:`hpcspin.ml.domain.training_domain`).
    """
    payload = {
        "format": FORMAT,
        "model_version": MODEL_VERSION,
        "hpcspin_version": __version__,
        "head": model.head,
        "spec": model.spec.to_dict(),
        "descriptor": _descriptor_meta(model),
        "radius": float(model.spec.radius),
        "globals": list(model.spec.globals),
        "lattice": {
            "kind": lattice.kind,
            "width": int(lattice.width),
            "periodic": bool(lattice.periodic),
        },
        "units": dict(UNITS),
        "fingerprint": str(fingerprint),
        "metrics": _plain(metrics or {}),
        "extra": _plain(extra or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if domain is not None:
        payload["domain"] = _plain(domain)
    write_payload(path, payload)


def _header(digest: str, size: int) -> bytes:
    text = f"sha256 {digest}\nsize {size}\n".encode()
    return (_MAGIC + text).ljust(HEADER_SIZE, b"\0")


def seal_bytes(body: bytes) -> bytes:
    """The checksum header followed by ``body`` (the torch.save bytes)."""
    return _header(hashlib.sha256(body).hexdigest(), len(body)) + body


def write_payload(path, payload: dict) -> None:
    """Write a model-file dict with its checksum header, atomically (temporary file, rename)."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(seal_bytes(buf.getvalue()))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _unseal(path: str, raw: bytes) -> bytes:
    """The torch bytes of a model file after checking its header and digest."""
    if raw.startswith(_ZIP):
        log.warning(
            "model file %s has no checksum (written by an older hpcspin): read unverified; "
            "re-save it with `python -m hpcspin inspect %s --seal`",
            path,
            path,
        )
        return raw
    if not raw.startswith(_MAGIC):
        raise ModelFileError(
            f"{path} is not a readable hpcspin model file (corrupt or foreign: no checksum header)"
        )
    try:
        lines = raw[len(_MAGIC) : HEADER_SIZE].split(b"\0", 1)[0].decode("ascii").split("\n")
        tag1, digest = lines[0].split(" ")
        tag2, size = lines[1].split(" ")
        n = int(size)
        if raw[:HEADER_SIZE] != _header(digest, n):
            raise ValueError(lines)  # any other byte in the header (padding included)
    except (UnicodeDecodeError, ValueError, IndexError):
        raise ModelFileError(f"{path}: damaged checksum header (corrupt model file)") from None
    body = raw[HEADER_SIZE:]
    if len(body) != n:
        raise ModelFileError(
            f"{path}: {len(body)} bytes after the header, its checksum header says {n} "
            "(truncated or damaged model file); restore it from a copy or retrain"
        )
    if hashlib.sha256(body).hexdigest() != digest:
        raise ModelFileError(
            f"{path}: content fails its SHA-256 checksum (corrupt model file); restore it "
            "from a copy or retrain"
        )
    return body


def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path} does not exist")
    try:
        if os.path.getsize(path) > MAX_BYTES:
            raise ModelFileError(f"{path} is over {MAX_BYTES} bytes: not an hpcspin model file")
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path}: {err.strerror or err}") from None


def _check_keys(path: str, payload: dict) -> None:
    """Every required key present with its type; weights finite tensors."""
    for key, typ in REQUIRED.items():
        val = payload.get(key)
        ok = isinstance(val, typ) or (typ is float and isinstance(val, int))
        if not ok or isinstance(val, bool):
            got = "missing" if key not in payload else type(val).__name__
            raise ModelFileError(
                f"{path}: key {key!r} is {got}, a model file needs a {typ.__name__} "
                "(damaged or foreign model file)"
            )
    lat = payload["lattice"]
    if not {"kind", "width", "periodic"} <= set(lat):
        raise ModelFileError(f"{path}: key 'lattice' lacks kind, width or periodic")
    for name, t in payload["state_dict"].items():
        if not isinstance(t, torch.Tensor):
            raise ModelFileError(f"{path}: weight {name!r} is not a tensor")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelFileError(
                f"{path}: weight {name!r} holds non-finite values (NaN or inf); the model "
                "cannot be used: retrain it"
            )


def read_model_file(path) -> dict:
    """The payload of a model file, verified (checksum, format, version, keys, finite weights).

    No model is built. Adds ``checksum``: "verified" or "none" (an older file).

    Raises:
        ModelFileError: missing, unreadable, corrupt, truncated, foreign, newer, or
            with missing keys or non-finite weights.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    body = _unseal(path, raw)
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(
            f"{path} is not a readable hpcspin model file (corrupt or foreign): "
            f"{type(exc).__name__}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an hpcspin model file (no '{FORMAT}' tag)")
    ver = payload.get("model_version")
    if not isinstance(ver, int) or ver > MODEL_VERSION:
        raise ModelFileError(
            f"{path} has model version {ver}; this hpcspin {__version__} reads up to "
            f"{MODEL_VERSION}"
        )
    _check_keys(path, payload)
    payload["checksum"] = "none" if body is raw else "verified"
    return payload


def _check_fit(path, meta, model, lattice, expect_head):
    if expect_head is not None and meta["head"] != expect_head:
        raise ModelMismatchError(
            f"model file {path} has head {meta['head']!r}, but {expect_head!r} is asked for"
        )
    if meta["descriptor"] != _descriptor_meta(model):
        raise ModelMismatchError(
            f"model file {path} descriptor {meta['descriptor']} differs from the descriptor "
            f"this hpcspin {__version__} builds for that spec {_descriptor_meta(model)}"
        )
    if lattice is not None:
        want = meta["lattice"]
        have = {
            "kind": lattice.kind,
            "width": int(lattice.width),
            "periodic": bool(lattice.periodic),
        }
        if want != have:
            raise ModelMismatchError(
                f"model file {path} was trained on lattice {want}, the system is {have}"
            )


def load_model(
    path, lattice=None, expect_head: str | None = None, map_location="cpu"
) -> ForceModel:
    """Load a model file and check that it fits.

    Args:
        path: the model file.
        lattice: the system's lattice; kind, width and periodic boundary must equal
            those the model was trained on (None: not checked).
        expect_head: the head the caller needs ("E", "EA", "E+vector"), or None.
        map_location: device for the weights.

    Returns:
        The model in eval mode, with the file's metadata as ``model.meta``.

    Raises:
        ModelFileError: missing, corrupt or foreign file, or an unknown version.
        ModelMismatchError: head, descriptor or lattice does not fit (both sides named).
    """
    path = os.fspath(path)
    meta = read_model_file(path)
    try:
        model = build_model(ModelSpec.from_dict(meta["spec"]))
    except (TypeError, KeyError, ValueError, AttributeError, HpcspinError) as exc:
        raise ModelFileError(f"{path}: model spec cannot be rebuilt: {exc}") from None
    _check_fit(path, meta, model, lattice, expect_head)
    try:
        model.load_state_dict(meta["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit the stored spec: {exc}") from None
    model.to(map_location).eval()
    model.meta = {k: v for k, v in meta.items() if k != "state_dict"}
    return model
