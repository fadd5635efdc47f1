"""Halo exchange at every rank count up to the job size (sub-communicators of the world).

References are built serially on every rank from the lattice geometry alone
(global coordinates, wrap in y), never from the exchanger itself.
"""

import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.parallel.decomp import Decomposition
from hpcspin.parallel.halo import HaloExchanger

pytestmark = pytest.mark.mpi

# (L, W, periodic, halo)
LATTICES = [
    (11, 1, False, (2, 0)),  # chain, uneven blocks
    (7, 1, False, (1, 0)),
    (9, 7, True, (2, 2)),  # periodic strip
    (9, 7, False, (2, 2)),  # open strip
    (8, 6, True, (1, 3)),  # wide halo in y
    (5, 3, True, (1, 4)),  # hy > W: only with one rank along y (local wrap)
]


def grids(n):
    """Every process grid (px, py) of n ranks."""
    return [(px, n // px) for px in range(n, 0, -1) if n % px == 0]


def group(comm, n):
    """Communicator of the first n ranks (None on the others)."""
    sub = comm.Split(0 if comm.rank < n else 1, key=comm.rank)
    if comm.rank >= n:
        sub.Free()
        return None
    return sub


def cases(comm):
    """(sub communicator, decomposition) for every rank count, grid and lattice that fits."""
    for n in range(1, comm.size + 1):
        sub = group(comm, n)
        if sub is None:
            continue
        for dims in grids(n):
            for L, W, per, halo in LATTICES:
                try:
                    d = Decomposition.for_rank(L, W, per, n, sub.rank, halo, dims)
                except HpcspinError:
                    continue
                yield sub, d
        sub.Free()


def expected_forward(d, glob):
    """Extended grid from global (x, y) coordinates alone."""
    L, W = d.length, d.width
    (nx, ny), (hx, hy) = d.shape, d.halo
    g = glob.reshape((L, W) + glob.shape[1:])
    out = np.zeros((nx, ny) + glob.shape[1:])
    for i in range(nx):
        x = d.x_range[0] - hx + i
        for j in range(ny):
            y = d.y_range[0] - hy + j
            if not 0 <= x < L:
                continue
            if d.periodic:
                y %= W
            elif not 0 <= y < W:
                continue
            out[i, j] = g[x, y]
    return out


def contributions(d, rank, trailing, seed):
    """Deterministic per-rank ghost-extended contributions (integers: sums are exact)."""
    rng = np.random.default_rng([seed, rank])
    return rng.integers(-50, 50, size=d.shape + trailing).astype(float)


def serial_reverse_sum(d, size, trailing, seed):
    """Global sums of every rank's contributions, each cell added to its site."""
    total = np.zeros((d.length * d.width,) + trailing)
    for r in range(size):
        dr = Decomposition(d.length, d.width, d.periodic, d.dims, divmod(r, d.dims[1]), d.halo)
        c = contributions(dr, r, trailing, seed)
        (nx, ny), (hx, hy) = dr.shape, dr.halo
        for i in range(nx):
            x = dr.x_range[0] - hx + i
            for j in range(ny):
                y = dr.y_range[0] - hy + j
                if not 0 <= x < d.length or (not d.periodic and not 0 <= y < d.width):
                    continue
                total[x * d.width + y % d.width] += c[i, j]
    return total


@pytest.mark.parametrize("trailing", [(3,), (), (2, 2)])
def test_forward_matches_geometry(comm, trailing):
    n_checked = 0
    for sub, d in cases(comm):
        rng = np.random.default_rng(7)
        glob = rng.standard_normal((d.length * d.width,) + trailing)
        grid = np.full(d.shape + trailing, np.nan)
        grid[d.owned_slice] = d.owned_from_global(glob)
        ex = HaloExchanger(sub, d)
        ex.forward(grid)
        ex.free()
        assert np.array_equal(grid, expected_forward(d, glob)), (d.dims, d)
        assert np.array_equal(grid, d.scatter(glob))
        n_checked += 1
    assert n_checked > 0


@pytest.mark.parametrize("trailing", [(3,), ()])
def test_reverse_equals_serial_sums(comm, trailing):
    for sub, d in cases(comm):
        seed = d.length * 100 + d.width * 10 + d.halo[1]
        grid = contributions(d, sub.rank, trailing, seed)
        HaloExchanger(sub, d).reverse(grid)
        want = serial_reverse_sum(d, sub.size, trailing, seed)
        assert np.array_equal(grid[d.owned_slice], d.owned_from_global(want)), d
        ghosts = np.ones(d.shape, bool)
        ghosts[d.owned_slice] = False
        assert not grid[ghosts].any()


def test_reverse_is_adjoint_of_forward(comm):
    """<F u, v> == <u, F^T v> summed over ranks, with random floats."""
    from mpi4py import MPI

    for sub, d in cases(comm):
        ex = HaloExchanger(sub, d)
        rng = np.random.default_rng([3, sub.rank])
        u = np.zeros(d.shape + (3,))
        u[d.owned_slice] = rng.standard_normal(d.owned_shape + (3,))
        v = rng.standard_normal(d.shape + (3,))
        fu = ex.forward(u.copy())
        ftv = ex.reverse(v.copy())
        lhs = sub.allreduce(float(np.sum(fu * v)), op=MPI.SUM)
        rhs = sub.allreduce(float(np.sum(u * ftv)), op=MPI.SUM)
        assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


def test_reused_exchanger_and_cart_from_caller(comm):
    """Persistent buffers give the same result on repeated calls; a given Cartcomm works."""
    L, W = 10, 5
    n = comm.size
    d = Decomposition.for_rank(L, W, True, n, comm.rank, (1, 1))
    cart = comm.Create_cart(list(d.dims), periods=[False, True], reorder=False)
    ex = HaloExchanger(comm, d, cart=cart)
    for k in range(3):
        glob = np.arange(L * W * 3, dtype=float).reshape(L * W, 3) * (k + 1)
        grid = np.zeros(d.shape + (3,))
        grid[d.owned_slice] = d.owned_from_global(glob)
        ex.forward(grid)
        assert np.array_equal(grid, expected_forward(d, glob))
    cart.Free()


def test_torch_cpu_tensor(comm):
    torch = pytest.importorskip("torch")
    d = Decomposition.for_rank(9, 4, True, comm.size, comm.rank, (1, 1))
    glob = np.random.default_rng(1).standard_normal((36, 3))
    t = torch.zeros(d.shape + (3,), dtype=torch.float64)
    t[d.owned_slice] = torch.from_numpy(d.owned_from_global(glob))
    HaloExchanger(comm, d).forward(t)
    assert np.array_equal(t.numpy(), expected_forward(d, glob))


def test_wrong_grid_shape_rejected(comm):
    d = Decomposition.for_rank(9, 1, False, comm.size, comm.rank, (1, 0))
    with pytest.raises(HpcspinError):
        HaloExchanger(comm, d).forward(np.zeros((d.shape[0] + 1, 1, 3)))


@pytest.mark.parametrize("root", [0, None])
def test_gather_owned_blocks(comm, root):
    for sub, d in cases(comm):
        glob = np.random.default_rng(2).standard_normal((d.length * d.width, 3))
        out = d.gather(sub, d.owned_from_global(glob), root=root)
        if root is None or sub.rank == root:
            assert np.array_equal(out, glob)
        else:
            assert out is None


@pytest.mark.gpu
def test_torch_cuda_tensor_staged_and_reverse(comm):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    d = Decomposition.for_rank(9, 4, True, comm.size, comm.rank, (1, 1))
    glob = np.random.default_rng(1).standard_normal((36, 3))
    t = torch.zeros(d.shape + (3,), dtype=torch.float64, device="cuda")
    t[d.owned_slice] = torch.from_numpy(d.owned_from_global(glob)).cuda()
    ex = HaloExchanger(comm, d)
    ex.forward(t)
    assert np.array_equal(t.cpu().numpy(), expected_forward(d, glob))
    host = contributions(d, comm.rank, (3,), 11)
    dev = torch.from_numpy(host.copy()).cuda()
    ex.reverse(host)
    ex.reverse(dev)
    assert np.array_equal(dev.cpu().numpy(), host)
