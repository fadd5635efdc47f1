"""Compiled chain kernels (numba), energies innermost; numpy fallback elsewhere.

The chain (2x2 site blocks, scalar coupling c) spends its time in 2x2 complex
inverses and products. The numpy kernels of :mod:`.rgf` issue about 25 numpy calls per
site on rows of n energies, which is bound by call overhead at the batch sizes of the
adaptive quadrature; these loops do the same recursions in one compiled call, with the
energy index innermost (contiguous rows that the compiler vectorises) and the
integrand reductions fused in, so no (n, N, 2, 2) intermediates are stored.

Two kernels:

* :func:`chain_window_terms`: the bias-window integrand of a chain: Pauli components
  of the site blocks of G Gamma_L G^+ and the lead spin currents (from the end blocks
  G_{0,0} and G_{L-1,0}), times the weights. Same recursion as ``rgf._chain_column0``.
* :func:`chain_pole_sum`: sum_p w_p Re Tr[sigma_a G_xx(z_p)] per site (the Ozaki pole
  sum): a right sweep that keeps the self-energy only every POLE_BLOCK sites, then per
  block a recomputation of the block's right self-energies (in cache) and the left
  sweep on the fly. One more 2x2 inverse per site-energy than storing the whole sweep,
  in exchange for a working set independent of N (measured in docs/negf.md).

Blocks are held as 4 numbers (entries 00, 01, 10, 11). The kernels are compiled on
first use (cached on disk by numba). Without numba :data:`AVAILABLE` is False and the
engine keeps the numpy path; the numpy kernels stay the reference the tests compare
against.
"""

from __future__ import annotations

import numpy as np

try:  # numba is optional: the numpy kernels are the reference and the fallback.
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
def _inv2(a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i, f):  # pragma: no cover - compiled
    """Scaled inverse f [a0 a1; a2 a3]^-1 on split real/imaginary parts (8 reals out)."""
    dr = a0r * a3r - a0i * a3i - a1r * a2r + a1i * a2i
    di = a0r * a3i + a0i * a3r - a1r * a2i - a1i * a2r
    m = f / (dr * dr + di * di)
    rr, ri = dr * m, -di * m
    return (
        a3r * rr - a3i * ri,
        a3r * ri + a3i * rr,
        a1i * ri - a1r * rr,
        -(a1r * ri + a1i * rr),
        a2i * ri - a2r * rr,
        -(a2r * ri + a2i * rr),
        a0r * rr - a0i * ri,
        a0r * ri + a0i * rr,
    )


#: Sites per cache block of the window kernel (chains longer than this): the right
#: sweep keeps gR only at block starts and each block recomputes its own, so the
#: working set is one block (WINDOW_BLOCK x 8 x n reals) at any chain length. The
#: recomputed numbers are the same operations on the same inputs: results do not
#: depend on the blocking. It costs one more 2x2 inverse per site-energy, so it is used
#: only when the unblocked sweep would hold more than WINDOW_BLOCK_BYTES (measured:
#: 1.6-1.8x faster at N = 1e4 with 240 energies, 1.0-1.4x slower at N = 1000).
WINDOW_BLOCK = 128
WINDOW_BLOCK_BYTES = 32 << 20


@_jit
def _right_inv(hx, z, f, s, gx):  # pragma: no cover - compiled
    # gx = [z - h_x - f s]^-1 for every energy (split rows, see _window_loops).
    for k in range(z.shape[1]):
        o = _inv2(
            z[0, k] - hx[0] - f * s[0, k],
            z[1, k] - hx[1] - f * s[1, k],
            -hx[2] - f * s[2, k],
            -hx[3] - f * s[3, k],
            -hx[4] - f * s[4, k],
            -hx[5] - f * s[5, k],
            z[0, k] - hx[6] - f * s[6, k],
            z[1, k] - hx[7] - f * s[7, k],
            1.0,
        )
        gx[0, k], gx[1, k], gx[2, k], gx[3, k] = o[0], o[1], o[2], o[3]
        gx[4, k], gx[5, k], gx[6, k], gx[7, k] = o[4], o[5], o[6], o[7]


