"""Lattice geometry: coordination numbers, slices, neighbour shells."""

import numpy as np
import pytest

from hpcspin.lattice import make_lattice


@pytest.mark.parametrize(
    "kind, z, d2", [("chain", 2, 2.0), ("square", 4, np.sqrt(2)), ("triangular", 6, np.sqrt(3))]
)
def test_bulk_coordination_and_shells(kind, z, d2):
    lat = make_lattice(kind, 9, 1 if kind == "chain" else 6, periodic=kind != "chain")
    nb = lat.neighbors(1)
    assert nb.shape[1] == z
    inner = lat.coords[:, 0] == 4
    assert np.all(nb[inner] >= 0)
    assert lat.shell_distance(1) == pytest.approx(1.0)
    assert lat.shell_distance(2) == pytest.approx(d2)
    # Nearest neighbours are at distance 1 (minimum image in y for periodic strips).
    i, j = lat.bonds(1).T
    dr = lat.positions[j] - lat.positions[i]
    if lat.periodic:
        ly = lat.width * (np.sqrt(3) / 2 if kind == "triangular" else 1.0)
        shift = np.round(dr[:, 1] / ly)
        dr[:, 1] -= shift * ly
        dr[:, 0] -= shift * (lat.width * 0.5 if kind == "triangular" else 0.0)
    assert np.allclose(np.linalg.norm(dr, axis=1), 1.0)


def test_open_strip_edges_have_fewer_neighbours():
    lat = make_lattice("square", 5, 4, periodic=False)
    counts = (lat.neighbors(1) >= 0).sum(1).reshape(5, 4)
    assert counts[2, 0] == 3 and counts[2, 1] == 4 and counts[0, 0] == 2


def test_slices_contiguous_and_interslice_bonds():
    lat = make_lattice("triangular", 4, 3)
    assert list(lat.slice_sites(2)) == [6, 7, 8]
    # Every bond joins the same or adjacent slices, as RGF requires.
    i, j = lat.bonds(1).T
    assert set(np.abs(lat.coords[i, 0] - lat.coords[j, 0])) <= {0, 1}
    # Inter-slice bonds from the geometry equal the bonds between slice 0 and 1.
    b = lat.bonds(1)
    sel = (lat.coords[b[:, 0], 0] == 0) & (lat.coords[b[:, 1], 0] == 1)
    pairs = {(int(lat.coords[a, 1]), int(lat.coords[c, 1])) for a, c in b[sel]}
    assert pairs == {tuple(p) for p in lat.interslice_bonds()}


def test_bond_count_chain_and_periodic_square():
    assert len(make_lattice("chain", 10).bonds()) == 9
    lat = make_lattice("square", 5, 4, periodic=True)
    assert len(lat.bonds()) == 4 * 4 + 5 * 4


def test_invalid():
    with pytest.raises(ValueError):
        make_lattice("hex", 4)
    with pytest.raises(ValueError):
        make_lattice("square", 4, 2, periodic=True)
