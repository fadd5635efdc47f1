"""Compiled loops of :mod:`.strip_kernels` (numba; energies innermost, split re/im).

Every array holds one chunk of C energies in its last axis: matrices (b, b, C), blocks
of columns (b, m, C), energies (C,). Pairs (re, im) are passed as tuples. See
:mod:`.strip_kernels` for the method and the layout.
"""

from __future__ import annotations

import numpy as np

from hpcspin.negf.kernels import _jit

#: Energies per chunk (the last axis of every array; a compile-time constant).
CHUNK = 16


@_jit
def _inv(ar, ai, piv, fr, fi, pr, pi):  # pragma: no cover - compiled
    # In-place Gauss-Jordan inverse of (b, b, C) split matrices; piv[e] = min |pivot|^2.
    b, C = ar.shape[0], ar.shape[2]
    for k in range(b):
        kr, ki = ar[k], ai[k]
        for e in range(C):
            xr, xi = kr[k, e], ki[k, e]
            d = xr * xr + xi * xi
            piv[e] = min(piv[e], d)
            pr[e], pi[e] = xr / d, -xi / d
            kr[k, e], ki[k, e] = 1.0, 0.0
        for j in range(b):
            for e in range(C):
                xr, xi = kr[j, e], ki[j, e]
                kr[j, e] = xr * pr[e] - xi * pi[e]
                ki[j, e] = xr * pi[e] + xi * pr[e]
        for i in range(b):
            if i == k:
                continue
            rr, ri = ar[i], ai[i]
            for e in range(C):
                fr[e], fi[e] = rr[k, e], ri[k, e]
                rr[k, e], ri[k, e] = 0.0, 0.0
            for j in range(b):
                for e in range(C):
                    rr[j, e] -= fr[e] * kr[j, e] - fi[e] * ki[j, e]
                    ri[j, e] -= fr[e] * ki[j, e] + fi[e] * kr[j, e]


@_jit
def _matmul(ar, ai, br, bi, outr, outi):  # pragma: no cover - compiled
    # out = a @ b per energy: (p, q, C) x (q, m, C) -> (p, m, C). Each output row is
    # summed over k in a CHUNK-long accumulator (kept in registers: 1.6x faster than
    # updating out in memory), in the same order, so the same numbers.
    p, q, m = ar.shape[0], ar.shape[1], br.shape[1]
    accr, acci = np.empty(CHUNK), np.empty(CHUNK)
    for i in range(p):
        for j in range(m):
            for e in range(CHUNK):
                accr[e], acci[e] = 0.0, 0.0
            for k in range(q):
                for e in range(CHUNK):
                    xr, xi, yr, yi = ar[i, k, e], ai[i, k, e], br[k, j, e], bi[k, j, e]
                    accr[e] += xr * yr - xi * yi
                    acci[e] += xr * yi + xi * yr
            for e in range(CHUNK):
                outr[i, j, e], outi[i, j, e] = accr[e], acci[e]


@_jit
def _const_left(vr, vi, br, bi, outr, outi):  # pragma: no cover - compiled
    # out = v @ b with a constant (p, q) matrix v (zeros skipped: sparse couplings).
    outr[:, :, :] = 0.0
    outi[:, :, :] = 0.0
    for i in range(vr.shape[0]):
        for k in range(vr.shape[1]):
            cr, ci = vr[i, k], vi[i, k]
            if cr == 0.0 and ci == 0.0:
                continue
            for j in range(br.shape[1]):
                for e in range(br.shape[2]):
                    outr[i, j, e] += cr * br[k, j, e] - ci * bi[k, j, e]
                    outi[i, j, e] += cr * bi[k, j, e] + ci * br[k, j, e]


@_jit
def _const_right(br, bi, vr, vi, outr, outi):  # pragma: no cover - compiled
    # out = b @ v with a constant (q, m) matrix v.
    outr[:, :, :] = 0.0
    outi[:, :, :] = 0.0
    for k in range(vr.shape[0]):
        for j in range(vr.shape[1]):
            cr, ci = vr[k, j], vi[k, j]
            if cr == 0.0 and ci == 0.0:
                continue
            for i in range(br.shape[0]):
                for e in range(br.shape[2]):
                    outr[i, j, e] += br[i, k, e] * cr - bi[i, k, e] * ci
                    outi[i, j, e] += br[i, k, e] * ci + bi[i, k, e] * cr


