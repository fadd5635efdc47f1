"""``task = "train"``: fit the deck's ML model to an NEGF dataset -> ``[model] file``.

Data parallel over all ranks (gradients summed in a fixed block order, so the
weights do not depend on the rank count beyond round-off). Training checkpoints
sit next to the model file (``<file>.ckpt``) and a restarted run resumes from them.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from hpcspin.errors import HpcspinError
from hpcspin.faults import fault_point
from hpcspin.io import keys
from hpcspin.io.outdir import check_replaceable
from hpcspin.log import get_logger
from hpcspin.tasks.common import agree, collective_error, decide, lattice_from, write_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from mpi4py import MPI

    from hpcspin.deck.schema import RunConfig
    from hpcspin.lattice import Lattice
    from hpcspin.ml import ModelSpec
    from hpcspin.ml.train import TrainConfig, TrainResult
    from hpcspin.parallel.context import ParallelContext
    from hpcspin.tasks.signals import SignalFlag

log = get_logger("train")


def _load(cfg: RunConfig, lattice: Lattice, comm: MPI.Comm) -> dict:
    from hpcspin.io.dataset_union import read_datasets

    paths = [cfg.train.dataset, *cfg.train.extra_datasets]  # extra: appended rows
    data = agree(comm, read_datasets, paths)  # every rank reads the same files
    if len(paths) > 1:
        log.info("training on the union %s", ", ".join(f"{p} ({n})" for p, n in data["sources"]))
    n = data["spins"].shape[0]
    if n == 0:
        raise collective_error(
            f"[train] dataset = {cfg.train.dataset!r}: no complete "
            "configurations (run the datagen task first)"
        )
    if data["spins"].shape[1] != lattice.n_sites:
        raise collective_error(
            f"[train] dataset = {cfg.train.dataset!r}: configurations "
            f"have {data['spins'].shape[1]} sites, [lattice] has "
            f"{lattice.n_sites}"
        )
    return data


def _neq_weight(cfg: RunConfig, data: dict, separate: bool) -> np.ndarray | None:
    """Configuration weights of the nonequilibrium loss (None: all 1).

    0/1 from [train] neq_kinds, times [train] neq_loss_weight, times (V_max / V)^2 with
    [train] bias_balance.
    """
    scale = float(cfg.train.neq_loss_weight)
    w = _neq_kinds_weight(cfg, data, separate)
    balance = cfg.train.bias_balance
    if scale == 1.0 and not balance:
        return w
    if not separate:
        key = "bias_balance = true" if balance else f"neq_loss_weight = {scale:g}"
        raise collective_error(
            f"[train] {key} needs targets = 'split', a head with a "
            "nonequilibrium part (EA or E+vector) and a dataset with H(0)"
        )
    w = scale * (np.ones(len(data["spins"])) if w is None else w)
    return w * _bias_balance(data["bias"]) if balance else w


def _bias_balance(bias: np.ndarray) -> np.ndarray:
    """(V_max / V)^2 per configuration (1 at V = 0).

    The current-induced field grows about linearly with V, so these weights count
    relative errors alike at every bias.
    """
    v = np.abs(np.asarray(bias, dtype=float))
    vmax = float(v.max()) if v.size else 0.0
    out = np.ones_like(v)
    nz = v > 0
    out[nz] = (vmax / v[nz]) ** 2
    return out


def _neq_kinds_weight(cfg: RunConfig, data: dict, separate: bool) -> np.ndarray | None:
    """0/1 weights of the configurations in the nonequilibrium loss ([train] neq_kinds)."""
    kinds = tuple(cfg.train.neq_kinds)
    if not kinds:
        return None
    where = f"[train] neq_kinds = {list(kinds)}"
    if not separate:
        raise collective_error(
            f"{where} needs targets = 'split', a head with a nonequilibrium part "
            "(EA or E+vector) and a dataset with H(0) (datagen with_equilibrium = true)"
        )
    names = data.get("kind_names") or []
    unknown = [k for k in kinds if k not in names]
    if unknown or "kind" not in data:
        raise collective_error(
            f"{where}: {unknown or list(kinds)} not among the dataset's families {names}"
        )
    weights = tuple(cfg.train.neq_kind_weights) or (1.0,) * len(kinds)
    per_kind = np.zeros(len(names))  # families not named weigh 0
    per_kind[[names.index(k) for k in kinds]] = weights
    w = per_kind[np.asarray(data["kind"])]
    if not w.any():
        raise collective_error(f"{where}: no configuration of these families in the dataset")
    log.info(
        "nonequilibrium head fitted to %d of %d configurations (%s)",
        int((w > 0).sum()),
        len(w),
        ", ".join(f"{k} x {wk:g}" for k, wk in zip(kinds, weights)),
    )
    return w


def _output_problem(model_file: str, restart: str | None) -> str | None:
    """Why training cannot write ``model_file`` or use ``--restart`` (None: it can)."""
    from hpcspin.io.storage import check_writable

    ckpt = model_file + ".ckpt"
    if restart and not os.path.isfile(restart):
        return f"--restart {restart}: file not found (train resumes from {ckpt})"
    if restart and os.path.abspath(restart) != os.path.abspath(ckpt):
        return f"--restart {restart}: train resumes only from its own checkpoint {ckpt}"
    try:
        check_writable(model_file, "[model] file =")
    except HpcspinError as exc:
        return str(exc)
    return None


def _stop_requested(ctx: ParallelContext, flag: SignalFlag) -> bool:
    """Whether any rank got SIGTERM/SIGUSR1. Collective over ctx.comm."""
    fault_point("train_epoch")  # called after every epoch
    return bool(flag.agreed(ctx.comm))


def _model_kind(path: str) -> str | None:
    """The kind "model" for an hpcspin model file, None for anything else."""
    from hpcspin.ml.modelfile import read_model_file

    try:
        read_model_file(path)
    except HpcspinError:
        return None
    return "model"


def _spec_from(cfg: RunConfig, lattice: Lattice) -> ModelSpec:
    from hpcspin.ml import ModelSpec

    m = cfg.model
    return ModelSpec(
        head=m.head,
        kind=lattice.kind,
        radius=float(m.radius),
        hidden=tuple(m.hidden),
        globals=tuple(m.global_inputs),
        dtype=m.dtype,
        bias_gate=m.bias_gate,
        chain_mirror=m.chain_mirror,
        design=m.design,
        rows=m.rows if m.design == "columns" else 0,
        pair_cutoff=m.pair_cutoff,
        drive_symmetry=m.drive_symmetry and lattice.kind != "chain",
        eq_radius=m.eq_radius if m.drive_symmetry and lattice.kind != "chain" else 0.0,
    )


def _targets(cfg: RunConfig, data: dict) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(fields, fields_eq or None, separate) for the deck's head and [train] targets."""
    head, split = cfg.model.head, cfg.train.targets == "split"
    separate = split and "field_eq" in data and head != "E"
    fields = data["field"]
    if head == "E" and "field_eq" in data and split:
        fields = data["field_eq"]  # the E head fits the equilibrium field
        log.info("head E: fitting the V = 0 fields H(0) of the dataset")
    return fields, (data.get("field_eq") if separate else None), separate


