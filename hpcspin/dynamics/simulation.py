"""A parallel LLG simulation: relax() and drive() loops with pluggable output handlers.

:class:`Simulation` is built from plain arguments (a lattice, force providers, a
communicator, an integrator name, the time step) and assembles the parallel stack
itself: :class:`~hpcspin.parallel.decomp.Decomposition` (its halo covers every
provider's reach) -> Cartesian communicator (owned by the
:class:`~hpcspin.parallel.halo.HaloExchanger`) -> :class:`~hpcspin.dynamics.forces.DomainField`.
The run state is a :class:`RunState`; everything a run writes or reports (frames,
checkpoints, progress lines, diagnostics) is a handler.

Adding a handler (e.g. a diagnostic logged every 50 drive steps)::

    from hpcspin.dynamics.simulation import Handler

    class MyLogger(Handler):
        phases = ("drive",)          # loops that call it: "relax", "drive" or both

        def __init__(self, every):
            self.every = every       # due() default: step % every == 0, or the last step

        def start(self, sim, state, n_steps):   # once at the start of each loop
            ...

        def step(self, sim, state):             # after a step, when due(); collective
            h = sim.field(state.spins)          # field on this rank's owned cells
            ...                                 # sim.comm, sim.decomp, sim.providers

    sim.add_handler(MyLogger(50))

Rules: every rank calls every hook in the same order, so a hook may use
collectives over ``sim.comm``; hooks run in the order the handlers were added
(the dynamics task adds trajectory, progress, checkpoint: the checkpoint then
stores the wall position of the frame just written). A hook must not change
``state.spins`` (that would change the trajectory). ``stop`` runs when the
loop stops on a signal and may return a note for the message (the checkpoint
handler returns which file it wrote); ``fail`` runs when the loop stops on a
non-finite field or spin (nothing of the bad step is written; the handler closes
its files and may return a note); ``end`` runs after a loop completes.

Non-finite numbers: every provider's field and the new spins are checked after
each step on every rank (with the signal check: one reduction per step). The
first non-finite value stops the loop before anything of that step is written,
with :class:`NonFiniteError` naming the step, the site and the provider.
Calling ``sim.field`` evaluates every force provider once more: with NEGF forces
that is expensive, and an ML provider's cost is one extra step's worth / 4 (rk4).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hpcspin.dynamics.forces import DomainField, NEGFForce
from hpcspin.dynamics.integrators import make_integrator
from hpcspin.dynamics.llg import max_torque
from hpcspin.dynamics.observables import wall_centre, wall_centres
from hpcspin.errors import HpcspinError, RunInterrupted
from hpcspin.faults import fault_point
from hpcspin.io import keys  # names of the trajectory datasets (pure data)
from hpcspin.log import get_logger
from hpcspin.parallel.decomp import Decomposition
from hpcspin.parallel.halo import HaloExchanger

log = get_logger("dynamics")

RELAX, DRIVE = "relax", "drive"


@dataclass
class RunState:
    """State of a run on this rank (what a checkpoint stores, plus diagnostics).

    Attributes:
        spins: this rank's owned spins (ox, oy, 3).
        phase: "relax" or "drive".
        step: steps done in the current phase.
        time: simulated time in the current phase (step * dt).
        relax_time: length of the relaxation (set when it ends).
        wall_x: last measured wall centre (tracks the wall between frames).
        resumed: whether the state came from a checkpoint.
        torque: max|S x H| of the last relaxation step (not stored).
    """

    spins: np.ndarray
    phase: str = DRIVE
    step: int = 0
    time: float = 0.0
    relax_time: float = 0.0
    wall_x: float = float("nan")
    resumed: bool = False
    torque: float = float("inf")


class Handler:
    """Output or diagnostic plugged into the loops (see the module docstring).

    Attributes:
        phases: loops that call this handler ("relax", "drive").
        every: default cadence of :meth:`step` in steps.
        at_last: whether :meth:`due` is also true at the drive's last step.
    """

    phases: tuple[str, ...] = (DRIVE,)
    every: int = 1
    at_last: bool = True

    def start(self, sim: Simulation, state: RunState, n_steps: int) -> None:
        """Called once when a loop starts (before its first step)."""

    def due(self, state: RunState, last: bool) -> bool:
        """Whether :meth:`step` runs after the step just done."""
        return state.step % self.every == 0 or (last and self.at_last)

    def step(self, sim: Simulation, state: RunState) -> None:
        """Called after a step when :meth:`due`. Collective."""

    def stop(self, sim: Simulation, state: RunState) -> str | None:
        """Called when the loop stops on a signal; returns a note or None. Collective."""
        return None

    def end(self, sim: Simulation, state: RunState) -> None:
        """Called after the loop completed. Collective."""

    def fail(self, sim: Simulation, state: RunState) -> str | None:
        """Called when the loop stops on a non-finite value; returns a note. Collective."""
        return None


class NonFiniteError(HpcspinError):
    """A force provider returned a non-finite field, or a step non-finite spins.

    Raised on every rank at once (exit status 2: the cause is the input, e.g. a model
    file with NaN weights or spins beyond the float range, see docs/dynamics.md).
    """

    collective = True


class _Watch:
    """Records, on this rank, the first non-finite field of a provider or spin."""

    def __init__(self, decomp):
        self.decomp = decomp
        self.bad: tuple[int, str] | None = None  # (global site, what)

    def check(self, values: np.ndarray, what: str) -> None:
        # One summation per array (a NaN or inf anywhere makes the sum non-finite;
        # so would a sum past 1e308, which no sane field reaches): the site is looked
        # up only after a failure.
        if self.bad is not None or np.isfinite(np.add.reduce(values, axis=None)):
            return
        bad = ~np.isfinite(values).all(axis=-1)
        cell = np.argwhere(bad)[0] if bad.any() else np.zeros(values.ndim - 1, dtype=int)
        site = int(self.decomp.owned_sites.reshape(self.decomp.owned_shape)[tuple(cell)])
        self.bad = (site, what)

    def check_spins(self, spins: np.ndarray) -> None:
        # Finite fields keep |S| = 1 (every integrator renormalises), so a finite check
        # suffices here; a field that was non-finite is caught by its provider's check.
        self.check(spins, "the spins")


class _Watched:
    """A force provider whose fields are checked (everything else passes through)."""

    def __init__(self, provider, watch: _Watch):
        self._p, self._watch = provider, watch
        self._what = f"force provider '{getattr(provider, 'name', type(provider).__name__)}'"

    def owned_field(self, grid, decomp, halo_exchanger) -> np.ndarray:
        h = self._p.owned_field(grid, decomp, halo_exchanger)
        self._watch.check(h, self._what)
        return h

    def __getattr__(self, name):
        return getattr(self._p, name)


class _FirstField:
    """Wraps field_fn and keeps the field of the first call of a step (H at S^n)."""

    def __init__(self, fn):
        self.fn, self.first = fn, None

    def __call__(self, s):
        h = self.fn(s)
        if self.first is None:
            self.first = h
        return h


class Simulation:
    """LLG dynamics of a decomposed lattice. Collective over ``comm``.

    Args:
        lattice: the central region (:class:`~hpcspin.lattice.Lattice`).
        providers: force providers; the first one with ``owned_energy`` gives the
            energy observable (the classical force).
        comm: communicator of the process grid (None: serial).
        integrator: integrator name (:func:`~hpcspin.dynamics.integrators.make_integrator`).
        dt: time step.
        dims: process grid (px,) or (px, py), None: chosen from the lattice.
        signal_check: callable returning the signal this rank has seen (0: none),
            asked after every step (the ranks agree on it in the step's reduction).
    """

    def __init__(
        self,
        lattice,
        providers,
        comm=None,
        *,
        integrator: str = "rk4",
        dt: float,
        dims: tuple[int, ...] | None = None,
        signal_check: Callable[[], int] | None = None,
    ):
        self.lattice, self.comm = lattice, comm
        self.providers = list(providers)
        self.integrator, self.dt = integrator, float(dt)
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.decomp = self._decomposition(dims)
        self.halo = HaloExchanger(comm, self.decomp)
        self.watch = _Watch(self.decomp)
        watched = [_Watched(p, self.watch) for p in self.providers]
        self.field = DomainField(self.decomp, self.halo, watched)
        self.handlers: list[Handler] = []
        #: Callables (sim, state) -> dict of extra per-frame observables (committee
        #: disagreement, NEGF spot checks), merged into :meth:`observables`. Collective.
        self.observers: list[Callable] = []
        self.signal_check = signal_check or (lambda: 0)

    def _decomposition(self, dims) -> Decomposition:
        # The decomposition's halo covers every provider's reach.
        halo = tuple(max(p.halo[a] for p in self.providers) for a in (0, 1))
        if dims is not None and len(dims) == 1:
            dims = (dims[0], 1)
        hy = 0 if self.lattice.kind == "chain" else max(1, halo[1])
        return Decomposition.from_lattice(
            self.lattice, self.size, self.rank, halo=(max(1, halo[0]), hy), dims=dims
        )

    def add_handler(self, handler: Handler) -> Handler:
        """Append a handler (called after those added before). Returns it."""
        self.handlers.append(handler)
        return handler

    def state(self, global_spins: np.ndarray, **fields) -> RunState:
        """A RunState holding this rank's block of ``global_spins`` (N, 3).

        Raises:
            NonFiniteError: a spin is not a finite unit vector (same on every rank:
                every rank holds the same ``global_spins``).
        """
        g = np.asarray(global_spins, dtype=float)
        norm = np.sqrt(np.einsum("ij,ij->i", g, g))
        bad = np.nonzero(~(np.abs(norm - 1.0) < 1e-6))[0]
        if bad.size:
            raise NonFiniteError(
                f"initial spins: site {int(bad[0])} {self._where(int(bad[0]))} is "
                f"{g[bad[0]].tolist()}, not a finite unit vector ({bad.size} such site(s))"
            )
        return RunState(spins=self.decomp.owned_from_global(g), **fields)

    def _where(self, site: int) -> str:
        x, y = (int(c) for c in self.lattice.coords[site][:2])
        return f"(x = {x}, y = {y})"

    # -- reductions ------------------------------------------------------------------
    def _allreduce(self, value, op: str):
        if self.comm is None:
            return value
        from mpi4py import MPI  # noqa: PLC0415  (serial use needs no MPI)

        return self.comm.allreduce(value, op={"max": MPI.MAX, "sum": MPI.SUM}[op])

    def observables(self, state: RunState) -> dict:
        """Wall centre(s), magnetisation, classical energy, current; updates state.wall_x.

        With NEGF forces the field is evaluated first, so that the current belongs to
        exactly these spins. Collective.
        """
        negf = next((p for p in self.providers if isinstance(p, NEGFForce)), None)
        if negf is not None:
            self.field(state.spins)
        d, lat, owned = self.decomp, self.lattice, state.spins
        cols = np.zeros(lat.length)
        (x0, x1), _ = d.x_range, d.y_range
        cols[x0:x1] = owned[..., 2].sum(axis=1)
        cols = self._allreduce(cols, "sum") / lat.width
        grid = self.field.fill(owned)
        energy = next(p for p in self.providers if hasattr(p, "owned_energy"))
        loc = np.concatenate([[energy.owned_energy(grid, d)], owned.reshape(-1, 3).sum(axis=0)])
        tot = self._allreduce(loc, "sum")
        state.wall_x = wall_centre(cols, state.wall_x)
        out = {
            keys.WALL_X: state.wall_x,
            keys.WALL_CENTRES: wall_centres(cols),
            keys.MAGNETISATION: tot[1:] / lat.n_sites,
            keys.ENERGY: float(tot[0]),
            keys.CURRENT: negf.last_current if negf is not None else float("nan"),
        }
        for observe in self.observers:
            out.update(observe(self, state))
        return out

    # -- loops -------------------------------------------------------------------------
    def _call(self, hook: str, state: RunState, *args, last: bool = False) -> list:
        out = []
        for h in self.handlers:
            if state.phase not in h.phases:
                continue
            if hook == "step" and not h.due(state, last):
                continue
            out.append(getattr(h, hook)(self, state, *args))
        return out

    def _after_step(self, state: RunState, new: np.ndarray | None) -> int:
        """Agree on signals and non-finite values after a step; returns the signal.

        ``new``: the spins the step produced (None: only the fields are checked).
        Collective (one reduction); raises NonFiniteError on every rank at once.
        """
        fault_point("dynamics_step")
        if new is not None:
            self.watch.check_spins(new)
        sig, bad = self.signal_check(), self.watch.bad is not None
        if self.comm is not None:
            from mpi4py import MPI  # noqa: PLC0415  (serial use needs no MPI)

            buf = np.array([sig, int(bad)], dtype=np.int64)
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
            sig, bad = int(buf[0]), bool(buf[1])
        if bad:
            self._non_finite(state)
        return int(sig)

    def _non_finite(self, state: RunState) -> None:
        mine = self.watch.bad or (self.lattice.n_sites, "")
        every = [mine] if self.comm is None else self.comm.allgather(mine)
        site, what = min(every)
        notes = [n for n in self._call("fail", state) if n]
        raise NonFiniteError(
            f"step {state.step + 1} of the {state.phase}: non-finite value at site {site} "
            f"{self._where(site)} from {what}; stopped before writing that step "
            f"(frames and checkpoints up to step {state.step} are kept"
            f"{'; ' + '; '.join(notes) if notes else ''}). From finite spins this means "
            "bad input: check the model file's weights and the deck's parameters"
        )

    def _stop(self, state: RunState, signum: int) -> None:
        notes = [n for n in self._call("stop", state) if n]
        raise RunInterrupted(
            f"signal {signal.Signals(signum).name}: {'; '.join(notes) or 'stopped'} "
            f"(phase {state.phase}, step {state.step}); run again to resume"
        )

    def relax(self, state: RunState, alpha: float, tol: float, max_time: float) -> RunState:
        """Damped dynamics at the current bias until max|S x H| < tol (or max_time).

        Continues ``state`` (phase "relax"); returns it in phase "drive" at step 0,
        with ``relax_time`` set.
        """
        integ = make_integrator(self.integrator, alpha)
        n_max = int(np.ceil(max_time / self.dt))
        self._call("start", state, n_max)
        while state.step < n_max:
            rec = _FirstField(self.field)
            new = integ.step(state.spins, state.time, self.dt, rec)
            sig = self._after_step(state, new)
            state.torque = self._allreduce(max_torque(state.spins, rec.first), "max")
            if state.torque < tol:
                break
            state.spins = new
            state.step += 1
            state.time = state.step * self.dt
            self._call("step", state)
            if sig:
                self._stop(state, sig)
        else:
            log.warning(
                "relaxation stopped at relax_max_time = %g with max|S x H| = %.3e (relax_tol = %g)",
                max_time,
                state.torque,
                tol,
            )
        log.info(
            "relaxed in t = %.6g (%d steps), max|S x H| = %.3e",
            state.time,
            state.step,
            state.torque,
        )
        self._call("end", state)
        state.phase, state.relax_time, state.step, state.time = DRIVE, state.time, 0, 0.0
        return state

    def drive(self, state: RunState, t_end: float, alpha: float, noise=None) -> RunState:
        """LLG at the providers' current bias from ``state`` (phase "drive") to t_end.

        Args:
            state: phase "drive"; continued from ``state.step``.
            t_end: simulated time of the end (steps: round(t_end / dt)).
            alpha: Gilbert damping.
            noise: optional thermal noise (``field(sites, step)``).
        """
        integ = make_integrator(self.integrator, alpha)
        n_total = self.n_steps(t_end)
        self._call("start", state, n_total)
        sites = self.decomp.owned_sites.reshape(self.decomp.owned_shape)
        while state.step < n_total:
            b = noise.field(sites, state.step) if noise is not None else None
            new = integ.step(state.spins, state.time, self.dt, self.field, noise=b)
            sig = self._after_step(state, new)
            state.spins = new
            state.step += 1
            state.time = state.step * self.dt
            self._call("step", state, last=state.step == n_total)
            if sig and state.step < n_total:
                self._stop(state, sig)
        self._call("end", state)
        return state

    def n_steps(self, t_end: float) -> int:
        """Number of drive steps to reach t_end."""
        return int(round(t_end / self.dt))

    def set_bias(self, bias: float) -> None:
        """Set the bias of every provider that has one."""
        self.field.set_bias(bias)

    def gather(self, state: RunState) -> np.ndarray:
        """All spins (N, 3) on every rank. Collective."""
        return self.decomp.gather(self.comm, state.spins, root=None)

    def free(self) -> None:
        """Release the Cartesian communicator. Collective."""
        self.halo.free()
