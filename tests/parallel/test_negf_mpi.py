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
