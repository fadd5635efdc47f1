"""NEGFEngine: spins -> electron spin density, field J s_i, charge, current (docs/physics.md).

    rho = rho_eq(mu_R) + int dE/2pi G^r Gamma_L G^a (f_L - f_R),  mu_{L,R} = mu +- V/2

One accuracy knob, ``tol``: the target of the summed error estimates of every
integral (equilibrium contour and bias window, all sites and spin components, and the
spin/particle currents), in units of the spin density. See docs/negf.md for measured
errors against converged references.

Energy points are split over ``comm`` in fixed blocks (see :mod:`.quadrature`), so the
result is bit-identical at any rank count for the RGF and dense solvers.
"""

from __future__ import annotations

import time

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.sd import pauli_components
from hpcspin.log import get_logger
from hpcspin.negf import kernels
from hpcspin.negf.bound_states import bound_state_density
from hpcspin.negf.contour import fermi, plan_equilibrium, plan_window
from hpcspin.negf.leads import Leads
from hpcspin.negf.observables import transmission
from hpcspin.negf.params import ElectronParams, NEGFResult
from hpcspin.negf.pole_tracking import follow_grid, map_cold, map_warm
from hpcspin.negf.quadrature import Partition, adaptive_integrate, map_blocks, plan_blocks
from hpcspin.negf.resonances import (
    STRIP_NARROW,
    centre_band,
    resonance_breakpoints,
    strip_roots,
)
from hpcspin.negf.solvers import get_solver
from hpcspin.negf.system import OpenSystem, SliceTemplate
from hpcspin.negf.warm import BoundedCache, CachedLeads, WarmStart
from hpcspin.parallel.groups import group_comm

log = get_logger("negf")

#: Default accuracy knob; measured errors in docs/negf.md (max |delta s_i| << 1e-6).
DEFAULT_TOL = 1e-6
_N_EXTRA = 8  # j^L_a (4), j^R_a (4)
#: Integration schemes (see NEGFEngine).
SCHEMES = ("reference", "fast")
#: Window error estimates (see :mod:`.quadrature`), and the first-grid spacing (in
#: temperatures) that goes with "calibrated".
ESTIMATES = ("strict", "calibrated")
CALIBRATED_SPACING = 4.0
#: Scheme fast, strips, with ``map_poles`` off: grading ratio of the ladders around
#: narrow resonances (the reference scheme keeps 4): on the tilted 20 x 4 wall at V = 0.5
#: the same errors with 40 % fewer points (docs/negf.md, tracking in warm starts). With
#: ``map_poles`` (the default of scheme fast) the resonances are in the window variable.
FAST_LADDER = 16.0


#: A field evaluation running longer than this reports its adaptive rounds (seconds) ...
PROGRESS_AFTER_S = 20.0
#: ... at most this often.
PROGRESS_EVERY_S = 20.0


class _RoundReport:
    """Progress lines of one long field evaluation.

    A line per adaptive round once the evaluation has run for PROGRESS_AFTER_S seconds,
    at most every PROGRESS_EVERY_S seconds: the point count of a long coherent chain at V != 0 grows
    ~N and its cost ~N^2, minutes at N ~ 1e4.
    """

    def __init__(self, n_sites: int, n_poles: int):
        self.n_sites, self.n_poles = n_sites, n_poles
        self.after, self.every = PROGRESS_AFTER_S, PROGRESS_EVERY_S
        self.t0 = time.perf_counter()
        self.last = -float("inf")

    def __call__(self, rounds: int, points: int, err: float, budget: float) -> None:
        now = time.perf_counter()
        if now - self.t0 < self.after or now - self.last < self.every:
            return
        self.last = now
        log.info(
            "NEGF field, N = %d: round %d, %d energy points, error estimate %.2e "
            "(target %.2e), %.0f s",
            self.n_sites,
            rounds,
            points + self.n_poles,
            err,
            budget,
            now - self.t0,
        )


