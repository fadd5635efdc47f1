"""Machine-learned force models (the only package that imports torch).

Descriptors (:mod:`.descriptors`), heads and the autograd wrapper with the
domain API (:mod:`.model`), training (:mod:`.train`), model files
(:mod:`.modelfile`) and metrics (:mod:`.metrics`). See docs/ml.md.
"""

from hpcspin.ml.descriptors import Window
from hpcspin.ml.model import HEADS, ForceModel, ModelSpec, build_model

__all__ = ["HEADS", "ForceModel", "ModelSpec", "Window", "build_model"]
