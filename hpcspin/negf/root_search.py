"""Cold search of a strip's roots of eps_n(E) = E: Newton inside the scan's brackets.

:func:`.resonances.strip_roots` brackets every root of eps_n(E) - E (eps_n: the sorted
eigenvalues of H + Herm Sigma(E)) by sign changes on a scan of the window. Locating each
root by Brent's method on eps_n alone costs one full banded eigenvalue solve per step
(~6 steps per root; 97 % of the search on a 40 x 8 strip). Here every bracket [a, b] is
instead solved by Newton's method, as the warm starts follow roots
(:mod:`.pole_tracking`):

* start at the linear interpolation of eps_n - E between a and b, with the vector of two
  inverse-iteration steps there (from a fixed random vector);
* each step one banded LU solve (inverse iteration from the previous vector: the
  eigenvalue nearest E) and the Hellmann-Feynman slope <psi| d Herm Sigma/dE |psi>;
* accepted only if every iterate stays inside [a, b], the steps fall below ROOT_XTOL
  within NEWTON_STEPS, and the root found belongs to eps_n itself: Sylvester's inertia
  of H + Herm Sigma(r) - (r -+ INDEX_GAP) (block LDL^H over the slices) must put n
  eigenvalues below r - INDEX_GAP and n + 1 below r + INDEX_GAP. Any other bracket is
  solved by Brent's method, as before.

Everything is deterministic and runs the same on every rank.
"""

from __future__ import annotations

import numpy as np

from hpcspin.negf.pole_tracking import _Band, newton_step, sigma_with_slopes
from hpcspin.negf.resonances import ROOT_XTOL, _HermitianPart, _rhs

#: Newton steps allowed per bracket before it falls back to Brent's method.
NEWTON_STEPS = 14
#: Half-gap (t) of the inertia test that a root belongs to eps_n.
INDEX_GAP = 1e-10


def _step(band: _Band, hp: _HermitianPart, e: np.ndarray, x: list, move: bool):
    """One inverse-iteration step at every e (and a Newton step if ``move``).

    Returns:
        (new e, vectors, Newton steps, first-order widths); a failed solve gives nan.
    """
    k = len(e)
    sl, sr = sigma_with_slopes(hp.system, e)
    new, steps, wid, vecs = e.copy(), np.full(k, np.nan), np.full(k, np.nan), list(x)
    for j in range(k):
        got = newton_step(band, hp.b, e[j], x[j], sl, sr, j)
        if got is None:
            continue
        vecs[j] = got[0]
        if not move:
            steps[j] = 0.0
            continue
        steps[j], wid[j] = got[1], got[2]
        new[j] = e[j] + steps[j]
    return new, vecs, steps, wid


def newton_brackets(hp: _HermitianPart, a: np.ndarray, b: np.ndarray, e0: np.ndarray):
    """Newton's method for one root in each bracket [a_k, b_k], from e0_k, all together.

    Returns:
        (roots, eigenvectors, first-order widths, ok); ok[k] False where bracket k
        failed (left its bracket, did not converge, a singular solve).
    """
    band = _Band(hp.ab, hp.kd, hp.b)
    e = np.array(e0, dtype=float)
    k = len(e)
    x = [_rhs(hp.ab.shape[1])] * k
    ok, done = np.ones(k, bool), np.zeros(k, bool)
    wid = np.zeros(k)
    for _ in range(2):  # the start vectors: two inverse-iteration steps at e0
        _, x, steps, _ = _step(band, hp, e, x, move=False)
        ok &= np.isfinite(steps)
    for _ in range(NEWTON_STEPS):
        todo = np.flatnonzero(ok & ~done)
        if not len(todo):
            break
        new, vecs, steps, w = _step(band, hp, e[todo], [x[i] for i in todo], move=True)
        for j, i in enumerate(todo):
            x[i], e[i], wid[i] = vecs[j], new[j], w[j]
            if not np.isfinite(steps[j]) or not a[i] <= new[j] <= b[i]:
                ok[i] = False
            elif abs(steps[j]) <= ROOT_XTOL:
                done[i] = True
    return e, x, wid, ok & done


