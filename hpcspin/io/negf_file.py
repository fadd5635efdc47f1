"""The ``negf.h5`` file of the negf task (serial write by one rank)."""

from __future__ import annotations

import numpy as np

from hpcspin.io import keys
from hpcspin.io.h5 import open_h5, write_provenance
from hpcspin.io.storage import storage_error

# names, shapes and units: keys.DATASETS["negf"]
CHARGE, FIELD, DENSITY, CURRENT = keys.CHARGE, keys.FIELD, keys.DENSITY, keys.CURRENT


def write_negf_file(path, spins, result, energies, deck_text, config_json, n_ranks) -> None:
    """Write spins, densities, field, current and optionally T(E) with provenance.

    Raises:
        DataFileError: the file cannot be written (a full or read-only disk named).
    """
    try:
        _write(path, spins, result, energies, deck_text, config_json, n_ranks)
    except OSError as err:
        raise storage_error(err, path, "the NEGF result") from None


def _write(path, spins, result, energies, deck_text, config_json, n_ranks) -> None:
    with open_h5(path, "w") as f:
        write_provenance(f, deck_text, config_json, n_ranks, "negf")
        f.create_dataset(keys.SPINS, data=np.asarray(spins))
        f.create_dataset(DENSITY, data=np.asarray(result.spin_density))
        f.create_dataset(FIELD, data=np.asarray(result.field))
        f.create_dataset(CHARGE, data=np.asarray(result.charge_density))
        f.create_dataset(CURRENT, data=float(result.current))
        if energies is not None and result.transmission is not None:
            f.create_dataset(keys.ENERGIES, data=np.asarray(energies))
            f.create_dataset(keys.TRANSMISSION, data=np.asarray(result.transmission))
        for name in f:
            keys.annotate(f[name], "negf")
