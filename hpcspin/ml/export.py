"""Deployable models: a TorchScript file that any code with libtorch can call.

:func:`export_model` writes a trained :class:`~hpcspin.ml.model.ForceModel` as a
TorchScript module that needs neither hpcspin nor Python source: C++ (libtorch)
or Python codes load it with ``torch.jit.load`` and call

    field = module(spins, globals_)

with ``spins`` (B, L, W, 3) in the site order of the lattice it was trained on
(x along the chain or strip, y across; a chain has W = 1), ``globals_`` (B, G)
in the order of ``module.global_names`` (e.g. the bias V), float64 or float32
like the module (not under ``torch.no_grad``: the field is a gradient taken
inside the module). It returns the field H_i (B, L, W, 3) in units of t per unit
spin: -dE/dS_i plus the nonequilibrium part of the head. The x ends are open
(cells beyond are empty, as in the training data); the y boundary is periodic
when the training lattice was. The descriptor is the stacked-window one and the
gradient is taken with autograd inside the module, so the numbers equal the
in-process model to round-off (tested). The model file's metadata is stored
as ``meta.json`` in the archive (``torch.jit.load(path, _extra_files=...)``).

Command line::

    python -m hpcspin.ml.export MODEL.pt OUT.ts [--dtype float32]
"""

import argparse
import json
import sys
import warnings

import torch
from torch import nn

from hpcspin.ml.model import ForceModel

META = "meta.json"


class DeployedModel(nn.Module):
    """TorchScript-compatible field of a :class:`ForceModel` on a whole lattice."""

    offsets: list[list[int]]
    global_names: list[str]
    kinds: list[str]

    def __init__(self, model: ForceModel, periodic: bool):
        super().__init__()
        w, spec = model.window, model.spec
        self.offsets = [[int(a), int(b)] for a, b in w.offsets.tolist()]
        self.rx, self.ry = (int(r) for r in w.reach)
        self.periodic = bool(periodic) and spec.kind != "chain"
        self.global_names = list(spec.globals)
        self.symm = bool(model._symm)
        self.bias_col = -1 if model._bias_col is None else int(model._bias_col)
        self.kinds = [t.kind for t in model.terms]
        nets = [getattr(model, t.net) for t in model.terms]
        self.nets = nn.ModuleList([n.net for n in nets])
        self.register_buffer("scales", torch.stack([getattr(model, t.scale) for t in model.terms]))
        self._index_buffers(model)

    def _index_buffers(self, model: ForceModel) -> None:
        w, dev = model.window, model.device
        ix = w.tensors(dev)
        for k in ("pa", "pb", "t0", "t1", "t2", "mask", "single", "cp", "cq"):
            self.register_buffer(k, ix[k].clone())
        self.n_triples = len(w.triples)
        if self.symm:
            fp, fs, inv, bs = model._mirror_tensors(dev)
        else:
            fp = inv = torch.zeros(0, dtype=torch.long)
            fs = bs = torch.zeros(0, dtype=model.dtype)
        for k, v in (("fp", fp), ("fs", fs), ("inv", inv), ("bs", bs)):
            self.register_buffer(k, v.clone())

    def _windows(self, s: torch.Tensor, v: torch.Tensor):
        """(M, K, 3) window spins and (M, K) validity of every site."""
        nx, ny = s.shape[1], s.shape[2]
        if self.periodic and self.ry > 0:
            s = torch.cat([s[:, :, ny - self.ry :], s, s[:, :, : self.ry]], 2)
            v = torch.cat([v[:, :, ny - self.ry :], v, v[:, :, : self.ry]], 2)
            py = 0
        else:
            py = self.ry
        sp = nn.functional.pad(s, (0, 0, py, py, self.rx, self.rx))
        vp = nn.functional.pad(v, (py, py, self.rx, self.rx))
        ws, wv = [], []
        for o in self.offsets:
            x0, y0 = self.rx + o[0], self.ry + o[1]
            ws.append(sp[:, x0 : x0 + nx, y0 : y0 + ny])
            wv.append(vp[:, x0 : x0 + nx, y0 : y0 + ny])
        k = len(self.offsets)
        return torch.stack(ws, 3).reshape(-1, k, 3), torch.stack(wv, 3).reshape(-1, k)

    def _features(self, win: torch.Tensor, mask: torch.Tensor, glob: torch.Tensor):
        parts = [(win[:, self.pa] * win[:, self.pb]).sum(-1)]
        if self.n_triples > 0:
            cr = torch.cross(win[:, self.t1], win[:, self.t2], dim=-1)
            parts.append((win[:, self.t0] * cr).sum(-1))
        parts.append(mask[:, self.mask])
        if glob.shape[1] > 0:
            parts.append(glob)
        return torch.cat(parts, -1)

    def _basis(self, win: torch.Tensor) -> torch.Tensor:
        cross = torch.cross(win[:, self.cp], win[:, self.cq], dim=-1)
        return torch.cat([win[:, self.single], cross], 1).permute(1, 2, 0)

    def _avg(self, x: torch.Tensor, m: int) -> torch.Tensor:
        return 0.5 * (x[:m] + x[m:]) if self.symm else x

    def forward(self, spins: torch.Tensor, globals_: torch.Tensor) -> torch.Tensor:
        """Field (B, L, W, 3) of spins (B, L, W, 3) with global inputs (B, G)."""
        b, nx, ny = spins.shape[0], spins.shape[1], spins.shape[2]
        s = spins.detach().requires_grad_(True)
        v = torch.ones((b, nx, ny), dtype=s.dtype, device=s.device)
        win, mask = self._windows(s, v)
        m = win.shape[0]
        ng = globals_.shape[-1]
        glob = globals_.to(s.dtype).reshape(b, 1, ng).expand(b, nx * ny, ng).reshape(m, ng)
        d = self._features(win, mask, glob)
        if self.symm:
            d = torch.cat([d, d[:, self.fp] * self.fs], 0)
        gate = d[:, self.bias_col] if self.bias_col >= 0 else torch.ones_like(d[:, 0])
        d_eq = d
        if self.bias_col >= 0:
            keep = torch.ones(d.shape[1], dtype=d.dtype, device=d.device)
            keep[self.bias_col] = 0.0
            d_eq = d * keep
        eq = torch.zeros_like(s)
        neq = torch.zeros_like(s)
        for i, net in enumerate(self.nets):
            kind = self.kinds[i]
            if kind == "energy":
                e = (self._avg(net(d_eq)[:, 0], m) * self.scales[i]).sum()
                g = torch.autograd.grad([e], [s], retain_graph=True)[0]
                assert g is not None
                eq = eq - g
            elif kind == "torque":
                a = (self._avg(net(d)[:, 0] * gate, m) * self.scales[i]).sum()
                g = torch.autograd.grad([a], [s], retain_graph=True)[0]
                assert g is not None
                neq = neq + torch.cross(s, g, dim=-1)
            else:
                c = net(d.detach()) * gate.detach()[:, None]
                if self.symm:
                    c = 0.5 * (c[:m] + c[m:][:, self.inv] * self.bs)
                vb = self._basis(win.detach())
                hv = (c.t()[:, None, :] * vb).sum(0) * self.scales[i]
                neq = neq + hv.t().reshape(b, nx, ny, 3)
        return (eq + neq).detach()


