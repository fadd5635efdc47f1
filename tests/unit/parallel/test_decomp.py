import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice
from hpcspin.parallel.decomp import Decomposition, block_range, choose_grid
from hpcspin.parallel.halo import HaloExchanger


@pytest.mark.parametrize("n", [0, 1, 5, 7, 16, 101])
@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7])
def test_block_range_tiles_once(n, parts):
    covered = np.zeros(n, int)
    sizes = []
    prev_stop = 0
    for k in range(parts):
        a, b = block_range(n, parts, k)
        assert a == prev_stop
        prev_stop = b
        covered[a:b] += 1
        sizes.append(b - a)
    assert prev_stop == n
    assert np.all(covered == 1)
    assert max(sizes) - min(sizes) <= 1
    # the first n % parts blocks are the larger ones
    assert sizes == sorted(sizes, reverse=True)
    assert sum(s == n // parts + 1 for s in sizes) == (n % parts if n % parts else 0)


def test_block_range_examples():
    assert [block_range(10, 3, k) for k in range(3)] == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ValueError):
        block_range(10, 3, 3)


def test_choose_grid():
    assert choose_grid(4, 100, 1) == (4, 1)
    assert choose_grid(4, 100, 8) == (4, 1)
    assert choose_grid(4, 3, 8) == (2, 2)  # 3 columns cannot take 4 ranks
    assert choose_grid(4, 1, 8) == (1, 4)
    assert choose_grid(4, 7, 8, halo=(2, 1)) == (2, 2)  # 7 // 4 < 2
    assert choose_grid(6, 4, 8, halo=(2, 2)) == (2, 3)
    with pytest.raises(HpcspinError):
        choose_grid(5, 3, 3)


def test_layout_of_one_block():
    d = Decomposition.for_rank(10, 6, False, 4, 3, halo=(2, 1), dims=(2, 2))
    assert d.coords == (1, 1)
    assert d.x_range == (5, 10) and d.y_range == (3, 6)
    assert d.shape == (9, 5)
    assert d.owned_slice == (slice(2, 7), slice(1, 4))
    # beyond the x end (last two columns) and the open top edge are invalid
    assert not d.valid[7:].any() and not d.valid[:, 4].any()
    assert d.valid[:7, :4].all()
    assert d.extended_sites[2, 1] == 5 * 6 + 3
    assert d.extended_sites[0, 0] == 3 * 6 + 2
    assert (d.extended_sites[~d.valid] == -1).all()
    assert list(d.owned_sites[:3]) == [33, 34, 35]


def test_periodic_ghost_rows_valid_and_wrapped():
    d = Decomposition.for_rank(4, 5, True, 2, 0, halo=(1, 2), dims=(1, 2))
    assert d.y_range == (0, 3)
    assert d.valid[1:-1].all()  # every row valid, x ghosts beyond the ends not
    assert not d.valid[0].any() and not d.valid[-1].any()
    assert list(d.extended_sites[1, :]) == [3, 4, 0, 1, 2, 3, 4]


def test_chain_owned_sites_contiguous():
    lat = make_lattice("chain", 103)
    for r in range(4):
        d = Decomposition.from_lattice(lat, 4, r, halo=(3, 0))
        a, b = d.x_range
        assert np.array_equal(d.owned_sites, np.arange(a, b))
        assert d.shape == (b - a + 6, 1)


@pytest.mark.parametrize(
    "args, match",
    [
        ((5, 1, False, 6, 0, (0, 0), (6, 1)), "only 5 columns"),
        ((10, 1, False, 4, 0, (3, 0), (4, 1)), "narrower than the halo"),
        ((10, 4, False, 4, 0, (1, 3), (2, 2)), "narrower than the halo"),
        ((10, 4, False, 4, 0, (1, 1), (3, 1)), "has 3 ranks, job has 4"),
        ((10, 4, False, 4, 7, (1, 1), (2, 2)), "rank 7"),
    ],
)
def test_validation_errors(args, match):
    with pytest.raises(HpcspinError, match=match):
        Decomposition.for_rank(*args)


def test_halo_wider_than_lattice_with_local_wrap_allowed():
    d = Decomposition.for_rank(3, 3, True, 1, 0, halo=(5, 4))
    assert d.shape == (13, 11)


@pytest.mark.parametrize("dims", [(1, 1), (3, 1), (2, 2), (1, 3)])
def test_scatter_gather_round_trip(dims):
    L, W = 7, 5
    glob = np.random.default_rng(0).standard_normal((L * W, 3))
    size = dims[0] * dims[1]
    out = np.zeros_like(glob)
    for r in range(size):
        d = Decomposition.for_rank(L, W, True, size, r, (1, 1), dims)
        ext = d.scatter(glob)
        assert ext.shape == d.shape + (3,)
        d.place_owned(out, d.owned(ext))
        assert np.array_equal(d.owned(ext), d.owned_from_global(glob))
    assert np.array_equal(out, glob)


def test_gather_serial():
    d = Decomposition.for_rank(6, 2, False, 1, 0)
    glob = np.arange(36.0).reshape(12, 3)
    assert np.array_equal(d.gather(None, glob), glob)  # flat (n_owned, 3) accepted
    assert np.array_equal(d.gather(None, d.owned_from_global(glob)), glob)


def test_serial_halo_periodic_wrap_and_reverse():
    d = Decomposition.for_rank(4, 3, True, 1, 0, halo=(1, 4))
    ex = HaloExchanger(None, d)
    glob = np.arange(12.0)
    grid = np.zeros(d.shape)
    grid[d.owned_slice] = d.owned_from_global(glob)
    ex.forward(grid)
    assert np.array_equal(grid, d.scatter(glob))
    # reverse of all ones counts how many cells hold each site: ghost rows 4+4 over W=3
    ones = d.valid.astype(float)
    ex.reverse(ones)
    want = np.zeros(12)
    np.add.at(want, d.extended_sites[d.valid], 1.0)
    assert np.array_equal(d.owned(ones).ravel(), want)
    assert want.sum() == d.valid.sum() and set(want) == {3.0, 4.0}


def test_serial_halo_rejects_mismatched_grid():
    d = Decomposition.for_rank(4, 1, False, 2, 0, halo=(1, 0))
    with pytest.raises(HpcspinError, match="2 ranks"):
        HaloExchanger(None, d)
