"""Model files: weights plus everything needed to refuse a model that does not fit.

A model file is a ``torch.save`` of a plain dict (loaded with ``weights_only``,
so no code runs on load): format tag, model version, hpcspin version, the
:class:`ModelSpec`, the descriptor settings, the lattice it was trained on
(kind, width, periodic), units, global inputs, the training-data fingerprint,
metrics, and the state dict.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from hpcspin import __version__
from hpcspin.errors import HpcspinError, ModelMismatchError
from hpcspin.ml.model import ForceModel, ModelSpec

FORMAT = "hpcspin-ml-model"
MODEL_VERSION = 1
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
) -> None:
    """Write a model file atomically (temporary file, then rename).

    Args:
        path: destination.
        model: the trained model.
        lattice: the lattice it was trained on (kind, width and periodic are stored).
        metrics: training metrics (plain numbers).
        fingerprint: sha256 of the training arrays (:func:`~hpcspin.ml.train.data_fingerprint`).
        extra: anything else to keep (plain data), e.g. the deck text.
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
    path = os.fspath(path)
    tmp = f"{path}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_model_file(path) -> dict:
    """The payload of a model file, checked for format and version (no model built)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
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
        model = ForceModel(ModelSpec.from_dict(meta["spec"]))
    except (TypeError, KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: model spec cannot be rebuilt: {exc}") from None
    _check_fit(path, meta, model, lattice, expect_head)
    try:
        model.load_state_dict(meta["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ModelFileError(f"{path}: weights do not fit the stored spec: {exc}") from None
    model.to(map_location).eval()
    model.meta = {k: v for k, v in meta.items() if k != "state_dict"}
    return model