def _check_output(cfg: RunConfig, ctx: ParallelContext, restart: str | None) -> None:
    """The model file's directory exists and the file is writable (before training)."""
    out_dir = os.path.dirname(os.path.abspath(cfg.model.file))
    if ctx.rank == 0:
        os.makedirs(out_dir, exist_ok=True)
    problem = _output_problem(cfg.model.file, restart) if ctx.rank == 0 else None
    problem = ctx.comm.bcast(problem, root=0)  # checked before training, not after
    if problem:
        raise collective_error(problem)


def _init_state(cfg: RunConfig, spec: ModelSpec, lattice: Lattice, comm: MPI.Comm) -> dict | None:
    """Weights of ``[train] init_model`` (a model of the deck's spec), or None."""
    from hpcspin.ml import load_model

    path = cfg.train.init_model
    if not path:
        return None
    model = agree(comm, load_model, path, lattice)
    if model.spec != spec:
        raise collective_error(
            f"[train] init_model = {path!r}: its spec {model.spec.to_dict()} differs from "
            f"the deck's [model] {spec.to_dict()} (continue only a model of this architecture)"
        )
    return model.state_dict()


def _train_config(
    cfg: RunConfig, separate: bool, interrupt: Callable[[], bool], init_state: dict | None = None
) -> TrainConfig:
    from hpcspin.ml.train import TrainConfig

    tr = cfg.train
    return TrainConfig(
        epochs=tr.epochs,
        lr=tr.lr,
        batch_size=tr.batch_size,
        weight_decay=tr.weight_decay,
        seed=cfg.run.seed,
        val_fraction=tr.val_fraction,
        patience=tr.patience,
        separate_targets=separate,
        checkpoint=cfg.model.file + ".ckpt",
        resume=cfg.output.resume in ("auto", "matching"),
        fresh_on_mismatch=cfg.output.resume == "matching",
        log_interval=cfg.output.progress_interval,
        interrupt=interrupt,
        init_state=init_state,
        torque_weight=tr.torque_weight,
        fit=tr.fit,
    )


