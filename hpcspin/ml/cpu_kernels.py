"""Compiled (numba) elementwise kernels of the CPU inference path.

For networks of a few tens of units the matrix products of a site evaluation are
cheap enough that everything around them decides the rate: building the 45
descriptor rows (and their mirrored copy) from bond products, SiLU and its
derivative, and scattering the feature gradients back to the spins. Done with torch
operations that is a few hundred dispatched calls per block and several passes over
memory per row; here each is one compiled loop over the block's columns:

* :func:`features`: every row of the (F, W) feature block of the given centre cells,
  straight from the spins (pairs S_a . S_b, triples S_c . (S_a x S_b), masks,
  globals) and the mirrored copy (a signed row permutation);
* :func:`silu_inplace`: a = h sig(h) over h, and SiLU'(h) = a + sig - sig a over the
  sigmoid (computed before by torch's vectorised sigmoid);
* :func:`seed`: the backward seed g = w_last c^T * SiLU' of one potential, and
  :func:`site_sums`: its summed value per configuration;
* :func:`scatter`: the feature gradients (mirror folded in) back onto the spin grid;
* :func:`vector_field`: sum_k c_k v_k of the vector head, basis built on the fly.

Spins are flat, component-major (3, P) over the padded grid; a window cell at
offset (dx, dy) of the centre cell with flat index p is p + dx*Y + dy (Y the padded
width), so every feature is a fixed pair of shifts. The loops use no float literals
(constants come in arrays of the data's dtype), so float32 stays float32.
Sequential loops, no parallel reductions: results are deterministic. Without numba
:data:`AVAILABLE` is False and :mod:`hpcspin.ml.fused` keeps its torch path.
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional: the torch path of hpcspin.ml.fused is the fallback.
    import numba

    AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the installation
    numba = None
    AVAILABLE = False


def _jit(fn):
    if not AVAILABLE:
        return fn
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


@_jit
def features(s, v, glob, runs, cell, shift, fp, fs, out):  # pragma: no cover - compiled
    """Feature block ``out`` (F, W) of the centre cells of ``runs``.

    Args:
        s: (3, P) spins, zero on invalid cells.
        v: (P,) validity.
        glob: (B, G) global inputs.
        runs: (nr, 4) int: column j0, flat centre cell p0, length n, configuration b
            of a run of n columns j0 + t with centre cells p0 + t.
        cell: (4, F) int table: row 0 the kind (0 pair, 1 triple, 2 mask, 3 global,
            4 triple whose c is the centre cell),
            rows 1-3 the window cells (pair: a, b; triple: c, a, b; mask: cell;
            global: its index).
        shift: (K,) flat offset of each window cell.
        fp: mirror permutation of the features (F,), empty without the mirrored copy.
        fs: its signs.
        out: (F, m) or (F, 2m), written (m = sum of the run lengths).
    """
    m = 0
    for r in range(runs.shape[0]):
        m += runs[r, 2]
    for i in range(cell.shape[1]):
        kind, u1, u2, u3 = cell[0, i], cell[1, i], cell[2, i], cell[3, i]
        for r in range(runs.shape[0]):
            j0, p0, n, cb = runs[r, 0], runs[r, 1], runs[r, 2], runs[r, 3]
            o = out[i, j0 : j0 + n]
            if kind == 0:
                a, b = p0 + shift[u1], p0 + shift[u2]
                _dot(s[0, a : a + n], s[1, a : a + n], s[2, a : a + n],
                     s[0, b : b + n], s[1, b : b + n], s[2, b : b + n], o)  # fmt: skip
            elif kind == 1 or kind == 4:
                c, a, b = p0 + shift[u1], p0 + shift[u2], p0 + shift[u3]
                _triple(s[:, c : c + n], s[:, a : a + n], s[:, b : b + n], o)
            elif kind == 2:
                a = p0 + shift[u1]
                o[:] = v[a : a + n]
            else:
                o[:] = glob[cb, u1]
    for i in range(fp.shape[0]):
        src, sg, row = out[fp[i]], fs[i], out[i]
        for j in range(m):
            row[m + j] = sg * src[j]


@_jit
def _dot(ax, ay, az, bx, by, bz, o):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] = ax[t] * bx[t] + ay[t] * by[t] + az[t] * bz[t]


@_jit
def _triple(sc, sa, sb, o):  # pragma: no cover - compiled
    """Triple products S_c . (S_a x S_b) of a run into ``o``."""
    cx, cy, cz, ax, ay, az, bx, by, bz = (
        sc[0],
        sc[1],
        sc[2],
        sa[0],
        sa[1],
        sa[2],
        sb[0],
        sb[1],
        sb[2],
    )
    for t in range(o.shape[0]):
        x = ay[t] * bz[t] - az[t] * by[t]
        y = az[t] * bx[t] - ax[t] * bz[t]
        z = ax[t] * by[t] - ay[t] * bx[t]
        o[t] = cx[t] * x + cy[t] * y + cz[t] * z


@_jit
def block_runs(runs, j0, j1):  # pragma: no cover - compiled
    """The runs (as in :func:`features`) of columns [j0, j1), columns counted from j0."""
    out = np.empty_like(runs)
    k = 0
    for r in range(runs.shape[0]):
        a, b = max(runs[r, 0], j0), min(runs[r, 0] + runs[r, 2], j1)
        if a < b:
            out[k, 0] = a - j0
            out[k, 1] = runs[r, 1] + a - runs[r, 0]
            out[k, 2] = b - a
            out[k, 3] = runs[r, 3]
            k += 1
    return out[:k]


@_jit
def silu_inplace(h, sig):  # pragma: no cover - compiled
    """In place: h <- SiLU(h) = h sig = a, sig <- SiLU'(h) = a + sig - sig a (both (r, W))."""
    for i in range(h.shape[0]):
        hr, sr = h[i], sig[i]
        for j in range(h.shape[1]):
            sg = sr[j]
            a = hr[j] * sg
            hr[j] = a
            sr[j] = a + sg - sg * a


