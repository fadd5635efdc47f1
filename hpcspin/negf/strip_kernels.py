"""Compiled strip kernels (numba): the 2W x 2W block recursions batched over energies.

A strip of width W has slices of b = 2W orbitals; the recursions of :mod:`.rgf` cost
O(L b^3) per energy, in b x b inverses and products. The numpy kernels call LAPACK and
BLAS once per matrix (``np.linalg.inv`` and ``matmul`` on (n, b, b) stacks), which at
b = 8-16 is bound by per-matrix overhead, not by arithmetic. These loops hold a chunk
of CHUNK energies innermost (real and imaginary parts split, (b, b, CHUNK) arrays: the
compiler vectorises every inner loop over energies) and do the whole recursion in one
compiled call:

* :func:`window_terms`: the bias-window integrand (Pauli components of the site
  blocks of G Gamma_L G^+, and the lead spin currents). Gamma_L = U U^+ (U: b x m, the
  eigenvectors of the orbital Gamma_L with a positive eigenvalue, times its square
  root; the leads are spin-degenerate) so that G_{x,0} U is carried along the strip:
  per slice one b x b inverse (the right sweep) and one b x b by b x m product.
* :func:`pole_sum`: sum_p w_p Re Tr[sigma_a G_ii(z_p)] per site (the Ozaki pole sum),
  from the left and right connected self-energies: three inverses per slice.

The inverses are Gauss-Jordan eliminations without pivoting (pivoting per energy
would break the vectorisation over energies). Every pivot is checked: an energy whose
smallest pivot is below PIVOT_RTOL times the scale of the matrix is recomputed by the
pivoted numpy kernels (measured: none on the strips of the benchmarks; the tests force
the fallback). No ``fastmath``: each energy's numbers do not depend on the chunk or
batch it is computed in (tested bit for bit), which keeps results independent of the
rank count.
"""

from __future__ import annotations

import numpy as np

from hpcspin.hamiltonian.sd import pauli_components
from hpcspin.negf.kernels import AVAILABLE, _jit
from hpcspin.negf.observables import injected_site_blocks, lead_currents
from hpcspin.negf.rgf import rgf_column0, rgf_diagonal

__all__ = ["AVAILABLE", "CHUNK", "PIVOT_RTOL", "pole_sum", "window_parts", "window_terms"]

#: Energies per compiled chunk (innermost, vectorised): a (16, 16, CHUNK) complex
#: matrix then stays in the L2 cache.
CHUNK = 16
#: Smallest accepted |pivot| relative to the matrix scale; energies below are
#: recomputed with pivoting (error of an unpivoted elimination ~ eps / that ratio).
PIVOT_RTOL = 1e-5


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
    # out = a @ b per energy: (p, q, C) x (q, m, C) -> (p, m, C).
    p, q, m, C = ar.shape[0], ar.shape[1], br.shape[1], ar.shape[2]
    outr[:, :, :] = 0.0
    outi[:, :, :] = 0.0
    for i in range(p):
        orr, oii = outr[i], outi[i]
        for k in range(q):
            xr, xi = ar[i, k], ai[i, k]
            yr, yi = br[k], bi[k]
            for j in range(m):
                for e in range(C):
                    orr[j, e] += xr[e] * yr[j, e] - xi[e] * yi[j, e]
                    oii[j, e] += xr[e] * yi[j, e] + xi[e] * yr[j, e]


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