@_jit
def _first_block(h0, z, sl, fq, q, p):  # pragma: no cover - compiled
    # p = G_{0,0} = [z - h_0 - Sigma_L - fq q]^-1 (q: gR_1, or Sigma_R for L = 1).
    for k in range(z.shape[1]):
        o = _inv2(
            z[0, k] - h0[0] - sl[0, k] - fq * q[0, k],
            z[1, k] - h0[1] - sl[1, k] - fq * q[1, k],
            -h0[2] - sl[2, k] - fq * q[2, k],
            -h0[3] - sl[3, k] - fq * q[3, k],
            -h0[4] - sl[4, k] - fq * q[4, k],
            -h0[5] - sl[5, k] - fq * q[5, k],
            z[0, k] - h0[6] - sl[6, k] - fq * q[6, k],
            z[1, k] - h0[7] - sl[7, k] - fq * q[7, k],
            1.0,
        )
        p[0, k], p[1, k], p[2, k], p[3, k] = o[0], o[1], o[2], o[3]
        p[4, k], p[5, k], p[6, k], p[7, k] = o[4], o[5], o[6], o[7]


@_jit
def _forward_site(step, gx, p, cr, ci, gw, out, col):  # pragma: no cover - compiled
    # G_{x,0} = c* gR_x G_{x-1,0} (if step), then the site's Pauli components, written
    # to out[k, col:col + 4] (the integrand's row layout: no transpose afterwards).
    for k in range(p.shape[1]):
        p0r, p0i, p1r, p1i = p[0, k], p[1, k], p[2, k], p[3, k]
        p2r, p2i, p3r, p3i = p[4, k], p[5, k], p[6, k], p[7, k]
        if step:
            b0r, b0i, b1r, b1i = gx[0, k], gx[1, k], gx[2, k], gx[3, k]
            b2r, b2i, b3r, b3i = gx[4, k], gx[5, k], gx[6, k], gx[7, k]
            t0r = b0r * p0r - b0i * p0i + b1r * p2r - b1i * p2i
            t0i = b0r * p0i + b0i * p0r + b1r * p2i + b1i * p2r
            t1r = b0r * p1r - b0i * p1i + b1r * p3r - b1i * p3i
            t1i = b0r * p1i + b0i * p1r + b1r * p3i + b1i * p3r
            t2r = b2r * p0r - b2i * p0i + b3r * p2r - b3i * p2i
            t2i = b2r * p0i + b2i * p0r + b3r * p2i + b3i * p2r
            t3r = b2r * p1r - b2i * p1i + b3r * p3r - b3i * p3i
            t3i = b2r * p1i + b2i * p1r + b3r * p3i + b3i * p3r
            p0r, p0i = cr * t0r - ci * t0i, cr * t0i + ci * t0r
            p1r, p1i = cr * t1r - ci * t1i, cr * t1i + ci * t1r
            p2r, p2i = cr * t2r - ci * t2i, cr * t2i + ci * t2r
            p3r, p3i = cr * t3r - ci * t3i, cr * t3i + ci * t3r
            p[0, k], p[1, k], p[2, k], p[3, k] = p0r, p0i, p1r, p1i
            p[4, k], p[5, k], p[6, k], p[7, k] = p2r, p2i, p3r, p3i
        w = gw[k]
        up = w * (p0r * p0r + p0i * p0i + p1r * p1r + p1i * p1i)
        dn = w * (p2r * p2r + p2i * p2i + p3r * p3r + p3i * p3i)
        # A_01 = p r* + q s* (p, q: row 0; r, s: row 1)
        ar = p0r * p2r + p0i * p2i + p1r * p3r + p1i * p3i
        ai = p0i * p2r - p0r * p2i + p1i * p3r - p1r * p3i
        out[k, col] = up + dn
        out[k, col + 1] = 2.0 * w * ar
        out[k, col + 2] = -2.0 * w * ai
        out[k, col + 3] = up - dn