@_jit
def seed(w, wown, gate, cst, dd, out):  # pragma: no cover - compiled
    """Backward seed of a one-output MLP: out[r, j] = w[r] coef[j] dd[r, j].

    coef[j] = cst[0] wown[j mod m] (gate[j]) is the weight of column j's output in
    the summed potential: the owned-cell weight times the output scale (halved with
    the mirrored copy, ``dd`` then has 2m columns), times the bias gate if ``gate``
    is not empty.
    """
    m, width = wown.shape[0], dd.shape[1]
    coef = np.empty(width, dd.dtype)
    for j in range(width):
        coef[j] = cst[0] * wown[j % m]
    if gate.shape[0] > 0:
        for j in range(width):
            coef[j] *= gate[j]
    for i in range(dd.shape[0]):
        wi, dr, orow = w[i], dd[i], out[i]
        for j in range(width):
            orow[j] = wi * coef[j] * dr[j]


@_jit
def site_sums(raw, gate, wown, colb, cst, sums):  # pragma: no cover - compiled
    """sums[b] += cst[0] sum_j wown[j] raw'[j] over the columns j of configuration b.

    raw' is the network output, gated by ``gate`` if not empty, and averaged with the
    mirrored copy's column m + j (cst[1] = 1/2) when ``raw`` has 2m columns.
    """
    m = wown.shape[0]
    symm = raw.shape[0] > m
    gated = gate.shape[0] > 0
    for j in range(m):
        x = raw[j] * gate[j] if gated else raw[j]
        if symm:
            y = raw[m + j] * gate[m + j] if gated else raw[m + j]
            x = cst[1] * (x + y)
        sums[colb[j]] += cst[0] * wown[j] * x


@_jit
def scatter(s, grad, gd, runs, cell, shift, q, qs, g, u, cst):  # pragma: no cover
    """Add d/dS sum_ij G[i, j] feature_i(column j) to ``grad`` (3, P).

    G is ``gd`` (F, m) or, with the mirrored copy (gd (F, 2m)), the fold
    G[i, j] = gd[i, j] + qs[i] gd[q[i], m + j] (q: the row of the copy that reads
    feature i). Masks and globals carry no spin gradient. ``g`` is an (m,) scratch
    row; ``runs`` as in :func:`features`.

    Centre triples (kind 4: c is the centre cell, the same for all of them) share
    their work: with U_a = sum_b G_ab S_b (G_ba = -G_ab), the gradients are
    U_a x S_c on cell a and (1/2) sum_a S_a x U_a on c, so each triple costs two
    multiply-adds per component instead of three cross products. ``u`` (K, 3, m)
    is the scratch of U; cst = [1/2, 1] in the data's dtype.
    """
    m = g.shape[0]
    symm = q.shape[0] > 0
    used = np.zeros(shift.shape[0], np.bool_)
    centre = -1
    for i in range(cell.shape[1]):
        if cell[0, i] == 4:
            centre = cell[1, i]
            for k in (cell[2, i], cell[3, i]):
                if not used[k]:
                    used[k] = True
                    u[k, :, :m] = 0
    for i in range(cell.shape[1]):
        kind, u1, u2, u3 = cell[0, i], cell[1, i], cell[2, i], cell[3, i]
        if kind == 2 or kind == 3:
            continue
        row = gd[i]
        if symm:
            mrow, sg = gd[q[i]], qs[i]
            for j in range(m):
                g[j] = row[j] + sg * mrow[m + j]
        else:
            g[:] = row[:m]
        for r in range(runs.shape[0]):
            j0, p0, n = runs[r, 0], runs[r, 1], runs[r, 2]
            gr = g[j0 : j0 + n]
            if kind == 0:
                a, b = p0 + shift[u1], p0 + shift[u2]
                for c in range(3):
                    _fma(grad[c, a : a + n], gr, s[c, b : b + n])
                    _fma(grad[c, b : b + n], gr, s[c, a : a + n])
            elif kind == 4:
                a, b = p0 + shift[u2], p0 + shift[u3]
                for c in range(3):
                    _fma(u[u2, c, j0 : j0 + n], gr, s[c, b : b + n])
                    _fms(u[u3, c, j0 : j0 + n], gr, s[c, a : a + n])
            else:
                c, a, b = p0 + shift[u1], p0 + shift[u2], p0 + shift[u3]
                _cross_fma(grad[:, c : c + n], gr, s[:, a : a + n], s[:, b : b + n])
                _cross_fma(grad[:, a : a + n], gr, s[:, b : b + n], s[:, c : c + n])
                _cross_fma(grad[:, b : b + n], gr, s[:, c : c + n], s[:, a : a + n])
    for k in range(shift.shape[0]):
        if not used[k]:
            continue
        for r in range(runs.shape[0]):
            j0, p0, n = runs[r, 0], runs[r, 1], runs[r, 2]
            a, c = p0 + shift[k], p0 + shift[centre]
            uk = u[k, :, j0 : j0 + n]
            _cross_add(grad[:, a : a + n], cst[1], uk, s[:, c : c + n])
            _cross_add(grad[:, c : c + n], cst[0], s[:, a : a + n], uk)


