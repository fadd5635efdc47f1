"""Rank-independent work blocks of the NEGF quadrature, and the fused chain integrand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.quadrature import plan_blocks
from hpcspin.negf.solvers import Solver


@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 5000), max_block=st.integers(1, 64), min_block=st.integers(1, 16))
def test_plan_blocks_cover_and_balance(n, max_block, min_block):
    sizes = plan_blocks(n, max_block, min_block)
    assert sum(sizes) == n
    if n == 0:
        return
    assert max(sizes) <= max_block
    assert max(sizes) - min(sizes) <= 1
    assert sizes == sorted(sizes, reverse=True)
    nb0 = -(-n // max_block)
    if n // (4 * -(-nb0 // 4)) >= min(min_block, max_block):
        assert len(sizes) % 4 == 0  # two or four ranks get equal shares


@pytest.mark.parametrize("n_sites", [1, 2, 7, 60])
@pytest.mark.parametrize("n_e", [2, 40])
def test_fused_chain_window_terms_equal_generic(n_sites, n_e):
    lat = make_lattice("chain", n_sites)
    s = np.random.default_rng(n_sites).normal(size=(n_sites, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    eng = NEGFEngine(lat, ElectronParams(bias=0.5))
    system = eng.system(s)
    solver = eng.make_solver(system)
    e = np.linspace(-1.9, 1.7, n_e)
    gl, gr = system.gammas(e)
    w = np.linspace(0.3, 1.0, n_e)
    fused = solver.window_terms(e, gl, gr, w)
    generic = Solver.window_terms(solver, e, gl, gr, w)
    assert fused.shape == (n_e, 4 * n_sites + 8)
    np.testing.assert_allclose(fused, generic, rtol=0, atol=1e-13 * np.abs(generic).max())


def test_long_field_evaluations_report_their_rounds(monkeypatch, caplog):
    from hpcspin.negf import engine

    monkeypatch.setattr(engine, "PROGRESS_AFTER_S", 0.0)
    monkeypatch.setattr(engine, "PROGRESS_EVERY_S", 0.0)
    lat = make_lattice("chain", 20)
    s = np.tile([0.0, 0.0, 1.0], (20, 1))
    s[10:] = [1.0, 0.0, 0.0]
    with caplog.at_level("INFO", logger="hpcspin.negf"):
        res = NEGFEngine(lat, ElectronParams(bias=0.5)).compute(s)
    lines = [r.getMessage() for r in caplog.records if "round" in r.getMessage()]
    assert len(lines) == res.info["rounds"]
    assert f"{res.n_energy_points} energy points" in lines[-1]