@_jit
def _coupled(gr, gi, cp, sr, si, tr, ti):  # pragma: no cover - compiled
    # s = v g v^+ (cp = (scalar, c2, vr, vi, vhr, vhi)); scalar coupling: c2 g.
    scalar, c2, vr, vi, vhr, vhi = cp
    if scalar:
        for i in range(gr.shape[0]):
            for j in range(gr.shape[1]):
                for e in range(gr.shape[2]):
                    sr[i, j, e] = c2 * gr[i, j, e]
                    si[i, j, e] = c2 * gi[i, j, e]
    else:
        _const_left(vr, vi, gr, gi, tr, ti)
        _const_right(tr, ti, vhr, vhi, sr, si)


@_jit
def _shifted(hr, hi, zr, zi, s1r, s1i, s2r, s2i, outr, outi):  # pragma: no cover - compiled
    # out = z - h - s1 - s2 (per energy).
    b, C = hr.shape[0], zr.shape[0]
    for i in range(b):
        for j in range(b):
            for e in range(C):
                outr[i, j, e] = -hr[i, j] - s1r[i, j, e] - s2r[i, j, e]
                outi[i, j, e] = -hi[i, j] - s1i[i, j, e] - s2i[i, j, e]
        for e in range(C):
            outr[i, i, e] += zr[e]
            outi[i, i, e] += zi[e]


