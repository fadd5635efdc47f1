"""rgf == petsc == dense on small chains and strips (docs/physics.md, steady-state NEGF)."""

import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine, get_solver
from hpcspin.negf.leads import Leads
from hpcspin.negf.system import OpenSystem

CASES = [
    ("chain", 1, 1, False, "tight-binding"),
    ("chain", 9, 1, False, "tight-binding"),
    ("chain", 6, 1, False, "wide-band"),
    ("square", 5, 3, False, "tight-binding"),
    ("square", 4, 4, True, "tight-binding"),
    ("triangular", 4, 3, False, "tight-binding"),
    ("triangular", 4, 4, True, "tight-binding"),
    ("square", 3, 3, True, "wide-band"),
]


def _petsc_or_skip():
    pytest.importorskip("petsc4py")
    try:
        return get_solver("petsc")
    except HpcspinError as exc:
        pytest.skip(str(exc))


def _system(rng, kind, L, W, per, lead):
    lat = make_lattice(kind, L, W, per)
    s = rng.normal(size=(lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    leads = Leads(lat, lead, t_lead=1.1, t_contact=0.8, gamma=0.7)
    return OpenSystem(lat, s, leads, t=1.0, J=1.5, onsite=0.3 * rng.normal(size=lat.n_sites))


Z = np.array([0.3 + 0.2j, -1.1 + 0.01j, 2.5 + 1.0j, -4.5 + 0.05j])
E = np.array([-2.5, -0.5, 0.05, 1.9])


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_rgf_equals_dense(rng, case):
    sys_ = _system(rng, *case)
    r, d = get_solver("rgf")(sys_), get_solver("dense")(sys_)
    assert np.abs(r.diagonal_blocks(Z) - d.diagonal_blocks(Z)).max() < 1e-10
    assert np.abs(r.first_column(E) - d.first_column(E)).max() < 1e-10


@pytest.mark.petsc
@pytest.mark.parametrize("case", CASES[1:6], ids=lambda c: "-".join(map(str, c)))
def test_petsc_equals_dense(rng, case):
    petsc = _petsc_or_skip()
    sys_ = _system(rng, *case)
    p, d = petsc(sys_, rhs_block=6), get_solver("dense")(sys_)
    assert np.abs(p.diagonal_blocks(Z[:2]) - d.diagonal_blocks(Z[:2])).max() < 1e-10
    assert np.abs(p.first_column(E[:2]) - d.first_column(E[:2])).max() < 1e-10


def _engine_results(solver, lat, params, spins, **kw):
    return NEGFEngine(lat, params, solver=solver, tol=1e-5, **kw).compute(spins)


@pytest.mark.parametrize(
    "kind,L,W,per,lead",
    [
        ("chain", 8, 1, False, "tight-binding"),
        ("triangular", 3, 3, True, "tight-binding"),
        ("square", 3, 2, False, "wide-band"),
    ],
)
def test_engine_rgf_equals_dense(rng, kind, L, W, per, lead):
    lat = make_lattice(kind, L, W, per)
    s = rng.normal(size=(lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    p = ElectronParams(J=1.5, mu=0.3, bias=0.4, temperature=0.1, lead=lead)
    a = _engine_results("rgf", lat, p, s)
    b = _engine_results("dense", lat, p, s)
    assert a.n_energy_points == b.n_energy_points
    for f in ("spin_density", "charge_density"):
        assert np.abs(getattr(a, f) - getattr(b, f)).max() < 1e-10
    assert abs(a.current - b.current) < 1e-10


@pytest.mark.petsc
def test_engine_petsc_equals_rgf(rng):
    _petsc_or_skip()
    lat = make_lattice("square", 3, 2)
    s = rng.normal(size=(lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    p = ElectronParams(J=1.5, mu=0.3, bias=0.4, temperature=0.1)
    a = _engine_results("rgf", lat, p, s)
    b = _engine_results("petsc", lat, p, s)
    assert np.abs(a.spin_density - b.spin_density).max() < 1e-10
    assert abs(a.current - b.current) < 1e-10


def test_unknown_solver():
    with pytest.raises(HpcspinError, match="unknown NEGF solver"):
        get_solver("magic")
