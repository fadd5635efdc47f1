"""CPU inference path: the analytic forward/backward on compiled kernels.

The analytic path of :mod:`hpcspin.ml.fused` with the elementwise work done by
:mod:`hpcspin.ml.cpu_kernels`. Per block of centre cells it makes, instead of a
few hundred torch calls:

1. one kernel call for the whole (F, W) feature block, mirrored copy included;
2. one GEMM for the first layer of ALL the head's networks (their first-layer
   weights stacked; the energy network's bias column zeroed), then per network
   its further layers, each a GEMM into a reused buffer;
3. SiLU and its derivative in one pass over torch's vectorised sigmoid;
4. per potential: the backward seed in one pass, W^T @ G GEMMs, one in-place
   product per layer, and one kernel call scattering the feature gradients
   (mirror folded in) onto the spins; the vector term in one kernel call.

Every buffer is allocated once per call and reused by every block, so blocks can
be small enough for the working set to stay in L2 (:data:`BLOCK_SITES`). Columns
are the owned cells in (configuration, x, y) order, cut into blocks without regard
to rows, so any domain shape gives full blocks.
"""

from __future__ import annotations

import weakref
from functools import lru_cache

import numpy as np
import torch

from hpcspin.ml import cpu_kernels as ck

#: Centre cells per block, per dtype (measured on the shipped models: bench/bench_ml.py).
BLOCK_SITES = {torch.float64: 1024, torch.float32: 1024}


def available(model) -> bool:
    """True if this path can evaluate ``model`` (numba present, CPU, hidden layers)."""
    if not ck.AVAILABLE or model.device.type != "cpu":
        return False
    return all(len(getattr(model, t.net).linears()) >= 2 for t in model.terms)


@lru_cache(maxsize=64)
def _tables(window, n_glob: int, width: int):
    """Kernel tables for padded width Y: (cell (4, F), shift (K,), bsh (3, n_basis))."""
    off = window.offsets.astype(np.int64)
    shift = off[:, 0] * width + off[:, 1]
    cols = [(0, a, b, 0) for a, b in window.pairs]
    cols += [(4 if c == window.centre else 1, c, a, b) for c, a, b in window.triples]
    cols += [(2, k, 0, 0) for k in window.mask_cells]
    cols += [(3, g, 0, 0) for g in range(n_glob)]
    singles, cross = window.basis_pairs
    bcols = [(0, shift[k], 0) for k in singles] + [(1, shift[p], shift[q]) for p, q in cross]
    cell = np.ascontiguousarray(np.array(cols, dtype=np.int64).T)
    bsh = np.ascontiguousarray(np.array(bcols, dtype=np.int64).reshape(-1, 3).T)
    return cell, np.ascontiguousarray(shift), bsh


#: Block sizes whose buffers stay with the model between calls.
_KEEP = 4
#: model -> {(dtype, block, rows, cells): _Work}; entries go with the model.
_WORK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _mat(rows: int, cols: int, dtype):
    """A (rows, cols) buffer and its numpy view."""
    x = torch.empty((rows, cols), dtype=dtype)
    return x, x.numpy()


class _Net:
    """One network of the head, its weights laid out for the block loop."""

    def __init__(self, model, term, r0: int, w1: torch.Tensor, dtype):
        lins = getattr(model, term.net).linears()
        self.term, self.rows = term, (r0, r0 + w1.shape[0])
        self.hidden = [(lin.bias.detach()[:, None], lin.weight.detach()) for lin in lins[1:-1]]
        self.last = (lins[-1].bias.detach()[:, None], lins[-1].weight.detach())
        # backward: W_k^T for k = L-2 .. 1, then the first layer's (bias-free) weight
        self.back = [lins[k].weight.detach().t() for k in range(len(lins) - 2, 0, -1)]
        self.w1t = w1.t()
        self.w_last = lins[-1].weight.detach()[0].numpy()
        scale = float(getattr(model, term.scale))
        half = 0.5 if model._symm else 1.0
        self.cst = np.array([scale, 0.5, 0.0], dtype)  # site sums and vector term
        self.cst_seed = np.array([scale * half], dtype)  # backward weight per column


