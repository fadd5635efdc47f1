"""Analytic inference path: descriptor, networks and field in one pass, no autograd.

The reference (:mod:`hpcspin.ml.fields`) builds a graph through the bond-grid
descriptor and lets ``torch.autograd`` take the gradient. For inference the same
numbers come out of a hand-written forward and backward that

- keeps features row-major, (F, M): every feature is one contiguous row, the
  global inputs and the mirrored copy are rows written in place (no concatenation),
  and every layer is one ``addmm`` W @ X;
- runs the MLP backward analytically (SiLU' from the saved sigmoid);
- scatters feature gradients back to the spin grid per bond shape: a shape's
  bond gradient G_d collects the rows of every feature of that shape, then
  dP/dS_y += G_d[y] S_{y+d} and dP/dS_{y+d} += G_d[y] S_y (triples alike);
- works in blocks of about :data:`BLOCK_SITES` centre cells, so temporaries stay
  in cache and are reused instead of being freshly mapped on large domains.

The result equals the reference to round-off (tested at 1e-12 in float64). On a CPU
with numba, :func:`local_fields` hands the work to :mod:`hpcspin.ml.fused_cpu` (the
same steps as compiled loops, :data:`USE_CPU_KERNELS`); this torch implementation is
the GPU path and the fallback.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from hpcspin.ml import fused_cpu
from hpcspin.ml.kernels import _plan, _region, grid_basis

#: Centre cells per block on CPU (features of a block fit in L2; measured best of 1k-16k).
BLOCK_SITES = 4096
#: On a GPU: large blocks, so that kernel launches do not dominate.
GPU_BLOCK_SITES = 1 << 21
#: On CPU, take the compiled-kernel path of :mod:`hpcspin.ml.fused_cpu` when it applies.
USE_CPU_KERNELS = True


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cross product over the leading component axis: six multiply(-add)s, no stack."""
    out = torch.empty_like(a)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        torch.mul(a[j], b[k], out=out[i])
        out[i].addcmul_(a[k], b[j], value=-1.0)
    return out


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot product over the leading component axis, without a (3, ...) temporary."""
    d = a[0] * b[0]
    d.addcmul_(a[1], b[1])
    return d.addcmul_(a[2], b[2])


def _dsilu(a: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
    """SiLU'(h) = sig (1 + h (1 - sig)) = a + sig (1 - a) with a = h sig."""
    return torch.addcmul(a, sig, 1.0 - a)


def mlp_forward(linears, x: torch.Tensor):
    """Feature-major forward of an MLP: x (F, M) -> (out (n_out, M), saved)."""
    saved = []
    for lin in linears[:-1]:
        h = torch.addmm(lin.bias[:, None], lin.weight, x)
        sig = torch.sigmoid(h)
        x = h.mul_(sig)
        saved.append((x, sig))
    last = linears[-1]
    return torch.addmm(last.bias[:, None], last.weight, x), saved


def mlp_backward(linears, saved, gout: torch.Tensor, w_first=None) -> torch.Tensor:
    """d(sum gout * out)/dx (F, M) of a one-output MLP; ``gout`` (1, M).

    Args:
        linears: the affine layers.
        saved: from :func:`mlp_forward`.
        gout: weight of each column's output.
        w_first: replacement weight of the first layer (the bias-gated copy).
    """
    g = linears[-1].weight.t() * gout
    for k in range(len(saved) - 1, -1, -1):
        a, sig = saved[k]
        g = g.mul_(_dsilu(a, sig))
        w = w_first if (k == 0 and w_first is not None) else linears[k].weight
        g = w.t() @ g
    return g


