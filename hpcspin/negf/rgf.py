"""Recursive Green's functions over slices, batched over energies (pure numpy kernels).

The central Hamiltonian is block tridiagonal: diagonal slice blocks ``hd`` (L, b, b) and a
coupling ``v = H_{x, x+1}`` (b, b), the same for every x. Self-energies ``sl`` and ``sr``
(n, b, b) act on slice 0 and slice L-1. Every kernel works on a batch of n energies at
once (numpy batched linear algebra on (n, b, b) stacks; closed-form inverses for b = 2),
costs O(L b^3) per energy and stores O(L n b^2) numbers.

Left-connected self-energy of slice x (everything at x' < x, plus Sigma_L):
    SL_0 = Sigma_L,  SL_x = v^+ [z - hd_{x-1} - SL_{x-1}]^-1 v
Right-connected (everything at x' > x, plus Sigma_R):
    SR_{L-1} = Sigma_R,  SR_x = v [z - hd_{x+1} - SR_{x+1}]^-1 v^+
Then G_xx = [z - hd_x - SL_x - SR_x]^-1 (all x at once), and the first block column
G_{x,0} = gR_x v^+ G_{x-1,0} with gR_x = [z - hd_x - SR_x]^-1.
"""

from __future__ import annotations

import numpy as np


def inv_small(a: np.ndarray) -> np.ndarray:
    """Inverse of stacked square matrices (..., b, b); closed form for b <= 2."""
    b = a.shape[-1]
    if b == 1:
        return 1.0 / a
    if b != 2:
        return np.linalg.inv(a)
    a00, a01, a10, a11 = a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1]
    r = 1.0 / (a00 * a11 - a01 * a10)
    out = np.empty_like(a)
    out[..., 0, 0] = a11 * r
    out[..., 0, 1] = -a01 * r
    out[..., 1, 0] = -a10 * r
    out[..., 1, 1] = a00 * r
    return out


def scalar_coupling(v: np.ndarray) -> complex | None:
    """C if v == c * identity (chain, square strip), else None."""
    c = v[0, 0]
    if np.array_equal(v, c * np.eye(v.shape[0])):
        return complex(c)
    return None


def _zi(z: np.ndarray, b: int) -> np.ndarray:
    return z[:, None, None] * np.eye(b)


def connected_self_energies(hd, v, z, sl, sr, right_only: bool = False):
    """Left- and right-connected self-energies SL, SR, each (L, n, b, b).

    Args:
        hd: (L, b, b) diagonal slice blocks.
        v: (b, b) coupling H_{x, x+1}.
        z: (n,) complex energies.
        sl: (n, b, b) left lead self-energy on slice 0.
        sr: (n, b, b) right lead self-energy on slice L-1.
        right_only: compute SR only (SL is returned as None).

    Returns:
        (SL, SR).
    """
    hd = np.asarray(hd, dtype=complex)
    L, b = hd.shape[0], hd.shape[1]
    n = len(z)
    zi = _zi(z, b)
    c = scalar_coupling(v)
    vh = v.conj().T
    if right_only:
        sr_all = np.empty((L, n, b, b), dtype=complex)
        sr_all[L - 1] = sr
        for x in range(L - 1, 0, -1):
            g = inv_small(zi - hd[x] - sr_all[x])
            sr_all[x - 1] = abs(c) ** 2 * g if c is not None else v @ g @ vh
        return None, sr_all
    # Both sweeps in one loop: pair k holds (left slice k, right slice L-1-k).
    s2 = np.empty((L, 2, n, b, b), dtype=complex)
    s2[0, 0], s2[0, 1] = sl, sr
    hpair = np.stack([hd, hd[::-1]], axis=1)[:, :, None]
    for k in range(L - 1):
        g = inv_small(zi - hpair[k] - s2[k])
        if c is not None:
            np.multiply(g, abs(c) ** 2, out=s2[k + 1])
        else:
            s2[k + 1, 0] = vh @ g[0] @ v
            s2[k + 1, 1] = v @ g[1] @ vh
    return s2[:, 0], s2[::-1, 1]


