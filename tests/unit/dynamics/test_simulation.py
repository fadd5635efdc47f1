"""Simulation: built from plain arguments, handler hooks in order, equal to the task, NaN stop."""

import os

import numpy as np
import pytest

from hpcspin.deck import load_deck
from hpcspin.dynamics.forces import ClassicalForce
from hpcspin.dynamics.output import CheckpointHandler, TrajectoryHandler
from hpcspin.dynamics.simulation import DRIVE, RELAX, Handler, NonFiniteError, Simulation
from hpcspin.hamiltonian.spin import SpinParams
from hpcspin.io.trajectory import read_trajectory
from hpcspin.lattice import make_lattice

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PARAMS = SpinParams(J_H=1.0, K=0.1, easy_axis=(0, 0, 1), B=(0.0, 0.0, 0.01))


def wall(n):
    x = np.arange(n) - (n - 1) / 2
    th = 2 * np.arctan(np.exp(x / 3.0))
    return np.stack([np.sin(th), np.zeros(n), np.cos(th)], axis=1)


def sim_of(n=24, providers=None, dt=0.1):
    lat = make_lattice("chain", n, 1, False)
    return Simulation(lat, providers or [ClassicalForce("chain", PARAMS)], None, dt=dt)


class Recorder(Handler):
    phases = (RELAX, DRIVE)

    def __init__(self, name, log, every=1):
        self.name, self.log, self.every = name, log, every

    def start(self, sim, state, n_steps):
        self.log.append((self.name, "start", state.phase, state.step))

    def step(self, sim, state):
        self.log.append((self.name, "step", state.phase, state.step))

    def end(self, sim, state):
        self.log.append((self.name, "end", state.phase, state.step))


def test_builder_from_plain_arguments():
    sim = sim_of(24)
    assert sim.decomp.owned_shape == (24, 1) and sim.size == 1
    state = sim.state(wall(24), phase=DRIVE)
    sim.drive(state, t_end=1.0, alpha=0.1)
    assert state.step == 10 and state.time == pytest.approx(1.0)
    s = sim.gather(state)
    assert s.shape == (24, 3) and np.allclose(np.linalg.norm(s, axis=1), 1.0)
    assert not np.array_equal(s, wall(24))  # the field moved the spins
    sim.free()


def test_handler_hooks_in_order_and_cadence():
    sim, log = sim_of(16), []
    sim.add_handler(Recorder("a", log, every=2))
    sim.add_handler(Recorder("b", log, every=3))
    state = sim.state(wall(16), phase=RELAX)
    sim.relax(state, alpha=0.5, tol=0.0, max_time=0.4)  # 4 steps, never converges
    sim.drive(state, t_end=0.5, alpha=0.1)  # 5 steps
    relax = [e for e in log if e[2] == RELAX]
    assert relax[0] == ("a", "start", RELAX, 0) and relax[1] == ("b", "start", RELAX, 0)
    assert [e[3] for e in relax if e[1] == "step"] == [2, 3, 4]  # a@2, b@3, a@4
    assert [e[0] for e in relax if e[1] == "step"] == ["a", "b", "a"]
    drive = [e for e in log if e[2] == DRIVE]
    steps = [(e[0], e[3]) for e in drive if e[1] == "step"]
    assert steps == [("a", 2), ("b", 3), ("a", 4), ("a", 5), ("b", 5)]  # last step: both
    assert [e[:2] for e in drive[-2:]] == [("a", "end"), ("b", "end")]
    assert state.relax_time == pytest.approx(0.4)


