"""Several NEGF datasets of one system read as one (training on a union of datasets).

Active learning appends new labels (e.g. NEGF fields of configurations a committee
flagged during dynamics) to the original training data without rewriting it:
``[train] extra_datasets`` lists the new files, and training reads the union. The
files must describe the same system: same lattice, same electron parameters, same
configuration families and the same per-configuration arrays.
"""

from __future__ import annotations

import numpy as np

from hpcspin.errors import DataFileError
from hpcspin.io.dataset import read_dataset

#: Recorded descriptions that must agree between the files of a union.
_SAME = ("lattice", "electrons", "kind_names")


def _arrays(data: dict) -> set[str]:
    return {k for k, v in data.items() if isinstance(v, np.ndarray) and k != "index"}


def _mismatch(first: str, path: str, base: dict, data: dict) -> str | None:
    """Why ``data`` (from ``path``) cannot be appended to ``base`` (from ``first``)."""
    for key in _SAME:
        if base.get(key) != data.get(key):
            return (
                f"{path}: its {key} {data.get(key)} differs from {first}'s {base.get(key)} "
                "(a union needs datasets of one system: generate it with the same "
                "[lattice] and [electrons])"
            )
    missing = _arrays(base) ^ _arrays(data)
    if missing:
        return (
            f"{path}: arrays {sorted(missing)} are in only one of {first} and {path} "
            "(e.g. with_equilibrium differs: generate both the same way)"
        )
    return None


def union(parts: list[tuple[str, dict]]) -> dict:
    """Concatenate datasets read by :func:`read_dataset` (rows in the order given).

    Args:
        parts: ``(path, data)`` pairs; the first is the primary dataset, whose
            attributes, sampler and NEGF settings the union keeps.

    Returns:
        The primary dataset with every per-configuration array extended by the rows
        of the others; ``index`` numbers the rows of the union, ``sources`` lists
        ``(path, n_rows)``.

    Raises:
        DataFileError: a file of another system or layout.
    """
    first, base = parts[0]
    for path, data in parts[1:]:
        why = _mismatch(first, path, base, data)
        if why:
            raise DataFileError(why)
    out = dict(base)
    for key in _arrays(base):
        out[key] = np.concatenate([d[key] for _, d in parts], axis=0)
    out["index"] = np.arange(out["spins"].shape[0])
    out["sources"] = [(p, int(d["spins"].shape[0])) for p, d in parts]
    return out


def read_datasets(paths) -> dict:
    """Read one dataset, or the union of several (see :func:`union`)."""
    paths = list(paths)
    if len(paths) == 1:
        return read_dataset(paths[0])
    return union([(p, read_dataset(p)) for p in paths])
