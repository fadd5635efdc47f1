"""Compiled strip kernels (scheme "fast" on strips) against the numpy kernels and dense."""

import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine, get_solver, strip_kernels
from hpcspin.negf.solvers import RGFSolver
from hpcspin.negf.warm import WarmStart

needs_numba = pytest.mark.skipif(not strip_kernels.AVAILABLE, reason="numba not installed")

STRIPS = [  # kind, length, width, periodic, lead
    ("square", 1, 2, False, "tight-binding"),
    ("square", 7, 3, False, "tight-binding"),
    ("square", 5, 4, True, "tight-binding"),
    ("triangular", 6, 3, False, "tight-binding"),  # non-scalar inter-slice coupling
    ("triangular", 4, 4, True, "tight-binding"),
    ("square", 6, 2, False, "wide-band"),
]


def _spins(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def _system(kind, length, width, periodic, lead, seed=0):
    lat = make_lattice(kind, length, width, periodic)
    return NEGFEngine(lat, ElectronParams(lead=lead)).system(_spins(lat.n_sites, seed))


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def _window_case(sy, n=37):
    e = np.linspace(-2.3, 0.4, n)  # crosses mode thresholds of the leads
    gl, gr = sy.gammas(e)
    w = np.random.default_rng(1).normal(size=len(e))
    return e, gl, gr, w


@needs_numba
@pytest.mark.parametrize("case", STRIPS, ids=lambda c: f"{c[0]}{c[1]}x{c[2]}{'p' if c[3] else ''}")
def test_window_kernel_equals_numpy_and_dense(case):
    sy = _system(*case, seed=case[1])
    e, gl, gr, w = _window_case(sy)
    fast = RGFSolver(sy, compiled=True)
    assert fast.strip
    got = fast.window_terms(e, gl, gr, w)
    assert _rel(got, RGFSolver(sy).window_terms(e, gl, gr, w)) < 1e-12
    assert _rel(got, get_solver("dense")(sy).window_terms(e, gl, gr, w)) < 1e-12


@needs_numba
@pytest.mark.parametrize("case", STRIPS, ids=lambda c: f"{c[0]}{c[1]}x{c[2]}{'p' if c[3] else ''}")
def test_pole_kernel_equals_numpy_and_dense(case):
    sy = _system(*case, seed=10 + case[1])
    z = -1.0 + np.linspace(-2, 2, 21) + 1j * np.geomspace(0.01, 3, 21)
    w = np.random.default_rng(2).normal(size=len(z))
    got = RGFSolver(sy, compiled=True).pole_terms(z, w)
    assert _rel(got, RGFSolver(sy).pole_terms(z, w)) < 1e-12
    assert _rel(got, get_solver("dense")(sy).pole_terms(z, w)) < 1e-12


@needs_numba
def test_density_rows_independent_of_the_batch():
    """An energy's density columns are bit-identical in any batch (any chunk position)."""
    sy = _system("square", 6, 3, False, "tight-binding", seed=3)
    e, gl, gr, w = _window_case(sy, 41)
    solver = RGFSolver(sy, compiled=True)
    whole = solver.window_terms(e, gl, gr, w)
    nd = 4 * sy.n_sites
    for part in (slice(0, 1), slice(3, 20), slice(5, 41)):
        got = solver.window_terms(e[part], gl[part], gr[part], w[part])
        assert np.array_equal(got[:, :nd], whole[part, :nd])
        assert _rel(got, whole[part]) < 1e-14  # currents: numpy products of the end blocks


@needs_numba
@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_small_pivot_fallback_gives_the_same_numbers(kind, monkeypatch):
    """Energies flagged by the pivot check are redone with pivoting (forced here)."""
    sy = _system(kind, 5, 3, False, "tight-binding", seed=5)
    e, gl, gr, w = _window_case(sy, 19)
    z = -1.0 + np.linspace(-2, 2, 9) + 1j * np.geomspace(0.01, 3, 9)
    wz = np.linspace(0.5, 1.5, 9)
    solver = RGFSolver(sy, compiled=True)
    win, pol = solver.window_terms(e, gl, gr, w), solver.pole_terms(z, wz)
    monkeypatch.setattr(strip_kernels, "PIVOT_RTOL", np.inf)  # every energy flagged
    assert _rel(solver.window_terms(e, gl, gr, w), win) < 1e-12
    assert _rel(solver.pole_terms(z, wz), pol) < 1e-12
    monkeypatch.setattr(strip_kernels, "PIVOT_RTOL", 0.0)
    flags = strip_kernels._bad_pivots  # every other energy flagged
    monkeypatch.setattr(
        strip_kernels, "_bad_pivots", lambda *a: flags(*a) | (np.arange(a[1]) % 2 == 0)
    )
    assert _rel(solver.window_terms(e, gl, gr, w), win) < 1e-12
    assert _rel(solver.pole_terms(z, wz), pol) < 1e-12


def test_gamma_factor_reproduces_gamma():
    sy = _system("square", 3, 4, False, "tight-binding")
    e = np.linspace(-3.9, 3.9, 50)  # some energies with few (or no) open channels
    gl, _ = sy.gammas(e)
    u = strip_kernels.gamma_factor(gl)
    assert np.abs(u @ np.conj(np.swapaxes(u, 1, 2)) - gl).max() < 1e-13


@pytest.mark.parametrize("kind,periodic", [("square", False), ("triangular", False)])
def test_fast_scheme_on_strips_within_tol_of_reference(kind, periodic):
    """Engine level: the strip kernels (and warm starts) stay within tol of "reference"."""
    lat = make_lattice(kind, 8, 3, periodic)
    s = _spins(lat.n_sites, 9)
    p, tol = ElectronParams(bias=0.5), 1e-6
    ref = NEGFEngine(lat, p, tol=tol).compute(s)
    eng = NEGFEngine(lat, p, tol=tol, scheme="fast")
    assert eng.make_solver(eng.system(s)).strip == strip_kernels.AVAILABLE
    warm = WarmStart()
    for _ in range(2):
        got = eng.compute(s, warm=warm)
        assert np.abs(got.spin_density - ref.spin_density).max() < tol
        assert abs(got.current - ref.current) < tol