def _quality(
    cfg: RunConfig, res: TrainResult, data: dict, lattice: Lattice, tcfg: TrainConfig
) -> dict:
    """Held-out quality table and verdict (logged; WARNING below the thresholds)."""
    from hpcspin.ml.quality import Thresholds, held_out_quality, table, verdict
    from hpcspin.ml.train import split_configs

    tr = cfg.train
    limits = Thresholds(tr.min_eq_r2, tr.min_neq_r2, tr.max_torque_err)
    _, val_idx = split_configs(len(data["spins"]), tcfg.val_fraction, tcfg.seed)
    q = held_out_quality(res.model, lattice, data, val_idx)
    failed = verdict(q, limits)
    log.info("held-out quality of %s:\n%s", cfg.model.file, table(q, limits))
    for f in failed:
        log.warning("model %s: %s: do not trust it for dynamics", cfg.model.file, f)
    if not failed:
        log.info("model %s passes every quality threshold", cfg.model.file)
    return {**q, "passed": not failed, "failed": failed, "limits": limits.__dict__}


def _save(
    cfg: RunConfig,
    ctx: ParallelContext,
    res: TrainResult,
    data: dict,
    lattice: Lattice,
    wall: float,
    quality: dict,
) -> None:
    """Write the model file (with domain and quality) and the JSON summary (rank 0)."""
    from hpcspin.ml.domain import training_domain

    m = cfg.model
    res.metrics["quality"] = quality
    extra = {
        "deck": cfg.deck_text,
        "dataset": cfg.train.dataset,
        **({"extra_datasets": list(cfg.train.extra_datasets)} if cfg.train.extra_datasets else {}),
        "train_seconds": wall,
        "n_ranks": ctx.size,
    }
    res.save(m.file, extra=extra, domain=training_domain(data, lattice))
    summary = {
        "model": m.file,
        "head": m.head,
        "seconds": wall,
        "n_configs": int(data["spins"].shape[0]),
        "epochs_run": len(res.history),
        "metrics": res.metrics,
        "fingerprint": res.fingerprint,
    }
    write_json(os.path.splitext(m.file)[0] + keys.TRAIN_SUMMARY_SUFFIX, summary)
    log.info("wrote %s (%.1f s)", m.file, wall)


def run(cfg: RunConfig, ctx: ParallelContext, restart: str | None = None) -> None:
    """Train the model. Collective over ctx.comm."""
    from hpcspin.ml.train import train_model
    from hpcspin.tasks.signals import SignalFlag

    # Before the work: the model file must not replace a file hpcspin did not write.
    decide(ctx.comm, check_replaceable, cfg.model.file, "model", "[model] file", _model_kind)
    lattice = lattice_from(cfg)
    data = _load(cfg, lattice, ctx.comm)
    spec = _spec_from(cfg, lattice)
    fields, fields_eq, separate = _targets(cfg, data)
    neq_weight = _neq_weight(cfg, data, separate)
    _check_output(cfg, ctx, restart)
    init = _init_state(cfg, spec, lattice, ctx.comm)
    tcfg = _train_config(cfg, separate, lambda: _stop_requested(ctx, flag), init)
    log.info(
        "training head %s (radius %g, hidden %s, globals %s) on %d configurations of "
        "%d sites; targets: %s",
        spec.head,
        spec.radius,
        spec.hidden,
        spec.globals,
        data["spins"].shape[0],
        lattice.n_sites,
        "H(0) and H(V)-H(0)" if separate else "H(V)",
    )
    t0 = time.perf_counter()
    with SignalFlag() as flag:
        res = train_model(
            data["spins"],
            fields,
            lattice,
            spec,
            tcfg,
            bias=data["bias"],
            mu=data["mu"],
            fields_eq=fields_eq,
            neq_weight=neq_weight,
            comm=ctx.comm,
        )
    wall = time.perf_counter() - t0
    fault_point("train_save")
    if ctx.rank == 0:
        _save(cfg, ctx, res, data, lattice, wall, _quality(cfg, res, data, lattice, tcfg))
    ctx.comm.Barrier()
