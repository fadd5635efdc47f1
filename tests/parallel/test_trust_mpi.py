"""Committee disagreement and NEGF spot checks at several ranks equal the serial values."""

import numpy as np
import pytest

from hpcspin.dynamics.forces import ClassicalForce, MLForce, NEGFForce
from hpcspin.dynamics.simulation import DRIVE, Simulation
from hpcspin.dynamics.uncertainty import CommitteeObserver, SpotCheckObserver
from hpcspin.hamiltonian.spin import SpinParams
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.committee import Committee
from hpcspin.negf import ElectronParams, NEGFEngine

PARAMS = SpinParams(J_H=1.0, K=0.1, easy_axis=(0, 0, 1))
SPEC = ModelSpec(head="E+vector", kind="chain", radius=2, hidden=(6,), globals=("bias",))
G = {"bias": 0.3}


def model(seed):
    m = build_model(SPEC, seed=seed)
    m.scale_neq.fill_(0.5)
    m.meta = {"spec": SPEC.to_dict(), "lattice": {"kind": "chain"}, "globals": ["bias"]}
    return m


def setup(comm, n):
    lat = make_lattice("chain", n)
    s = domain_wall(lat, (n - 1) / 2, 2.0)
    ml = MLForce(model(1), G)
    sim = Simulation(lat, [ClassicalForce("chain", PARAMS), ml], comm, dt=0.1)
    return lat, s, ml, sim, sim.state(s, phase=DRIVE)


def test_committee_observer_equals_serial(comm):
    n = 6 * comm.size + 2
    lat, s, ml, sim, state = setup(comm, n)
    members = [model(1), model(2), model(3)]
    out = CommitteeObserver([MLForce(m, {}) for m in members], ml)(sim, state)
    _, d = Committee(members).predict(s, lat, G)
    assert out["committee_max"] == pytest.approx(d.max(), rel=1e-10)
    assert out["committee_mean"] == pytest.approx(d.mean(), rel=1e-10)
    assert out["committee_site"] == int(np.argmax(d))


def test_spot_check_equals_serial(comm):
    n = 16
    lat, s, ml, sim, state = setup(comm, n)
    engine = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, temperature=0.1), tol=1e-6, comm=comm)
    out = SpotCheckObserver(NEGFForce(engine, comm, 0.0), ml, every=1)(sim, state)
    serial = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, temperature=0.1), tol=1e-6)
    h_negf = serial.compute(s, bias=0.3).field
    h_ml = model(1).field(s, lat, G)
    t_ml, t_ng = np.cross(s, h_ml).sum(0), np.cross(s, h_negf).sum(0)
    want = np.linalg.norm(t_ml - t_ng) / np.linalg.norm(t_ng)
    assert out["spot_torque_err"] == pytest.approx(want, rel=1e-8)