# -- layout helpers -------------------------------------------------------------------
def _chunked(a: np.ndarray, n_pad: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, ...) -> real and imaginary parts (K, ..., CHUNK), padded with the last entry."""
    a = np.asarray(a)
    n = a.shape[0]
    if n_pad > n:
        a = np.concatenate([a, np.repeat(a[-1:], n_pad - n, axis=0)])
    a = a.reshape((n_pad // CHUNK, CHUNK) + a.shape[1:])
    a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a.real, dtype=float), np.ascontiguousarray(a.imag, dtype=float)


def _unchunk(a: np.ndarray, n: int) -> np.ndarray:
    """(K, ..., CHUNK) -> (n, ...)."""
    a = np.moveaxis(a, -1, 1)
    return a.reshape((-1,) + a.shape[2:])[:n]


def _padded(n: int) -> int:
    return -(-n // CHUNK) * CHUNK


def _coupling(v: np.ndarray, c2=None) -> tuple:
    """Kernel form of the coupling: (scalar?, |c|^2, v re/im, v^+ re/im)."""
    v = np.asarray(v, dtype=complex)
    c = v[0, 0]
    scalar = bool(np.array_equal(v, c * np.eye(v.shape[0])))
    vh = v.conj().T
    return (
        scalar,
        float(abs(c) ** 2),
        np.ascontiguousarray(v.real),
        np.ascontiguousarray(v.imag),
        np.ascontiguousarray(vh.real),
        np.ascontiguousarray(vh.imag),
    )


def _split_h(hd) -> tuple[np.ndarray, np.ndarray]:
    hd = np.asarray(hd, dtype=complex)
    return np.ascontiguousarray(hd.real), np.ascontiguousarray(hd.imag)


def _scale(hd, v, z) -> np.ndarray:
    """Scale of the shifted slice matrices per energy (for the pivot check)."""
    h = np.abs(np.asarray(hd)).sum(axis=2).max()
    c = np.abs(np.asarray(v)).sum(axis=1).max() + np.abs(np.asarray(v)).sum(axis=0).max()
    return 1.0 + np.abs(z) + h + c * c


def _bad_pivots(piv: np.ndarray, n: int, scale: np.ndarray) -> np.ndarray:
    return ~(np.sqrt(piv.reshape(-1)[:n]) >= PIVOT_RTOL * scale)


def gamma_factor(gam: np.ndarray, rtol: float = 1e-14) -> np.ndarray:
    """U with U U^+ = Gamma for spin-degenerate Gamma (n, b, b): (n, b, 2 m), m = max rank.

    From the orbital block (entries of spin up): eigenvectors times the square root of
    their eigenvalue, largest first; eigenvalues below rtol times the largest of that
    energy (and rounding negatives) are dropped. Columns are ordered (mode, spin).
    """
    g = np.asarray(gam)[:, 0::2, 0::2]
    lam, q = np.linalg.eigh(g)
    lam, q = lam[:, ::-1], q[:, :, ::-1]
    keep = lam > rtol * np.maximum(lam[:, :1], 1e-300)
    m = max(1, int(keep.sum(axis=1).max()))
    uo = q[:, :, :m] * np.sqrt(np.where(keep, lam, 0.0))[:, None, :m]
    n, w = g.shape[0], g.shape[1]
    u = np.zeros((n, 2 * w, 2 * m), dtype=complex)
    u[:, 0::2, 0::2] = uo
    u[:, 1::2, 1::2] = uo
    return u


# -- public kernels ---------------------------------------------------------------------
def window_parts(z, sl, sr, gam_l, gam_r, weight) -> tuple:
    """Spin-independent inputs of :func:`window_from_parts`, in kernel layout.

    Args:
        z: (n,) energies.
        sl: (n, b, b) left lead self-energy.
        sr: (n, b, b) right lead self-energy.
        gam_l: (n, b, b) its broadening (spin-degenerate).
        gam_r: (n, b, b) the right broadening.
        weight: (n,) real weights.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    n = len(z)
    npad = _padded(n)
    w = np.asarray(weight, dtype=float)
    u = gamma_factor(gam_l)
    # A flat tuple of arrays (the engine's cache sizes it with kernels.parts_nbytes).
    return (
        z,
        *_chunked(z, npad),
        *_chunked(sl, npad),
        *_chunked(sr, npad),
        *_chunked(u, npad),
        _chunked(w, npad)[0],
        np.asarray(sl),
        np.asarray(sr),
        np.asarray(gam_l),
        np.asarray(gam_r),
        w,
    )


def _slice_trace(x: np.ndarray) -> np.ndarray:
    """sum_y Tr[sigma_a X_yy] of (n, b, b) -> (n, 4) real parts."""
    up, dn = x[:, 0::2, 0::2], x[:, 1::2, 1::2]
    ud, du = x[:, 0::2, 1::2], x[:, 1::2, 0::2]
    tr = lambda a: np.trace(a, axis1=1, axis2=2)  # noqa: E731
    return np.stack(
        [tr(up) + tr(dn), tr(ud) + tr(du), 1j * (tr(ud) - tr(du)), tr(up) - tr(dn)], axis=1
    ).real


def _currents(g00, p0, pl, gam_l, gam_r, w) -> tuple[np.ndarray, np.ndarray]:
    """j^L_a, j^R_a (n, 4) from G_00, Phi_0 = G_00 U, Phi_{L-1} = G_{L-1,0} U, times w."""
    a00 = 1j * (g00 - np.conj(np.swapaxes(g00, 1, 2)))
    inj0 = p0 @ np.conj(np.swapaxes(p0, 1, 2))
    injl = pl @ np.conj(np.swapaxes(pl, 1, 2))
    jl = _slice_trace(gam_l @ (a00 - inj0)) * w[:, None]
    jr = _slice_trace(gam_r @ injl) * w[:, None]
    return jl, jr


def _numpy_window(hd, v, z, sl, sr, gam_l, gam_r, w) -> np.ndarray:
    """Window rows by the pivoted numpy kernels (the fallback for flagged energies)."""
    col = np.swapaxes(rgf_column0(hd, v, z, sl, sr), 0, 1)
    dens = pauli_components(injected_site_blocks(col, gam_l)).real.reshape(len(z), -1)
    jl, jr = lead_currents(col, gam_l, gam_r)
    return np.concatenate([dens, jl, jr], axis=1) * w[:, None]