def default_block_intervals(n_slices: int, slice_sites: int = 1) -> int:
    """Most GK15 intervals per work block (one integrand call).

    Args:
        n_slices: RGF slices (the lattice length).
        slice_sites: sites per slice (the strip width; 1 for a chain).

    A call's cost and memory per energy scale with L b^2 (b = 2W orbitals per slice);
    in units of a chain site that is ``n_slices * slice_sites**2``. Measured on the
    chain kernel: a call costs about as much as 120 extra energies in per-slice Python
    overhead, so blocks of 8-32 intervals (120-480 energies); within that range the
    batch is kept near 2e5 units (arrays of a few MB stay in cache), and never above
    2e6 units (memory).
    """
    per = 15 * max(1, int(n_slices) * int(slice_sites) ** 2)
    return int(max(1, min(max(8, min(32, 200_000 // per)), 2_000_000 // per)))


class NEGFEngine:
    """Steady-state NEGF of the s-d model on a lattice between two leads.

    Args:
        lattice: the central region.
        electrons: :class:`ElectronParams`.
        solver: "rgf" (default), "petsc" or "dense".
        tol: the accuracy knob (see module docstring).
        comm: mpi4py communicator for the energy points, or None (serial).
        groups: rank groups; each group computes whole blocks together (PETSc solves
            on the group communicator). Default: every rank alone.
        eq_method: "auto", "ozaki" or "contour" (see :mod:`.contour`).
        lead_method: strip lead surface GF: "auto", "modes" or "sancho-rubio".
        resonances: seed narrow resonances of the window from the eigenstates of the
            isolated centre ("auto": when 2N <= 2000).
        resonance_width: seed the resonances narrower than this (t) with graded
            breakpoints; None: 3e-4 on chains (first-order widths; wider ones up to
            1e-2 get a centre breakpoint), 1e-2 on strips (docs/negf.md).
        block_intervals: quadrature intervals per work block (default from N).
        solver_options: extra keyword arguments of the solver (e.g. PETSc options).
        scheme: "reference" (the numpy kernels: results bit-identical to earlier
            versions) or "fast" (compiled chain kernels when numba is installed, and
            warm starts for callers that pass a :class:`WarmStart`); see docs/negf.md.
        estimate: window error estimate: "strict" (|K15 - G7|, conservative) or
            "calibrated" (extrapolated K15 error, coarser first grid; docs/negf.md).
        eta: broadening of the centre, H -> H - i eta (>= 0; 0: the exact steady state;
            docs/negf.md, broadening eta).
    """

    def __init__(
        self,
        lattice,
        electrons: ElectronParams | None = None,
        solver: str = "rgf",
        tol: float = DEFAULT_TOL,
        comm=None,
        groups: int | None = None,
        eq_method: str = "auto",
        lead_method: str = "auto",
        resonances: str | bool = "auto",
        block_intervals: int | None = None,
        solver_options: dict | None = None,
        scheme: str = "reference",
        estimate: str = "strict",
        eta: float = 0.0,
        resonance_width: float | None = None,
    ):
        self.lattice = lattice
        if not eta >= 0:
            raise HpcspinError(f"eta = {eta}: must be >= 0")
        self.eta = float(eta)
        self.params = electrons or ElectronParams()
        if not 0 < tol < 1e-1:
            raise HpcspinError(f"tol = {tol}: must lie in (0, 0.1)")
        if self.params.temperature < 0:
            raise HpcspinError("temperature must be >= 0")
        self.tol = float(tol)
        self.comm = comm
        self.part = Partition.of(comm, groups)
        self.solver_cls = get_solver(solver)
        self.solver_name = solver
        self.solver_comm = None
        if comm is not None and self.part.n_groups < comm.Get_size():
            self.solver_comm = group_comm(comm, self.part.n_groups)
        if scheme not in SCHEMES:
            raise HpcspinError(f"scheme = {scheme!r}: choose from {SCHEMES}")
        self.scheme = scheme
        if estimate not in ESTIMATES:
            raise HpcspinError(f"estimate = {estimate!r}: choose from {ESTIMATES}")
        self.estimate = estimate
        self.solver_options = dict(solver_options or {})
        if scheme == "fast" and solver == "rgf":
            self.solver_options.setdefault("compiled", True)
        self.eq_method, self.resonances = eq_method, resonances
        self.resonance_width = resonance_width
        # Scheme fast: narrow strip resonances in the window variable (False: the graded
        # ladders of the reference scheme, with ratio FAST_LADDER; benchmarks compare).
        self.map_poles = scheme == "fast"
        p = self.params
        self.leads = Leads(lattice, p.lead, p.t_lead, p.t_contact, p.gamma, method=lead_method)
        self._parts = None  # scheme fast: kernel inputs of window energies seen before
        self._eval_roots = None  # strip roots of the current evaluation (_roots)
        self._eval_band = None  # its centre band (_band)
        self._template = None  # scheme fast: spin-independent parts of the open system
        if scheme == "fast":
            self.leads = CachedLeads(self.leads)
            self._parts = BoundedCache()
            self._template = SliceTemplate(lattice, self.leads, p.t, p.J, p.onsite)
        self.block_intervals = block_intervals or default_block_intervals(
            lattice.length, lattice.width
        )

    # -- public API ------------------------------------------------------------------
    def system(self, spins) -> OpenSystem:
        """The open system of one spin configuration."""
        p = self.params
        return OpenSystem(
            self.lattice, spins, self.leads, p.t, p.J, p.onsite, self.eta, self._template
        )

    def make_solver(self, system):
        """A solver instance of the configured backend for ``system``."""
        return self.solver_cls(system, comm=self.solver_comm, **self.solver_options)

    def field(self, spins, bias: float | None = None, mu: float | None = None) -> np.ndarray:
        """H_i^el = J s_i, (N, 3). Collective over comm."""
        return self.compute(spins, bias=bias, mu=mu).field

    def compute(
        self,
        spins,
        bias: float | None = None,
        mu: float | None = None,
        transmission_energies=None,
        want_transmission_energies=None,
        warm: WarmStart | None = None,
    ) -> NEGFResult:
        """All observables of one spin configuration. Collective over comm.

        Args:
            spins: (N, 3) unit spins (identical on every rank).
            bias: V (default: the parameters').
            mu: mean chemical potential (default: the parameters').
            transmission_energies: energies where T(E) is wanted (optional).
            want_transmission_energies: alias of ``transmission_energies``.
            warm: grid of the previous evaluation of a sequence (dynamics), updated in
                place; None: a cold start (see :class:`WarmStart`).

        Returns:
            NEGFResult.
        """
        p = self.params
        v = p.bias if bias is None else float(bias)
        mu0 = p.mu if mu is None else float(mu)
        mu_l, mu_r = mu0 + 0.5 * v, mu0 - 0.5 * v
        system = self.system(spins)
        solver = self.make_solver(system)
        self._eval_roots = self._eval_band = None
        eq = self._plan_equilibrium(system, mu_r)
        window = self._plan_window(system, mu_l, mu_r, warm, (v, mu0))
        total, err, npts, info = self._integrate(solver, system, eq, window, mu_l, mu_r)
        self._add_bound_states(system, total, window, mu_l, mu_r)
        if warm is not None and window:
            warm.update((v, mu0), info.pop("grid"), info["quad_points"])
            warm.segment_poles = [seg.poles for seg in window]
        info.pop("grid", None)
        res = self._result(total, eq, err, npts, info, system.n_sites)
        te = transmission_energies
        if te is None:
            te = want_transmission_energies
        if te is not None:
            res.energies = np.asarray(te, dtype=float)
            res.transmission = self._transmission(solver, system, res.energies)
        return res

    # -- steps of compute ------------------------------------------------------------
    def _plan_equilibrium(self, system, mu_r: float):
        return plan_equilibrium(
            mu_r,
            self.params.temperature,
            system.spectral_bounds(),
            self.tol,
            method=self.eq_method,
            # eta > 0 gives every state Lorentzian tails, as wide-band leads do: the
            # contour with a real-axis tail below the spectrum (poles would cut them off).
            wide_band=self.leads.energy_independent or self.eta > 0,
        )

    def _plan_window(self, system, mu_l, mu_r, warm, key) -> list:
        """Window segments; resonance seeds on cold starts, the last grid on warm ones."""
        if mu_l == mu_r:  # zero bias: no window (as plan_window), without its set-up
            return []
        band = None if self.leads.energy_independent else self.leads.band_bounds()
        temp = self.params.temperature
        extra = {"init_spacing": CALIBRATED_SPACING} if self.estimate == "calibrated" else {}
        plan_key = (mu_l, mu_r, temp, self.tol, self.estimate)
        window = warm.window_plan(plan_key) if warm is not None else None
        if window is None:  # spin-independent: a warm-started sequence plans it once
            window = plan_window(mu_l, mu_r, temp, self.tol, self._band_edges(), band, **extra)
            if warm is not None:
                warm.remember_plan(plan_key, window)
        if not window:
            return window
        grid = warm.grid_for(key, len(window)) if warm is not None else None
        if grid is not None:
            grid = self._follow(system, window, grid, warm)
        if grid is not None:
            for seg, bp in zip(window, grid):
                seg.breakpoints = bp
            return window
        lo, hi = window[0].origin, window[-1].origin + window[-1].width
        roots = self._roots(system, lo, hi) if self._maps(system) else None
        if roots is not None:  # scheme fast, strips: resonances in the variable
            map_cold(window, roots, self._narrow)
        else:
            seeds = self._seeds(system, lo, hi)
            for seg in window:
                seg.add_energies(seeds)
        if warm is not None and self._tracks(system):  # follow these roots from now on
            warm.poles.start(system, *self._band(system), lo, hi, self._roots(system, lo, hi))
        return window

    def _tracks(self, system) -> bool:
        """Strip roots followed along warm-started sequences (pole_tracking.py)?"""
        return system.block > 2 and self._use_resonances(system)

    def _follow(self, system, window, grid, warm) -> list | None:
        """Warm step: the strip roots followed and the grid moved with them, or None (cold).

        The followed roots are this evaluation's (``_roots``: seeds, bound states).
        """
        if not self._tracks(system):
            return grid
        lo, hi = window[0].origin, window[-1].origin + window[-1].width
        old = warm.poles.roots
        new = warm.poles.follow(system, *self._band(system), lo, hi)
        if new is None:  # a root lost, entered or was born: full search, cold grid
            warm.start_cold()
            return None
        self._eval_roots = ((system, lo, hi), new)
        if self._maps(system):  # a changed set of mapped roots: a cold grid from these
            got = map_warm(
                window, grid, warm.segment_poles or [()] * len(window), new, self._narrow
            )
            if got is None:
                warm.start_cold()
            return got
        return follow_grid(window, grid, old, new, self._narrow, ratio=self._ladder_ratio)

    def _maps(self, system) -> bool:
        """Narrow strip resonances mapped into the window variable (negf/pole_map.py)?"""
        return self.map_poles and system.block > 2 and self._use_resonances(system)

    @property
    def _narrow(self) -> float:
        return self.resonance_width or STRIP_NARROW

    @property
    def _ladder_ratio(self) -> float:
        return FAST_LADDER if self.scheme == "fast" else 4.0

    def _integrand(self, solver, system, segments, mu_l, mu_r, m):
        temp, n = self.params.temperature, system.n_sites

        def integrand(k: int, u: np.ndarray) -> np.ndarray:
            seg = segments[k]
            z, dz = seg.map(u)
            if seg.kind == "window":
                return self._window_values(solver, system, z.real, dz.real, mu_l, mu_r, temp)
            g = solver.diagonal_blocks(z)
            w = fermi(z, mu_r, temp) * dz
            vals = np.zeros((len(u), m))
            vals[:, : 4 * n] = (-np.imag(pauli_components(g) * w[:, None, None]) / np.pi).reshape(
                len(u), -1
            )
            return vals

        return integrand

    def _integrate(self, solver, system, eq, window, mu_l, mu_r):
        """Pole sum plus adaptive quadrature: (total (4N + 8,), error, points, info)."""
        n = system.n_sites
        m = 4 * n + _N_EXTRA
        segments = list(eq.segments) + window
        total = self._pole_sum(solver, eq.poles, eq.pole_weights, m)
        err, npts = eq.fixed_error, len(eq.poles)
        info = {"eq_method": eq.method, "poles": len(eq.poles)}
        if not segments:
            return total, err, npts, info
        q = adaptive_integrate(
            self._integrand(solver, system, segments, mu_l, mu_r, m),
            [s.breakpoints for s in segments],
            self.tol,
            part=self.part,
            block_intervals=self.block_intervals,
            fixed_error=eq.fixed_error,
            estimate=self.estimate,
            on_round=_RoundReport(n, len(eq.poles)),
        )
        info.update(
            quad_points=q.n_points,
            rounds=q.rounds,
            intervals=q.n_intervals,
            converged=q.converged,
            grid=q.breakpoints[len(eq.segments) :],
        )
        if not q.converged:  # the point budget (max_rounds) ran out: say what and where
            log.warning(
                "NEGF quadrature not converged: %s lattice %d x %d, V = %.6g, mu = %.6g, "
                "eta = %.3g: error estimate %.3g > tol %.3g after %d points in %d rounds",
                self.lattice.kind,
                self.lattice.length,
                self.lattice.width,
                mu_l - mu_r,
                0.5 * (mu_l + mu_r),
                self.eta,
                q.error,
                self.tol,
                q.n_points,
                q.rounds,
            )
        return total + q.value, err + q.error, npts + q.n_points, info

    def _result(self, total, eq, err, npts, info, n) -> NEGFResult:
        dens = total[: 4 * n].reshape(n, 4)
        dens[:, 0] += eq.constant
        jl, jr = total[4 * n : 4 * n + 4], total[4 * n + 4 :]
        s = dens[:, 1:].copy()
        return NEGFResult(
            spin_density=s,
            field=self.params.J * s,
            charge_density=dens[:, 0].copy(),
            current=float(jr[0]),
            n_energy_points=int(npts),
            spin_current_left=jl[1:].copy(),
            spin_current_right=jr[1:].copy(),
            current_left=float(jl[0]),
            error_estimate=float(err),
            info=info,
        )

    # -- pieces ----------------------------------------------------------------------
    def _band_edges(self) -> list[float]:
        if self.leads.energy_independent:
            return []
        if self.leads.modes is None:
            lo, hi = self.leads.band_bounds()
            return [lo, hi] if self.lattice.width == 1 else []
        _, e, c = self.leads.modes
        return sorted(set(np.round(np.concatenate([e - 2 * abs(c), e + 2 * abs(c)]), 14)))

    def _use_resonances(self, system) -> bool:
        use = self.resonances
        return 2 * system.n_sites <= 2000 if use == "auto" else bool(use)

    def _seeds(self, system, lo: float, hi: float) -> np.ndarray:
        if not self._use_resonances(system):
            return np.zeros(0)
        fast = self.scheme == "fast"
        roots = self._roots(system, lo, hi) if system.block > 2 else None
        return resonance_breakpoints(
            system,
            lo,
            hi,
            narrow=self.resonance_width,
            part=self.part,
            compiled=fast,
            roots=roots,
            ratio=self._ladder_ratio,
        )

    def _roots(self, system, lo: float, hi: float):
        """Roots of eps_n(E) = E of a strip in [lo, hi] (once per evaluation), or None."""
        if self._eval_roots is None or self._eval_roots[0] != (system, lo, hi):
            try:
                roots = strip_roots(system, *self._band(system), lo, hi)
            except (np.linalg.LinAlgError, ValueError):
                roots = None
            self._eval_roots = ((system, lo, hi), roots)
        return self._eval_roots[1]

    def _band(self, system):
        """The centre band of this evaluation's system (built once; read-only)."""
        if self._eval_band is None or self._eval_band[0] is not system:
            self._eval_band = (system, centre_band(system))
        return self._eval_band[1]

    def _add_bound_states(self, system, total, window, mu_l, mu_r) -> None:
        """Bound states in the window get the mean lead occupation (negf/bound_states.py).

        Strips only (a chain's single channel leaves none in practice), at eta = 0 (a
        broadening couples them to the bath, which then sets their occupation), and where
        the resonance search runs (the same size limit).
        """
        if not window or self.eta > 0 or system.block <= 2:
            return
        if not self._use_resonances(system):
            return
        roots = self._roots(system, window[0].origin, window[-1].origin + window[-1].width)
        if roots is None:
            return
        temp = self.params.temperature

        def occupation(e):
            return 0.5 * (fermi(e, mu_l, temp) - fermi(e, mu_r, temp))

        dens = bound_state_density(system, *self._band(system), roots, occupation)
        if dens is not None:
            total[: dens.size] += dens.ravel()

    def _window_values(self, solver, system, e, de, mu_l, mu_r, temp) -> np.ndarray:
        key = (mu_l, mu_r, temp, e.tobytes(), de.tobytes())
        parts = self._parts.get(key) if self._parts is not None else None
        if parts is not None:  # scheme fast, energies seen before: only the spins changed
            return solver.window_from_parts(parts)
        gl, gr = system.gammas(e)
        w = (fermi(e, mu_l, temp) - fermi(e, mu_r, temp)) * de / (2 * np.pi)
        if self._parts is not None:
            parts = solver.window_parts(e, gl, gr, w) if hasattr(solver, "window_parts") else None
            if parts is not None:
                self._parts.put(key, parts, kernels.parts_nbytes(parts))
                return solver.window_from_parts(parts)
        return solver.window_terms(e, gl, gr, w)

    def _blocks(self, n_items: int) -> list[slice]:
        """Rank-independent slices of ``n_items`` fixed energies (poles, T(E) points)."""
        out, i = [], 0
        for size in plan_blocks(n_items, 15 * self.block_intervals, min_block=8):
            out.append(slice(i, i + size))
            i += size
        return out

    def _pole_sum(self, solver, poles, weights, m) -> np.ndarray:
        n = self.lattice.n_sites
        blocks = self._blocks(len(poles))

        def block(k):
            sl = blocks[k]
            return self._pole_values(solver, poles[sl], weights[sl]).ravel()

        out = np.zeros(m)
        for part in map_blocks(len(blocks), block, self.part):
            out[: 4 * n] += part
        return out

    def _pole_values(self, solver, z, w) -> np.ndarray:
        """solver.pole_terms(z, w); scheme fast: from kernel inputs kept per block."""
        if self._parts is None or not hasattr(solver, "pole_parts"):
            return solver.pole_terms(z, w)
        key = ("poles", z.tobytes(), w.tobytes())
        parts = self._parts.get(key)
        if parts is None:
            parts = solver.pole_parts(z, w)
            if parts is None:  # not a compiled chain
                return solver.pole_terms(z, w)
            self._parts.put(key, parts, kernels.parts_nbytes(parts))
        return solver.pole_from_parts(parts)

    def _transmission(self, solver, system, energies) -> np.ndarray:
        blocks = self._blocks(len(energies))

        def block(k):
            # Outside the lead bands Gamma = 0 and T = 0 exactly; the recursion is not
            # even defined there at every energy (a real, unbroadened intermediate block
            # can be singular), so only energies with open channels on both sides are
            # solved.
            e = energies[blocks[k]]
            gl, gr = system.gammas(e)
            scale = 1e-12 * max(1.0, abs(self.params.t_lead))
            open_ = (np.abs(gl).max(axis=(1, 2)) > scale) & (np.abs(gr).max(axis=(1, 2)) > scale)
            out = np.zeros(len(e))
            if open_.any():
                out[open_] = transmission(solver.first_column(e[open_]), gl[open_], gr[open_])
            return out

        parts = map_blocks(len(blocks), block, self.part)
        return np.concatenate(parts) if parts else np.zeros(0)
