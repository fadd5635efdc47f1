"""Trust checks during ML-driven dynamics: committee disagreement and NEGF spot checks.

Both are *observers* of a :class:`~hpcspin.dynamics.simulation.Simulation`:
callables ``(sim, state) -> dict`` that :meth:`Simulation.observables` merges
into every frame, so their numbers land in the trajectory next to the wall
position (and in the log). Both are collective: every rank calls them at the
same frames.

- :class:`CommitteeObserver`: k models (the committee) evaluated on the frame's
  spins; the per-site disagreement (:func:`hpcspin.ml.committee.disagreement`)
  gives ``committee_max`` (largest over sites), ``committee_mean`` and
  ``committee_site`` (site of the largest). Above a threshold it warns, also
  writes the configuration to a snapshots file (``flag``; datagen takes it as
  ``[datagen] snapshots``), or stops the run with exit status 2 (``stop``).
- :class:`SpotCheckObserver`: every ``every`` steps the NEGF field of the frame's
  spins (energy points split over the ranks as in NEGF-driven runs) against the
  ML field: ``spot_rms`` (transverse RMS error), ``spot_rel_rms`` (relative to the
  NEGF transverse RMS) and ``spot_torque_err`` (relative error of the net torque
  sum_i S_i x H_i). NaN on frames without a check.
"""

from __future__ import annotations

import numpy as np

from hpcspin.dynamics.llg import transverse
from hpcspin.errors import HpcspinError
from hpcspin.log import get_logger

log = get_logger("dynamics.uncertainty")

ACTIONS = ("warn", "flag", "stop")


def _sum(sim, values):
    v = np.asarray(values, dtype=float)
    if sim.comm is None or sim.size == 1:
        return v
    from mpi4py import MPI  # noqa: PLC0415  (serial use needs no MPI)

    out = np.empty_like(v)
    sim.comm.Allreduce(v, out, op=MPI.SUM)
    return out


def disagreement(fields, spins) -> np.ndarray:
    """Per-site spread of k member fields (numpy).

    d_i = sqrt((1/k) sum_m |H_perp,m,i - <H_perp>_i|^2): zero when all members agree.

    Args:
        fields: (k, ..., N, 3) fields of the k members.
        spins: (..., N, 3) unit spins.

    Returns:
        (..., N) RMS distance of the members' transverse fields from their mean.
    """
    f = np.asarray(fields, dtype=float)
    s = np.broadcast_to(np.asarray(spins, dtype=float), f.shape[1:])
    perp = np.stack([transverse(m, spins=s) for m in f])
    perp -= perp[0]  # shift by one member: identical members give exactly zero
    dev = perp - perp.mean(axis=0)
    return np.sqrt(np.mean(np.sum(dev**2, axis=-1), axis=0))