class _Block:
    """Features of a block of centre cells, row-major, with the mirrored copy."""

    def __init__(self, model, spc, vp, glob, block):
        x0, ox, y0, oy = block
        w, b = model.window, spc.shape[1]
        self.m = b * ox * oy
        nf = w.n_features(len(model.spec.globals))
        width = 2 * self.m if model._symm else self.m
        self.d = torch.empty((nf, width), dtype=spc.dtype, device=spc.device)
        rows = self.d[:, : self.m].unflatten(1, (b, ox, oy))
        _fill_features(w, spc, vp, block, rows)
        for g in range(glob.shape[1]):
            rows[nf - glob.shape[1] + g] = glob[:, g, None, None]
        if model._symm:
            fp, fs, _, _ = model._mirror_tensors(spc.device)
            torch.mul(self.d[fp, : self.m], fs[:, None], out=self.d[:, self.m :])


def _fill_features(w, spc, vp, block, rows) -> None:
    """Write pair, triple and mask features of the block into ``rows`` (F, B, ox, oy)."""
    x0, ox, y0, oy = block
    pairs, _, masks, _ = _plan(w)
    for (dx, dy), items in pairs.items():
        mx, my, xa, xb, ya, yb = _region(items, x0, ox, y0, oy)
        bond = _dot(spc[:, :, xa:xb, ya:yb], spc[:, :, xa + dx : xb + dx, ya + dy : yb + dy])
        for i, (ax, ay) in items:
            rows[i] = bond[:, ax - mx : ax - mx + ox, ay - my : ay - my + oy]
    for (d2x, d2y), shapes in _triple_groups(w).items():
        (xa0, xb0, ya0, yb0), regs = _group_regions(shapes, block)
        y = _cross(
            spc[:, :, xa0:xb0, ya0:yb0], _sl(spc, xa0 + d2x, xb0 + d2x, ya0 + d2y, yb0 + d2y)
        )
        for ((d1x, d1y), items), (mx, my, xa, xb, ya, yb) in zip(shapes, regs):
            s1 = _sl(spc, xa + d1x, xb + d1x, ya + d1y, yb + d1y)
            trip = _dot(s1, _sl(y, xa - xa0, xb - xa0, ya - ya0, yb - ya0)).neg_()
            for i, (ax, ay) in items:
                rows[i] = trip[:, ax - mx : ax - mx + ox, ay - my : ay - my + oy]
    n0 = len(w.pairs) + len(w.triples)
    for k, (dx, dy) in enumerate(masks):
        rows[n0 + k] = vp[:, x0 + dx : x0 + dx + ox, y0 + dy : y0 + dy + oy]


def _scatter_features(w, spc, grad, gd, block) -> None:
    """Add d/dS of sum(gd * features) to ``grad`` (3, B, X, Y); gd is (F, B, ox, oy)."""
    x0, ox, y0, oy = block
    pairs, _, _, _ = _plan(w)
    for (dx, dy), items in pairs.items():
        mx, my, xa, xb, ya, yb = _region(items, x0, ox, y0, oy)
        g = spc.new_zeros((spc.shape[1], xb - xa, yb - ya))
        for i, (ax, ay) in items:
            g[:, ax - mx : ax - mx + ox, ay - my : ay - my + oy] += gd[i]
        grad[:, :, xa:xb, ya:yb].addcmul_(g, spc[:, :, xa + dx : xb + dx, ya + dy : yb + dy])
        grad[:, :, xa + dx : xb + dx, ya + dy : yb + dy].addcmul_(g, spc[:, :, xa:xb, ya:yb])
    for (d2x, d2y), shapes in _triple_groups(w).items():
        _scatter_triples(spc, grad, gd, block, (d2x, d2y), shapes)


