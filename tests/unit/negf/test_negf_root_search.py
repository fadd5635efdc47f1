"""Cold strip root search by Newton in the scan's brackets (negf/root_search.py).

The reference is the earlier search, Brent's method on the n-th eigenvalue in every
bracket (``strip_roots(..., method="brent")``).
"""

import numpy as np
import pytest
import scipy.linalg as sla

from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.negf import root_search
from hpcspin.negf.bound_states import BOUND_WIDTH
from hpcspin.negf.engine import ElectronParams, NEGFEngine
from hpcspin.negf.resonances import _HermitianPart, centre_band, strip_roots


def _unit(s):
    return s / np.linalg.norm(s, axis=1)[:, None]


def _system(kind: str):
    rng = np.random.default_rng(7)
    if kind == "tilted":  # closed-channel states made resonances ~1e-9 wide
        lat = make_lattice("square", 16, 4)
        s = _unit(domain_wall(lat, 7.5, 2.0, "bloch") + 1e-4 * rng.normal(size=(64, 3)))
    elif kind == "random":
        lat = make_lattice("square", 10, 3)
        s = _unit(rng.normal(size=(30, 3)))
    else:  # open triangular strip: other couplings between slices
        lat = make_lattice("triangular", 12, 3)
        s = _unit(domain_wall(lat, 5.5, 2.0, "neel") + 1e-4 * rng.normal(size=(36, 3)))
    return NEGFEngine(lat, ElectronParams(J=2.0)).system(s)


def _assert_same(new, old):
    assert np.array_equal(new[2], old[2])  # the same roots, the same eps_n
    assert np.abs(new[0] - old[0]).max() < 1e-12
    wide = old[1] > 1e-14  # the rest are bound states: widths are round-off
    assert np.all(np.abs(new[1] - old[1])[wide] < 1e-6 * old[1][wide])
    assert np.all(np.abs(new[1][~wide]) < 1e-12)
    # the same bound states for the engine's bound-state occupation
    assert np.array_equal(np.abs(new[1]) < BOUND_WIDTH, np.abs(old[1]) < BOUND_WIDTH)


@pytest.mark.parametrize("kind", ["tilted", "random", "triangular"])
def test_newton_search_equals_the_brent_search(kind):
    system = _system(kind)
    ab, kd = centre_band(system)
    new = strip_roots(system, ab, kd, -2.1, 0.1)
    old = strip_roots(system, ab, kd, -2.1, 0.1, method="brent")
    assert len(old[0]) > 10 and (kind != "tilted" or np.sum(old[1] < 1e-6) >= 3)
    _assert_same(new, old)


def test_failed_newton_brackets_fall_back_to_brent(monkeypatch):
    system = _system("tilted")
    ab, kd = centre_band(system)
    old = strip_roots(system, ab, kd, -2.1, 0.1, method="brent")
    real = root_search.newton_brackets

    def every_other_fails(*args):
        r, x, w, ok = real(*args)
        return r, x, w, ok & (np.arange(len(ok)) % 2 == 0)

    monkeypatch.setattr(root_search, "newton_brackets", every_other_fails)
    _assert_same(strip_roots(system, ab, kd, -2.1, 0.1), old)


def test_inertia_counts_the_eigenvalues_below_and_rejects_a_wrong_index():
    system = _system("triangular")
    ab, kd = centre_band(system)
    hp = _HermitianPart(system, ab, kd)
    blocks = root_search._slice_blocks(ab, kd, hp.b)
    assert blocks is not None
    e = np.array([-1.9, -1.3, -0.7, -0.2])
    shift = np.array([0.3, -0.05, 0.0, 0.11])
    got = root_search.count_below(hp, blocks, e, shift)
    want = [np.sum(sla.eigvals_banded(hp.band(x)[0]) < x + d) for x, d in zip(e, shift)]
    assert np.array_equal(got, want)
    pos, _, index = strip_roots(system, ab, kd, -2.1, 0.1)
    assert root_search.index_ok(hp, pos, index).all()
    assert not root_search.index_ok(hp, pos, index + 1).any()
    assert not root_search.index_ok(hp, pos, index - 1).any()


def test_unknown_method_is_an_error():
    system = _system("random")
    with pytest.raises(ValueError, match="unknown root method"):
        strip_roots(system, *centre_band(system), -2.1, 0.1, method="secant")
