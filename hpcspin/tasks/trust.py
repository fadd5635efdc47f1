"""Deck to trust observers of an ML-driven dynamics run ([dynamics] committee, spot checks).

See :mod:`hpcspin.dynamics.uncertainty` for what they measure.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hpcspin.log import get_logger
from hpcspin.tasks.common import agree, collective_error, negf_engine_from

if TYPE_CHECKING:
    from hpcspin.deck.schema import RunConfig
    from hpcspin.dynamics.forces import MLForce
    from hpcspin.dynamics.simulation import Simulation
    from hpcspin.dynamics.uncertainty import CommitteeObserver
    from hpcspin.lattice import Lattice
    from hpcspin.parallel.context import ParallelContext

log = get_logger("dynamics")


def _ml_provider(sim: Simulation) -> MLForce | None:
    return next((p for p in sim.providers if getattr(p, "name", "") == "ml"), None)


def _committee(
    cfg: RunConfig,
    ctx: ParallelContext,
    sim: Simulation,
    lattice: Lattice,
    out: str,
    ml: MLForce,
) -> CommitteeObserver:
    from hpcspin.dynamics.forces import MLForce
    from hpcspin.dynamics.uncertainty import CommitteeObserver
    from hpcspin.ml import load_model
    from hpcspin.ml.committee import check_members

    d = cfg.dynamics
    paths = list(d.committee)
    models = [agree(ctx.comm, load_model, p, lattice=lattice) for p in paths]
    agree(ctx.comm, check_members, [m.meta for m in models], paths)
    members = [MLForce(m, ml.globals, None, dtype=d.ml_dtype) for m in models]
    halo = sim.decomp.halo
    for p, m in zip(paths, members, strict=True):
        if m.halo[0] > halo[0] or (lattice.kind != "chain" and m.halo[1] > halo[1]):
            raise collective_error(
                f"[dynamics] committee: {p} reaches {m.halo}, beyond the run's halo {halo} "
                "(committee members need the radius of [model] file or less)"
            )
    threshold = d.committee_threshold if d.committee_threshold > 0 else float("inf")
    flag = os.path.join(out, d.committee_file)
    log.info(
        "committee of %d models; disagreement threshold %g (%s)",
        len(paths),
        threshold,
        d.committee_action,
    )
    return CommitteeObserver(members, ml, threshold, d.committee_action, flag)


def add_trust_observers(
    sim: Simulation, cfg: RunConfig, ctx: ParallelContext, lattice: Lattice, out: str
) -> None:
    """Committee and NEGF spot-check observers of the deck (none when not asked). Collective."""
    d = cfg.dynamics
    if not d.committee and d.spot_check_every <= 0:
        return
    ml = _ml_provider(sim)
    if ml is None:
        raise collective_error(
            "[dynamics] committee and spot_check_every need forces = 'ml' (they check the ML field)"
        )
    if d.committee:
        sim.observers.append(_committee(cfg, ctx, sim, lattice, out, ml))
    if d.spot_check_every > 0:
        from hpcspin.dynamics.forces import NEGFForce
        from hpcspin.dynamics.uncertainty import SpotCheckObserver

        engine = negf_engine_from(cfg, lattice, comm=ctx.comm)
        negf = NEGFForce(engine, ctx.comm, cfg.electrons.bias)
        sim.observers.append(SpotCheckObserver(negf, ml, d.spot_check_every))
        log.info("NEGF spot check every %d steps", d.spot_check_every)
