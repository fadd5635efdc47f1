"""``task = "dynamics"``: LLG with classical + ML or NEGF electron forces.

Phases: optional relaxation at V = 0 (damping relax_alpha, until max|S x H| <
relax_tol), then the drive at the deck's bias for t_end. Frames are written every
``output.every`` steps of the drive, checkpoints every ``output.checkpoint_every``
steps of either phase and on SIGTERM/SIGUSR1 (then exit status 75). A restarted run
continues from the newest valid checkpoint and appends to the same trajectory.

This module only turns the deck into objects: the loops live in
:class:`hpcspin.dynamics.simulation.Simulation`, the output in its handlers.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from hpcspin import __version__
from hpcspin.dynamics.forces import ClassicalForce, MLForce, NEGFForce
from hpcspin.dynamics.output import CheckpointHandler, ProgressHandler, TrajectoryHandler
from hpcspin.dynamics.simulation import DRIVE, RELAX, RunState, Simulation
from hpcspin.errors import HpcspinError
from hpcspin.faults import fault_point
from hpcspin.io import checkpoint as ckpt
from hpcspin.io import keys
from hpcspin.io.outdir import h5_config, h5_kind, removable
from hpcspin.log import get_logger
from hpcspin.tasks.common import (
    agree,
    collective_error,
    decide,
    file_sha256,
    identity_changes,
    initial_spins,
    lattice_from,
    negf_engine_from,
    prepare_output_dir,
    run_identity,
    run_identity_of,
    spin_params_from,
    write_json,
)
from hpcspin.tasks.signals import SignalFlag

if TYPE_CHECKING:
    from hpcspin.deck.schema import RunConfig
    from hpcspin.dynamics.noise import ThermalNoise
    from hpcspin.lattice import Lattice
    from hpcspin.parallel.context import ParallelContext

#: A force provider of a dynamics run.
Provider = ClassicalForce | MLForce | NEGFForce

log = get_logger("dynamics")
TRAJECTORY = keys.TRAJECTORY_FILE
CHECKPOINT_DIR = keys.CHECKPOINT_DIR


def providers_from(cfg: RunConfig, lattice: Lattice, ctx: ParallelContext) -> list[Provider]:
    """Force providers of the deck: classical, plus the ML model or the NEGF engine."""
    providers: list[Provider] = [ClassicalForce(lattice.kind, spin_params_from(cfg))]
    if cfg.dynamics.forces == "ml":
        from hpcspin.ml import load_model
        from hpcspin.ml.device import pick_device

        device = pick_device(ctx.local_rank, cfg.parallel.device)
        model = agree(ctx.comm, load_model, cfg.model.file, lattice=lattice).to(device)
        from hpcspin.ml.domain import check_deck, deck_wall_width  # deck vs training domain

        width = deck_wall_width(cfg)
        agree(ctx.comm, check_deck, model.meta, cfg, cfg.model.file, wall_width=width)
        log.info(
            "ML model %s (head %s, radius %s) on %s",
            cfg.model.file,
            model.head,
            model.spec.radius,
            device,
        )
        globals_ = {"bias": cfg.electrons.bias, "mu": cfg.electrons.mu}
        providers.append(MLForce(model, globals_, device, dtype=cfg.dynamics.ml_dtype))
    elif cfg.dynamics.forces == "negf":
        engine = negf_engine_from(cfg, lattice, comm=ctx.comm)
        providers.append(NEGFForce(engine, ctx.comm, cfg.electrons.bias))
    return providers


def simulation_from(
    cfg: RunConfig, ctx: ParallelContext, lattice: Lattice | None = None
) -> Simulation:
    """The Simulation of the deck (no handlers). Collective over ctx.comm."""
    lattice = lattice or lattice_from(cfg)
    dims = tuple(cfg.parallel.grid) if cfg.parallel.grid else None
    return Simulation(
        lattice,
        providers_from(cfg, lattice, ctx),
        ctx.comm,
        integrator=cfg.dynamics.integrator,
        dt=cfg.dynamics.dt,
        dims=dims,
    )


def noise_from(cfg: RunConfig) -> ThermalNoise | None:
    """Thermal noise of the deck, or None at zero temperature."""
    dyn = cfg.dynamics
    if dyn.temperature <= 0:
        return None
    from hpcspin.dynamics.noise import ThermalNoise

    return ThermalNoise(cfg.run.seed, dyn.alpha, dyn.temperature, dyn.dt)


def add_output(sim: Simulation, cfg: RunConfig, out: str, identity: dict) -> None:
    """Trajectory, progress and checkpoint handlers of the deck (in this order)."""
    o = cfg.output
    sim.add_handler(
        TrajectoryHandler(os.path.join(out, TRAJECTORY), o.every, cfg.deck_text, cfg.to_json())
    )
    sim.add_handler(ProgressHandler(o.every, o.progress_interval))
    meta = {"deck_text": cfg.deck_text, "version": __version__, "extra": {"identity": identity}}
    sim.add_handler(CheckpointHandler(os.path.join(out, CHECKPOINT_DIR), o.checkpoint_every, meta))


def run(cfg: RunConfig, ctx: ParallelContext, restart: str | None = None) -> None:
    """Run the dynamics task. Collective over ctx.comm."""
    lattice = lattice_from(cfg)
    out = prepare_output_dir(cfg, ctx)
    sim = simulation_from(cfg, ctx, lattice)
    sha = None
    if cfg.dynamics.forces == "ml":  # the model file was loaded above: it exists
        sha = ctx.comm.bcast(file_sha256(cfg.model.file) if ctx.rank == 0 else None)
    identity = run_identity(cfg, sha)
    state = _start_state(sim, cfg, ctx, out, identity, restart)
    add_output(sim, cfg, out, identity)
    from hpcspin.tasks.trust import add_trust_observers  # committee, NEGF spot checks

    add_trust_observers(sim, cfg, ctx, lattice, out)
    with SignalFlag() as flag:
        sim.signal_check = flag.local
        _loop(sim, cfg, out, state)
    sim.free()


def _discard_stale_checkpoints(ckdir: str) -> None:
    """Remove the checkpoints of an earlier run from the directory of a fresh start.

    A later automatic resume can then never continue from them. Only hpcspin's own
    checkpoints go (named checkpoint_*.h5 and stamped as checkpoints); other files
    stay. Rank 0 (through :func:`decide`).
    """
    if not os.path.isdir(ckdir):
        return
    names = sorted(n for n in os.listdir(ckdir) if n.startswith("checkpoint_"))
    ours, other = removable(
        [os.path.join(ckdir, n) for n in names if n.endswith(".h5")], "checkpoint"
    )
    if ours:
        log.warning(
            "starting afresh: removing %d checkpoint(s) of an earlier run in %s",
            len(ours),
            ckdir,
        )
        for p in ours:
            os.remove(p)
    if other:
        log.warning("left in %s (not checkpoints hpcspin wrote): %s", ckdir, other[:5])


def _check_fresh_trajectory(cfg: RunConfig, out: str, identity: dict) -> None:
    """Refuse a fresh start that would overwrite a trajectory it must not (rank 0).

    The file must be hpcspin's trajectory. It is replaced with resume = 'never', when
    it belongs to a run of the same settings (killed before its first checkpoint, or
    its checkpoints removed: the run is redone from the start), or with resume =
    'matching'; a trajectory of other settings under resume = 'auto' is refused.
    """
    path = os.path.join(out, TRAJECTORY)
    if not os.path.lexists(path):
        return
    kind = h5_kind(path) if os.path.isfile(path) else None
    if kind != "trajectory":
        raise HpcspinError(
            f"{path} exists and is not a trajectory hpcspin wrote: refusing to overwrite "
            "it (move it away or use another [output] dir)"
        )
    changes = [] if cfg.output.resume == "never" else _trajectory_changes(path, identity)
    if changes and cfg.output.resume == "auto":
        raise HpcspinError(
            f"{path} holds the trajectory of a run of other settings "
            f"({'; '.join(changes)}) and there is no checkpoint to continue from; use "
            "another [output] dir, or set [output] resume = 'never' to overwrite it"
        )
    log.warning("starting afresh: %s will be overwritten (%s)", path, _why(cfg, changes))


def _why(cfg: RunConfig, changes: list[str]) -> str:
    if cfg.output.resume == "never":
        return "resume = 'never'"
    if changes:
        return "resume = 'matching', other settings: " + "; ".join(changes)
    return "same settings, no checkpoint to continue from"


def _trajectory_changes(path: str, identity: dict) -> list[str]:
    """Settings of the deck that differ from those stored in a trajectory file."""
    stored = h5_config(path)  # None: no readable settings
    if stored is None:
        return ["unreadable settings in the file"]
    try:
        old = run_identity_of(stored)
    except (ValueError, KeyError, TypeError):
        return ["unreadable settings in the file"]
    new = dict(identity)
    if "model" in new:  # the file stores no model sha256: compare the rest
        new["model"] = {**new["model"], "file_sha256": None}
    return identity_changes(old, new)


def _same_run(
    cfg: RunConfig, out: str, identity: dict, path: str, extra: dict, explicit: bool
) -> bool:
    """Whether checkpoint ``path`` belongs to the run the deck describes.

    An explicit --restart may change settings on purpose (e.g. drive a relaxed state
    at another bias): the changes are logged. An automatic resume of a changed deck is
    refused (resume = "auto") or replaced by a fresh start (resume = "matching").
    """
    old = extra.get("identity")
    if old is None:
        log.warning("%s predates run identities: cannot check that it matches the deck", path)
        return True
    changes = identity_changes(old, identity)
    if not changes:
        return True
    what = "; ".join(changes)
    if explicit:
        log.info("restarting from %s with changed settings: %s", path, what)
        return True
    if cfg.output.resume == "matching":
        log.warning("%s is a run of other settings (%s): starting afresh", out, what)
        return False
    raise collective_error(
        f"[output] dir = {cfg.output.dir!r} holds a run of other settings ({what}); "
        "use another [output] dir, set [output] resume = 'never' (or 'matching') to "
        "start afresh there, or restore the settings to continue it"
    )


def _start_state(
    sim: Simulation,
    cfg: RunConfig,
    ctx: ParallelContext,
    out: str,
    identity: dict,
    restart: str | None,
) -> RunState:
    """Fresh state, or the state of a checkpoint (explicit or newest valid one)."""
    ckdir = os.path.join(out, CHECKPOINT_DIR)
    path = restart
    if path is None and cfg.output.resume in ("auto", "matching"):
        path = decide(ctx.comm, ckpt.find_latest_checkpoint, ckdir)
    if path:
        spins, st = agree(ctx.comm, ckpt.read_checkpoint, path)
        if spins.shape != (sim.lattice.n_sites, 3):
            raise collective_error(
                f"checkpoint {path} holds {spins.shape[0]} sites, the deck {sim.lattice.n_sites}"
            )
        extra = st.get("extra", {})
        if not _same_run(cfg, out, identity, path, extra, explicit=restart is not None):
            path = None  # resume = "matching": start afresh below
    if path:
        log.info(
            "resuming from %s (phase %s, step %d, t = %.6g)",
            path,
            extra.get("phase"),
            st["step"],
            st["time"],
        )
        return sim.state(
            spins,
            phase=extra["phase"],
            step=int(st["step"]),
            time=float(st["time"]),
            relax_time=float(extra.get("relax_time", 0.0)),
            wall_x=float(extra.get("wall_x", np.nan)),
            resumed=True,
        )
    decide(ctx.comm, _check_fresh_trajectory, cfg, out, identity)
    decide(ctx.comm, _discard_stale_checkpoints, ckdir)
    phase = RELAX if cfg.dynamics.relax else DRIVE
    return sim.state(initial_spins(cfg, sim.lattice, ctx.comm), phase=phase)


def _loop(sim: Simulation, cfg: RunConfig, out: str, state: RunState) -> None:
    t0 = time.perf_counter()
    dyn = cfg.dynamics
    n_total = sim.n_steps(dyn.t_end)
    if state.phase == DRIVE and state.step >= n_total:
        log.info("run already complete (step %d of %d); nothing to do", state.step, n_total)
        return
    if state.phase == RELAX:
        sim.set_bias(0.0)
        sim.relax(state, dyn.relax_alpha, dyn.relax_tol, dyn.relax_max_time)
    start_step = state.step
    sim.set_bias(cfg.electrons.bias)
    sim.drive(state, dyn.t_end, dyn.alpha, noise=noise_from(cfg))
    wall = time.perf_counter() - t0
    _finish(sim, cfg, out, state, wall, state.step - start_step)


def _finish(
    sim: Simulation, cfg: RunConfig, out: str, state: RunState, wall: float, steps_done: int
) -> None:
    from hpcspin.dynamics.observables import wall_report, wall_velocity
    from hpcspin.io.trajectory import read_trajectory

    sim.comm.Barrier()
    fault_point("dynamics_finish")
    if sim.rank != 0:
        return
    lat = sim.lattice
    path = os.path.join(out, TRAJECTORY)
    traj = read_trajectory(path)
    traj["lattice_shape"] = (lat.length, lat.width)
    t, x = traj[keys.TIME], traj[keys.WALL_X]
    t_end = cfg.dynamics.t_end
    try:
        v = wall_velocity(t, x, t_end / 2, t_end)
    except Exception:  # noqa: BLE001  (no wall in the run: no velocity)
        v = float("nan")
    summary = {
        "bias": cfg.electrons.bias,
        "forces": cfg.dynamics.forces,
        "velocity": v,
        "velocity_fit_window": [t_end / 2, t_end],
        "wall_x_start": float(x[0]) if len(x) else None,
        "wall_x_end": float(x[-1]) if len(x) else None,
        "relax_time": state.relax_time,
        "steps": int(state.step),
        "wall_seconds_this_segment": wall,
        "steps_this_segment": steps_done,
        "site_steps_per_second": steps_done * lat.n_sites / wall if wall > 0 else None,
        "n_ranks": sim.size,
        "n_sites": lat.n_sites,
        "integrator": cfg.dynamics.integrator,
        "dt": cfg.dynamics.dt,
    }
    centres = traj.get(keys.WALL_CENTRES, x[:, None])  # older trajectories: wall_x only
    walls = wall_report(t, centres, lat.length, t_end / 2, t_end)
    for line in walls.pop("warnings"):
        log.warning("%s", line)
    summary.update(walls)
    write_json(os.path.join(out, keys.SUMMARY_FILE), summary)
    log.info(
        "done: v = %.6g sites/t over t in [%g, %g]; %d steps in %.1f s",
        v,
        t_end / 2,
        t_end,
        steps_done,
        wall,
    )
    if cfg.output.plots:
        from hpcspin.plots import plot_trajectory

        plot_trajectory(
            traj,
            out,
            title=f"{cfg.run.name}: V = {cfg.electrons.bias:g}, {cfg.dynamics.forces} forces",
        )