def _slice_blocks(ab, kd: int, b: int):
    """Diagonal (L, b, b) and upper (L-1, b, b) slice blocks of the band.

    None if the band is not block tridiagonal in slices of b.
    """
    n = ab.shape[1]
    if n % b or kd >= 2 * b:
        return None
    m = np.zeros((n, n), dtype=complex)
    for d in range(kd + 1):
        i = np.arange(n - d)
        m[i, i + d] = ab[kd - d, d:]
    m = np.triu(m) + np.triu(m, 1).conj().T
    ns = n // b
    blocks = m.reshape(ns, b, ns, b).transpose(0, 2, 1, 3)
    far = np.abs(np.triu(np.ones((ns, ns)), 2)[:, :, None, None] * blocks).max(initial=0.0)
    if far > 0:
        return None
    idx = np.arange(ns)
    return blocks[idx, idx], blocks[idx[:-1], idx[1:]]


def count_below(hp: _HermitianPart, blocks, r: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """#{n: eps_n(r_k) < r_k + shift_k}: inertia of H + Herm Sigma(r_k) - (r_k + shift_k).

    Block LDL^H over the slices (Haynsworth), all k together.
    """
    diag, up = blocks
    sl, sr = hp.system.self_energies(np.asarray(r, dtype=float))
    herm = lambda s: 0.5 * (s + s.conj().transpose(0, 2, 1))  # noqa: E731
    eye = np.eye(hp.b)
    s = (np.asarray(r) + shift)[:, None, None] * eye
    count = np.zeros(len(r), dtype=int)
    d = None
    for x in range(len(diag)):
        a = diag[x][None] - s
        if x == 0:
            a = a + herm(sl)
        if x == len(diag) - 1:
            a = a + herm(sr)
        if d is not None:
            v = up[x - 1]
            a = a - v.conj().T[None] @ np.linalg.solve(d, np.broadcast_to(v, d.shape))
        d = 0.5 * (a + a.conj().transpose(0, 2, 1))
        count += (np.linalg.eigvalsh(d) < 0).sum(axis=1)
    return count


def index_ok(hp: _HermitianPart, r: np.ndarray, index: np.ndarray, blocks=None) -> np.ndarray:
    """True where the root r_k is a root of eps_{index_k} (by inertia), per root."""
    blocks = blocks if blocks is not None else _slice_blocks(hp.ab, hp.kd, hp.b)
    if blocks is None or not len(r):
        return np.zeros(len(r), bool)
    rr = np.concatenate([r, r])
    gap = np.concatenate([np.full(len(r), -INDEX_GAP), np.full(len(r), INDEX_GAP)])
    try:
        c = count_below(hp, blocks, rr, gap)
    except np.linalg.LinAlgError:
        return np.zeros(len(r), bool)
    return (c[: len(r)] == index) & (c[len(r) :] == index + 1)


def newton_search(hp: _HermitianPart, grid: np.ndarray, g: np.ndarray):
    """The brackets of the scan (g: eps_n(E_j) - E_j) solved by checked Newton steps.

    Newton starts at the linear interpolation of g inside each bracket.

    Returns:
        (interval j, index n, {bracket k: (root, (first-order width, vector))} for the
        brackets Newton solved) with brackets ordered by j, then n; or None where the
        band is not block tridiagonal by slices.
    """
    js, ids = np.nonzero(g[:-1] * g[1:] <= 0)  # ordered by interval, then n
    blocks = _slice_blocks(hp.ab, hp.kd, hp.b)
    if blocks is None:
        return None
    if not len(js):
        return js, ids, {}
    ga, gb = g[js, ids], g[js + 1, ids]
    a, b = grid[js], grid[js + 1]
    e0 = np.clip(a + ga / np.where(ga != gb, ga - gb, 1.0) * (b - a), a, b)
    r, vecs, wid, ok = newton_brackets(hp, a, b, e0)
    ok &= index_ok(hp, r, ids, blocks)
    return js, ids, {k: (float(r[k]), (float(wid[k]), vecs[k])) for k in np.flatnonzero(ok)}
