"""Strip designs: a long window over the whole cross-section, and the drive symmetry.

On a strip between two leads the current-induced field is far less local than on
the chain (docs/experiment.md): the response |dH_i/dS_j| at V = 0.5 stays of the
order of the on-site one out to five sites. Two pieces answer that here:

- :class:`ColumnWindow` (design ``"columns"``): every cell with |x| <= radius and
  at most ``rows`` rows above or below the centre, so with ``rows = W - 1`` each
  site sees whole columns of the strip. All pairs of such a window would be
  thousands of features; it keeps the pairs with the centre (where each spin sits
  relative to the site) and the near bonds (|a - b| <= pair_cutoff: the local
  texture everywhere in the window), plus the centre triples of the near bonds.
- :class:`DriveSymmetricModel` (``ModelSpec.drive_symmetry``): the strip's
  counterpart of the chain mirror. The inversion r -> -r of the strip about its
  centre swaps the two leads, so with V -> -V (and a pi rotation of all spins,
  invisible to invariant descriptors) it is an exact symmetry of the driven
  strip, for square and triangular lattices alike. Every site term is averaged
  over {1, M_y, I, M_x = M_y I}, the last two with the bias reversed, so
  H[S o I; -V]_i = H[S; V]_I(i) holds by construction and a wall moves with
  v(-V) = -v(V) exactly. Inference takes the autograd path of
  :mod:`hpcspin.ml.fields` (the analytic path of :mod:`hpcspin.ml.fused` knows
  the two-element mirror only).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from hpcspin.errors import HpcspinError
from hpcspin.ml.descriptors import (
    _TOL,
    Window,
    basis,
    basis_permutation,
    feature_permutation,
    features,
    gather_window,
)
from hpcspin.ml.heads import MLP
from hpcspin.ml.kernels import grid_basis, grid_features
from hpcspin.ml.model import ForceModel, register_design, register_drive_class

#: Name of the long-window design in ``ModelSpec.design``.
COLUMNS = "columns"


@dataclass(frozen=True)
class ColumnWindow(Window):
    """Cells with |x| <= radius and |row| <= rows; centre pairs and near bonds only.

    Attributes:
        rows: largest row offset |dy| (W - 1 sees the whole strip cross-section).
        pair_cutoff: largest distance of a non-centre pair whose dot is a feature.
    """

    rows: int = 3
    pair_cutoff: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        if self.kind == "chain":
            raise ValueError("the columns design is for strips (square, triangular)")
        if self.rows < 0 or self.pair_cutoff < 1:
            raise ValueError(f"rows >= 0 and pair_cutoff >= 1 needed, got {self}")

    @cached_property
    def offsets(self) -> np.ndarray:
        """Integer offsets (K, 2), sorted by (dx, dy): |x| <= radius, |dy| <= rows."""
        r = int(np.ceil(self.radius)) + self.rows + 1
        dx, dy = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
        off = np.stack([dx.ravel(), dy.ravel()], axis=1)
        x = self.position(off)[:, 0]
        off = off[(np.abs(x) <= self.radius + _TOL) & (np.abs(off[:, 1]) <= self.rows)]
        return off[np.lexsort((off[:, 1], off[:, 0]))]

    @cached_property
    def pairs(self) -> np.ndarray:
        """(n_pairs, 2) cell pairs a < b: every pair with the centre, and near bonds."""
        pos, c = self.position(self.offsets), self.centre
        a, b = np.triu_indices(self.size, k=1)
        near = np.linalg.norm(pos[a] - pos[b], axis=1) <= self.pair_cutoff + _TOL
        keep = near | (a == c) | (b == c)
        return np.stack([a[keep], b[keep]], axis=1)

    def settings(self) -> dict:
        """Plain-data description (stored in model files)."""
        return {**super().settings(), "rows": int(self.rows), "pair_cutoff": self.pair_cutoff}


def _column_window(spec) -> Window:
    return ColumnWindow(
        spec.kind, spec.radius, spec.triple_cutoff, rows=spec.rows, pair_cutoff=spec.pair_cutoff
    )


register_design(COLUMNS, _column_window)


def cell_permutation(window: Window, sx: float, sy: float) -> np.ndarray:
    """Cell permutation (K,) of the window under (x, y) -> (sx x, sy y)."""
    return window._index_of(window.position(window.offsets) * np.array([sx, sy]))


#: The drive group of a strip: (sx, sy, bias sign) of {1, M_y, I, M_x}.
DRIVE_GROUP = ((1.0, 1.0, 1.0), (1.0, -1.0, 1.0), (-1.0, -1.0, -1.0), (-1.0, 1.0, -1.0))


class DriveSymmetricModel(ForceModel):
    """A strip model whose site terms are averaged over the drive group.

    Args:
        spec: the model specification (``kind`` a strip lattice, ``drive_symmetry``).
    """

    def __init__(self, spec):
        super().__init__(spec)
        if spec.kind == "chain":
            raise ValueError("drive_symmetry is for strips; chains use chain_mirror")
        self.fused = False  # the analytic path averages over one mirror only
        self.eq_window = None
        self._vec_given = None  # see given_vector_inputs
        self._vec_seen = None  # see vector_inputs
        if spec.eq_radius > 0:  # the E head on its own (small) window, no global inputs
            self.eq_window = Window(spec.kind, spec.eq_radius, spec.triple_cutoff)
            if any(a > b for a, b in zip(self.eq_window.reach, self.window.reach)):
                raise ValueError(f"eq_radius {spec.eq_radius} reaches beyond the window")
            nf = self.eq_window.n_features(0)
            self.energy_net = MLP(nf, spec.hidden, 1, self.dtype)

    def _group_tensors(self, device, eq=False):
        """[(feature perm, sign, basis inverse perm, sign)] of each group element.

        With ``eq`` those of the E head's own window (no globals).
        """
        key = ("drive", eq, str(device))
        if key not in self._cache:
            w, names = self.window, self.spec.globals
            if eq:
                w, names = self.eq_window, ()
            out = []
            # without the y mirror (symmetrize = False) the group is {1, I}
            group = [e for e in DRIVE_GROUP if self.spec.symmetrize or e[0] == e[1]]
            for sx, sy, sv in group:
                p = cell_permutation(w, sx, sy)
                fp, fs = feature_permutation(w, p)
                fp = np.concatenate([fp, len(fp) + np.arange(len(names))])
                flip = [sv if g == "bias" else 1.0 for g in names]
                fs = np.concatenate([fs, np.asarray(flip)])
                bp, bs = basis_permutation(w, p)
                inv = np.argsort(bp)
                ix = [torch.as_tensor(a, dtype=torch.long, device=device) for a in (fp, inv)]
                sg = [torch.as_tensor(a, dtype=self.dtype, device=device) for a in (fs, bs[inv])]
                out.append((ix[0], sg[0], ix[1], sg[1]))
            self._cache[key] = out
        return self._cache[key]

    def site_terms(self, d, vbasis=None, vec_grad=False, d_eq=None):
        """Site terms averaged over the drive group (see :meth:`ForceModel.site_terms`).

        ``d_eq``: descriptors of the E head's own window (with ``eq_radius``).
        """
        m = d.shape[0]
        group = self._group_tensors(d.device)
        d = torch.cat([d[:, fp] * fs for fp, fs, _, _ in group], 0)
        if d_eq is not None:
            eq_group = self._group_tensors(d.device, eq=True)
            d_eq = torch.cat([d_eq[:, fp] * fs for fp, fs, _, _ in eq_group], 0)
        return self._copy_terms(d, m, vbasis, vec_grad, d_eq=d_eq)  # reversed copies carry -V

    def _window_descriptors(self, w, sp, vp, block, need_vec):
        """:meth:`ForceModel._descriptors` for the window ``w``."""
        x0, ox, y0, oy = block
        if sp.shape[0] * ox * oy < self.grid_kernel_min_sites:
            win = gather_window(sp, w, x0, ox, y0, oy).reshape(-1, w.size, 3)
            mw = gather_window(vp[..., None], w, x0, ox, y0, oy).reshape(-1, w.size)
            vb = basis(win, w).permute(1, 2, 0) if need_vec else None
            return features(win, mw, w), vb
        spc = sp.permute(3, 0, 1, 2).contiguous()
        vb = grid_basis(spc, w, x0, ox, y0, oy) if need_vec else None
        return grid_features(spc, vp, w, x0, ox, y0, oy), vb

    def _local_descriptors(self, sp, vp, block, need_vec):
        """The E head on its own window (eq_radius); the vector term without a graph."""
        if self.eq_window is None:
            return super()._local_descriptors(sp, vp, block, need_vec)
        d_eq = None  # not needed while the E head is set aside (training the other part)
        if any(t.kind == "energy" for t in self.terms):
            d_eq, _ = self._window_descriptors(self.eq_window, sp, vp, block, False)
        if self._vec_given is not None:
            d, vb = self._vec_given
            x0, ox, y0, oy = block
            if d.shape[0] != sp.shape[0] * ox * oy:
                raise HpcspinError(
                    f"given vector inputs have {d.shape[0]} sites, the call {sp.shape[0] * ox * oy}"
                )
            return d, vb, {"d_eq": d_eq}
        with torch.no_grad():  # the vector term is not differentiated by the spins
            d, vb = self._window_descriptors(self.window, sp.detach(), vp, block, True)
        if self._vec_seen is not None:
            self._vec_seen.append((d, vb))
        return d, vb, {"d_eq": d_eq}

    # -- fixed vector inputs (training computes them once per configuration) -----
    @property
    def vector_inputs_fixed(self) -> bool:
        """True when the vector term's descriptors depend on the spins alone.

        With an E head on its own window the vector term's descriptors and basis
        carry no graph and no weights: training computes them once per configuration
        (:meth:`vector_inputs`) and hands them back (:meth:`given_vector_inputs`)
        instead of recomputing them every step (bench/bench_train.py).
        """
        return self.eq_window is not None and any(t.kind == "vector" for t in self.terms)

    def vector_inputs(self, spins, lattice, globals_=None):
        """The vector term's descriptors (M, F0) and basis (n_basis, 3, M).

        As :meth:`field` computes them for ``spins`` (B, N, 3) on ``lattice`` (M = B N);
        only the vector term is evaluated (no E head, no spin derivatives).
        """
        terms, self.terms = self.terms, tuple(t for t in self.terms if t.kind == "vector")
        self._vec_seen = []
        try:
            with torch.no_grad():
                self.field(spins, lattice, globals_)
            ((d, vb),) = self._vec_seen
        finally:
            self._vec_seen, self.terms = None, terms
        return d, vb

    @contextmanager
    def given_vector_inputs(self, d, vb):
        """Calls of :meth:`field` inside use ``(d, vb)`` as the vector term's inputs.

        ``(d, vb)``: from :meth:`vector_inputs` of the same spins (batches concatenated
        along the rows of ``d`` and the last axis of ``vb``).
        """
        self._vec_given = (d, vb)
        try:
            yield
        finally:
            self._vec_given = None

    @staticmethod
    def _avg(x, m):
        return x.reshape(-1, m).mean(0)

    def _vector(self, net, d, gate, vbasis, vec_grad, m):
        """sum_k c_k v_k with c averaged over the group (basis permuted per element)."""
        with torch.set_grad_enabled(vec_grad):
            c = net(d if vec_grad else d.detach())
            if gate is not None:
                c = c * (gate if vec_grad else gate.detach())[:, None]
            group = self._group_tensors(d.device)
            parts = [c[g * m : (g + 1) * m][:, inv] * bs for g, (_, _, inv, bs) in enumerate(group)]
            c = torch.stack(parts).mean(0)
            vb = vbasis if vec_grad else vbasis.detach()
            return (c.t()[:, None, :] * vb).sum(0)


register_drive_class(DriveSymmetricModel)
