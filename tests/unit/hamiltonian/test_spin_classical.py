"""Classical spin energy and field: closed forms, finite differences, grid == site form."""

import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.spin import (
    SpinParams,
    classical_energy,
    classical_energy_grid,
    classical_field,
    classical_field_grid,
)
from hpcspin.lattice import make_lattice

PARAMS = SpinParams(
    J_H=0.8,
    K=0.3,
    easy_axis=(0.2, 0.1, 1.0),
    K_perp=0.45,
    hard_axis=(1, 0.3, 0),
    B=(0.1, -0.2, 0.3),
)
LATTICES = [
    ("chain", 7, 1, False),
    ("square", 5, 3, False),
    ("square", 4, 3, True),
    ("square", 3, 4, True),
    ("triangular", 4, 3, False),
    ("triangular", 4, 4, True),
    ("triangular", 3, 5, True),
]


def random_spins(rng, n):
    s = rng.normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def to_grid(spins, lat, x0, x1, halo):
    """Grid block of columns [x0, x1) with a filled halo, as a halo exchange would leave it."""
    hx, hy = halo
    w = lat.width
    s = spins.reshape(lat.length, w, 3)
    nx, ny = x1 - x0 + 2 * hx, w + 2 * hy
    grid = np.zeros((nx, ny, 3))
    valid = np.zeros((nx, ny), dtype=bool)
    for gx in range(nx):
        x = x0 - hx + gx
        if not 0 <= x < lat.length:
            continue
        for gy in range(ny):
            y = gy - hy
            if lat.periodic:
                y %= w
            elif not 0 <= y < w:
                continue
            grid[gx, gy] = s[x, y]
            valid[gx, gy] = True
    return grid, valid


def test_ferromagnet_closed_form():
    p = SpinParams(J_H=1.3, K=0.2, K_perp=0.7, B=(0, 0, 0.25))
    for kind, L, W, per in LATTICES:
        lat = make_lattice(kind, L, W, per)
        up = np.tile([0.0, 0.0, 1.0], (lat.n_sites, 1))
        e = classical_energy(up, lat, p)
        assert e == pytest.approx(-1.3 * len(lat.bonds(1)) - (0.2 + 0.25) * lat.n_sites)
        h = classical_field(up, lat, p)
        z = (lat.neighbors(1) >= 0).sum(axis=1)
        np.testing.assert_allclose(h[:, 2], 1.3 * z + 0.4 + 0.25)
        np.testing.assert_allclose(h[:, :2], 0.0)
        # a spin along the hard axis pays K_perp, no easy-axis gain
        x = np.tile([1.0, 0.0, 0.0], (lat.n_sites, 1))
        assert classical_energy(x, lat, p) == pytest.approx(
            -1.3 * len(lat.bonds(1)) + 0.7 * lat.n_sites
        )


@pytest.mark.parametrize("kind,L,W,per", LATTICES)
def test_field_is_minus_gradient(rng, kind, L, W, per):
    lat = make_lattice(kind, L, W, per)
    s = random_spins(rng, lat.n_sites)
    h = classical_field(s, lat, PARAMS)
    eps = 1e-6
    fd = np.zeros_like(s)
    for i in range(lat.n_sites):
        for c in range(3):
            sp, sm = s.copy(), s.copy()
            sp[i, c] += eps
            sm[i, c] -= eps
            fd[i, c] = -(classical_energy(sp, lat, PARAMS) - classical_energy(sm, lat, PARAMS))
    fd /= 2 * eps
    np.testing.assert_allclose(h, fd, atol=1e-8)


@pytest.mark.parametrize("kind,L,W,per", LATTICES)
def test_grid_equals_site_form_one_domain(rng, kind, L, W, per):
    lat = make_lattice(kind, L, W, per)
    s = random_spins(rng, lat.n_sites)
    halo = (1, 0) if kind == "chain" else (1, 1)
    grid, valid = to_grid(s, lat, 0, L, halo)
    hg = classical_field_grid(grid, valid, halo, kind, PARAMS)
    hx, hy = halo
    owned = hg[hx : hg.shape[0] - hx, hy : hg.shape[1] - hy].reshape(-1, 3)
    np.testing.assert_allclose(owned, classical_field(s, lat, PARAMS), rtol=0, atol=1e-13)
    # nothing outside the owned cells
    mask = np.ones(valid.shape, bool)
    mask[hx : valid.shape[0] - hx, hy : valid.shape[1] - hy] = False
    assert np.all(hg[mask] == 0)
    e = classical_energy_grid(grid, valid, halo, kind, PARAMS)
    assert e == pytest.approx(classical_energy(s, lat, PARAMS), abs=1e-12)


@pytest.mark.parametrize("kind,L,W,per", LATTICES)
def test_grid_two_domains_sum_to_whole(rng, kind, L, W, per):
    """Split along x with halo 2: fields match on each block, energies add up."""
    lat = make_lattice(kind, L, W, per)
    s = random_spins(rng, lat.n_sites)
    halo = (2, 0) if kind == "chain" else (2, 2)
    cut = L // 2
    ref = classical_field(s, lat, PARAMS).reshape(L, W, 3)
    etot = 0.0
    for x0, x1 in [(0, cut), (cut, L)]:
        grid, valid = to_grid(s, lat, x0, x1, halo)
        hg = classical_field_grid(grid, valid, halo, kind, PARAMS)
        hx, hy = halo
        np.testing.assert_allclose(
            hg[hx : hg.shape[0] - hx, hy : hg.shape[1] - hy], ref[x0:x1], atol=1e-13
        )
        etot += classical_energy_grid(grid, valid, halo, kind, PARAMS)
    assert etot == pytest.approx(classical_energy(s, lat, PARAMS), abs=1e-12)


def test_invalid_cells_do_not_contribute(rng):
    lat = make_lattice("square", 4, 3, False)
    s = random_spins(rng, lat.n_sites)
    grid, valid = to_grid(s, lat, 0, 4, (1, 1))
    junk = grid.copy()
    junk[~valid] = rng.normal(size=(int((~valid).sum()), 3))
    a = classical_field_grid(grid, valid, (1, 1), "square", PARAMS)
    b = classical_field_grid(junk, valid, (1, 1), "square", PARAMS)
    np.testing.assert_array_equal(a, b)


def test_bad_input():
    lat = make_lattice("chain", 5)
    with pytest.raises(HpcspinError):
        classical_field(np.zeros((4, 3)), lat, PARAMS)
    with pytest.raises(HpcspinError):
        SpinParams(easy_axis=(0, 0, 0))
    with pytest.raises(HpcspinError):
        SpinParams(B=(1, 2))
    with pytest.raises(HpcspinError):  # square needs a halo in y
        classical_field_grid(np.zeros((6, 3, 3)), np.ones((6, 3), bool), (1, 0), "square", PARAMS)
    with pytest.raises(HpcspinError):
        classical_field_grid(np.zeros((6, 1, 3)), np.ones((6, 1), bool), (1, 0), "hex", PARAMS)
