"""Fast descriptor kernels on padded grids (no per-site gathers).

A pair feature S_{x+a} . S_{x+b} is the bond grid B_d[y] = S_y . S_{y+d} with
d = b - a, read at y = x + a: each distinct bond shape is computed once over the
region its anchors need, and every feature is a slice of it. Triple features
are read the same way from triple grids S_y . (S_{y+d1} x S_{y+d2}). Spins are
component-major, (3, B, X, Y), so each product is an elementwise operation on
contiguous slabs; gradients flow back through slices (cheap copies), not
through scatter operations. The reference implementation on stacked windows is
:func:`hpcspin.ml.descriptors.features`; tests check that the two agree.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from hpcspin.ml.descriptors import Window


@lru_cache(maxsize=64)
def _plan(window: Window):
    """Group features by shape: {shape: [(feature index, anchor (ax, ay)), ...]}."""
    off = [tuple(int(v) for v in o) for o in window.offsets]
    pairs: dict = {}
    for i, (a, b) in enumerate(window.pairs.tolist()):
        d = (off[b][0] - off[a][0], off[b][1] - off[a][1])
        pairs.setdefault(d, []).append((i, off[a]))
    triples: dict = {}
    n0 = len(window.pairs)
    for i, (c, a, b) in enumerate(window.triples.tolist()):
        d = (
            off[a][0] - off[c][0],
            off[a][1] - off[c][1],
            off[b][0] - off[c][0],
            off[b][1] - off[c][1],
        )
        triples.setdefault(d, []).append((n0 + i, off[c]))
    masks = [off[k] for k in window.mask_cells]
    singles, cross = window.basis_pairs
    basis = [("s", off[k], None) for k in singles]
    basis += [("x", off[p], off[q]) for p, q in cross.tolist()]
    return pairs, triples, masks, basis


def _cross(a, b):
    return torch.stack(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _region(items, x0, ox, y0, oy):
    ax = [a[0] for _, a in items]
    ay = [a[1] for _, a in items]
    return min(ax), min(ay), x0 + min(ax), x0 + max(ax) + ox, y0 + min(ay), y0 + max(ay) + oy


def grid_features(spc, vp, window: Window, x0: int, ox: int, y0: int, oy: int):
    """Invariant features of the block of centre cells [x0:x0+ox, y0:y0+oy].

    Args:
        spc: (3, B, X, Y) component-major spins, zero on invalid cells, padded so
            that every window cell of the block lies inside.
        vp: (B, X, Y) validity (1.0 / 0.0) of the same grid.
        window: the descriptor window.
        x0: first centre cell along x.
        ox: number of centre cells along x.
        y0: first centre cell along y.
        oy: number of centre cells along y.

    Returns:
        (B*ox*oy, F0) features in the order of :func:`descriptors.features`
        (dots, triples, masks; no globals).
    """
    pairs, triples, masks, _ = _plan(window)
    feats = [None] * (len(window.pairs) + len(window.triples))
    for (dx, dy), items in pairs.items():
        mx, my, xa, xb, ya, yb = _region(items, x0, ox, y0, oy)
        bond = (spc[:, :, xa:xb, ya:yb] * spc[:, :, xa + dx : xb + dx, ya + dy : yb + dy]).sum(0)
        for i, (ax, ay) in items:
            feats[i] = bond[:, ax - mx : ax - mx + ox, ay - my : ay - my + oy]
    for (d1x, d1y, d2x, d2y), items in triples.items():
        mx, my, xa, xb, ya, yb = _region(items, x0, ox, y0, oy)
        s0 = spc[:, :, xa:xb, ya:yb]
        cr = _cross(
            spc[:, :, xa + d1x : xb + d1x, ya + d1y : yb + d1y],
            spc[:, :, xa + d2x : xb + d2x, ya + d2y : yb + d2y],
        )
        trip = (s0 * cr).sum(0)
        for i, (ax, ay) in items:
            feats[i] = trip[:, ax - mx : ax - mx + ox, ay - my : ay - my + oy]
    for dx, dy in masks:
        feats.append(vp[:, x0 + dx : x0 + dx + ox, y0 + dy : y0 + dy + oy])
    return torch.stack(feats, dim=-1).reshape(-1, len(feats))


def grid_basis(spc, window: Window, x0: int, ox: int, y0: int, oy: int):
    """Equivariant basis vectors (n_basis, 3, B*ox*oy) of the block of centre cells."""
    _, _, _, basis = _plan(window)

    def cell(o):
        return spc[:, :, x0 + o[0] : x0 + o[0] + ox, y0 + o[1] : y0 + o[1] + oy]

    vecs = [cell(p) if kind == "s" else _cross(cell(p), cell(q)) for kind, p, q in basis]
    return torch.stack(vecs).reshape(len(vecs), 3, -1)
