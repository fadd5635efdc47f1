"""Compiled chain kernels (scheme "fast") against the numpy kernels and dense inversion."""

import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine, get_solver, kernels
from hpcspin.negf.solvers import RGFSolver
from hpcspin.negf.warm import CachedLeads, WarmStart

needs_numba = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba not installed")


def _spins(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def _system(n, lead="tight-binding", seed=0):
    lat = make_lattice("chain", n)
    return NEGFEngine(lat, ElectronParams(lead=lead)).system(_spins(n, seed))


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@needs_numba
@pytest.mark.parametrize("lead", ["tight-binding", "wide-band"])
@pytest.mark.parametrize("n", [1, 2, 9, 40, 2 * kernels.WINDOW_BLOCK + 13])
def test_window_kernel_equals_numpy_and_dense(lead, n, monkeypatch):
    monkeypatch.setattr(kernels, "WINDOW_BLOCK_BYTES", 0)  # cache blocks from 128 sites on
    sy = _system(n, lead, seed=n)
    e = np.linspace(-1.9, 0.4, 29 if n < 100 else 5)  # the dense reference is O(N^3)
    gl, gr = sy.gammas(e)
    w = np.random.default_rng(1).normal(size=len(e))
    fast = RGFSolver(sy, compiled=True)
    assert fast.compiled
    got = fast.window_terms(e, gl, gr, w)
    ref = RGFSolver(sy).window_terms(e, gl, gr, w)
    dense = get_solver("dense")(sy).window_terms(e, gl, gr, w)
    assert _rel(got, ref) < 1e-12
    assert _rel(got, dense) < 1e-12


@needs_numba
@pytest.mark.parametrize("n", [1, 2, 9, 40, 2 * kernels.POLE_BLOCK + 13])
def test_pole_kernel_equals_numpy_and_dense(n):
    """Also over several cache blocks of the pole sum (a partial last block)."""
    sy = _system(n, seed=10 + n)
    z = -1.0 + np.linspace(-2, 2, 7) + 1j * np.geomspace(0.01, 3, 7)
    w = np.random.default_rng(2).normal(size=len(z))
    got = RGFSolver(sy, compiled=True).pole_terms(z, w)
    assert _rel(got, RGFSolver(sy).pole_terms(z, w)) < 1e-12
    assert _rel(got, get_solver("dense")(sy).pole_terms(z, w)) < 1e-12


@needs_numba
def test_window_kernel_independent_of_the_batch():
    """Each energy's row is bit-identical in any batch (what rank independence needs)."""
    sy = _system(30, seed=3)
    e = np.linspace(-1.8, 0.2, 23)
    gl, gr = sy.gammas(e)
    w = np.ones(len(e))
    solver = RGFSolver(sy, compiled=True)
    whole = solver.window_terms(e, gl, gr, w)
    for part in (slice(0, 1), slice(3, 11), slice(5, 23)):
        got = solver.window_terms(e[part], gl[part], gr[part], w[part])
        assert np.array_equal(got, whole[part])


@needs_numba
def test_window_kernel_blocking_changes_nothing(monkeypatch):
    """Cache blocks over sites recompute the same numbers: bit-identical at any block size."""
    sy = _system(50, seed=8)
    e = np.linspace(-1.8, 0.2, 17)
    gl, gr = sy.gammas(e)
    w = np.ones(len(e))
    solver = RGFSolver(sy, compiled=True)
    whole = solver.window_terms(e, gl, gr, w)
    monkeypatch.setattr(kernels, "WINDOW_BLOCK_BYTES", 0)  # always blocked
    for blk in (2, 7, 49, 50):
        monkeypatch.setattr(kernels, "WINDOW_BLOCK", blk)
        assert np.array_equal(solver.window_terms(e, gl, gr, w), whole)


def test_numpy_fallback_without_numba(monkeypatch):
    """Without numba, scheme "fast" runs the numpy kernels: results equal "reference"."""
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    lat = make_lattice("chain", 20)
    s = _spins(20, 4)
    fast = NEGFEngine(lat, ElectronParams(bias=0.5), scheme="fast", tol=1e-5)
    assert not fast.make_solver(fast.system(s)).compiled
    a = fast.compute(s)
    b = NEGFEngine(lat, ElectronParams(bias=0.5), tol=1e-5).compute(s)
    assert np.array_equal(a.spin_density, b.spin_density) and a.current == b.current


@pytest.mark.parametrize("n,seed", [(60, None), (30, 7)])
def test_fast_scheme_within_tol_of_reference(n, seed):
    lat = make_lattice("chain", n)
    if seed is None:  # the reference wall
        x = (np.arange(n) - (n - 1) / 2) / np.sqrt(5.0)
        th = 2 * np.arctan(np.exp(x))
        s = np.stack([0 * th, np.sin(th), np.cos(th)], axis=1)
    else:
        s = _spins(n, seed)
    p = ElectronParams(bias=0.5)
    tol = 1e-6
    a = NEGFEngine(lat, p, tol=tol, scheme="fast").compute(s)
    b = NEGFEngine(lat, p, tol=tol).compute(s)
    assert np.abs(a.spin_density - b.spin_density).max() < tol
    assert abs(a.current - b.current) < tol


def test_fast_scheme_on_a_strip_within_tol_of_reference():
    """Strips (compiled strip kernels when numba is installed): caches and warm starts apply."""
    lat = make_lattice("square", 8, 3)
    s = _spins(lat.n_sites, 9)
    p, tol = ElectronParams(bias=0.5), 1e-6
    ref = NEGFEngine(lat, p, tol=tol).compute(s)
    eng = NEGFEngine(lat, p, tol=tol, scheme="fast")
    warm = WarmStart()
    for _ in range(2):
        got = eng.compute(s, warm=warm)
        assert np.abs(got.spin_density - ref.spin_density).max() < tol
        assert abs(got.current - ref.current) < tol


def test_warm_start_agrees_with_cold_start_within_tol():
    """A sequence of nearby configurations: warm-started results within tol of cold ones."""
    n, tol = 40, 1e-6
    lat = make_lattice("chain", n)
    eng = NEGFEngine(lat, ElectronParams(bias=0.4), tol=tol, scheme="fast")
    base = _spins(n, 5)
    kick = _spins(n, 6)
    warm = WarmStart()
    for k in range(4):
        s = base + 0.01 * k * kick
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        w = eng.compute(s, warm=warm)
        c = eng.compute(s)
        assert np.abs(w.spin_density - c.spin_density).max() < tol
        assert abs(w.current - c.current) < tol
        assert w.error_estimate <= tol
    assert warm.counts == {"cold": 1, "warm": 3}
    again = eng.compute(s, warm=warm)
    assert again.info["rounds"] == 1  # the last grid already meets tol for the same spins


def test_warm_start_decisions():
    w = WarmStart(max_reuse=2, max_growth=1.5)
    grid = [np.array([0.0, 0.5, 1.0])]
    assert w.grid_for((0.5, -1.0), 1) is None
    w.update((0.5, -1.0), grid, 100)
    assert w.counts["cold"] == 1
    assert np.array_equal(w.grid_for((0.5, -1.0), 1)[0], grid[0])
    w.update((0.5, -1.0), grid, 120)
    assert w.grid_for((0.25, -1.0), 1) is None  # another bias: cold
    w.update((0.25, -1.0), grid, 100)
    assert w.grid_for((0.25, -1.0), 1) is not None
    w.update((0.25, -1.0), grid, 151)  # grew beyond 1.5x: dropped
    assert w.grid_for((0.25, -1.0), 1) is None
    w.update((0.25, -1.0), grid, 100)
    w.grid_for((0.25, -1.0), 1)
    w.update((0.25, -1.0), grid, 100)
    w.grid_for((0.25, -1.0), 1)
    w.update((0.25, -1.0), grid, 100)
    assert w.grid_for((0.25, -1.0), 1) is None  # max_reuse warm calls: cold again


def test_cached_leads_return_the_leads_values():
    eng = NEGFEngine(make_lattice("chain", 5))
    cached = CachedLeads(eng.leads, max_bytes=2000)
    for _ in range(2):
        for e in (np.linspace(-1, 1, 7), np.linspace(-1, 1, 9) + 0j, np.linspace(-2, 0, 40)):
            a, b = cached.self_energies(e), eng.leads.self_energies(e)
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert cached.nbytes <= 2000
    assert cached.band_bounds() == eng.leads.band_bounds()


def test_negf_driven_steps_fast_equal_reference_within_tol():
    """The NEGF force provider with scheme fast (warm starts) follows the reference path."""
    from hpcspin.dynamics.forces import ClassicalForce, NEGFForce
    from hpcspin.dynamics.simulation import Simulation
    from hpcspin.hamiltonian.spin import SpinParams

    n, tol = 30, 1e-6
    lat = make_lattice("chain", n)
    x = (np.arange(n) - (n - 1) / 2) / np.sqrt(5.0)
    th = 2 * np.arctan(np.exp(x))
    s0 = np.stack([0 * th, np.sin(th), np.cos(th)], axis=1)
    out = {}
    for scheme in ("reference", "fast"):
        eng = NEGFEngine(lat, ElectronParams(bias=0.5), tol=tol, scheme=scheme)
        force = NEGFForce(eng, None, 0.5)
        assert (force.warm is not None) == (scheme == "fast")
        sim = Simulation(lat, [ClassicalForce("chain", SpinParams()), force], None, dt=0.2)
        state = sim.drive(sim.state(s0), 2.0, 0.1)
        out[scheme] = sim.gather(state)
        if scheme == "fast":
            assert force.warm.counts == {"cold": 1, "warm": 39}
    assert np.abs(out["reference"] - s0).max() > 0.01  # the wall has moved
    # measured 2e-16: the warm grid keeps the cold grid's points for these small steps
    assert np.abs(out["fast"] - out["reference"]).max() < tol


@needs_numba
@pytest.mark.parametrize("kind,n,w", [("chain", 1, 1), ("chain", 60, 1), ("square", 12, 3)])
def test_compiled_resonance_seeding_equals_scipy(kind, n, w):
    """Band of a chain from its blocks == from the sparse matrix; compiled inverse
    iteration == scipy's banded solve (moduli of the end components, to round-off)."""
    from hpcspin.negf.resonances import _end_components, banded_upper

    lat = make_lattice(kind, n, w) if kind == "square" else make_lattice(kind, n)
    sy = NEGFEngine(lat, ElectronParams(bias=0.5)).system(_spins(lat.n_sites, 3))
    ab, kd = banded_upper(sy.matrix())
    band = kernels.chain_band(sy.hd, sy.v)
    if kind == "chain":
        assert band[1] == 2 and np.array_equal(band[0][-(kd + 1) :], ab)
        assert not band[0][: 2 - kd].any()
    else:
        assert band is None
    e = np.linspace(-2.5, 2.5, 7)
    a0, a1 = _end_components(ab, kd, e, sy.block)
    c0, c1 = _end_components(ab, kd, e, sy.block, compiled=True)
    for x, y in ((a0, c0), (a1, c1)):
        assert np.allclose(np.abs(x), np.abs(y), rtol=1e-9, atol=1e-12)