@_jit
def _window_loops(h, c2, cc, z, sl, sr, gw, dens, ends, blk):  # pragma: no cover - compiled
    # Split real/imaginary rows: h (L, 8), z (2, n), sl/sr/ends (8, n) as
    # (re 00, im 00, re 01, im 01, re 10, im 10, re 11, im 11).
    # Right-connected gR_x = [z - h_x - SR_x]^-1 (SR_{L-1} = Sigma_R, SR_x = c2 gR_{x+1}).
    L, n = h.shape[0], z.shape[1]
    nb = (L + blk - 1) // blk
    ck = np.empty((max(nb - 1, 1), 8, n))  # gR at the first site of blocks 1 .. nb-1
    if nb > 1:
        cur, nxt = np.empty((8, n)), np.empty((8, n))
        for x in range(L - 1, 0, -1):
            if x == L - 1:
                _right_inv(h[x], z, 1.0, sr, nxt)
            else:
                _right_inv(h[x], z, c2, cur, nxt)
            cur, nxt = nxt, cur
            if x % blk == 0:
                ck[x // blk - 1] = cur
    loc = np.empty((min(blk, L), 8, n))  # gR inside one block
    p = np.empty((8, n))
    cr, ci = cc.real, cc.imag
    for b in range(nb):
        x0, x1 = b * blk, min((b + 1) * blk, L)
        for x in range(x1 - 1, max(x0, 1) - 1, -1):
            if x == L - 1:
                _right_inv(h[x], z, 1.0, sr, loc[x - x0])
            elif x == x1 - 1:
                _right_inv(h[x], z, c2, ck[b], loc[x - x0])
            else:
                _right_inv(h[x], z, c2, loc[x + 1 - x0], loc[x - x0])
        if b == 0:
            if L == 1:
                _first_block(h[0], z, sl, 1.0, sr, p)
            else:
                _first_block(h[0], z, sl, c2, loc[1], p)
            ends[0] = p
        for x in range(x0, x1):
            _forward_site(x > 0, loc[x - x0], p, cr, ci, gw, dens, 4 * x)
    ends[1] = p


@_jit
def _end_loops(ends, gl, gr, w, cur, col):  # pragma: no cover - compiled
    # j^L_a = gl Tr[s_a (i(P - P^+) - gl P P^+)], j^R_a = gl gr Tr[s_a Q Q^+], times w;
    # P = G_{0,0}, Q = G_{L-1,0} (rows of ends[0], ends[1]); spin-degenerate Gamma.
    n = w.shape[0]
    for k in range(n):
        p0r, p0i, p1r, p1i = ends[0, 0, k], ends[0, 1, k], ends[0, 2, k], ends[0, 3, k]
        p2r, p2i, p3r, p3i = ends[0, 4, k], ends[0, 5, k], ends[0, 6, k], ends[0, 7, k]
        a, b = gl[k], gr[k]
        pp00 = p0r * p0r + p0i * p0i + p1r * p1r + p1i * p1i
        pp11 = p2r * p2r + p2i * p2i + p3r * p3r + p3i * p3i
        pp01r = p0r * p2r + p0i * p2i + p1r * p3r + p1i * p3i
        pp01i = p0i * p2r - p0r * p2i + p1i * p3r - p1r * p3i
        m00 = -2.0 * p0i - a * pp00
        m11 = -2.0 * p3i - a * pp11
        m01r = -(p1i + p2i) - a * pp01r  # i (p1 - conj p2) = (-(p1i + p2i), p1r - p2r)
        m01i = p1r - p2r - a * pp01i
        f = a * w[k]
        cur[k, col + 0] = f * (m00 + m11)
        cur[k, col + 1] = f * 2.0 * m01r
        cur[k, col + 2] = -f * 2.0 * m01i
        cur[k, col + 3] = f * (m00 - m11)
        q0r, q0i, q1r, q1i = ends[1, 0, k], ends[1, 1, k], ends[1, 2, k], ends[1, 3, k]
        q2r, q2i, q3r, q3i = ends[1, 4, k], ends[1, 5, k], ends[1, 6, k], ends[1, 7, k]
        qq00 = q0r * q0r + q0i * q0i + q1r * q1r + q1i * q1i
        qq11 = q2r * q2r + q2i * q2i + q3r * q3r + q3i * q3i
        qq01r = q0r * q2r + q0i * q2i + q1r * q3r + q1i * q3i
        qq01i = q0i * q2r - q0r * q2i + q1i * q3r - q1r * q3i
        g = a * b * w[k]
        cur[k, col + 4] = g * (qq00 + qq11)
        cur[k, col + 5] = g * 2.0 * qq01r
        cur[k, col + 6] = -g * 2.0 * qq01i
        cur[k, col + 7] = g * (qq00 - qq11)


#: Sites per cache block of the pole sum: the right sweep keeps the self-energy only at
#: block ends and recomputes it inside each block, so the working set is one block
#: (POLE_BLOCK x 4 x n complex numbers) at any chain length.
POLE_BLOCK = 128


@_jit
def _right_step(h, x, z, c2, src, dst):  # pragma: no cover - compiled
    # dst = SR_{x-1} = c2 [z - h_x - SR_x]^-1 with src = SR_x, rows (4, n).
    for k in range(z.shape[0]):
        a0 = z[k] - h[x, 0] - src[0, k]
        a1 = -h[x, 1] - src[1, k]
        a2 = -h[x, 2] - src[2, k]
        a3 = z[k] - h[x, 3] - src[3, k]
        r = c2 / (a0 * a3 - a1 * a2)
        dst[0, k] = a3 * r
        dst[1, k] = -a1 * r
        dst[2, k] = -a2 * r
        dst[3, k] = a0 * r


@_jit
def _pole_site(h, x, z, c2, s, g, w, out):  # pragma: no cover - compiled
    # G_xx = [z - h_x - SL_x - SR_x]^-1 (s = SL_x, updated to SL_{x+1}; g = SR_x).
    acc0, acc1, acc2, acc3 = 0.0, 0.0, 0.0, 0.0
    for k in range(z.shape[0]):
        b0 = z[k] - h[x, 0] - s[0, k]
        b1 = -h[x, 1] - s[1, k]
        b2 = -h[x, 2] - s[2, k]
        b3 = z[k] - h[x, 3] - s[3, k]
        a0, a1, a2, a3 = b0 - g[0, k], b1 - g[1, k], b2 - g[2, k], b3 - g[3, k]
        r = 1.0 / (a0 * a3 - a1 * a2)
        wk = w[k]
        # G = [a3, -a1; -a2, a0] r; Re Tr[sigma_a G] per component.
        acc0 += wk * ((a3 + a0) * r).real
        acc1 += wk * (-(a1 + a2) * r).real
        acc2 += wk * (1j * (a2 - a1) * r).real
        acc3 += wk * ((a3 - a0) * r).real
        rl = c2 / (b0 * b3 - b1 * b2)  # SL_{x+1} = c2 [z - h_x - SL_x]^-1
        s[0, k], s[1, k], s[2, k], s[3, k] = b3 * rl, -b1 * rl, -b2 * rl, b0 * rl
    out[x, 0] += acc0
    out[x, 1] += acc1
    out[x, 2] += acc2
    out[x, 3] += acc3


@_jit
def _pole_loops(h, c2, z, sl, sr, w, out, blk):  # pragma: no cover - compiled
    L, n = h.shape[0], z.shape[0]
    nb = (L + blk - 1) // blk
    ck = np.empty((nb, 4, n), dtype=np.complex128)  # SR at the last site of each block
    cur = np.empty((4, n), dtype=np.complex128)
    nxt = np.empty((4, n), dtype=np.complex128)
    cur[:, :] = sr
    for x in range(L - 1, -1, -1):
        if x % blk == blk - 1 or x == L - 1:
            ck[x // blk] = cur
        if x > 0:
            _right_step(h, x, z, c2, cur, nxt)
            cur, nxt = nxt, cur
    loc = np.empty((blk, 4, n), dtype=np.complex128)  # SR inside one block
    s = np.empty((4, n), dtype=np.complex128)  # SL_x, carried along the left sweep
    s[:, :] = sl
    for b in range(nb):
        x0, x1 = b * blk, min((b + 1) * blk, L)
        loc[x1 - 1 - x0] = ck[b]
        for x in range(x1 - 1, x0, -1):
            _right_step(h, x, z, c2, loc[x - x0], loc[x - 1 - x0])
        for x in range(x0, x1):
            _pole_site(h, x, z, c2, s, loc[x - x0], w, out)


def _rows(a: np.ndarray) -> np.ndarray:
    """(n, 2, 2) blocks -> (4, n) contiguous rows."""
    return np.ascontiguousarray(np.asarray(a, dtype=complex).reshape(-1, 4).T)


def _split(a: np.ndarray) -> np.ndarray:
    """(n, 2, 2) complex blocks -> (8, n) rows (re, im of entries 00, 01, 10, 11)."""
    return np.ascontiguousarray(np.asarray(a, dtype=complex).reshape(-1, 4).view(float).T)


def window_parts(z, sl, sr, gam_l, gam_r, weight) -> tuple:
    """The spin-independent inputs of :func:`window_rows`, in kernel layout.

    A warm-started sequence meets the same energies again and again; the engine keeps
    these parts and only the site blocks change.

    Args:
        z: (n,) energies.
        sl: (n, 2, 2) Sigma_L.
        sr: (n, 2, 2) Sigma_R.
        gam_l: (n,) real, Gamma_L = gam_l * 1.
        gam_r: (n,) real, Gamma_R = gam_r * 1.
        weight: (n,) real quadrature weights.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    w = np.ascontiguousarray(np.real(weight), dtype=float)
    gl = np.ascontiguousarray(gam_l, dtype=float)
    gr = np.ascontiguousarray(gam_r, dtype=float)
    zs = np.ascontiguousarray(np.stack([z.real, z.imag]))
    return zs, _split(sl), _split(sr), gl * w, gl, gr, w


def parts_nbytes(parts: tuple) -> int:
    """Memory held by :func:`window_parts` output."""
    return sum(a.nbytes for a in parts)


def window_rows(hd, c: complex, parts: tuple) -> np.ndarray:
    """Window integrand rows (n, 4L + 8) from the site blocks and :func:`window_parts`."""
    zs, sls, srs, glw, gl, gr, w = parts
    n, L = zs.shape[1], len(hd)
    h = np.ascontiguousarray(np.asarray(hd, dtype=complex).reshape(L, 4).view(float))
    vals = np.empty((n, 4 * L + 8))
    ends = np.empty((2, 8, n))
    blk = WINDOW_BLOCK if 64 * L * n > WINDOW_BLOCK_BYTES else L
    _window_loops(h, abs(c) ** 2, complex(np.conj(c)), zs, sls, srs, glw, vals, ends, blk)
    _end_loops(ends, gl, gr, w, vals, 4 * L)
    return vals


def chain_window_terms(hd, c: complex, z, sl, sr, gam_l, gam_r, weight) -> np.ndarray:
    """Whole window integrand rows (n, 4L + 8) of a chain with spin-degenerate leads.

    Args:
        hd: (L, 2, 2) site blocks.
        c: scalar coupling.
        z: (n,) energies.
        sl: (n, 2, 2) Sigma_L.
        sr: (n, 2, 2) Sigma_R.
        gam_l: (n,) real, Gamma_L = gam_l * 1.
        gam_r: (n,) real, Gamma_R = gam_r * 1.
        weight: (n,) real quadrature weights.

    Returns:
        Columns as :meth:`hpcspin.negf.solver_base.Solver.window_terms`: Pauli
        components of the site blocks of G Gamma_L G^+, then j^L_a and j^R_a, all times
        the weight.
    """
    return window_rows(hd, c, window_parts(z, sl, sr, gam_l, gam_r, weight))


def chain_pole_sum(hd, c: complex, z, sl, sr, w) -> np.ndarray:
    """Pole sum: sum_p w_p Re Tr[sigma_a G_xx(z_p)] for every site x, (L, 4). Compiled.

    Args:
        hd: (L, 2, 2) site blocks.
        c: scalar coupling.
        z: (n,) complex energies.
        sl: (n, 2, 2) Sigma_L.
        sr: (n, 2, 2) Sigma_R.
        w: (n,) real weights.
    """
    return pole_rows(hd, c, pole_parts(z, sl, sr, w))


def pole_parts(z, sl, sr, w) -> tuple:
    """The spin-independent inputs of :func:`pole_rows` (own copies, kernel layout).

    The poles of a sequence at fixed mu and T are the same at every evaluation; the
    engine keeps these parts per block of poles. Arguments as :func:`chain_pole_sum`.
    """
    z = np.array(np.atleast_1d(z), dtype=complex)
    return z, _rows(sl), _rows(sr), np.array(w, dtype=float)


def pole_rows(hd, c: complex, parts: tuple) -> np.ndarray:
    """:func:`chain_pole_sum` from the site blocks and :func:`pole_parts`."""
    z, sls, srs, w = parts
    h = np.ascontiguousarray(np.asarray(hd, dtype=complex).reshape(-1, 4))
    out = np.zeros((h.shape[0], 4))
    _pole_loops(h, abs(c) ** 2, z, sls, srs, w, out, POLE_BLOCK)
    return out


@_jit
def _band_full(ab, kd):  # pragma: no cover - compiled
    # General band layout w[i, j - i + kd] (j - i in [-kd, 2 kd]) of the Hermitian H in
    # upper band storage ab[kd + i - j, j] (i <= j); the extra kd diagonals take the
    # fill-in of partial pivoting (U has upper bandwidth 2 kd), as LAPACK gbsv.
    n = ab.shape[1]
    w = np.zeros((n, 3 * kd + 1), dtype=np.complex128)
    for j in range(n):
        for i in range(max(0, j - kd), j + 1):
            v = ab[kd + i - j, j]
            w[i, j - i + kd] = v
            w[j, i - j + kd] = np.conj(v)
    return w


@_jit
def _band_lu_solve(h, kd, e, rhs, w, x):  # pragma: no cover - compiled
    # x = (H - e)^-1 rhs by Gaussian elimination with partial pivoting in the band
    # (h: _band_full(H); w: work array of its shape).
    n = h.shape[0]
    w[:, :] = h
    for i in range(n):
        w[i, kd] -= e
    x[:] = rhs
    tiny = 1e-300
    for k in range(n):
        p, best = k, abs(w[k, kd].real) + abs(w[k, kd].imag)  # |re| + |im|, as LAPACK
        for r in range(k + 1, min(n, k + kd + 1)):
            a = abs(w[r, k - r + kd].real) + abs(w[r, k - r + kd].imag)
            if a > best:
                p, best = r, a
        top = min(n - 1, k + 2 * kd)
        if p != k:
            for c in range(k, top + 1):
                t = w[k, c - k + kd]
                w[k, c - k + kd] = w[p, c - p + kd]
                w[p, c - p + kd] = t
            t = x[k]
            x[k] = x[p]
            x[p] = t
        if best < tiny:  # exactly singular: a tiny pivot instead (an eigenvector anyway)
            w[k, kd] = tiny
        piv = 1.0 / w[k, kd]
        w[k, kd] = piv  # kept inverted for the back substitution
        for r in range(k + 1, min(n, k + kd + 1)):
            m = w[r, k - r + kd] * piv
            for c in range(k + 1, top + 1):
                w[r, c - r + kd] -= m * w[k, c - k + kd]
            x[r] -= m * x[k]
    for i in range(n - 1, -1, -1):
        acc = x[i]
        for c in range(i + 1, min(n, i + 2 * kd + 1)):
            acc -= w[i, c - i + kd] * x[c]
        x[i] = acc * w[i, kd]


@_jit
def _band_ends(ab, kd, shifts, rhs, b, p0, p1):  # pragma: no cover - compiled
    n = ab.shape[1]
    h = _band_full(ab, kd)
    w = np.empty_like(h)
    x = np.empty(n, dtype=np.complex128)
    for k in range(shifts.shape[0]):
        _band_lu_solve(h, kd, shifts[k], rhs, w, x)
        nrm = 0.0
        for i in range(n):
            nrm += x[i].real * x[i].real + x[i].imag * x[i].imag
        f = 1.0 / max(np.sqrt(nrm), 1e-300)
        for i in range(b):
            p0[k, i] = x[i] * f
            p1[k, i] = x[n - b + i] * f


_RHS: dict = {}


def seeded_rhs(n: int, seed: int) -> np.ndarray:
    """``default_rng(seed).normal(size=n) + 0j``, generated once per (n, seed) (read-only)."""
    key = (int(n), int(seed))
    if key not in _RHS:
        if len(_RHS) > 64:
            _RHS.clear()
        x = np.random.default_rng(seed).normal(size=n) + 0.0j
        x.flags.writeable = False
        _RHS[key] = x
    return _RHS[key]


def band_end_components(ab, kd: int, shifts, rhs, b: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last ``b`` components of normalised (H - s)^-1 rhs for every shift s.

    One step of inverse iteration per shift (the isolated-centre eigenvectors of
    :mod:`.resonances`), in one compiled call: a banded LU with partial pivoting per
    shift, O(n kd^2) each, without the per-call overhead of LAPACK through scipy.

    Args:
        ab: (kd + 1, n) upper band storage of the Hermitian H (``banded_upper``).
        kd: bandwidth.
        shifts: (k,) real shifts (eigenvalue plus a tiny offset).
        rhs: (n,) starting vector.
        b: components wanted at each end.
    """
    shifts = np.ascontiguousarray(shifts, dtype=float)
    p0 = np.zeros((len(shifts), b), dtype=complex)
    p1 = np.zeros((len(shifts), b), dtype=complex)
    ab = np.ascontiguousarray(ab, dtype=complex)
    _band_ends(ab, int(kd), shifts, np.ascontiguousarray(rhs, dtype=complex), int(b), p0, p1)
    return p0, p1


def chain_band(hd, v) -> tuple[np.ndarray, int] | None:
    """Upper band storage (3, 2L) of a chain's Hamiltonian straight from its blocks.

    The same entries as ``resonances.banded_upper(system.matrix())`` (kd = 2) without
    building the sparse matrix; None where that form does not apply (strips, or a
    spin-flipping inter-site coupling).

    Args:
        hd: (L, 2, 2) site blocks.
        v: (2, 2) coupling H_{x, x+1}.
    """
    hd, v = np.asarray(hd), np.asarray(v)
    if hd.shape[1:] != (2, 2) or v[0, 1] != 0 or v[1, 0] != 0:
        return None
    n = 2 * hd.shape[0]
    ab = np.zeros((3, n), dtype=complex)
    ab[2, 0::2], ab[2, 1::2] = hd[:, 0, 0], hd[:, 1, 1]
    ab[1, 1::2] = hd[:, 0, 1]
    ab[0, 2::2], ab[0, 3::2] = v[0, 0], v[1, 1]
    return ab, 2