class _Nets:
    """The head's networks with the first layers stacked into one matrix."""

    def __init__(self, model, dtype):
        self.nets, first_w, first_b, r0 = [], [], [], 0
        for t in model.terms:
            lin = getattr(model, t.net).linears()[0]
            w1 = lin.weight.detach()
            if t.equilibrium and model._bias_col is not None:
                w1 = w1.clone()
                w1[:, model._bias_col] = 0.0  # the conservative part does not see the bias
            first_w.append(w1)
            first_b.append(lin.bias.detach())
            self.nets.append(_Net(model, t, r0, w1, dtype))
            r0 += w1.shape[0]
        self.w1 = torch.cat(first_w, 0)
        self.b1 = torch.cat(first_b, 0)[:, None]


class _Work:
    """Every buffer of a block of ``m`` columns (``width`` with the mirrored copy)."""

    def __init__(self, run, m: int):
        width = 2 * m if run.model._symm else m
        dt, nets = run.dtype, run.nets
        self.d, self.d_np = _mat(run.cell.shape[1], width, dt)
        self.h1, self.h1_np = _mat(nets.w1.shape[0], width, dt)
        self.dd1, self.dd1_np = _mat(nets.w1.shape[0], width, dt)
        bc = run.model._bias_col
        self.gate = self.d_np[bc] if bc is not None else np.empty(0, run.s.dtype)
        self.nets = []
        for net in nets.nets:
            r0, r1 = net.rows
            w = {"a": self.h1[r0:r1], "dds": [(self.dd1[r0:r1], self.dd1_np[r0:r1])]}
            w["hidden"] = [_mat(wt.shape[0], width, dt) + _mat(wt.shape[0], width, dt)
                           for _, wt in net.hidden]  # fmt: skip
            w["out"], w["out_np"] = _mat(net.last[1].shape[0], width, dt)
            w["dds"] += [(x[2], x[3]) for x in w["hidden"]]
            w["g"] = [_mat(net.last[1].shape[1], width, dt)] + [
                _mat(wt.shape[0], width, dt) for wt in net.back
            ]
            w["gd"] = _mat(net.w1t.shape[0], width, dt)
            self.nets.append(w)
        self.grow = np.empty(m, run.s.dtype)
        self.u = np.empty((len(run.shift), 3, m), run.s.dtype)
        self.hv = np.empty((3, m), run.s.dtype)


class _Run:
    """State of one :func:`local_fields` call: spins, columns, outputs, buffers."""

    def __init__(self, model, spc, vp, glob, halo):
        hx, hy, px, py = halo
        nb, nx, ny = spc.shape[1], spc.shape[2] - 2 * px, spc.shape[3] - 2 * py
        big_x, big_y = spc.shape[2], spc.shape[3]
        self.model, self.dtype = model, spc.dtype
        self.s = spc.reshape(3, -1).numpy()
        self.v = vp.contiguous().reshape(-1).numpy()
        self.glob = glob.contiguous().numpy()
        self.cell, self.shift, self.bsh = _tables(model.window, glob.shape[1], big_y)
        # columns: owned cells in (configuration, x, y) order; runs of consecutive cells
        ox, oy = nx - 2 * hx, ny - 2 * hy
        if oy == big_y:  # whole rows: one run per configuration
            starts, rb, length = (
                np.arange(nb) * big_x * big_y + (px + hx) * big_y,
                np.arange(nb),
                ox * oy,
            )
        else:  # one run per (configuration, x)
            xs = np.arange(px + hx, px + nx - hx) * big_y + py + hy
            starts = np.add.outer(np.arange(nb) * big_x * big_y, xs).reshape(-1)
            rb, length = np.repeat(np.arange(nb), ox), oy
        n = len(starts)
        j0 = np.arange(n) * length
        self.runs = np.stack([j0, starts, np.full(n, length), rb], axis=1).astype(np.int64)
        self.cols = None  # flat centre cell per column: only the vector term needs it
        if any(term.kind == "vector" for term in model.terms):
            self.cols = (starts[:, None] + np.arange(length)).reshape(-1)
        if nb == 1:
            self.colb = np.zeros(nb * ox * oy, np.int64)
        else:
            self.colb = np.repeat(rb.astype(np.int64), length)
        self.n = nb * ox * oy
        self.mir = _mirror(model, self.s.dtype)
        self.nets = _Nets(model, self.s.dtype)
        self.block = BLOCK_SITES.get(self.dtype, 1024)
        self.cst = np.array([0.5, 1.0], self.s.dtype)

    def work(self, m: int) -> _Work:
        """The buffers of a block of m columns, kept with the model between calls.

        Reusing them across calls spares the page faults of fresh large buffers;
        at most :data:`_KEEP` sizes are kept (a full block and a few remainders). They
        live in a weak table outside the model: a copy of the model (``deepcopy``,
        pickling) must not carry numpy views that no longer alias its torch buffers.
        """
        cache = _WORK.setdefault(self.model, {})
        key = (self.dtype, m, self.cell.shape[1], len(self.shift))
        if key not in cache:
            while len(cache) >= _KEEP:
                cache.pop(next(iter(cache)))
            cache[key] = _Work(self, m)
        return cache[key]


