"""Uncertainty by a committee: k models of one spec trained from different seeds.

Members agree where the training data pinned the field down and drift apart
where they extrapolate (narrower walls, larger biases than trained). The
per-site *disagreement* is the root-mean-square spread of the members'
transverse fields around their mean,

    d_i = sqrt( (1/k) sum_m |H_perp,m,i - <H_perp>_i|^2 ),

in field units (t per unit spin), zero when all members are identical. Only the
transverse part is used: the longitudinal part exerts no torque. The committee's
prediction is the member mean.
"""

from __future__ import annotations

import numpy as np

from hpcspin.dynamics.uncertainty import disagreement
from hpcspin.errors import ModelMismatchError

__all__ = ["Committee", "check_members", "disagreement"]


def check_members(metas: list[dict], paths: list[str]) -> None:
    """Members must share spec (up to nothing), lattice and training domain electrons.

    Raises:
        ModelMismatchError: naming the first member that differs and how.
    """
    ref = metas[0]
    for meta, path in zip(metas[1:], paths[1:], strict=True):
        for key in ("spec", "lattice", "globals"):
            if meta.get(key) != ref.get(key):
                raise ModelMismatchError(
                    f"committee member {path} has {key} {meta.get(key)}, member {paths[0]} "
                    f"has {ref.get(key)}: members must be one spec trained from other seeds"
                )
        e0 = (ref.get("domain") or {}).get("electrons")
        e1 = (meta.get("domain") or {}).get("electrons")
        if e0 and e1 and e0 != e1:
            raise ModelMismatchError(
                f"committee member {path} was trained at {e1}, member {paths[0]} at {e0}"
            )


class Committee:
    """k force models evaluated together: mean field and per-site disagreement."""

    def __init__(self, models: list, paths: list[str] | None = None):
        if len(models) < 2:
            raise ModelMismatchError("a committee needs at least two models")
        self.models = list(models)
        self.paths = list(paths or [f"member {i}" for i in range(len(models))])
        check_members([getattr(m, "meta", {}) for m in self.models], self.paths)

    @classmethod
    def load(cls, paths: list[str], lattice=None) -> Committee:
        """Load every member (checksums and fit checked as for one model)."""
        from hpcspin.ml.modelfile import load_model

        return cls([load_model(p, lattice=lattice) for p in paths], [str(p) for p in paths])

    def fields(self, spins, lattice, globals_=None) -> np.ndarray:
        """(k, ..., N, 3) fields of all members (numpy, float64)."""
        return np.stack([m.field(np.asarray(spins), lattice, globals_) for m in self.models])

    def predict(self, spins, lattice, globals_=None) -> tuple[np.ndarray, np.ndarray]:
        """(mean field, per-site disagreement) of the members."""
        f = self.fields(spins, lattice, globals_)
        return f.mean(axis=0), disagreement(f, spins)

    def local_disagreement(self, spins_local, valid, halo, globals_) -> np.ndarray:
        """Disagreement on a rank's owned sites (the ``local_field`` API of the models).

        Args:
            spins_local: the rank's spins with halo, as :class:`MLForce` passes them.
            valid: site mask with halo (None: all valid).
            halo: halo widths.
            globals_: global inputs.

        Returns:
            (owned sites..., ) disagreement per owned site.
        """
        f = np.stack([m.local_field_numpy(spins_local, valid, halo, globals_) for m in self.models])
        hx, hy = halo
        s = np.asarray(spins_local, dtype=float)
        s = s[hx : s.shape[0] - hx or None, hy : s.shape[1] - hy or None]
        return disagreement(f, s)
