"""``task = "negf"``: NEGF observables of one spin configuration -> ``negf.h5``.

Spins come from the deck's initial state (``[spins] initial``, including
``initial = "file"`` with an HDF5 ``spins`` (N, 3) dataset). Energy points are split
over all ranks; rank 0 writes the file.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from hpcspin.io import keys
from hpcspin.log import get_logger
from hpcspin.tasks.common import (
    initial_spins,
    lattice_from,
    negf_engine_from,
    prepare_output_dir,
    write_json,
)

if TYPE_CHECKING:
    from hpcspin.deck.schema import RunConfig
    from hpcspin.parallel.context import ParallelContext

log = get_logger("negf")
OUTPUT = keys.NEGF_FILE


def run(cfg: RunConfig, ctx: ParallelContext, restart: str | None = None) -> None:
    """Compute and write the NEGF observables. Collective over ctx.comm."""
    lattice = lattice_from(cfg)
    out = prepare_output_dir(cfg, ctx)
    spins = initial_spins(cfg, lattice)
    engine = negf_engine_from(cfg, lattice, comm=ctx.comm)
    energies = None
    if cfg.negf.transmission:
        e0, e1 = cfg.negf.transmission_range
        energies = np.linspace(e0, e1, cfg.negf.transmission_points)
    t0 = time.perf_counter()
    res = engine.compute(spins, bias=cfg.electrons.bias, transmission_energies=energies)
    wall = time.perf_counter() - t0
    log.info(
        "NEGF: N = %d, V = %g, I = %.10g, %d energy points, %.3f s on %d rank(s)",
        lattice.n_sites,
        cfg.electrons.bias,
        res.current,
        res.n_energy_points,
        wall,
        ctx.size,
    )
    if ctx.rank == 0:
        from hpcspin.io.negf_file import write_negf_file

        path = os.path.join(out, OUTPUT)
        write_negf_file(path, spins, res, energies, cfg.deck_text, cfg.to_json(), ctx.size)
        write_json(
            os.path.join(out, keys.NEGF_SUMMARY_FILE),
            {
                "current": res.current,
                "n_sites": lattice.n_sites,
                "bias": cfg.electrons.bias,
                "seconds": wall,
                "n_ranks": ctx.size,
                "n_energy_points": res.n_energy_points,
            },
        )
        log.info("wrote %s", path)
    ctx.comm.Barrier()
