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
from hpcspin.negf.kernels import AVAILABLE
from hpcspin.negf.observables import injected_site_blocks, lead_currents
from hpcspin.negf.rgf import rgf_column0, rgf_diagonal
from hpcspin.negf.strip_loops import CHUNK, _pole_loops, _window_loops

__all__ = ["AVAILABLE", "CHUNK", "PIVOT_RTOL", "pole_sum", "window_parts", "window_terms"]

# CHUNK (strip_loops): energies per compiled chunk (innermost, vectorised); a
# (16, 16, CHUNK) complex matrix then stays in the L2 cache.
#: Smallest accepted |pivot| relative to the matrix scale; energies below are
#: recomputed with pivoting (error of an unpivoted elimination ~ eps / that ratio).
PIVOT_RTOL = 1e-5


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