def _mirror(model, dtype):
    """Kernel arrays of the mirrored copy (empty without it)."""
    if not model._symm:
        e = np.empty(0, np.int64)
        return e, np.empty(0, dtype), e, np.empty(0, dtype), e, np.empty(0, dtype)
    fp, fs, inv, bs = (x.cpu().numpy() for x in model._mirror_tensors(torch.device("cpu")))
    q = np.argsort(fp)  # row of the copy that reads feature i
    return fp, fs, q, np.ascontiguousarray(fs[q]), inv, bs


def local_fields(model, sm, v, sp, vp, glob, halo) -> dict:
    """:func:`hpcspin.ml.fused.local_fields` on the compiled kernels (same arguments)."""
    from hpcspin.ml.fused import _assemble

    hx, hy, px, py = halo
    b, nx, ny, _ = sm.shape
    ox, oy = nx - 2 * hx, ny - 2 * hy
    spc = sp.permute(3, 0, 1, 2).contiguous()
    run = _Run(model, spc, vp, glob, halo)
    w_own = v[:, hx : nx - hx, hy : ny - hy].contiguous().reshape(-1).numpy()
    pots = [t for t in model.terms if t.kind != "vector"]
    grads = {t.name: torch.zeros_like(spc) for t in pots}
    sums = {t.name: sm.new_zeros(b) for t in pots}
    vec = spc.new_zeros((3, b * ox * oy)) if len(pots) < len(model.terms) else None
    out = {
        "grads": {k: g.reshape(3, -1).numpy() for k, g in grads.items()},
        "sums": {k: x.numpy() for k, x in sums.items()},
        "vec": vec.numpy() if vec is not None else None,
    }
    for j0 in range(0, run.n, run.block):
        j1 = min(j0 + run.block, run.n)
        _block(run, j0, j1, w_own[j0:j1], out)
    if vec is not None:
        vec = vec.reshape(3, b, ox, oy)
    return _assemble(model, sm, v, grads, sums, vec, halo)


def _block(run, j0: int, j1: int, w_own, out) -> None:
    """One block of columns [j0, j1): adds to the grads and sums, fills vec."""
    wk = run.work(j1 - j0)
    fp, fs, q, qs, inv, bs = run.mir
    runs = ck.block_runs(run.runs, j0, j1)
    ck.features(run.s, run.v, run.glob, runs, run.cell, run.shift, fp, fs, wk.d_np)
    torch.addmm(run.nets.b1, run.nets.w1, wk.d, out=wk.h1)
    torch.sigmoid(wk.h1, out=wk.dd1)
    ck.silu_inplace(wk.h1_np, wk.dd1_np)
    no_gate = run.s[0, :0]
    for net, w in zip(run.nets.nets, wk.nets):
        a = w["a"]
        for (bias, wt), (h, h_np, dd, dd_np) in zip(net.hidden, w["hidden"]):
            torch.addmm(bias, wt, a, out=h)
            torch.sigmoid(h, out=dd)
            ck.silu_inplace(h_np, dd_np)
            a = h
        torch.addmm(*net.last, a, out=w["out"])
        t = net.term
        if t.kind == "vector":
            hv = out["vec"][:, j0:j1]
            cols = run.cols[j0:j1]
            ck.vector_field(run.s, w["out_np"], wk.gate, cols, w_own, run.bsh, inv, bs, net.cst, hv)
            continue
        gate = no_gate if t.equilibrium else wk.gate
        colb = run.colb[j0:j1]
        ck.site_sums(w["out_np"][0], gate, w_own, colb, net.cst, out["sums"][t.name])
        ck.seed(net.w_last, w_own, gate, net.cst_seed, w["dds"][-1][1], w["g"][0][1])
        g = w["g"][0][0]
        for wt, (gk, _), (dd, _) in zip(net.back, w["g"][1:], w["dds"][-2::-1]):
            torch.mm(wt, g, out=gk)
            g = gk.mul_(dd)
        torch.mm(net.w1t, g, out=w["gd"][0])
        grad = out["grads"][t.name]
        ck.scatter(
            run.s, grad, w["gd"][1], runs, run.cell, run.shift, q, qs, wk.grow, wk.u, run.cst
        )
