"""Committee disagreement and NEGF spot checks during dynamics (observers of Simulation)."""

import numpy as np
import pytest

from hpcspin.dynamics.forces import ClassicalForce, MLForce
from hpcspin.dynamics.simulation import DRIVE, Simulation
from hpcspin.dynamics.uncertainty import (
    CommitteeObserver,
    SpotCheckObserver,
    disagreement,
)
from hpcspin.errors import HpcspinError, ModelMismatchError
from hpcspin.hamiltonian.spin import SpinParams
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.io.spins_file import read_spin_frames
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.committee import Committee

LAT = make_lattice("chain", 20)
PARAMS = SpinParams(J_H=1.0, K=0.1, easy_axis=(0, 0, 1))
SPEC = ModelSpec(head="E+vector", kind="chain", radius=2, hidden=(6,), globals=("bias",))
G = {"bias": 0.3}


def model(seed):
    m = build_model(SPEC, seed=seed)
    m.scale_neq.fill_(0.5)
    m.meta = {"spec": SPEC.to_dict(), "lattice": {"kind": "chain"}, "globals": ["bias"]}
    return m


def spins():
    s = domain_wall(LAT, 9.5, 2.0)
    s[:, 1] += 0.1 * np.sin(np.arange(20))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def sim_with(main):
    ml = MLForce(main, G)
    sim = Simulation(LAT, [ClassicalForce("chain", PARAMS), ml], None, dt=0.1)
    return sim, ml, sim.state(spins(), phase=DRIVE)


def test_disagreement_zero_for_identical_members_positive_otherwise():
    s = spins()
    f = model(1).field(s, LAT, G)
    assert np.array_equal(disagreement(np.stack([f, f, f]), s), np.zeros(20))
    g = model(2).field(s, LAT, G)
    d = disagreement(np.stack([f, g]), s)
    perp = lambda h: h - np.sum(h * s, axis=1, keepdims=True) * s  # noqa: E731
    np.testing.assert_allclose(d, np.linalg.norm(perp(f) - perp(g), axis=1) / 2, rtol=1e-12)
    assert d.min() > 0


def test_committee_observer_matches_the_committee_api():
    sim, ml, state = sim_with(model(1))
    members = [model(1), model(1)]
    obs = CommitteeObserver([MLForce(m, {}) for m in members], ml)
    assert obs(sim, state)["committee_max"] == 0.0
    members = [model(1), model(2), model(3)]
    obs = CommitteeObserver([MLForce(m, {}) for m in members], ml)
    out = obs(sim, state)
    mean, d = Committee(members).predict(spins(), LAT, G)
    assert out["committee_max"] == pytest.approx(d.max(), rel=1e-10)
    assert out["committee_mean"] == pytest.approx(d.mean(), rel=1e-10)
    assert out["committee_site"] == int(np.argmax(d))
    sim.observers.append(obs)
    assert sim.observables(state)["committee_max"] == out["committee_max"]


def test_flag_writes_snapshots_and_stop_raises(tmp_path):
    sim, ml, state = sim_with(model(1))
    members = [MLForce(model(1), {}), MLForce(model(2), {})]
    path = str(tmp_path / "flagged.h5")
    CommitteeObserver(members, ml, 1e-12, "flag", path)(sim, state)
    CommitteeObserver(members, ml, 1e-12, "flag", path)(sim, state)
    frames = read_spin_frames(path, LAT.n_sites)
    assert frames.shape == (2, 20, 3)
    np.testing.assert_allclose(frames[0], spins(), atol=1e-15)
    with pytest.raises(HpcspinError, match="committee disagreement .* above the threshold"):
        CommitteeObserver(members, ml, 1e-12, "stop", path)(sim, state)
    assert CommitteeObserver(members, ml, 1e3, "stop", path)(sim, state)["committee_max"] > 0


def test_committee_members_must_share_spec():
    other = build_model(ModelSpec(head="E+vector", kind="chain", radius=3, hidden=(6,)), seed=1)
    other.meta = {"spec": other.spec.to_dict(), "lattice": {"kind": "chain"}, "globals": []}
    with pytest.raises(ModelMismatchError, match="spec"):
        Committee([model(1), other])


def test_spot_check_equals_a_direct_negf_call():
    from hpcspin.dynamics.forces import NEGFForce
    from hpcspin.negf import ElectronParams, NEGFEngine

    main = model(1)
    sim, ml, state = sim_with(main)
    engine = NEGFEngine(LAT, ElectronParams(J=2.0, mu=-1.0, temperature=0.1), tol=1e-6)
    obs = SpotCheckObserver(NEGFForce(engine, None, 0.0), ml, every=5)
    state.step = 3
    assert np.isnan(obs(sim, state)["spot_rms"])
    state.step = 5
    out = obs(sim, state)
    s = spins()
    h_negf = engine.compute(s, bias=0.3).field
    h_ml = main.field(s, LAT, G)
    err = h_ml - h_negf
    err -= np.sum(err * s, axis=1, keepdims=True) * s
    ref = h_negf - np.sum(h_negf * s, axis=1, keepdims=True) * s
    assert out["spot_rms"] == pytest.approx(np.sqrt(np.mean(np.sum(err**2, axis=1))), rel=1e-9)
    assert out["spot_rel_rms"] == pytest.approx(np.sqrt(np.sum(err**2) / np.sum(ref**2)), rel=1e-9)
    t_ml, t_ng = np.cross(s, h_ml).sum(0), np.cross(s, h_negf).sum(0)
    want = np.linalg.norm(t_ml - t_ng) / np.linalg.norm(t_ng)
    assert out["spot_torque_err"] == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(
    "lines,match",
    [
        (
            "forces = 'negf'\ncommittee = ['a.pt', 'b.pt']",
            r"\[dynamics\] committee = .*forces = 'ml'",
        ),
        ("forces = 'none'\nspot_check_every = 10", r"\[dynamics\] spot_check_every = 10"),
        ("committee_action = 'stop'", r"committee_action = 'stop': needs committee_threshold"),
    ],
)
def test_deck_rules(lines, match):
    from hpcspin.deck import parse_deck
    from hpcspin.errors import DeckError

    text = f"[run]\ntask = 'dynamics'\n[lattice]\nkind = 'chain'\n[dynamics]\n{lines}\n"
    with pytest.raises(DeckError, match=match):
        parse_deck(text, check_files=False)