def _scatter_triples(spc, grad, gd, block, d2, shapes) -> None:
    """Backward of the triples T = -S_{y+d1} . Y[y], Y = S_y x S_{y+d2}, of one d2."""
    x0, ox, y0, oy = block
    (xa0, xb0, ya0, yb0), regs = _group_regions(shapes, block)
    s0 = spc[:, :, xa0:xb0, ya0:yb0]
    s2 = _sl(spc, xa0 + d2[0], xb0 + d2[0], ya0 + d2[1], yb0 + d2[1])
    y = _cross(s0, s2)
    gy = torch.zeros_like(y)
    for ((d1x, d1y), items), (mx, my, xa, xb, ya, yb) in zip(shapes, regs):
        g = spc.new_zeros((spc.shape[1], xb - xa, yb - ya))
        for i, (ax, ay) in items:
            g[:, ax - mx : ax - mx + ox, ay - my : ay - my + oy] += gd[i]
        sub = (xa - xa0, xb - xa0, ya - ya0, yb - ya0)
        s1 = _sl(spc, xa + d1x, xb + d1x, ya + d1y, yb + d1y)
        _sl(grad, xa + d1x, xb + d1x, ya + d1y, yb + d1y).addcmul_(g, _sl(y, *sub), value=-1.0)
        _sl(gy, *sub).addcmul_(g, s1, value=-1.0)
    grad[:, :, xa0:xb0, ya0:yb0] += _cross(s2, gy)
    _sl(grad, xa0 + d2[0], xb0 + d2[0], ya0 + d2[1], yb0 + d2[1]).add_(_cross(gy, s0))


def _sl(a, xa, xb, ya, yb):
    return a[:, :, xa:xb, ya:yb]


@lru_cache(maxsize=64)
def _triple_groups(window) -> dict:
    """Triple shapes grouped by their second offset d2: {d2: [(d1, items), ...]}."""
    _, triples, _, _ = _plan(window)
    groups: dict = {}
    for (d1x, d1y, d2x, d2y), items in triples.items():
        groups.setdefault((d2x, d2y), []).append(((d1x, d1y), items))
    return groups


def _group_regions(shapes, block):
    """Union region (xa, xb, ya, yb) of a d2 group and each shape's own region."""
    regs = [_region(items, *block) for _, items in shapes]
    box = (
        min(r[2] for r in regs),
        max(r[3] for r in regs),
        min(r[4] for r in regs),
        max(r[5] for r in regs),
    )
    return box, regs


def _potential(model, term, blk, w_own, gate):
    """Site potential of a block: (summed value per column set, d sum / d features)."""
    lins = getattr(model, term.net).linears()
    scale = getattr(model, term.scale)
    w1 = None
    if term.equilibrium and model._bias_col is not None:
        w1 = lins[0].weight.clone()
        w1[:, model._bias_col] = 0.0  # the conservative part does not see the bias
    if w1 is None:
        out, saved = mlp_forward(lins, blk.d)
    else:
        h = torch.addmm(lins[0].bias[:, None], w1, blk.d)
        out, saved = _forward_from(lins, h)
    raw = out[0]
    coef = w_own.repeat(2) if model._symm else w_own
    coef = coef * (0.5 * scale if model._symm else scale)
    if gate is not None and not term.equilibrium:
        raw = raw * gate
        coef = coef * gate
    val = raw[: blk.m] if not model._symm else 0.5 * (raw[: blk.m] + raw[blk.m :])
    gd = mlp_backward(lins, saved, coef[None, :], w1)
    return val * scale * w_own, _fold(model, gd, blk.m)


def _forward_from(lins, h):
    """Rest of :func:`mlp_forward` from the first pre-activation ``h``."""
    sig = torch.sigmoid(h)
    a = h.mul_(sig)
    out, saved = mlp_forward(lins[1:], a)
    return out, [(a, sig)] + saved


def _fold(model, gd, m):
    """Gradient w.r.t. the original features: the mirrored copy's rows folded back."""
    if not model._symm:
        return gd
    fp, fs, _, _ = model._mirror_tensors(gd.device)
    return gd[:, :m].index_add(0, fp, gd[:, m:] * fs[:, None])