class CommitteeObserver:
    """Per-frame committee disagreement, with warn / flag / stop above a threshold.

    Args:
        members: MLForce providers of the committee models (same halo or smaller
            than the simulation's).
        source: the simulation's MLForce provider (its global inputs, e.g. the bias,
            are copied to the members before each evaluation).
        threshold: disagreement (field units) above which ``action`` applies; inf: never.
        action: "warn", "flag" (also write the configuration to ``flag_file``) or "stop".
        flag_file: snapshots file of flagged configurations (rank 0 writes).
    """

    def __init__(self, members, source, threshold=float("inf"), action="warn", flag_file=""):
        if action not in ACTIONS:
            raise HpcspinError(f"committee action must be one of {ACTIONS}, got {action!r}")
        self.members, self.source = list(members), source
        self.threshold, self.action, self.flag_file = float(threshold), action, flag_file
        self.n_flagged = 0

    def __call__(self, sim, state) -> dict:
        """Disagreement observables of this frame (acts above the threshold). Collective."""
        grid = sim.field.fill(state.spins)
        fields = []
        for m in self.members:
            m.globals.update(self.source.globals)
            fields.append(m.owned_field(grid, sim.decomp, sim.halo))
        d = disagreement(np.stack(fields), state.spins).ravel()
        # global max and its site: one allreduce of (max, site) pairs packed per rank
        loc = np.zeros((2, sim.size))
        if d.size:
            i = int(np.argmax(d))
            loc[:, sim.rank] = d[i], self._site(sim, i)
        both = _sum(sim, np.concatenate([loc.ravel(), [d.sum(), d.size]]))
        per_rank = both[: 2 * sim.size].reshape(2, sim.size)
        r = int(np.argmax(per_rank[0]))
        out = {
            "committee_max": float(per_rank[0, r]),
            "committee_site": float(per_rank[1, r]),
            "committee_mean": float(both[-2] / max(both[-1], 1)),
        }
        if out["committee_max"] > self.threshold:
            self._act(sim, state, out)
        return out

    @staticmethod
    def _site(sim, i: int) -> int:
        """Global site index i = x*W + y of owned cell ``i`` (row-major, owned block)."""
        _, oy = sim.decomp.owned_shape
        x0, y0 = sim.decomp.x_range[0], sim.decomp.y_range[0]
        return (x0 + i // oy) * sim.lattice.width + y0 + i % oy

    def _act(self, sim, state, out) -> None:
        msg = (
            f"committee disagreement {out['committee_max']:.3g} at site "
            f"{int(out['committee_site'])} (step {state.step}, t = {state.time:g}) is above "
            f"the threshold {self.threshold:g}: the model is extrapolating"
        )
        if self.action in ("flag", "stop") and self.flag_file:
            spins = sim.gather(state).reshape(-1, 3)
            if sim.rank == 0:
                from hpcspin.io.snapshots import append_snapshot

                append_snapshot(self.flag_file, spins, step=state.step, time=state.time)
            self.n_flagged += 1
            msg += f"; configuration written to {self.flag_file}"
        if self.action == "stop":
            err = HpcspinError(msg + " ([dynamics] committee_action = 'stop')")
            err.collective = True
            raise err
        if sim.rank == 0:
            log.warning("%s", msg)


class SpotCheckObserver:
    """NEGF field every ``every`` steps against the ML field (NaN on other frames).

    Args:
        negf: an NEGFForce provider (its engine's energies split over the ranks).
        ml: the simulation's MLForce provider.
        every: steps between checks (a multiple of the frame interval is sensible).
    """

    def __init__(self, negf, ml, every: int):
        self.negf, self.ml, self.every = negf, ml, int(every)

    def __call__(self, sim, state) -> dict:
        """Spot-check observables of this frame (NaN between checks). Collective."""
        nan = float("nan")
        out = {"spot_rms": nan, "spot_rel_rms": nan, "spot_torque_err": nan}
        if self.every <= 0 or state.step % self.every:
            return out
        grid = sim.field.fill(state.spins)
        self.negf.set_bias(self.ml.globals.get("bias", 0.0))
        h_negf = self.negf.owned_field(grid, sim.decomp, sim.halo)
        h_ml = self.ml.owned_field(grid, sim.decomp, sim.halo)
        return spot_measures(sim, state.spins, h_ml, h_negf)


def spot_measures(sim, spins, h_ml, h_negf) -> dict:
    """Transverse RMS error, relative RMS error and net-torque error over all ranks."""
    s = np.asarray(spins, dtype=float).reshape(-1, 3)
    err = transverse(np.asarray(h_ml - h_negf, float).reshape(-1, 3), spins=s)
    ref = transverse(np.asarray(h_negf, float).reshape(-1, 3), spins=s)
    t_ml = np.cross(s, np.asarray(h_ml, float).reshape(-1, 3)).sum(axis=0)
    t_ng = np.cross(s, np.asarray(h_negf, float).reshape(-1, 3)).sum(axis=0)
    tot = _sum(sim, np.concatenate([[np.sum(err**2), np.sum(ref**2), len(s)], t_ml, t_ng]))
    n = max(tot[2], 1)
    t_ml, t_ng = tot[3:6], tot[6:9]
    den = np.linalg.norm(t_ng)
    return {
        "spot_rms": float(np.sqrt(tot[0] / n)),
        "spot_rel_rms": float(np.sqrt(tot[0] / tot[1])) if tot[1] > 0 else float("nan"),
        "spot_torque_err": float(np.linalg.norm(t_ml - t_ng) / den) if den > 0 else float("nan"),
    }
