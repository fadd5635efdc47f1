"""Output handlers of a :class:`~hpcspin.dynamics.simulation.Simulation`.

TrajectoryHandler  frames (spins + observables) of the drive into trajectory.h5.
CheckpointHandler  checkpoints of either loop (and one on a signal).
ProgressHandler    progress lines (rate, ETA, torque or wall position).
"""

from __future__ import annotations

import os

from hpcspin.dynamics.simulation import DRIVE, RELAX, Handler, RunState, Simulation
from hpcspin.faults import fault_point
from hpcspin.io import checkpoint as ckpt
from hpcspin.io.trajectory import TrajectoryWriter
from hpcspin.log import Progress


class TrajectoryHandler(Handler):
    """Writes a frame every ``every`` drive steps (and the first and last).

    The file is opened at the start of the drive: created when the drive starts at
    step 0, else appended to (frames after the resumed step are dropped).

    Args:
        path: trajectory file.
        every: steps between frames.
        deck_text, config_json: provenance stored in the file.
    """

    phases = (DRIVE,)

    def __init__(self, path: str, every: int, deck_text: str = "", config_json: str = ""):
        self.path, self.every = path, int(every)
        self.deck_text, self.config_json = deck_text, config_json
        self.writer: TrajectoryWriter | None = None
        self.last: dict | None = None

    def start(self, sim: Simulation, state: RunState, n_steps: int) -> None:
        """Open the file; write the initial frame of a fresh drive."""
        self.writer = TrajectoryWriter(
            self.path,
            sim.comm,
            sim.decomp,
            sim.lattice.n_sites,
            deck_text=self.deck_text,
            config_json=self.config_json,
            append=state.step > 0,
            restart_step=state.step if state.step > 0 else None,
            lattice=sim.lattice,
        )
        if state.step == 0:
            self.step(sim, state)

    def step(self, sim: Simulation, state: RunState) -> None:
        """Measure the observables and write a frame. Collective."""
        self.last = sim.observables(state)
        fault_point("trajectory_frame")
        self.writer.write_frame(state.step, state.time, state.spins, self.last)

    def stop(self, sim: Simulation, state: RunState) -> None:
        """Close the file."""
        self.end(sim, state)

    def fail(self, sim: Simulation, state: RunState) -> None:
        """Close the file (it holds the frames up to the last good step)."""
        self.end(sim, state)

    def end(self, sim: Simulation, state: RunState) -> None:
        """Close the file. Collective."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class CheckpointHandler(Handler):
    """Checkpoints every ``every`` steps of both loops, at the drive's end and on a signal.

    Files are ordered by a step count that grows through both phases; the newest
    ``keep`` are kept.

    Args:
        directory: checkpoint directory (created on rank 0).
        every: steps between checkpoints.
        meta: stored with every checkpoint: ``deck_text``, ``version`` and
            ``extra`` (merged into the extra dict, e.g. the run identity).
        keep: number of newest checkpoints kept.
    """

    phases = (RELAX, DRIVE)

    def __init__(self, directory: str, every: int, meta: dict, keep: int = 2):
        self.directory, self.every, self.meta, self.keep = directory, int(every), meta, keep
        self.last_path: str | None = None

    def step(self, sim: Simulation, state: RunState) -> None:
        """Write a checkpoint. Collective."""
        self.write(sim, state)

    def stop(self, sim: Simulation, state: RunState) -> str:
        """Write a checkpoint; returns the note naming it. Collective."""
        return f"checkpoint {self.write(sim, state)} written"

    def fail(self, sim: Simulation, state: RunState) -> str:
        """Write nothing; the note names the last good checkpoint of this session."""
        return f"last good checkpoint: {self.last_path or 'none written in this session'}"

    def write(self, sim: Simulation, state: RunState) -> str:
        """Write a checkpoint of ``state``. Collective; returns its path."""
        if sim.rank == 0:
            os.makedirs(self.directory, exist_ok=True)
        if sim.comm is not None:
            sim.comm.Barrier()
        fault_point("checkpoint_write")
        relax_steps = int(round(state.relax_time / sim.dt)) if state.phase == DRIVE else 0
        path = ckpt.checkpoint_path(self.directory, state.step + relax_steps)
        extra = {
            "phase": state.phase,
            "relax_time": state.relax_time,
            "wall_x": state.wall_x,
            "n_ranks": sim.size,
            **self.meta.get("extra", {}),
        }
        info = {k: v for k, v in self.meta.items() if k != "extra"}
        ckpt.write_checkpoint(
            path,
            sim.comm,
            sim.decomp,
            state.spins,
            {"time": state.time, "step": state.step, **info, "extra": extra},
        )
        if sim.rank == 0:
            ckpt.prune_checkpoints(self.directory, keep=self.keep)
        self.last_path = path
        return path


class ProgressHandler(Handler):
    """Progress lines on rank 0: torque while relaxing, time and wall position driving.

    Args:
        every: drive steps between updates (the frame cadence: the wall position is
            measured with the frames).
        interval: minimum seconds between lines.
    """

    phases = (RELAX, DRIVE)

    def __init__(self, every: int, interval: float):
        self.every, self.interval = int(every), float(interval)
        self.progress: Progress | None = None

    def start(self, sim: Simulation, state: RunState, n_steps: int) -> None:
        """Start the rate and ETA clock of this loop."""
        label = "relax steps" if state.phase == RELAX else "steps"
        self.progress = Progress(n_steps, label, sim.rank, self.interval, start=state.step)

    def due(self, state: RunState, last: bool) -> bool:
        """Every relax step; with the frames while driving."""
        return state.phase == RELAX or super().due(state, last)

    def step(self, sim: Simulation, state: RunState) -> None:
        """Record progress (prints at most every ``interval`` seconds)."""
        if state.phase == RELAX:
            extra = f"max|S x H| = {state.torque:.3e}"
        else:
            extra = f"t = {state.time:.4g}  X = {state.wall_x:.4f}"
        self.progress.update(state.step, extra)