def _kernel_window(hd, v, parts) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the compiled kernel and the flags of energies with a small pivot."""
    z, zr, zi, slr, sli, srr, sri, ur, ui, wc, _, _, gam_l, gam_r, w = parts
    n, zc, slc, src, uc = len(z), (zr, zi), (slr, sli), (srr, sri), (ur, ui)
    L, b = hd.shape[0], hd.shape[1]
    nw, m, k = b // 2, uc[0].shape[2], zc[0].shape[0]
    dens = np.zeros((k, L, nw, 4, CHUNK))
    ends = tuple(np.empty((k, b, c, CHUNK)) for c in (b, b, m, m, m, m))
    piv = np.full((k, CHUNK), np.inf)
    _window_loops(_split_h(hd), _coupling(v), zc, slc, src, uc, wc, dens, ends, piv)
    rows = np.empty((n, 4 * L * nw + 8))
    rows[:, : 4 * L * nw] = _unchunk(dens, n).reshape(n, -1)
    g00 = _unchunk(ends[0] + 1j * ends[1], n)
    p0 = _unchunk(ends[2] + 1j * ends[3], n)
    pl = _unchunk(ends[4] + 1j * ends[5], n)
    jl, jr = _currents(g00, p0, pl, gam_l, gam_r, w)
    rows[:, 4 * L * nw : 4 * L * nw + 4] = jl
    rows[:, 4 * L * nw + 4 :] = jr
    return rows, _bad_pivots(piv, n, _scale(hd, v, z))


def window_from_parts(hd, v, parts) -> np.ndarray:
    """Window rows (n, 4N + 8) from the slice blocks and :func:`window_parts`.

    Energies with a pivot below PIVOT_RTOL are recomputed by the pivoted numpy kernels.
    """
    hd = np.asarray(hd, dtype=complex)
    rows, bad = _kernel_window(hd, v, parts)
    if bad.any():
        z, sl, sr, gam_l, gam_r, w = parts[0], *parts[-5:]
        i = np.flatnonzero(bad)
        rows[i] = _numpy_window(hd, v, z[i], sl[i], sr[i], gam_l[i], gam_r[i], w[i])
    return rows


def window_terms(hd, v, z, sl, sr, gam_l, gam_r, weight) -> np.ndarray:
    """Window integrand rows of a strip (n, 4N + 8).

    Columns as :meth:`hpcspin.negf.solver_base.Solver.window_terms`.

    Args:
        hd: (L, b, b) slice blocks.
        v: (b, b) coupling H_{x, x+1}.
        z: (n,) energies.
        sl: (n, b, b) left lead self-energy.
        sr: (n, b, b) right lead self-energy.
        gam_l: (n, b, b) left broadening (spin-degenerate leads).
        gam_r: (n, b, b) right broadening.
        weight: (n,) real weights.
    """
    return window_from_parts(hd, v, window_parts(z, sl, sr, gam_l, gam_r, weight))


def _kernel_poles(hd, v, z, sl, sr, w) -> tuple[np.ndarray, np.ndarray]:
    L, b, n = hd.shape[0], hd.shape[1], len(z)
    npad = _padded(n)
    wc = np.zeros(npad)
    wc[:n] = w
    out = np.zeros((L, b // 2, 4))
    piv = np.full((npad // CHUNK, CHUNK), np.inf)
    zc = _chunked(z, npad)
    args = (_split_h(hd), _coupling(v), zc, _chunked(sl, npad), _chunked(sr, npad))
    _pole_loops(*args, wc.reshape(-1, CHUNK), out, piv)
    return out.reshape(-1, 4), _bad_pivots(piv, n, _scale(hd, v, z))


def pole_sum(hd, v, z, sl, sr, w) -> np.ndarray:
    """sum_p w_p Re Tr[sigma_a G_ii(z_p)] per site, (N, 4).

    Energies with a pivot below PIVOT_RTOL are left out of the compiled sum and done
    by the pivoted numpy kernels.

    Args:
        hd: (L, b, b) slice blocks.
        v: (b, b) coupling.
        z: (n,) complex energies.
        sl: (n, b, b) left lead self-energy.
        sr: (n, b, b) right lead self-energy.
        w: (n,) real weights.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    hd = np.asarray(hd, dtype=complex)
    w = np.asarray(w, dtype=float)
    out, bad = _kernel_poles(hd, v, z, sl, sr, w)
    if not bad.any():
        return out
    ok = ~bad
    out = _kernel_poles(hd, v, z[ok], sl[ok], sr[ok], w[ok])[0] if ok.any() else 0.0 * out
    g = rgf_diagonal(hd, v, z[bad], sl[bad], sr[bad])  # (L, n, b, b)
    nw = hd.shape[1] // 2
    g = g.reshape(g.shape[:2] + (nw, 2, nw, 2))
    g = np.einsum("lnyayc->nlyac", g).reshape(len(g[0]), -1, 2, 2)
    return out + np.einsum("p,pna->na", w[bad], pauli_components(g).real)