def export_model(model: ForceModel, path, dtype: str | None = None) -> None:
    """Write ``model`` as a TorchScript file (see the module docstring).

    Args:
        model: a loaded model (its ``meta`` from the model file is stored if present).
        path: destination (conventionally ``.ts``).
        dtype: "float32" or "float64" to cast the exported weights; None keeps.
    """
    from hpcspin.errors import HpcspinError

    if model.spec.drive_symmetry or model.spec.design != "window":
        raise HpcspinError(
            "export: strip designs (drive_symmetry, design 'columns') are not exportable yet"
        )
    meta = dict(getattr(model, "meta", {}) or {})
    periodic = bool(meta.get("lattice", {}).get("periodic", False))
    dep = DeployedModel(model, periodic).cpu()
    if dtype is not None:
        dep = dep.to(getattr(torch, dtype))
    meta["exported_dtype"] = str(next(dep.parameters()).dtype).replace("torch.", "")
    meta["call"] = "field(spins (B, L, W, 3), globals (B, G)) -> (B, L, W, 3)"
    meta["global_names"] = dep.global_names
    with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated; libtorch loads it
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(dep.eval())
        scripted.save(str(path), _extra_files={META: json.dumps(meta, default=str)})


def main(argv: list[str] | None = None) -> int:
    """``python -m hpcspin.ml.export MODEL OUT [--dtype float32]``; exit 2 on a bad file."""
    from hpcspin.errors import HpcspinError
    from hpcspin.ml.modelfile import load_model

    ap = argparse.ArgumentParser(prog="python -m hpcspin.ml.export", description=__doc__)
    ap.add_argument("model", help="hpcspin model file (.pt)")
    ap.add_argument("out", help="TorchScript file to write (.ts)")
    ap.add_argument("--dtype", choices=("float64", "float32"), default=None)
    args = ap.parse_args(argv)
    try:
        model = load_model(args.model)
        export_model(model, args.out, args.dtype)
    except HpcspinError as exc:
        print(f"hpcspin: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (head {model.head}, globals {list(model.spec.globals)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
