"""NEGF energy points over ranks: bit-identical to serial; PETSc on the communicator."""

import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine, get_solver
from hpcspin.negf.leads import Leads
from hpcspin.negf.system import OpenSystem

pytestmark = pytest.mark.mpi


def _random(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


@pytest.mark.parametrize(
    "kind,L,W,lead", [("chain", 30, 1, "tight-binding"), ("square", 4, 3, "wide-band")]
)
def test_bit_identical_to_serial(comm, kind, L, W, lead):
    lat = make_lattice(kind, L, W)
    s = _random(lat.n_sites, 5)
    p = ElectronParams(bias=0.5, lead=lead)
    e = np.linspace(-1.5, 1.5, 37)
    serial = NEGFEngine(lat, p, block_intervals=2).compute(s, transmission_energies=e)
    par = NEGFEngine(lat, p, comm=comm, block_intervals=2).compute(s, transmission_energies=e)
    assert np.array_equal(serial.spin_density, par.spin_density)
    assert np.array_equal(serial.charge_density, par.charge_density)
    assert serial.current == par.current
    assert np.array_equal(serial.transmission, par.transmission)
    assert serial.n_energy_points == par.n_energy_points
    # every rank holds the same answer
    assert comm.allreduce(par.current, op=_max()) == comm.allreduce(par.current, op=_min())


@pytest.mark.parametrize("min_block", [1, 8])
def test_energy_points_balanced_over_ranks(comm, min_block):
    """Each adaptive round gives every rank the same work to one interval (2, 4 ranks).

    Rounds too small to split into 4 blocks of ``min_block`` intervals may be off by
    more; with min_block = 1 that is only rounds of fewer than 4 intervals.
    """
    from hpcspin.negf.quadrature import Partition, adaptive_integrate

    def f(seg, u):
        return np.stack([np.cos(40 * u) ** 2, 1.0 / (1e-3 + u**2), np.exp(u)], axis=1)

    bp = [np.linspace(-1.0, 1.0, 9), np.linspace(1.0, 2.0, 4)]
    kw = dict(block_intervals=16, min_block=min_block)
    q = adaptive_integrate(f, bp, 1e-11, part=Partition.of(comm), **kw)
    rows = np.array(comm.allgather(q.round_points))  # (ranks, rounds)
    assert rows.sum() == q.n_points
    checked = 0
    for r in range(q.rounds):
        pending = rows[:, r].sum() // 15
        if pending >= 4 * min_block:
            assert rows[:, r].max() - rows[:, r].min() <= 15, (r, rows[:, r])
            checked += 1
    assert checked >= 2
    serial = adaptive_integrate(f, bp, 1e-11, **kw)
    assert np.array_equal(serial.value, q.value)
    assert serial.n_points == q.n_points


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _min():
    from mpi4py import MPI

    return MPI.MIN


@pytest.mark.petsc
def test_petsc_solve_on_communicator(comm):
    pytest.importorskip("petsc4py")
    try:
        petsc = get_solver("petsc")
    except HpcspinError as exc:
        pytest.skip(str(exc))
    lat = make_lattice("square", 6, 3)
    sys_ = OpenSystem(lat, _random(lat.n_sites, 2), Leads(lat))
    dist = petsc(sys_, comm=comm, rhs_block=8)
    ref = get_solver("rgf")(sys_)
    z = np.array([0.2 + 0.3j, -1.0 + 0.05j])
    e = np.array([-0.7, 0.4])
    assert np.abs(dist.diagonal_blocks(z) - ref.diagonal_blocks(z)).max() < 1e-10
    assert np.abs(dist.first_column(e) - ref.first_column(e)).max() < 1e-10


@pytest.mark.petsc
def test_engine_petsc_groups(comm):
    pytest.importorskip("petsc4py")
    try:
        get_solver("petsc")
    except HpcspinError as exc:
        pytest.skip(str(exc))
    lat = make_lattice("chain", 8)
    s = _random(8, 4)
    p = ElectronParams(bias=0.3, mu=0.2)
    ref = NEGFEngine(lat, p).compute(s)
    res = NEGFEngine(lat, p, solver="petsc", comm=comm, groups=1).compute(s)
    assert np.abs(res.spin_density - ref.spin_density).max() < 1e-10
