"""Training-data generation: configuration samplers and the work schedule.

The ``datagen`` task itself (config -> run) is :mod:`hpcspin.tasks.datagen`; the
dataset file is :mod:`hpcspin.io.dataset`.
"""

from hpcspin.datagen.samplers import (
    KIND_NAMES,
    KIND_RANDOM,
    KIND_TEXTURE,
    KIND_WALL,
    KIND_WALL_NOISY,
    Sample,
    SamplerSettings,
    sample_config,
)

__all__ = [
    "KIND_NAMES",
    "KIND_RANDOM",
    "KIND_TEXTURE",
    "KIND_WALL",
    "KIND_WALL_NOISY",
    "Sample",
    "SamplerSettings",
    "sample_config",
]
