"""Machine-learned force models (the only package that imports torch).

Descriptors (:mod:`.descriptors`, :mod:`.kernels`), heads and the autograd
wrapper with the domain API (:mod:`.model`), training (:mod:`.train`), model
files (:mod:`.modelfile`) and metrics (:mod:`.metrics`). See docs/ml.md.
"""

from hpcspin.ml.descriptors import Window
from hpcspin.ml.model import HEADS, ForceModel, ModelSpec, build_model
from hpcspin.ml.modelfile import ModelFileError, load_model, read_model_file, save_model
from hpcspin.ml.train import TrainConfig, TrainResult, train_model

__all__ = [
    "HEADS",
    "ForceModel",
    "ModelFileError",
    "ModelSpec",
    "TrainConfig",
    "TrainResult",
    "Window",
    "build_model",
    "load_model",
    "read_model_file",
    "save_model",
    "train_model",
]
