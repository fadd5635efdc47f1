"""Machine-learned force models (the only package that imports torch).

Descriptors (:mod:`.descriptors`, :mod:`.kernels`), heads (:mod:`.heads`), the
model with the domain API (:mod:`.model`), site terms -> fields (:mod:`.fields`,
autograd reference; :mod:`.fused`, analytic inference), training (:mod:`.train`),
model files (:mod:`.modelfile`) and metrics (:mod:`.metrics`). See docs/ml.md.
"""

from hpcspin.ml import strip  # noqa: F401  (registers the strip designs)
from hpcspin.ml.descriptors import Window
from hpcspin.ml.heads import HEADS
from hpcspin.ml.model import ForceModel, ModelSpec, build_model
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