@_jit
def _fms(o, g, x):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] -= g[t] * x[t]


@_jit
def _cross_add(o, f, u, w):  # pragma: no cover - compiled
    """Add f u x w to ``o`` (3, n) over a run (f a scalar)."""
    ox, oy, oz, ux, uy, uz, wx, wy, wz = o[0], o[1], o[2], u[0], u[1], u[2], w[0], w[1], w[2]
    for t in range(ox.shape[0]):
        ox[t] += f * (uy[t] * wz[t] - uz[t] * wy[t])
        oy[t] += f * (uz[t] * wx[t] - ux[t] * wz[t])
        oz[t] += f * (ux[t] * wy[t] - uy[t] * wx[t])


@_jit
def _fma(o, g, x):  # pragma: no cover - compiled
    for t in range(o.shape[0]):
        o[t] += g[t] * x[t]


@_jit
def _cross_fma(o, g, u, w):  # pragma: no cover - compiled
    """Add g u x w to ``o`` (3, n) over a run."""
    ox, oy, oz, ux, uy, uz, wx, wy, wz = o[0], o[1], o[2], u[0], u[1], u[2], w[0], w[1], w[2]
    for t in range(g.shape[0]):
        ox[t] += g[t] * (uy[t] * wz[t] - uz[t] * wy[t])
        oy[t] += g[t] * (uz[t] * wx[t] - ux[t] * wz[t])
        oz[t] += g[t] * (ux[t] * wy[t] - uy[t] * wx[t])


@_jit
def vector_field(s, c, gate, cols, wown, bsh, inv, bs, cst, out):  # pragma: no cover
    """Vector term out (3, m) = cst[0] wown sum_k c'_k v_k per column.

    c' is the gated coefficient c * gate, mirror-averaged when ``c`` has 2m columns:
    c'_k = (c_k g + bs_k c_{inv k}(copy) g(copy)) / 2 (cst[1] = 1/2, cst[2] = 0).

    Args:
        s: (3, P) spins.
        c: (n_basis, m or 2m) network outputs.
        gate: (m or 2m,) bias gate, or empty for none.
        cols: (m,) centre cells.
        wown: (m,) owned-cell weights.
        bsh: (3, n_basis) int: kind (0 single, 1 cross), shifts (u, -) or (p, q).
        inv: mirror permutation of the basis (empty without the mirrored copy).
        bs: its signs.
        cst: [scale, 1/2, 0] in the data's dtype.
        out: (3, m), written.
    """
    m = cols.shape[0]
    symm = inv.shape[0] > 0
    gated = gate.shape[0] > 0
    for j in range(m):
        p = cols[j]
        hx, hy, hz = cst[2], cst[2], cst[2]
        for k in range(bsh.shape[1]):
            ck = c[k, j] * gate[j] if gated else c[k, j]
            if symm:
                cm = c[inv[k], m + j] * gate[m + j] if gated else c[inv[k], m + j]
                ck = cst[1] * (ck + bs[k] * cm)
            u, w = p + bsh[1, k], p + bsh[2, k]
            if bsh[0, k] == 0:
                hx += ck * s[0, u]
                hy += ck * s[1, u]
                hz += ck * s[2, u]
            else:
                hx += ck * (s[1, u] * s[2, w] - s[2, u] * s[1, w])
                hy += ck * (s[2, u] * s[0, w] - s[0, u] * s[2, w])
                hz += ck * (s[0, u] * s[1, w] - s[1, u] * s[0, w])
        f = cst[0] * wown[j]
        out[0, j] = f * hx
        out[1, j] = f * hy
        out[2, j] = f * hz