def rgf_diagonal(hd, v, z, sl, sr) -> np.ndarray:
    """Diagonal slice blocks G^r_{xx}(z), shape (L, n, b, b). Arguments as above."""
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    sl_all, sr_all = connected_self_energies(hd, v, z, sl, sr)
    b = hd.shape[1]
    a = _zi(z, b)[None] - np.asarray(hd, complex)[:, None] - sl_all
    a -= sr_all
    return inv_small(a)


class _Rows2:
    """Scratch rows for the chain kernel: 2x2 inverses into preallocated rows.

    Every operation writes into existing buffers (no temporaries, no fancy indexing):
    the kernel is bound by the number of numpy calls per site at moderate batch sizes.
    """

    def __init__(self, n: int):
        self.det = np.empty(n, dtype=complex)
        self.tmp = np.empty(n, dtype=complex)
        self.a = np.empty((4, n), dtype=complex)
        self.t22 = np.empty((2, 2, n), dtype=complex)

    def shifted(self, z, h4, extra, fac: float) -> np.ndarray:
        """Shifted block rows z 1 - h - fac * extra (h: a site block as 4 numbers)."""
        a = self.a
        np.multiply(extra, -fac, out=a)
        np.subtract(a, h4[:, None], out=a)
        np.add(a[0], z, out=a[0])
        np.add(a[3], z, out=a[3])
        return a

    def inverse_into(self, a: np.ndarray, out: np.ndarray) -> None:
        det, tmp = self.det, self.tmp
        np.multiply(a[0], a[3], out=det)
        np.multiply(a[1], a[2], out=tmp)
        np.subtract(det, tmp, out=det)
        np.divide(1.0, det, out=det)
        np.multiply(a[3], det, out=out[0])
        np.multiply(a[0], det, out=out[3])
        np.negative(det, out=det)
        np.multiply(a[1], det, out=out[1])
        np.multiply(a[2], det, out=out[2])

    def product_into(self, g: np.ndarray, p: np.ndarray, out: np.ndarray) -> None:
        """Product g @ p of rows (4, n) read as 2x2 blocks, written into out."""
        g2, p2, o2 = g.reshape(2, 2, -1), p.reshape(2, 2, -1), out.reshape(2, 2, -1)
        np.multiply(g2[:, 0, None, :], p2[0][None], out=o2)
        np.multiply(g2[:, 1, None, :], p2[1][None], out=self.t22)
        o2 += self.t22


def _chain_column0(hd, c: complex, z, sl, sr) -> np.ndarray:
    """rgf_column0 for b = 2 and a scalar coupling (the chain), 2x2 blocks as 4 rows.

    Same recursion as the general kernel; each 2x2 product or inverse is a handful of
    numpy operations on length-n rows, which is several times faster than batched
    matmul/inv on (n, 2, 2) stacks. Returns (L, 4, n): row k of site x holds the
    block entry (k // 2, k % 2) of G_{x,0} at every energy.
    """
    L, n = hd.shape[0], len(z)
    h = hd.reshape(L, 4)
    c2 = abs(c) ** 2
    w = _Rows2(n)
    g = np.empty((L, 4, n), dtype=complex)  # right-connected gR_x
    w.inverse_into(w.shifted(z, h[L - 1], sr.reshape(n, 4).T, 1.0), g[L - 1])
    for x in range(L - 2, 0, -1):
        w.inverse_into(w.shifted(z, h[x], g[x + 1], c2), g[x])
    a0 = w.shifted(z, h[0], sl.reshape(n, 4).T, 1.0)
    a0 -= c2 * g[1] if L > 1 else sr.reshape(n, 4).T
    out = np.empty((L, 4, n), dtype=complex)
    w.inverse_into(a0, out[0])
    g[1:] *= np.conj(c)
    for x in range(1, L):
        w.product_into(g[x], out[x - 1], out[x])
    return out