def test_relax_and_drive_equal_the_dynamics_task(tmp_path):
    from hpcspin.parallel.context import ParallelContext
    from hpcspin.tasks import dynamics as task
    from hpcspin.tasks.common import initial_spins, lattice_from, spin_params_from

    deck = os.path.join(ROOT, "input_decks", "dynamics_chain_classical.toml")
    over = {
        "output.dir": str(tmp_path / "run"),
        "output.plots": False,
        "dynamics.t_end": 4.0,
        "dynamics.relax": True,
        "dynamics.relax_max_time": 2.0,
    }
    cfg = load_deck(deck, over, n_ranks=1)
    ctx = ParallelContext()
    task.run(cfg, ctx)
    traj = read_trajectory(tmp_path / "run" / "trajectory.h5")
    # The same run from plain arguments, no deck and no handlers.
    lat = lattice_from(cfg)
    dyn = cfg.dynamics
    sim = Simulation(
        lat,
        [ClassicalForce(lat.kind, spin_params_from(cfg))],
        None,
        integrator=dyn.integrator,
        dt=dyn.dt,
    )
    state = sim.state(initial_spins(cfg, lat), phase=RELAX)
    sim.set_bias(0.0)
    sim.relax(state, dyn.relax_alpha, dyn.relax_tol, dyn.relax_max_time)
    sim.set_bias(cfg.electrons.bias)
    sim.drive(state, dyn.t_end, dyn.alpha)
    assert np.array_equal(traj["spins"][-1], sim.gather(state))  # bit for bit
    ctx.free()


class NaNAt:
    """A provider that returns a NaN at one site from its n-th evaluation on."""

    halo = (1, 1)
    name = "stub-nan"

    def __init__(self, call, site):
        self.call, self.site, self.n = call, site, 0

    def owned_field(self, grid, decomp, halo_exchanger):
        self.n += 1
        h = np.zeros(decomp.owned_shape + (3,))
        if self.n >= self.call:
            h.reshape(-1, 3)[self.site - decomp.x_range[0], 1] = np.nan
        return h


def test_non_finite_field_stops_the_run_and_keeps_the_last_good_output(tmp_path):
    # rk4: 4 evaluations per step; the 4*7+1-th is the first of step 8.
    sim = sim_of(20, [ClassicalForce("chain", PARAMS), NaNAt(29, 13)])
    traj = sim.add_handler(TrajectoryHandler(str(tmp_path / "t.h5"), every=2))
    ck = sim.add_handler(CheckpointHandler(str(tmp_path / "ck"), every=3, meta={}))
    state = sim.state(wall(20), phase=DRIVE)
    with pytest.raises(NonFiniteError) as err:
        sim.drive(state, t_end=2.0, alpha=0.1)
    msg = str(err.value)
    assert "step 8 of the drive" in msg and "site 13 (x = 13, y = 0)" in msg
    assert "force provider 'stub-nan'" in msg and "checkpoint_0000000006" in msg
    assert err.value.exit_code == 2 and err.value.collective
    assert state.step == 7 and np.isfinite(state.spins).all()  # the last good state
    assert traj.writer is None  # closed
    t = read_trajectory(tmp_path / "t.h5")
    assert list(t["step"]) == [0, 2, 4, 6] and np.isfinite(t["spins"]).all()
    assert sorted(os.listdir(tmp_path / "ck")) == [
        "checkpoint_0000000003.h5",
        "checkpoint_0000000006.h5",
    ]
    assert ck.last_path.endswith("checkpoint_0000000006.h5")


def test_non_finite_field_in_relaxation_names_the_phase():
    sim = sim_of(12, [ClassicalForce("chain", PARAMS), NaNAt(1, 0)])
    with pytest.raises(NonFiniteError, match="step 1 of the relax: .* site 0 "):
        sim.relax(sim.state(wall(12), phase=RELAX), alpha=0.5, tol=1e-9, max_time=1.0)


@pytest.mark.parametrize("bad", [np.nan, 1e308, 0.0])
def test_initial_spins_must_be_finite_unit_vectors(bad):
    s = wall(10)
    s[4] = [bad, 0.0, bad] if bad else [0.0, 0.0, 0.0]
    with pytest.raises(NonFiniteError, match="initial spins: site 4 .* not a finite unit vector"):
        sim_of(10).state(s)
