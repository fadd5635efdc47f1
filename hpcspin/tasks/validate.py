"""``task = "validate"``: ML models against NEGF.

1. Fields on a held-out dataset, per model: transverse RMSE and R^2 of the total field
   and of the nonequilibrium part H(V) - H(0), over all configurations and over clean
   (noise-free) walls; the net torque sum_i S_i x H_i against NEGF's. Parity and
   error-versus-site plots.
2. Wall velocity: NEGF-driven and ML-driven runs of the deck's wall at each bias of
   ``[validate] velocity_biases`` (relaxation at V = 0, then t = velocity_t_end). The
   (method, bias) runs form a queue, longest first by estimated cost (NEGF at V != 0
   first), from which each rank takes the next free run as it becomes free, each run
   serial on its rank; finished runs of the same settings are reused
   (so an interrupted validation resumes), runs of other settings (e.g. a retrained
   model file) are redone.
Writes ``validation.json``, ``velocity.json``, ``velocity.md`` and PNGs to ``[output] dir``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hpcspin.faults import fault_point
from hpcspin.io import keys
from hpcspin.log import get_logger
from hpcspin.tasks.common import decide, lattice_from, prepare_output_dir, write_json

if TYPE_CHECKING:
    from hpcspin.deck.schema import RunConfig
    from hpcspin.parallel.context import ParallelContext

log = get_logger("validate")


def _models(cfg: RunConfig) -> list[str]:
    return list(cfg.validate.models) or [cfg.model.file]


def _label(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def check_domains(cfg: RunConfig) -> list[str]:
    """Every ML model against the deck (electron parameters, biases, head/radius).

    The deck's [model] head and radius are compared with its own [model] file only
    ([validate] models may list models of other heads).

    Raises:
        ModelMismatchError: a model was trained at other electron parameters.
    """
    from hpcspin.ml.domain import check_deck, deck_wall_width
    from hpcspin.ml.modelfile import read_model_file

    warnings = []
    for path in _models(cfg):
        own = os.path.abspath(path) == os.path.abspath(cfg.model.file)
        warnings += check_deck(
            read_model_file(path),
            cfg,
            path,
            biases=cfg.validate.velocity_biases or None,
            wall_width=deck_wall_width(cfg),
            check_spec=own,
        )
    return warnings


def run(cfg: RunConfig, ctx: ParallelContext, restart: str | None = None) -> None:
    """Validate the models. Collective over ctx.comm."""
    decide(ctx.comm, check_domains, cfg)  # before any work: models that fit the deck
    out = prepare_output_dir(cfg, ctx)
    lattice = lattice_from(cfg)
    if ctx.rank == 0:
        from hpcspin.tasks.validate_fields import field_report

        report = field_report(cfg, lattice, _models(cfg), out)
        write_json(os.path.join(out, keys.VALIDATION_FILE), report)
    ctx.comm.Barrier()
    if cfg.validate.velocity_biases:
        _velocities(cfg, ctx, out)


def _jobs(cfg: RunConfig) -> list[tuple[str, str, float]]:
    """(label, forces, bias) of every run; NEGF runs first (the costly ones)."""
    jobs = [("negf", "negf", v) for v in cfg.validate.velocity_biases]
    for m in _models(cfg):
        jobs += [(_label(m), m, v) for v in cfg.validate.velocity_biases]
    return jobs


def _run_dir(out: str, label: str, bias: float) -> str:
    return os.path.join(out, "velocity", f"{label}_V{bias:+.3f}")


def _one_run(
    cfg: RunConfig, ctx: ParallelContext, out: str, label: str, forces: str, bias: float
) -> None:
    from hpcspin.tasks import dynamics

    sub = cfg.replace("electrons", bias=bias)
    sub = sub.replace(
        "dynamics",
        t_end=cfg.validate.velocity_t_end,
        relax=True,
        forces="negf" if forces == "negf" else "ml",
    )
    if forces != "negf":
        sub = sub.replace("model", file=forces)
    sub = sub.replace(
        "output", dir=_run_dir(out, label, bias), resume="matching", progress_interval=60.0
    )
    sub = sub.replace("parallel", grid=())
    me = ctx.self_context()
    try:
        dynamics.run(sub, me)
    finally:
        me.free()


def run_order(jobs: list[tuple[str, str, float]]) -> list[int]:
    """Indices of the runs, longest first (ties in deck order).

    Cost estimates: an NEGF run at V != 0 (the bias window: hundreds of energy points
    per field) 1, at V = 0 (poles only) 0.05, an ML run 0.01.
    """

    def cost(job: tuple[str, str, float]) -> float:
        label, forces, bias = job
        if forces == "negf":
            return 1.0 if bias != 0 else 0.05
        return 0.01

    return sorted(range(len(jobs)), key=lambda i: (-cost(jobs[i]), i))


def claim(claims_dir: str, index: int) -> bool:
    """Take run ``index`` for this rank: True for exactly one caller (atomic create)."""
    try:
        fd = os.open(os.path.join(claims_dir, str(index)), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _velocities(cfg: RunConfig, ctx: ParallelContext, out: str) -> None:
    """Every velocity run, the runs taken from a shared queue.

    Each rank takes the next run nobody has taken (a claim file), longest first, so a
    rank that finishes early (or finds its run already done) takes more instead of
    waiting at the end. Each run is serial on its rank: which rank runs it changes no
    number.
    """
    import shutil

    jobs = _jobs(cfg)
    claims = os.path.join(out, "velocity", ".claims")
    if ctx.rank == 0:  # claims of an interrupted validation are stale
        shutil.rmtree(claims, ignore_errors=True)
        os.makedirs(claims)
    log.info("velocity comparison: %d runs over %d rank(s)", len(jobs), ctx.size)
    ctx.comm.Barrier()
    for i in run_order(jobs):
        if not claim(claims, i):
            continue
        label, forces, bias = jobs[i]
        log.info("run %s at V = %+g", label, bias)
        fault_point("validate_run")
        _one_run(cfg, ctx, out, label, forces, bias)
    ctx.comm.Barrier()
    if ctx.rank == 0:
        from hpcspin.tasks.validate_fields import velocity_report

        shutil.rmtree(claims, ignore_errors=True)
        velocity_report(cfg, out, jobs, _run_dir)
    ctx.comm.Barrier()