def chain_column0_rows(hd, v, z, sl, sr) -> np.ndarray | None:
    """First block column of a chain in row layout (L, 4, n), or None if not a chain.

    A chain here: 2x2 slices (b = 2) coupled by a scalar times the identity.
    """
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    hd = np.asarray(hd, dtype=complex)
    L, b = hd.shape[0], hd.shape[1]
    c = scalar_coupling(v)
    if b != 2 or c is None:
        return None
    if len(z) <= SCALAR_MAX_ENERGIES:
        rows = hd.reshape(L, 4).tolist()
        sl3, sr3 = np.asarray(sl).reshape(-1, 4), np.asarray(sr).reshape(-1, 4)
        cols = [_chain_column0_scalar(rows, c, complex(e), sl3[i], sr3[i]) for i, e in enumerate(z)]
        return np.stack(cols, axis=2)
    return _chain_column0(hd, c, z, sl, sr)


def _inv2(a0, a1, a2, a3):
    r = 1.0 / (a0 * a3 - a1 * a2)
    return (a3 * r, -a1 * r, -a2 * r, a0 * r)


def _chain_column0_scalar(hd_rows: list, c: complex, z: complex, sl, sr) -> np.ndarray:
    """_chain_column0 for one energy on Python complex scalars, shape (L, 4).

    For one or a few energies the per-call overhead of numpy on length-1 rows
    dominates; plain complex arithmetic is about 7x faster (same recursion).
    """
    L = len(hd_rows)
    c2, cc = abs(c) ** 2, complex(np.conj(c))
    s_l, s_r = [complex(v) for v in sl.reshape(4)], [complex(v) for v in sr.reshape(4)]
    g = [None] * L
    k = hd_rows[L - 1]
    g[L - 1] = _inv2(z - k[0] - s_r[0], -k[1] - s_r[1], -k[2] - s_r[2], z - k[3] - s_r[3])
    for x in range(L - 2, 0, -1):
        k, q = hd_rows[x], g[x + 1]
        g[x] = _inv2(
            z - k[0] - c2 * q[0], -k[1] - c2 * q[1], -k[2] - c2 * q[2], z - k[3] - c2 * q[3]
        )
    k = hd_rows[0]
    q, f = (g[1], c2) if L > 1 else (s_r, 1.0)
    p = _inv2(
        z - k[0] - s_l[0] - f * q[0],
        -k[1] - s_l[1] - f * q[1],
        -k[2] - s_l[2] - f * q[2],
        z - k[3] - s_l[3] - f * q[3],
    )
    out = [p]
    for x in range(1, L):
        a = g[x]
        p = (
            cc * (a[0] * p[0] + a[1] * p[2]),
            cc * (a[0] * p[1] + a[1] * p[3]),
            cc * (a[2] * p[0] + a[3] * p[2]),
            cc * (a[2] * p[1] + a[3] * p[3]),
        )
        out.append(p)
    return np.array(out, dtype=complex)


#: Up to this many energies, the chain kernel runs per energy on complex scalars.
SCALAR_MAX_ENERGIES = 3


def rgf_column0(hd, v, z, sl, sr) -> np.ndarray:
    """First block column G^r_{x,0}(z), shape (L, n, b, b). Arguments as above."""
    z = np.atleast_1d(np.asarray(z, dtype=complex))
    hd = np.asarray(hd, dtype=complex)
    L, b = hd.shape[0], hd.shape[1]
    rows = chain_column0_rows(hd, v, z, sl, sr)
    if rows is not None:
        return rows.transpose(0, 2, 1).reshape(L, len(z), 2, 2)
    _, sr_all = connected_self_energies(hd, v, z, sl, sr, right_only=True)
    zi = _zi(z, b)
    out = np.empty_like(sr_all)
    out[0] = inv_small(zi - hd[0] - sl - sr_all[0])
    if L == 1:
        return out
    gr = inv_small(zi[None] - hd[1:, None] - sr_all[1:])
    c = scalar_coupling(v)
    vh = v.conj().T
    for x in range(1, L):
        if c is not None:
            np.matmul(gr[x - 1], out[x - 1], out=out[x])
            out[x] *= np.conj(c)
        else:
            out[x] = gr[x - 1] @ (vh @ out[x - 1])
    return out