def _vector(model, term, blk, spc, block, gate):
    """Vector term (3, M) of a block: sum_k c_k v_k, gated, mirror-averaged."""
    c, _ = mlp_forward(getattr(model, term.net).linears(), blk.d)
    if gate is not None:
        c = c * gate
    if model._symm:
        _, _, inv, bs = model._mirror_tensors(c.device)
        c = 0.5 * (c[:, : blk.m] + c[inv, blk.m :] * bs[:, None])
    vb = grid_basis(spc, model.window, *block)
    return (c[:, None, :] * vb).sum(0) * getattr(model, term.scale)


def local_fields(model, sm, v, sp, vp, glob, halo) -> dict:
    """Fields of one domain, as :func:`hpcspin.ml.fields.potentials_to_fields` gives them.

    Args:
        model: the :class:`~hpcspin.ml.model.ForceModel`.
        sm: (B, nx, ny, 3) masked spins.
        v: (B, nx, ny) validity (1.0 / 0.0).
        sp: ``sm`` padded by (px, py) cells.
        vp: ``v`` padded alike.
        glob: (B, G) global inputs.
        halo: (hx, hy, px, py) ghost widths and padding.

    Returns:
        dict with "eq", "neq", "total" (B, nx, ny, 3) and "E" (and "A") (B,).
    """
    if USE_CPU_KERNELS and fused_cpu.available(model):
        return fused_cpu.local_fields(model, sm, v, sp, vp, glob, halo)
    hx, hy, px, py = halo
    b, nx, ny, _ = sm.shape
    ox, oy = nx - 2 * hx, ny - 2 * hy
    spc = sp.permute(3, 0, 1, 2).contiguous()
    w_all = v[:, hx : nx - hx, hy : ny - hy]
    grads = {t.name: torch.zeros_like(spc) for t in model.terms if t.kind != "vector"}
    sums = {t.name: sm.new_zeros(b) for t in model.terms if t.kind != "vector"}
    vec = None
    per_block = BLOCK_SITES if sm.device.type == "cpu" else GPU_BLOCK_SITES
    step = max(1, per_block // (b * oy))
    for xs in range(0, ox, step):
        cx = min(step, ox - xs)
        block = (px + hx + xs, cx, py + hy, oy)
        blk = _Block(model, spc, vp, glob, block)
        w_own = w_all[:, xs : xs + cx].reshape(-1)
        gate = blk.d[model._bias_col] if model._bias_col is not None else None
        for t in model.terms:
            if t.kind == "vector":
                vec = spc.new_zeros((3, b, ox, oy)) if vec is None else vec
                hv = _vector(model, t, blk, spc, block, gate) * w_own
                vec[:, :, xs : xs + cx] = hv.reshape(3, b, cx, oy)
                continue
            val, gd = _potential(model, t, blk, w_own, gate)
            sums[t.name] += val.reshape(b, -1).sum(1)
            gd = gd.unflatten(1, (b, cx, oy))
            _scatter_features(model.window, spc, grads[t.name], gd, block)
    return _assemble(model, sm, v, grads, sums, vec, halo)


def _assemble(model, sm, v, grads, sums, vec, halo) -> dict:
    """Grid gradients -> eq / neq fields on the unpadded grid."""
    hx, hy, px, py = halo
    nx, ny = sm.shape[1:3]
    res, eq, neq = {}, None, None
    for t in model.terms:
        if t.kind == "vector":
            hv = vec.permute(1, 2, 3, 0)
            part = torch.nn.functional.pad(hv, (0, 0, hy, hy, hx, hx))
            neq = part if neq is None else neq + part
            continue
        g = grads[t.name][:, :, px : px + nx, py : py + ny].permute(1, 2, 3, 0)
        g = g * v[..., None]
        if t.kind == "energy":
            eq, res["E"] = -g, sums[t.name]
        else:
            part = torch.cross(sm, g, dim=-1)
            neq = part if neq is None else neq + part
            res["A"] = sums[t.name]
    if neq is None:
        neq = torch.zeros_like(eq)
    if eq is None:  # a model trained on its current-induced part alone
        eq = torch.zeros_like(neq)
    res.update(eq=eq, neq=neq, total=eq + neq)
    return res
