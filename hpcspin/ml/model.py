"""Force models: the shared descriptor wrapper around a head's site networks.

Heads (chosen by :attr:`ModelSpec.head`, defined in :mod:`hpcspin.ml.heads`):

- ``"E"``: H_i = -dE/dS_i, E = sum_j eps(D_j).
- ``"EA"``: H_i = -dE/dS_i + S_i x dA/dS_i, A = sum_j a(D_j) (the paper's form).
- ``"E+vector"``: conservative E plus H_i^neq = sum_k c_k(D_i) v_k,i with the
  equivariant basis v of :meth:`Window.basis_pairs` (default for driven runs).

:class:`ForceModel` builds descriptors, applies what every head shares (mirror
average, bias gate, output scales) to the head's site terms, and hands them to
:mod:`hpcspin.ml.fields` (autograd reference, also for training) or
:mod:`hpcspin.ml.fused` (analytic inference path), which turn potentials into
fields. The domain API (:meth:`ForceModel.local_field`) follows the grid/halo
layout of the MPI dynamics; the model itself never imports MPI.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from hpcspin.errors import HpcspinError
from hpcspin.ml import fused
from hpcspin.ml.descriptors import Window, basis, features, gather_window
from hpcspin.ml.fields import potentials_to_fields
from hpcspin.ml.heads import HEAD_TERMS, HEADS, MLP, build_networks, head_terms
from hpcspin.ml.kernels import grid_basis, grid_features

__all__ = ["HEADS", "MLP", "ForceModel", "ModelSpec", "build_model"]
GLOBAL_INPUTS = ("bias", "mu")
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class ModelSpec:
    """What a force model is (stored in model files).

    Attributes:
        head: "E", "EA" or "E+vector".
        kind: lattice kind the descriptor is built for.
        radius: descriptor cutoff radius in lattice constants.
        triple_cutoff: see :class:`Window`.
        hidden: hidden layer widths of each site network.
        globals: names of global inputs appended to every descriptor ("bias", "mu").
        symmetrize: strips only: average over the y -> -y mirror.
        chain_mirror: chains with a "bias" input: average over the exact symmetry of
            the driven chain, the mirror x -> -x together with V -> -V (and a pi spin
            rotation), so v(-V) = -v(V) holds by construction.
        bias_gate: with a "bias" global input: the E potential does not see the bias
            (it is the equilibrium part), and the nonequilibrium parts (A, vector) are
            multiplied by V, so they vanish exactly at V = 0 and the relaxed state
            and the V = 0 dynamics are those of the equilibrium model.
        dtype: "float64" or "float32".
        design: the descriptor window, a name of :func:`register_design` ("window":
            every cell within ``radius``, all pairs; "columns": see
            :mod:`hpcspin.ml.strip`).
        rows: "columns" design: largest row offset of the window.
        pair_cutoff: "columns" design: largest distance of a non-centre pair feature.
        eq_radius: with drive_symmetry: radius of a plain window for the E head alone
            (0: the E head sees the model's window). The equilibrium field is local;
            training differentiates the E head twice, so a small window is cheap.
        drive_symmetry: strips with a "bias" input: average over the drive group
            (inversion with V -> -V, and the y mirror), so v(-V) = -v(V) holds by
            construction (:mod:`hpcspin.ml.strip`).
    """

    head: str = "E+vector"
    kind: str = "chain"
    radius: float = 3.0
    triple_cutoff: float | None = None
    hidden: tuple[int, ...] = (32, 32)
    globals: tuple[str, ...] = ()
    symmetrize: bool = True
    chain_mirror: bool = False
    bias_gate: bool = False
    dtype: str = "float64"
    extra: dict = field(default_factory=dict, compare=False)
    design: str = "window"
    rows: int = 0
    pair_cutoff: float = 1.0
    drive_symmetry: bool = False
    eq_radius: float = 0.0

    def __post_init__(self):
        if self.head not in HEAD_TERMS:
            raise HpcspinError(f"unknown ML head {self.head!r}; choose from {tuple(HEAD_TERMS)}")
        bad = [g for g in self.globals if g not in GLOBAL_INPUTS]
        if bad:
            raise HpcspinError(f"unknown global inputs {bad}; choose from {GLOBAL_INPUTS}")
        if self.dtype not in _DTYPES:
            raise HpcspinError(f"dtype must be one of {tuple(_DTYPES)}, got {self.dtype!r}")
        if self.design not in _DESIGNS:
            raise HpcspinError(f"unknown design {self.design!r}; choose from {tuple(_DESIGNS)}")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "globals", tuple(self.globals))

    def to_dict(self) -> dict:
        """Plain-data form."""
        d = asdict(self)
        d["hidden"], d["globals"] = list(self.hidden), list(self.globals)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**d)


#: Descriptor designs: name -> factory(spec) -> Window (new designs register here).
_DESIGNS = {"window": lambda spec: Window(spec.kind, spec.radius, spec.triple_cutoff)}
#: The model class of ``ModelSpec.drive_symmetry`` (registered by :mod:`hpcspin.ml.strip`).
_DRIVE_CLASS: list = []


def register_design(name: str, factory) -> None:
    """Make ``ModelSpec(design=name)`` build its window with ``factory(spec)``."""
    _DESIGNS[name] = factory


def register_drive_class(cls) -> None:
    """The model class that ``ModelSpec(drive_symmetry=True)`` builds."""
    _DRIVE_CLASS[:] = [cls]


def model_class(spec: ModelSpec) -> type:
    """The model class a spec builds (:class:`ForceModel` unless drive_symmetry)."""
    return _DRIVE_CLASS[0] if spec.drive_symmetry else ForceModel


def _as_tensor(x, dtype, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)


class ForceModel(nn.Module):
    """Site networks of one head plus the wrapper that turns site terms into fields.

    Args:
        spec: the model specification.
    """

    #: Inference (no graph kept) by the analytic path of :mod:`hpcspin.ml.fused`;
    #: False takes the autograd reference (training always does).
    fused = True

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.window = _DESIGNS[spec.design](spec)
        dt = _DTYPES[spec.dtype]
        nf = self.window.n_features(len(spec.globals))
        self.terms = head_terms(spec.head)
        nets = build_networks(spec.head, nf, self.window.n_basis, spec.hidden, dt)
        for name, net in nets.items():  # attribute names are the state-dict prefixes
            setattr(self, name, net)
        # Output scales (set from the training targets) keep the networks O(1).
        self.register_buffer("scale_eq", torch.ones((), dtype=dt))
        self.register_buffer("scale_neq", torch.ones((), dtype=dt))
        if spec.kind == "chain":
            # x -> -x with V -> -V (and a pi rotation of all spins, invisible to the
            # rotation-invariant descriptor) is an exact symmetry of the driven chain.
            self._symm = spec.chain_mirror and "bias" in spec.globals
        else:
            self._symm = spec.symmetrize
        self._bias_col = None
        if spec.bias_gate and "bias" in spec.globals:
            self._bias_col = nf - len(spec.globals) + spec.globals.index("bias")
        self._cache = {}
        # below this many centre cells per call the stacked-window path is faster
        self.grid_kernel_min_sites = 2048

    # -- properties ------------------------------------------------------------
    @property
    def head(self) -> str:
        """The head name."""
        return self.spec.head

    @property
    def halo_width(self) -> tuple[int, int]:
        """(hx, hy) halo in grid cells that :meth:`local_field` needs (descriptor reach)."""
        return self.window.reach

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype."""
        return self.scale_eq.dtype

    @property
    def device(self) -> torch.device:
        """Parameter device."""
        return self.scale_eq.device

    # -- inputs ---------------------------------------------------------------
    def globals_tensor(self, globals_, batch: int) -> torch.Tensor:
        """Global inputs as a (batch, G) tensor.

        Args:
            globals_: dict name -> scalar or (batch,) values, or a (G,) / (batch, G)
                array in the order of ``spec.globals``; None if the model has none.
            batch: number of configurations.
        """
        names, dt, dev = self.spec.globals, self.dtype, self.device
        if not names:
            return torch.zeros((batch, 0), dtype=dt, device=dev)
        if globals_ is None:
            raise HpcspinError(f"this model needs global inputs {list(names)}")
        if isinstance(globals_, dict):
            missing = [n for n in names if n not in globals_]
            if missing:
                raise HpcspinError(f"this model needs global inputs {missing}")
            cols = [_as_tensor(globals_[n], dt, dev).reshape(-1).expand(batch) for n in names]
            return torch.stack(cols, dim=1)
        g = _as_tensor(globals_, dt, dev)
        return g.reshape(-1, len(names)).expand(batch, len(names))

    # -- site terms -------------------------------------------------------------
    def _mirror_tensors(self, device):
        key = ("mirror", str(device))
        if key not in self._cache:
            fp, fs = self.window.mirror_features
            ng = len(self.spec.globals)
            fp = np.concatenate([fp, len(fp) + np.arange(ng)])
            flip = [
                -1.0 if (self.spec.kind == "chain" and g == "bias") else 1.0
                for g in self.spec.globals
            ]
            fs = np.concatenate([fs, np.asarray(flip)])
            bp, bs = self.window.mirror_basis
            inv = np.argsort(bp)
            t = lambda a, dt: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
            self._cache[key] = (
                t(fp, torch.long),
                t(fs, self.dtype),
                t(inv, torch.long),
                t(bs[inv], self.dtype),
            )
        return self._cache[key]

    def site_terms(self, d, vbasis=None, vec_grad=False):
        """Site potentials and vector-head fields from descriptors.

        Args:
            d: (M, F) descriptors (globals included).
            vbasis: (n_basis, 3, M) equivariant basis, or None (no vector part).
            vec_grad: build the vector part with autograd (training).

        Returns:
            dict with "eps" (M,), "a" (M,) for the EA head, "vec" (3, M) for the
            vector head; mirror-averaged on strips.
        """
        m = d.shape[0]
        if self._symm:
            fp, fs, _, _ = self._mirror_tensors(d.device)
            d = torch.cat([d, d[:, fp] * fs], 0)
        return self._copy_terms(d, m, vbasis, vec_grad)

    def _copy_terms(self, d, m, vbasis, vec_grad, d_eq=None):
        """Site terms of the stacked symmetry copies ``d`` (copies of ``m`` rows each).

        ``d_eq``: the E head's own descriptors of the copies (default: ``d`` without the
        bias column). Copies are averaged by :meth:`_avg` and :meth:`_vector`.
        """
        gate, own_eq = None, d_eq
        d_eq = d
        if self._bias_col is not None:
            # One gate per copy: the mirrored copy of a chain carries -V.
            gate = d[:, self._bias_col]
            keep = torch.ones(d.shape[1], dtype=d.dtype, device=d.device)
            keep[self._bias_col] = 0.0
            d_eq = d * keep
        if own_eq is not None:
            d_eq = own_eq
        out = {}
        for t in self.terms:
            net, scale = getattr(self, t.net), getattr(self, t.scale)
            if t.kind == "energy":
                out[t.name] = self._avg(net(d_eq)[:, 0], m) * scale
            elif t.kind == "torque":
                a = net(d)[:, 0]
                out[t.name] = self._avg(a if gate is None else a * gate, m) * scale
            elif vbasis is not None:
                out[t.name] = self._vector(net, d, gate, vbasis, vec_grad, m) * scale
        return out

    def _vector(self, net, d, gate, vbasis, vec_grad, m):
        """sum_k c_k v_k of a vector term (no graph unless training)."""
        with torch.set_grad_enabled(vec_grad):
            c = net(d if vec_grad else d.detach())
            if gate is not None:
                c = c * (gate if vec_grad else gate.detach())[:, None]
            if self._symm:
                _, _, inv, bs = self._mirror_tensors(d.device)
                c = 0.5 * (c[:m] + c[m:][:, inv] * bs)
            vb = vbasis if vec_grad else vbasis.detach()
            return (c.t()[:, None, :] * vb).sum(0)

    @staticmethod
    def _avg(x, m):
        return x if x.shape[0] == m else 0.5 * (x[:m] + x[m:])

    def _prepare(self, spins, valid, halo):
        """Padded masked grid and owned-cell bookkeeping."""
        s = _as_tensor(spins, self.dtype, self.device)
        if s.dim() == 3:
            s = s[None]
        b, nx, ny, _ = s.shape
        if valid is None:
            v = torch.ones((nx, ny), dtype=torch.bool, device=self.device)
        else:
            v = _as_tensor(valid, torch.bool, self.device)
        v = v.expand(b, nx, ny).to(self.dtype)
        hx, hy = (int(h) for h in halo)
        if nx <= 2 * hx or ny <= 2 * hy:
            raise HpcspinError(f"grid {nx}x{ny} has no owned cells with halo {(hx, hy)}")
        return s, v, b, nx, ny, hx, hy

    # -- the domain API ----------------------------------------------------------
    def local_field(
        self,
        spins,
        valid=None,
        halo=(0, 0),
        globals_=None,
        *,
        create_graph: bool = False,
        parts: bool = False,
        potentials: bool = False,
    ):
        """Field contributions of one domain (grid layout with a halo).

        Site potentials are summed over the OWNED valid cells ``[hx:nx-hx, hy:ny-hy]``;
        the gradient parts land on every cell, ghosts included, so the caller
        reverse-halo-sums ghost contributions to their owners and then takes the
        owned block. The vector head contributes on owned cells only. Cells beyond
        the grid count as invalid (zero spin).

        Args:
            spins: (nx, ny, 3) or (B, nx, ny, 3) spins, numpy or torch.
            valid: (nx, ny) or (B, nx, ny) bool, True on real sites; None = all.
            halo: (hx, hy) ghost width on each side.
            globals_: global inputs (see :meth:`globals_tensor`).
            create_graph: keep the graph (training: the loss is differentiated
                through the fields); False for inference.
            parts: return a dict {"eq", "neq", "total"} instead of the total.
            potentials: also return the summed potentials {"E": (B,), "A": (B,)}.

        Returns:
            torch tensor like ``spins`` (full field, float of the model dtype), or the
            dict of parts; with ``potentials`` a tuple (fields, potentials).
        """
        unbatched = spins.ndim == 3
        if self.fused and not create_graph:
            with torch.no_grad():
                res = self._local_fused(spins, valid, halo, globals_)
        else:
            with torch.inference_mode(False), torch.enable_grad():
                s, v, b, nx, ny, hx, hy = self._prepare(spins, valid, halo)
                if torch.is_inference(s):
                    s = s.clone()
                s = s.detach().requires_grad_(True)
                res = self._local(s, v, b, nx, ny, hx, hy, globals_, create_graph, potentials)
        if not create_graph:
            res = {k: (x.detach() if isinstance(x, torch.Tensor) else x) for k, x in res.items()}
        if unbatched:
            res = {k: (x[0] if k in ("eq", "neq", "total") else x) for k, x in res.items()}
        pot = {k: res[k] for k in ("E", "A") if k in res}
        out = {k: res[k] for k in ("eq", "neq", "total")} if parts else res["total"]
        return (out, pot) if potentials else out

    def local_field_numpy(self, spins, valid=None, halo=(0, 0), globals_=None) -> np.ndarray:
        """:meth:`local_field` for numpy callers: float64 numpy array (nx, ny, 3) out.

        Args:
            spins: (nx, ny, 3) spins of the domain, halo included.
            valid: (nx, ny) bool, True on real sites; None = all.
            halo: (hx, hy) ghost width.
            globals_: global inputs (see :meth:`globals_tensor`).

        The model's own device is used (move the model with ``.to``).
        """
        out = self.local_field(spins, valid, halo, globals_)
        return out.detach().to("cpu", torch.float64).numpy()

    def _descriptors(self, sp, vp, block, need_vec):
        """Descriptors (M, F0) and basis (n_basis, 3, M) of a block of centre cells.

        Small blocks (training, short chains) use stacked windows: few large ops.
        Large blocks use bond-grid kernels: each bond computed once, no gathers.
        Both give the same numbers (tested).
        """
        x0, ox, y0, oy = block
        w = self.window
        if sp.shape[0] * ox * oy < self.grid_kernel_min_sites:
            win = gather_window(sp, w, x0, ox, y0, oy).reshape(-1, w.size, 3)
            mw = gather_window(vp[..., None], w, x0, ox, y0, oy).reshape(-1, w.size)
            vb = basis(win, w).permute(1, 2, 0) if need_vec else None
            return features(win, mw, w), vb
        spc = sp.permute(3, 0, 1, 2).contiguous()
        vb = grid_basis(spc, w, x0, ox, y0, oy) if need_vec else None
        return grid_features(spc, vp, w, x0, ox, y0, oy), vb

    def _local_fused(self, spins, valid, halo, globals_):
        """:meth:`local_field` by the analytic path of :mod:`hpcspin.ml.fused`."""
        s, v, b, nx, ny, hx, hy = self._prepare(spins, valid, halo)
        rx, ry = self.window.reach
        px, py = max(0, rx - hx), max(0, ry - hy)
        sm = s * v[..., None]
        sp = nn.functional.pad(sm, (0, 0, py, py, px, px))
        vp = nn.functional.pad(v, (py, py, px, px))
        glob = self.globals_tensor(globals_, b)
        return fused.local_fields(self, sm, v, sp, vp, glob, (hx, hy, px, py))

    def _local(self, s, v, b, nx, ny, hx, hy, globals_, cg, want_pot):
        rx, ry = self.window.reach
        px, py = max(0, rx - hx), max(0, ry - hy)
        sm = s * v[..., None]
        sp = nn.functional.pad(sm, (0, 0, py, py, px, px))
        vp = nn.functional.pad(v, (py, py, px, px))
        ox, oy = nx - 2 * hx, ny - 2 * hy
        x0, y0 = px + hx, py + hy
        need_vec = any(t.kind == "vector" for t in self.terms)
        d, vb, extra = self._local_descriptors(sp, vp, (x0, ox, y0, oy), need_vec)
        if self.spec.globals:
            glob = self.globals_tensor(globals_, b)
            glob = glob[:, None, None, :].expand(b, ox, oy, glob.shape[1])
            d = torch.cat([d, glob.reshape(b * ox * oy, -1)], 1)
        w_own = v[:, hx : nx - hx, hy : ny - hy].reshape(-1)
        t = self.site_terms(d, vb, cg, **extra)
        res = potentials_to_fields(s, sm, t, self.terms, w_own, (b, hx, hy, oy), cg)
        if not want_pot:
            res.pop("E", None)
        return res

    def _local_descriptors(self, sp, vp, block, need_vec):
        """(descriptors, vector basis, extra site_terms arguments) of the own cells."""
        d, vb = self._descriptors(sp, vp, block, need_vec)
        return d, vb, {}

    # -- serial convenience ------------------------------------------------------
    def field(
        self, spins, lattice, globals_=None, *, create_graph: bool = False, parts: bool = False
    ):
        """Field on every site of a whole system (one domain, serial).

        Args:
            spins: (N, 3) or (B, N, 3) spins in site order i = x*W + y (numpy or torch).
            lattice: the :class:`~hpcspin.lattice.Lattice`; periodic transverse
                boundaries wrap the ghost rows.
            globals_: global inputs (see :meth:`globals_tensor`).
            create_graph: as in :meth:`local_field`.
            parts: return {"eq", "neq", "total"}.

        Returns:
            Same shape as ``spins``; numpy float64 for numpy input, else a tensor.
        """
        self.check_lattice(lattice)
        is_np = not isinstance(spins, torch.Tensor)
        s = _as_tensor(spins, self.dtype, self.device)
        unbatched = s.dim() == 2
        if unbatched:
            s = s[None]
        b, n, _ = s.shape
        if n != lattice.n_sites:
            raise HpcspinError(f"spins have {n} sites, lattice has {lattice.n_sites}")
        ln, wd = lattice.length, lattice.width
        g = s.reshape(b, ln, wd, 3)
        hy = self.window.reach[1] if lattice.periodic else 0
        idx = torch.arange(-hy, wd + hy, device=self.device) % wd
        if hy:
            g = g[:, :, idx]
        res = self.local_field(g, None, (0, hy), globals_, create_graph=create_graph, parts=True)
        out = {}
        for k, f in res.items():
            if hy:
                f = torch.zeros_like(s.reshape(b, ln, wd, 3)).index_add(2, idx, f)
            f = f.reshape(b, n, 3)
            f = f[0] if unbatched else f
            out[k] = f.detach().cpu().numpy().astype(np.float64) if is_np else f
        return out if parts else out["total"]

    def check_lattice(self, lattice) -> None:
        """Raise ModelMismatchError if ``lattice`` is of another kind than the descriptor."""
        from hpcspin.errors import ModelMismatchError

        if lattice.kind != self.spec.kind:
            raise ModelMismatchError(
                f"model descriptor is for a {self.spec.kind} lattice, "
                f"the system is a {lattice.kind} lattice"
            )


def build_model(spec: ModelSpec | dict, seed: int | None = None) -> ForceModel:
    """A freshly initialised model (deterministic for a given seed)."""
    if isinstance(spec, dict):
        spec = ModelSpec.from_dict(spec)
    cls = model_class(spec)
    if seed is None:
        return cls(spec)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(seed))
        return cls(spec)
    finally:
        torch.random.set_rng_state(state)


def model_file_reach(path) -> int | None:
    """Largest halo width (cells) the model in ``path`` needs, or None if unreadable.

    This is the radius that matters at run time (the deck's [model] radius is a
    training setting); ``--check`` uses it for the rank-count checks.
    """
    from hpcspin.ml.modelfile import read_model_file

    try:
        spec = ModelSpec.from_dict(read_model_file(path)["spec"])
        w = _DESIGNS[spec.design](spec)
    except (HpcspinError, KeyError, TypeError, ValueError):
        return None
    return int(max(w.reach))
