"""``task = "dynamics"``: LLG with classical + ML or NEGF electron forces.

Phases: optional relaxation at V = 0 (damping relax_alpha, until max|S x H| <
relax_tol), then the drive at the deck's bias for t_end. Frames are written every
``output.every`` steps of the drive, checkpoints every ``output.checkpoint_every``
steps of either phase and on SIGTERM/SIGUSR1 (then exit status 75). A restarted run
continues from the newest valid checkpoint and appends to the same trajectory.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
from mpi4py import MPI

from hpcspin import __version__
from hpcspin.dynamics.forces import ClassicalForce, DomainField, MLForce, NEGFForce
from hpcspin.dynamics.integrators import make_integrator
from hpcspin.dynamics.llg import max_torque
from hpcspin.dynamics.observables import wall_centre
from hpcspin.errors import HpcspinError, RunInterrupted
from hpcspin.io import checkpoint as ckpt
from hpcspin.io.trajectory import TrajectoryWriter
from hpcspin.log import Progress, get_logger
from hpcspin.parallel.decomp import Decomposition
from hpcspin.parallel.halo import HaloExchanger
from hpcspin.tasks.common import (
    collective_error,
    file_sha256,
    identity_changes,
    initial_spins,
    lattice_from,
    negf_engine_from,
    prepare_output_dir,
    run_identity,
    spin_params_from,
    write_json,
)
from hpcspin.tasks.signals import SignalFlag

log = get_logger("dynamics")
TRAJECTORY = "trajectory.h5"
CHECKPOINT_DIR = "checkpoints"


class Run:
    """State and objects of one dynamics run on this rank."""

    def __init__(self, cfg, ctx):
        self.cfg, self.ctx, self.comm = cfg, ctx, ctx.comm
        self.lattice = lattice_from(cfg)
        self.out = prepare_output_dir(cfg, ctx)
        self.providers = self._providers()
        # The decomposition's halo covers every provider's reach.
        halo = tuple(max(p.halo[a] for p in self.providers) for a in (0, 1))
        dims = tuple(cfg.parallel.grid) if cfg.parallel.grid else None
        if dims is not None and len(dims) == 1:
            dims = (dims[0], 1)
        hy = 0 if self.lattice.kind == "chain" else max(1, halo[1])
        self.decomp = Decomposition.from_lattice(
            self.lattice, ctx.size, ctx.rank, halo=(max(1, halo[0]), hy), dims=dims
        )
        cart = ctx.cart(self.decomp.dims, (False, self.lattice.periodic))
        self.halo = HaloExchanger(cart, self.decomp, cart)
        self.field = DomainField(self.decomp, self.halo, self.providers)
        self.classical = self.providers[0]
        sha = None
        if cfg.dynamics.forces == "ml":  # the model file was loaded above: it exists
            sha = ctx.comm.bcast(file_sha256(cfg.model.file) if ctx.rank == 0 else None)
        self.identity = run_identity(cfg, sha)

    # -- set-up ------------------------------------------------------------------
    def _providers(self):
        cfg = self.cfg
        providers = [ClassicalForce(self.lattice.kind, spin_params_from(cfg))]
        if cfg.dynamics.forces == "ml":
            from hpcspin.ml import load_model
            from hpcspin.ml.device import pick_device

            device = pick_device(self.ctx.local_rank, cfg.parallel.device)
            try:
                model = load_model(cfg.model.file, lattice=self.lattice).to(device)
            except HpcspinError as exc:
                exc.collective = True  # every rank reads the same file and fails alike
                raise
            log.info(
                "ML model %s (head %s, radius %s) on %s",
                cfg.model.file,
                model.head,
                model.spec.radius,
                device,
            )
            providers.append(
                MLForce(model, {"bias": cfg.electrons.bias, "mu": cfg.electrons.mu}, device)
            )
        elif cfg.dynamics.forces == "negf":
            engine = negf_engine_from(cfg, self.lattice, comm=self.comm)
            providers.append(NEGFForce(engine, self.comm, cfg.electrons.bias))
        return providers

    # -- observables -----------------------------------------------------------
    def observables(self, owned: np.ndarray, prev_x: float) -> dict:
        """Wall centre, magnetisation, classical energy, current. Collective."""
        d, lat = self.decomp, self.lattice
        cols = np.zeros(lat.length)
        (x0, x1), _ = d.x_range, d.y_range
        cols[x0:x1] = owned[..., 2].sum(axis=1)
        cols = self.comm.allreduce(cols, op=MPI.SUM) / lat.width
        grid = self.field.fill(owned)
        loc = np.concatenate(
            [[self.classical.owned_energy(grid, d)], owned.reshape(-1, 3).sum(axis=0)]
        )
        tot = self.comm.allreduce(loc, op=MPI.SUM)
        e, m = float(tot[0]), tot[1:]
        cur = next(
            (p.last_current for p in self.providers if isinstance(p, NEGFForce)), float("nan")
        )
        return {
            "wall_x": wall_centre(cols, prev_x),
            "magnetisation": m / lat.n_sites,
            "energy": e,
            "current": cur,
        }


def run(cfg, ctx, restart: str | None = None) -> None:
    """Run the dynamics task. Collective over ctx.comm."""
    r = Run(cfg, ctx)
    state = _start_state(r, restart)
    with SignalFlag() as flag:
        _loop(r, state, flag)


def _discard_stale_checkpoints(r: Run, ckdir: str) -> None:
    """Remove the checkpoints of an earlier run from the directory of a fresh start.

    A later automatic resume can then never continue from them. Collective.
    """
    if r.ctx.rank == 0 and os.path.isdir(ckdir):
        old = [n for n in os.listdir(ckdir) if n.endswith(".h5") or n.endswith(".h5.tmp")]
        if old:
            log.warning(
                "starting afresh: removing %d checkpoint(s) of an earlier run in %s",
                len(old),
                ckdir,
            )
            for n in old:
                os.remove(os.path.join(ckdir, n))
    r.comm.Barrier()


def _same_run(r: Run, path: str, extra: dict, explicit: bool) -> bool:
    """Whether checkpoint ``path`` belongs to the run the deck describes.

    An explicit --restart may change settings on purpose (e.g. drive a relaxed state
    at another bias): the changes are logged. An automatic resume of a changed deck is
    refused (resume = "auto") or replaced by a fresh start (resume = "matching").
    """
    old = extra.get("identity")
    if old is None:
        log.warning("%s predates run identities: cannot check that it matches the deck", path)
        return True
    changes = identity_changes(old, r.identity)
    if not changes:
        return True
    what = "; ".join(changes)
    if explicit:
        log.info("restarting from %s with changed settings: %s", path, what)
        return True
    if r.cfg.output.resume == "matching":
        log.warning("%s is a run of other settings (%s): starting afresh", r.out, what)
        return False
    raise collective_error(
        f"[output] dir = {r.cfg.output.dir!r} holds a run of other settings ({what}); "
        "use another [output] dir, set [output] resume = 'never' (or 'matching') to "
        "start afresh there, or restore the settings to continue it"
    )


def _start_state(r: Run, restart: str | None) -> dict:
    """Fresh state, or the state of a checkpoint (explicit or newest valid one)."""
    cfg, ctx = r.cfg, r.ctx
    ckdir = os.path.join(r.out, CHECKPOINT_DIR)
    path = restart
    if path is None and cfg.output.resume in ("auto", "matching"):
        path = ckpt.find_latest_checkpoint(ckdir) if ctx.rank == 0 else None
        path = ctx.comm.bcast(path, root=0)
    if path:
        spins, st = ckpt.read_checkpoint(path)
        if spins.shape != (r.lattice.n_sites, 3):
            raise collective_error(
                f"checkpoint {path} holds {spins.shape[0]} sites, the deck {r.lattice.n_sites}"
            )
        extra = st.get("extra", {})
        if not _same_run(r, path, extra, explicit=restart is not None):
            path = None  # resume = "matching": start afresh below
    if path:
        log.info(
            "resuming from %s (phase %s, step %d, t = %.6g)",
            path,
            extra.get("phase"),
            st["step"],
            st["time"],
        )
        return {
            "spins": spins,
            "phase": extra["phase"],
            "step": int(st["step"]),
            "time": float(st["time"]),
            "relax_time": float(extra.get("relax_time", 0.0)),
            "wall_x": float(extra.get("wall_x", np.nan)),
            "resumed": True,
        }
    _discard_stale_checkpoints(r, ckdir)
    phase = "relax" if cfg.dynamics.relax else "drive"
    return {
        "spins": initial_spins(cfg, r.lattice),
        "phase": phase,
        "step": 0,
        "time": 0.0,
        "relax_time": 0.0,
        "wall_x": float("nan"),
        "resumed": False,
    }


class _FirstField:
    """Wraps field_fn and keeps the field of the first call of a step (H at S^n)."""

    def __init__(self, fn):
        self.fn, self.first = fn, None

    def __call__(self, s):
        h = self.fn(s)
        if self.first is None:
            self.first = h
        return h


def _should_stop(r: Run, flag: SignalFlag) -> int:
    """Signal number seen by any rank (0: none). Collective."""
    return flag.agreed(r.comm)


def _checkpoint(r: Run, state: dict, owned: np.ndarray) -> str:
    """Write a checkpoint of the current state. Collective."""
    ckdir = os.path.join(r.out, CHECKPOINT_DIR)
    if r.ctx.rank == 0:
        os.makedirs(ckdir, exist_ok=True)
    r.comm.Barrier()
    # Files are ordered by a step count that grows through both phases.
    seq = state["step"] + (
        int(round(state["relax_time"] / r.cfg.dynamics.dt)) if state["phase"] == "drive" else 0
    )
    path = ckpt.checkpoint_path(ckdir, seq)
    extra = {
        "phase": state["phase"],
        "relax_time": state["relax_time"],
        "wall_x": state["wall_x"],
        "n_ranks": r.ctx.size,
        "identity": r.identity,
    }
    ckpt.write_checkpoint(
        path,
        r.comm,
        r.decomp,
        owned,
        {
            "time": state["time"],
            "step": state["step"],
            "deck_text": r.cfg.deck_text,
            "version": __version__,
            "extra": extra,
        },
    )
    if r.ctx.rank == 0:
        ckpt.prune_checkpoints(ckdir, keep=2)
    return path


def _interrupt(r: Run, state: dict, owned: np.ndarray, signum: int, writer=None):
    path = _checkpoint(r, state, owned)
    if writer is not None:
        writer.close()
    raise RunInterrupted(
        f"signal {signal.Signals(signum).name}: checkpoint {path} written "
        f"(phase {state['phase']}, step {state['step']}); run again to resume"
    )


def _relax(r: Run, state: dict, owned: np.ndarray, flag: SignalFlag) -> np.ndarray:
    dyn = r.cfg.dynamics
    r.field.set_bias(0.0)
    integ = make_integrator(dyn.integrator, dyn.relax_alpha)
    n_max = int(np.ceil(dyn.relax_max_time / dyn.dt))
    prog = Progress(
        n_max, "relax steps", r.ctx.rank, r.cfg.output.progress_interval, start=state["step"]
    )
    torque = float("inf")
    while state["step"] < n_max:
        rec = _FirstField(r.field)
        new = integ.step(owned, state["time"], dyn.dt, rec)
        torque = r.comm.allreduce(max_torque(owned, rec.first), op=MPI.MAX)
        if torque < dyn.relax_tol:
            break
        owned = new
        state["step"] += 1
        state["time"] = state["step"] * dyn.dt
        prog.update(state["step"], f"max|S x H| = {torque:.3e}")
        if state["step"] % r.cfg.output.checkpoint_every == 0:
            _checkpoint(r, state, owned)
        sig = _should_stop(r, flag)
        if sig:
            _interrupt(r, state, owned, sig)
    else:
        log.warning(
            "relaxation stopped at relax_max_time = %g with max|S x H| = %.3e (relax_tol = %g)",
            dyn.relax_max_time,
            torque,
            dyn.relax_tol,
        )
    log.info(
        "relaxed in t = %.6g (%d steps), max|S x H| = %.3e", state["time"], state["step"], torque
    )
    state.update(phase="drive", relax_time=state["time"], step=0, time=0.0)
    return owned


def _noise_for(r: Run):
    dyn = r.cfg.dynamics
    if dyn.temperature <= 0:
        return None
    from hpcspin.dynamics.noise import ThermalNoise

    return ThermalNoise(r.cfg.run.seed, dyn.alpha, dyn.temperature, dyn.dt)


def _drive(r: Run, state: dict, owned: np.ndarray, flag: SignalFlag) -> np.ndarray:
    cfg, dyn = r.cfg, r.cfg.dynamics
    r.field.set_bias(cfg.electrons.bias)
    integ = make_integrator(dyn.integrator, dyn.alpha)
    noise = _noise_for(r)
    n_total = int(round(dyn.t_end / dyn.dt))
    every = cfg.output.every
    writer = TrajectoryWriter(
        os.path.join(r.out, TRAJECTORY),
        r.comm,
        r.decomp,
        r.lattice.n_sites,
        deck_text=cfg.deck_text,
        config_json=cfg.to_json(),
        append=state["step"] > 0,
        restart_step=state["step"] if state["step"] > 0 else None,
    )
    negf = any(isinstance(p, NEGFForce) for p in r.providers)

    def frame():
        if negf:
            r.field(owned)  # the current at exactly this frame's spins
        obs = r.observables(owned, state["wall_x"])
        state["wall_x"] = obs["wall_x"]
        writer.write_frame(state["step"], state["time"], owned, obs)
        return obs

    if state["step"] == 0:
        frame()
    prog = Progress(n_total, "steps", r.ctx.rank, cfg.output.progress_interval, start=state["step"])
    sites = r.decomp.owned_sites.reshape(r.decomp.owned_shape)
    while state["step"] < n_total:
        b = noise.field(sites, state["step"]) if noise is not None else None
        owned = integ.step(owned, state["time"], dyn.dt, r.field, noise=b)
        state["step"] += 1
        state["time"] = state["step"] * dyn.dt
        if state["step"] % every == 0 or state["step"] == n_total:
            obs = frame()
            prog.update(state["step"], f"t = {state['time']:.4g}  X = {obs['wall_x']:.4f}")
        if state["step"] % cfg.output.checkpoint_every == 0 or state["step"] == n_total:
            _checkpoint(r, state, owned)
        sig = _should_stop(r, flag)
        if sig and state["step"] < n_total:
            _interrupt(r, state, owned, sig, writer)
    writer.close()
    return owned


def _loop(r: Run, state: dict, flag: SignalFlag) -> None:
    t0 = time.perf_counter()
    owned = r.decomp.owned_from_global(state["spins"])
    n_total = int(round(r.cfg.dynamics.t_end / r.cfg.dynamics.dt))
    if state["phase"] == "drive" and state["step"] >= n_total:
        log.info("run already complete (step %d of %d); nothing to do", state["step"], n_total)
        return
    if state["phase"] == "relax":
        owned = _relax(r, state, owned, flag)
    start_step = state["step"]
    owned = _drive(r, state, owned, flag)
    wall = time.perf_counter() - t0
    _finish(r, state, wall, state["step"] - start_step)


def _finish(r: Run, state: dict, wall: float, steps_done: int) -> None:
    from hpcspin.dynamics.observables import wall_velocity
    from hpcspin.io.trajectory import read_trajectory

    r.comm.Barrier()
    if r.ctx.rank != 0:
        return
    cfg = r.cfg
    path = os.path.join(r.out, TRAJECTORY)
    traj = read_trajectory(path)
    traj["lattice_shape"] = (r.lattice.length, r.lattice.width)
    t, x = traj["time"], traj["wall_x"]
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
        "relax_time": state["relax_time"],
        "steps": int(state["step"]),
        "wall_seconds_this_segment": wall,
        "steps_this_segment": steps_done,
        "site_steps_per_second": steps_done * r.lattice.n_sites / wall if wall > 0 else None,
        "n_ranks": r.ctx.size,
        "n_sites": r.lattice.n_sites,
        "integrator": cfg.dynamics.integrator,
        "dt": cfg.dynamics.dt,
    }
    write_json(os.path.join(r.out, "summary.json"), summary)
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
            r.out,
            title=f"{cfg.run.name}: V = {cfg.electrons.bias:g}, {cfg.dynamics.forces} forces",
        )