@_jit
def _site_pauli(phr, phi, w, out):  # pragma: no cover - compiled
    # out[y, a, e] = w_e Tr[sigma_a (Phi Phi^+)_{yy}] for the 2x2 site blocks of a slice.
    C = w.shape[0]
    for y in range(phr.shape[0] // 2):
        ur, ui, dr, di = phr[2 * y], phi[2 * y], phr[2 * y + 1], phi[2 * y + 1]
        for e in range(C):
            up, dn, ar, ai = 0.0, 0.0, 0.0, 0.0
            for k in range(phr.shape[1]):
                up += ur[k, e] * ur[k, e] + ui[k, e] * ui[k, e]
                dn += dr[k, e] * dr[k, e] + di[k, e] * di[k, e]
                ar += ur[k, e] * dr[k, e] + ui[k, e] * di[k, e]
                ai += ui[k, e] * dr[k, e] - ur[k, e] * di[k, e]
            out[y, 0, e] = w[e] * (up + dn)
            out[y, 1, e] = 2.0 * w[e] * ar
            out[y, 2, e] = -2.0 * w[e] * ai
            out[y, 3, e] = w[e] * (up - dn)


@_jit
def _window_chunk(h, cp, z, sl, sr, u, w, dens, ends, piv):  # pragma: no cover - compiled
    # One chunk: right sweep gR_x, G_00, Phi_x = G_{x,0} U along the strip, densities.
    # h = (hr, hi) (L, b, b); z = (zr, zi) (C,); sl, sr, u: (re, im) pairs (b, ., C);
    # ends = (g00r, g00i, p0r, p0i, plr, pli) outputs.
    hr, hi = h
    zr, zi = z
    L, b, C, m = hr.shape[0], hr.shape[1], zr.shape[0], u[0].shape[1]
    gr_r, gr_i = np.empty((L, b, b, C)), np.empty((L, b, b, C))
    sr_, si_ = np.empty((b, b, C)), np.empty((b, b, C))
    tr, ti = np.empty((b, b, C)), np.empty((b, b, C))
    zero = np.zeros((b, b, C))
    fr, fi, pr, pi = np.empty(C), np.empty(C), np.empty(C), np.empty(C)
    for x in range(L - 1, 0, -1):
        if x == L - 1:
            _shifted(hr[x], hi[x], zr, zi, sr[0], sr[1], zero, zero, gr_r[x], gr_i[x])
        else:
            _coupled(gr_r[x + 1], gr_i[x + 1], cp, sr_, si_, tr, ti)
            _shifted(hr[x], hi[x], zr, zi, sr_, si_, zero, zero, gr_r[x], gr_i[x])
        _inv(gr_r[x], gr_i[x], piv, fr, fi, pr, pi)
    g00r, g00i, p0r, p0i, plr, pli = ends
    if L == 1:
        _shifted(hr[0], hi[0], zr, zi, sl[0], sl[1], sr[0], sr[1], g00r, g00i)
    else:
        _coupled(gr_r[1], gr_i[1], cp, sr_, si_, tr, ti)
        _shifted(hr[0], hi[0], zr, zi, sl[0], sl[1], sr_, si_, g00r, g00i)
    _inv(g00r, g00i, piv, fr, fi, pr, pi)
    phr, phi = np.empty((b, m, C)), np.empty((b, m, C))
    qr, qi = np.empty((b, m, C)), np.empty((b, m, C))
    _matmul(g00r, g00i, u[0], u[1], phr, phi)
    p0r[:, :, :] = phr
    p0i[:, :, :] = phi
    _site_pauli(phr, phi, w, dens[0])
    scalar, _, _, _, vhr, vhi = cp
    for x in range(1, L):
        if scalar:  # v^+ = conj(c) 1
            cr, ci = vhr[0, 0], vhi[0, 0]
            for i in range(b):
                for j in range(m):
                    for e in range(C):
                        qr[i, j, e] = cr * phr[i, j, e] - ci * phi[i, j, e]
                        qi[i, j, e] = cr * phi[i, j, e] + ci * phr[i, j, e]
        else:
            _const_left(vhr, vhi, phr, phi, qr, qi)
        _matmul(gr_r[x], gr_i[x], qr, qi, phr, phi)
        _site_pauli(phr, phi, w, dens[x])
    plr[:, :, :] = phr
    pli[:, :, :] = phi


@_jit
def _window_loops(h, cp, z, sl, sr, u, w, dens, ends, piv):  # pragma: no cover - compiled
    # All chunks (leading axis K of every per-energy array).
    for k in range(z[0].shape[0]):
        e = (ends[0][k], ends[1][k], ends[2][k], ends[3][k], ends[4][k], ends[5][k])
        _window_chunk(
            h,
            cp,
            (z[0][k], z[1][k]),
            (sl[0][k], sl[1][k]),
            (sr[0][k], sr[1][k]),
            (u[0][k], u[1][k]),
            w[k],
            dens[k],
            e,
            piv[k],
        )


@_jit
def _pole_chunk(h, cp, z, sl, sr, w, out, piv):  # pragma: no cover - compiled
    # out[x, y, a] += sum_e w_e Re Tr[sigma_a G_{xx}]_{yy} (site blocks), one chunk.
    hr, hi = h
    zr, zi = z
    L, b, C = hr.shape[0], hr.shape[1], zr.shape[0]
    srr, sri = np.empty((L, b, b, C)), np.empty((L, b, b, C))  # SR_x
    ar, ai = np.empty((b, b, C)), np.empty((b, b, C))
    gr, gi = np.empty((b, b, C)), np.empty((b, b, C))
    slr, sli = np.empty((b, b, C)), np.empty((b, b, C))
    tr, ti = np.empty((b, b, C)), np.empty((b, b, C))
    zero = np.zeros((b, b, C))
    fr, fi, pr, pi = np.empty(C), np.empty(C), np.empty(C), np.empty(C)
    srr[L - 1] = sr[0]
    sri[L - 1] = sr[1]
    for x in range(L - 1, 0, -1):
        _shifted(hr[x], hi[x], zr, zi, srr[x], sri[x], zero, zero, ar, ai)
        _inv(ar, ai, piv, fr, fi, pr, pi)
        _coupled(ar, ai, cp, srr[x - 1], sri[x - 1], tr, ti)
    slr[:, :, :] = sl[0]
    sli[:, :, :] = sl[1]
    scalar, c2, vr, vi, vhr, vhi = cp
    for x in range(L):
        _shifted(hr[x], hi[x], zr, zi, slr, sli, srr[x], sri[x], gr, gi)
        _inv(gr, gi, piv, fr, fi, pr, pi)
        for y in range(b // 2):
            i0, i1 = 2 * y, 2 * y + 1
            a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
            for e in range(C):
                a0 += w[e] * (gr[i0, i0, e] + gr[i1, i1, e])
                a1 += w[e] * (gr[i0, i1, e] + gr[i1, i0, e])
                a2 += w[e] * (gi[i1, i0, e] - gi[i0, i1, e])
                a3 += w[e] * (gr[i0, i0, e] - gr[i1, i1, e])
            out[x, y, 0] += a0
            out[x, y, 1] += a1
            out[x, y, 2] += a2
            out[x, y, 3] += a3
        if x < L - 1:  # SL_{x+1} = v^+ [z - h_x - SL_x]^-1 v
            _shifted(hr[x], hi[x], zr, zi, slr, sli, zero, zero, ar, ai)
            _inv(ar, ai, piv, fr, fi, pr, pi)
            if scalar:
                _coupled(ar, ai, cp, slr, sli, tr, ti)
            else:
                _const_left(vhr, vhi, ar, ai, tr, ti)
                _const_right(tr, ti, vr, vi, slr, sli)


@_jit
def _pole_loops(h, cp, z, sl, sr, w, out, piv):  # pragma: no cover - compiled
    for k in range(z[0].shape[0]):
        _pole_chunk(
            h,
            cp,
            (z[0][k], z[1][k]),
            (sl[0][k], sl[1][k]),
            (sr[0][k], sr[1][k]),
            w[k],
            out,
            piv[k],
        )
