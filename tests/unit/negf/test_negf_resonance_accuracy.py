"""Achieved accuracy at tol 1e-6 against a resonance-resolved reference (docs/negf.md).

The reference is built here, independently of :mod:`hpcspin.negf.resonances`: every
resonance of the window from dense eigenvalues of H + Herm Sigma(E) (bisection on the
roots of eps_n(E) = E, widths from the eigenvectors), each narrow one graded by factors
of 2 from a quarter of its width, then the dense solver at tol 1e-10 on that grid.
A few cases run in the normal suite; the sweep (tilted and noisy strip walls, random
strips, random chains N = 10-50, J = 1-3, V = 0.1-0.5) with HPCSPIN_SLOW_TESTS=1.
"""

import os

import numpy as np
import pytest

from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf.contour import plan_window
from hpcspin.negf.engine import ElectronParams, NEGFEngine

TOL = 1e-6
GOAL = 3e-6  # achieved error within 3x of tol


def _herm(system, h, e):
    b = system.block
    sl, sr = system.self_energies(np.array([e]))
    m = h.astype(complex)
    m[:b, :b] += 0.5 * (sl[0] + sl[0].conj().T)
    m[-b:, -b:] += 0.5 * (sr[0] + sr[0].conj().T)
    return m, sl[0], sr[0]


def _dense_resonances(system, lo, hi, step=0.01):
    """(E_r, Gamma) of every root of eps_n(E) = E in [lo, hi] (dense, by bisection)."""
    h = system.matrix().toarray()
    b = system.block
    grid = np.linspace(lo, hi, int(np.ceil((hi - lo) / step)) + 1)
    g = np.array([np.linalg.eigvalsh(_herm(system, h, e)[0]) for e in grid]) - grid[:, None]
    out = []
    for j in range(len(grid) - 1):
        for n in np.flatnonzero(g[j] * g[j + 1] <= 0):
            a, c, fa = grid[j], grid[j + 1], g[j, n]
            for _ in range(55):
                mid = 0.5 * (a + c)
                fm = np.linalg.eigvalsh(_herm(system, h, mid)[0])[n] - mid
                a, c, fa = (a, mid, fa) if fa * fm <= 0 else (mid, c, fm)
            r = 0.5 * (a + c)
            m, sl, sr = _herm(system, h, r)
            x = np.linalg.eigh(m)[1][:, n]
            gam = -2 * np.imag(x[:b].conj() @ sl @ x[:b] + x[-b:].conj() @ sr @ x[-b:])
            out.append((r, gam))
    return out


def resolved_reference(lat, spins, params, bias):
    """Spin density on a grid resolving every resonance narrower than 1e-2 (dense solver)."""
    eng = NEGFEngine(lat, params, solver="dense", tol=1e-10, resonances=False)
    system = eng.system(spins)
    mu_l, mu_r = params.mu + bias / 2, params.mu - bias / 2
    band = eng.leads.band_bounds()
    win = plan_window(mu_l, mu_r, params.temperature, 1e-10, eng._band_edges(), band)
    lo, hi = win[0].origin, win[-1].origin + win[-1].width
    pts = []
    for r, gam in _dense_resonances(system, lo, hi):
        d = gam / 4
        while 0 < d < 0.05:
            pts += [r - d, r, r + d]
            d *= 2
    pts = np.array(pts)
    seeds = np.unique(pts[(pts > lo) & (pts < hi)]) if len(pts) else pts
    eng._seeds = lambda system, lo, hi: seeds
    return eng.compute(spins, bias=bias).spin_density


def _unit(s):
    return s / np.linalg.norm(s, axis=1)[:, None]


def _case(kind, L, W, seed):
    rng = np.random.default_rng(seed)
    lat = make_lattice("chain", L, 1) if W == 1 else make_lattice("square", L, W)
    if kind == "random":
        return lat, _unit(rng.normal(size=(lat.n_sites, 3)))
    s = domain_wall(lat, (L - 1) / 2, 2.0, "bloch")
    tilt = 1e-4 if kind == "tilted" else 0.1  # "noisy": thermal-like tilts of ~0.1 rad
    return lat, _unit(s + tilt * rng.normal(size=s.shape))


def _error(kind, L, W, seed, J=2.0, bias=0.5, width=None):
    lat, s = _case(kind, L, W, seed)
    p = ElectronParams(J=J)
    eng = NEGFEngine(lat, p, tol=TOL, resonance_width=width)
    got = eng.compute(s, bias=bias).spin_density
    return abs(got - resolved_reference(lat, s, p, bias)).max()


@pytest.mark.parametrize(
    "kind, L, W, seed",
    [("tilted", 8, 2, 3), ("random", 6, 3, 2), ("random", 16, 1, 4)],
)
def test_sampled_cases_within_3x_of_tol(kind, L, W, seed):
    # without the strip poles (first-order seeds) the tilted 8 x 2 wall is off by 8e-5
    assert _error(kind, L, W, seed) <= GOAL


SWEEP = [("tilted", 12, 3, 3), ("tilted", 20, 4, 3), ("noisy", 12, 3, 5), ("noisy", 16, 4, 6)]
SWEEP += [("random", L, W, 10 + L + W) for L, W in ((8, 2), (10, 3), (12, 4))]
SWEEP += [("random", n, 1, n) for n in (10, 30, 50)]


@pytest.mark.parametrize("L, J, bias, seed", [(30, 3.0, 0.3, 30), (50, 2.0, 0.5, 100)])
def test_random_chain_resonances_missed_by_the_first_order_width(L, J, bias, seed):
    # 6.6e-6 and 1.1e-5 with graded seeds below 1e-4 alone: resonances 1.5e-4 and
    # 4e-4 wide whose first-order widths (3.3e-4, 5.1e-3) were above the threshold;
    # the centre breakpoints (CHAIN_CENTRE) let the adaptive rule see them
    assert _error("random", L, 1, seed, J=J, bias=bias) <= GOAL


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HPCSPIN_SLOW_TESTS") != "1", reason="HPCSPIN_SLOW_TESTS=1")
@pytest.mark.parametrize("kind, L, W, seed", SWEEP)
@pytest.mark.parametrize("J, bias", [(1.0, 0.1), (2.0, 0.5), (3.0, 0.3)])
def test_sweep_within_3x_of_tol(kind, L, W, seed, J, bias):
    assert _error(kind, L, W, seed, J, bias) <= GOAL
