"""Training core: fit a force model to (spins, fields) data, serial or data-parallel.

Data parallelism is deterministic: every step's batch of configurations is cut
into blocks of ``block_size`` configurations in a fixed way, block j goes to rank
j mod size, and the per-block gradients are allgathered and summed in block
order. A serial run sums the same blocks in the same order, so 1, 2 and 4 ranks
give the same weights to round-off. Every rank holds the whole data set (they
are small); only the work is split. The model never imports MPI: ``comm`` is
passed in.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from hpcspin.dynamics.llg import transverse
from hpcspin.errors import HpcspinError
from hpcspin.log import Progress, get_logger
from hpcspin.ml.metrics import field_metrics
from hpcspin.ml.model import ForceModel, ModelSpec, build_model
from hpcspin.parallel.collective import collective_error, decide

log = get_logger("ml.train")
SCHEDULES = ("plateau", "cosine", "none")
#: Which parts a training fits (the others keep the weights of ``init_state``).
FITS = ("both", "eq", "neq")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run.

    Attributes:
        epochs: maximum number of passes over the training configurations.
        lr: initial learning rate (AdamW).
        batch_size: configurations per optimiser step.
        block_size: configurations per gradient block (the unit of data parallelism).
        weight_decay: AdamW decoupled weight decay.
        seed: seeds the initial weights, the train/validation split and the shuffles.
        val_fraction: fraction of configurations held out (split by configuration).
        patience: early stopping after this many epochs without a better validation
            loss; None disables it.
        schedule: "plateau" (ReduceLROnPlateau on the validation loss), "cosine" or "none".
        lr_factor: plateau factor.
        lr_patience: plateau patience in epochs.
        min_lr: lower bound of the learning rate.
        separate_targets: with equilibrium fields given, fit the E part to H(0) and the
            A/vector part to H(V) - H(0) (heads "EA" and "E+vector").
        checkpoint: path of a resumable checkpoint (None: none).
        checkpoint_every: epochs between checkpoints.
        resume: continue from ``checkpoint`` if it exists (a checkpoint of another model
            or other training settings is refused, see ``fresh_on_mismatch``).
        fresh_on_mismatch: start afresh instead of refusing such a checkpoint.
        log_interval: seconds between progress lines.
        interrupt: optional callable, called after every epoch on every rank, returning
            True when the run must stop now (it must give the same answer on every rank,
            e.g. an allreduce of a signal flag); the checkpoint is written, then
            :class:`hpcspin.errors.RunInterrupted` is raised.
        init_state: state dict of a model of the same spec to start from, scales
            included (continued training, e.g. after adding data); None: random weights.
        torque_weight: weight of each configuration's squared net-torque error
            |sum_i S_i x dH_i|^2 in the loss (of the current-induced part with separate
            targets); 0 (default) fits site fields alone.
        cache_vector_inputs: compute the vector term's descriptors once per configuration
            when the model allows it (``vector_inputs_fixed``: strip models with an E head
            on its own window); the same numbers as recomputing them every step.
        fit: "both" parts of a split-target head, or only its equilibrium part "eq"
            (the E head on H(0)) or its current-induced part "neq" (A/vector head on
            H(V) - H(0), on the configurations of nonzero ``neq_weight`` only). The two
            parts of the loss share no weight, so a part can be trained on its own, with
            its own learning-rate schedule and best epoch, at the cost of that part
            alone; the other part keeps the weights of ``init_state`` (required).
    """

    epochs: int = 200
    lr: float = 1e-2
    batch_size: int = 16
    block_size: int = 4
    weight_decay: float = 0.0
    seed: int = 0
    val_fraction: float = 0.1
    patience: int | None = 50
    schedule: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-5
    separate_targets: bool = True
    checkpoint: str | None = None
    checkpoint_every: int = 10
    resume: bool = True
    fresh_on_mismatch: bool = False
    log_interval: float = 10.0
    interrupt: object = None
    init_state: dict | None = None
    torque_weight: float = 0.0
    cache_vector_inputs: bool = True
    fit: str = "both"

    def __post_init__(self):
        if self.fit not in FITS:
            raise HpcspinError(f"fit must be one of {FITS}, got {self.fit!r}")
        if self.torque_weight < 0:
            raise HpcspinError(f"torque_weight must be >= 0, got {self.torque_weight}")
        if self.schedule not in SCHEDULES:
            raise HpcspinError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.batch_size < 1 or self.block_size < 1 or self.epochs < 0:
            raise HpcspinError("batch_size, block_size must be >= 1 and epochs >= 0")
        if not 0 <= self.val_fraction < 1:
            raise HpcspinError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`: the best model, its metrics, the loss history."""

    model: ForceModel
    metrics: dict
    history: list = field(default_factory=list)
    fingerprint: str = ""
    lattice: object = None

    def save(self, path, extra: dict | None = None, domain: dict | None = None) -> None:
        """Write the model file (weights, metadata, metrics, data fingerprint, domain)."""
        from hpcspin.ml.modelfile import save_model

        save_model(
            path,
            self.model,
            self.lattice,
            metrics=self.metrics,
            fingerprint=self.fingerprint,
            extra=extra,
            domain=domain,
        )


def data_fingerprint(*arrays) -> str:
    """sha256 over the arrays (float64, C order, shapes included; None allowed)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(np.asarray(a, dtype="<f8"))
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class _Data:
    """Training arrays as tensors and the target parts of each head."""

    def __init__(self, model, lattice, spins, fields, bias, mu, fields_eq, separate, neq_weight):
        dt, dev = model.dtype, model.device
        t = lambda a: None if a is None else torch.as_tensor(np.asarray(a), dtype=dt, device=dev)  # noqa: E731
        self.spins, self.fields, self.eq = t(spins), t(fields), t(fields_eq)
        n = self.spins.shape[0]
        if self.spins.shape != (n, lattice.n_sites, 3) or self.fields.shape != self.spins.shape:
            raise HpcspinError(
                f"spins {tuple(self.spins.shape)} and fields {tuple(self.fields.shape)} must "
                f"both be (n_cfg, {lattice.n_sites}, 3)"
            )
        if self.eq is not None and self.eq.shape != self.spins.shape:
            raise HpcspinError("equilibrium fields must have the shape of the fields")
        self.glob = {}
        for name, arr in (("bias", bias), ("mu", mu)):
            if name in model.spec.globals:
                if arr is None:
                    raise HpcspinError(f"the model takes global input {name!r}: pass it")
                self.glob[name] = t(np.broadcast_to(np.asarray(arr, float), (n,)).copy())
        self.n = n
        self.separate = separate and self.eq is not None and model.head != "E"
        self.lattice = lattice
        w = np.ones(n) if neq_weight is None else np.asarray(neq_weight, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise HpcspinError(f"neq_weight must be (n_cfg,) = ({n},) finite and >= 0")
        if neq_weight is not None and not self.separate:
            raise HpcspinError("neq_weight needs separate targets (H(0) and H(V) - H(0))")
        self.w_neq = t(w)
        self.torque_weight = 0.0  # see TrainConfig.torque_weight
        self.vec = None  # per configuration (d, vb) of a fixed vector term, see cache_vectors
        self.fit = "both"  # see TrainConfig.fit

    def cache_vectors(self, model) -> None:
        """Compute the vector term's fixed inputs of every configuration once."""
        self.vec = [
            model.vector_inputs(self.spins[i : i + 1], self.lattice, self.globals_([i]))
            for i in range(self.n)
        ]

    def predict(self, model, idx, create_graph: bool) -> dict:
        """Predicted parts {"eq", "neq", "total"} of configurations ``idx``."""
        given = contextlib.nullcontext()
        if self.vec is not None:
            d = torch.cat([self.vec[i][0] for i in idx])
            vb = torch.cat([self.vec[i][1] for i in idx], 2)
            given = model.given_vector_inputs(d, vb)
        with given:
            return model.field(
                self.spins[idx],
                self.lattice,
                self.globals_(idx),
                create_graph=create_graph,
                parts=True,
            )

    def globals_(self, idx):
        return {k: v[idx] for k, v in self.glob.items()}


def _perp(h, s):
    return transverse(h, spins=s)


def _block_loss(model, data: _Data, idx, norm, create_graph=True):
    """Sum of squared transverse errors of configurations ``idx`` divided by ``norm``.

    With ``data.torque_weight`` > 0 the squared net-torque error of each configuration,
    |sum_i S_i x (H_i^pred - H_i)|^2, is added with that weight (of the current-induced
    part with separate targets): a wall's velocity follows its net torque, a sum over
    all sites in which small correlated site errors add up.
    """
    s = data.spins[idx]
    pred = data.predict(model, idx, create_graph)
    if data.separate:  # each part only where it is fitted (TrainConfig.fit)
        d2 = pred["neq"] - (data.fields[idx] - data.eq[idx])
        w = data.w_neq[idx]
        loss = torch.zeros((), dtype=d2.dtype, device=d2.device)
        if data.fit != "eq":
            loss = loss + (w[:, None, None] * _perp(d2, s) ** 2).sum()
        if data.fit != "neq":
            loss = loss + (_perp(pred["eq"] - data.eq[idx], s) ** 2).sum()
    else:
        d2 = pred["total"] - data.fields[idx]
        w = torch.ones(len(idx), dtype=d2.dtype, device=d2.device)
        loss = (_perp(d2, s) ** 2).sum()
    if data.torque_weight > 0 and data.fit != "eq":
        tq = torch.linalg.cross(s, d2, dim=-1).sum(1)
        loss = loss + data.torque_weight * (w * (tq**2).sum(1)).sum()
    return loss / norm


def _blocks(idx, block_size):
    return [idx[i : i + block_size] for i in range(0, len(idx), block_size)]


def _allsum(values: dict, n_blocks: int, comm):
    """Sum per-block numpy values over ranks in block order. Collective over comm."""
    if comm is not None and comm.Get_size() > 1:
        merged = {}
        for part in comm.allgather(values):
            merged.update(part)
        values = merged
    total = None
    for j in range(n_blocks):
        total = values[j].copy() if total is None else total + values[j]
    return total


def _mine(n_blocks, comm):
    if comm is None:
        return range(n_blocks)
    return range(comm.Get_rank(), n_blocks, comm.Get_size())


def _step(model, opt, data, batch, cfg, comm) -> float:
    """One optimiser step on the configurations ``batch``. Collective over comm."""
    params = [p for p in model.parameters() if p.requires_grad]
    blocks = _blocks(batch, cfg.block_size)
    norm = 3.0 * len(batch) * data.spins.shape[1]
    vals = {}
    for j in _mine(len(blocks), comm):
        loss = _block_loss(model, data, blocks[j], norm)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        vals[j] = np.concatenate([[loss.item()]] + [g.detach().cpu().numpy().ravel() for g in flat])
    total = _allsum(vals, len(blocks), comm)
    off = 1
    for p in params:
        k = p.numel()
        p.grad = torch.as_tensor(total[off : off + k], dtype=p.dtype, device=p.device).view_as(p)
        off += k
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(total[0])


def _mean_loss(model, data, idx, cfg, comm) -> float:
    """Loss (mean square transverse error) over ``idx``. Collective over comm."""
    if len(idx) == 0:
        return float("nan")
    blocks = _blocks(idx, cfg.block_size)
    norm = 3.0 * len(idx) * data.spins.shape[1]
    vals = {}
    for j in _mine(len(blocks), comm):
        with torch.no_grad():
            vals[j] = np.array([_block_loss(model, data, blocks[j], norm, False).item()])
    return float(_allsum(vals, len(blocks), comm)[0])


def _set_scales(model, data, train_idx):
    s = data.spins[train_idx]
    if data.separate:
        eq, neq = data.eq[train_idx], data.fields[train_idx] - data.eq[train_idx]
    else:
        eq = neq = data.fields[train_idx]
    fit = data.w_neq[train_idx] > 0  # the nonequilibrium scale from the fitted configs
    for buf, tgt, sel in ((model.scale_eq, eq, None), (model.scale_neq, neq, fit)):
        t, ss = (tgt, s) if sel is None or not bool(sel.any()) else (tgt[sel], s[sel])
        rms = float(torch.sqrt((_perp(t, ss) ** 2).mean())) if len(train_idx) else 1.0
        buf.fill_(rms if rms > 0 else 1.0)


def split_configs(n: int, val_fraction: float, seed: int):
    """Fixed train/validation split by configuration: (train_idx, val_idx), sorted."""
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _make_scheduler(opt, cfg):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(cfg.epochs, 1), eta_min=cfg.min_lr
        )
    return None


def _save_checkpoint(path, state):
    tmp = f"{path}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path, comm):
    """Checkpoint state or None. Collective over comm (rank 0 reads and broadcasts)."""

    def read():
        if not (path and os.path.exists(path)):
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt file: said on every rank
            raise HpcspinError(f"cannot read training checkpoint {path}: {exc}") from None

    return decide(comm, read)


def _predict(model, data: _Data, idx, cfg, comm) -> dict:
    """Predicted parts for configurations ``idx`` on every rank. Collective over comm."""
    blocks = _blocks(idx, cfg.block_size)
    vals = {}
    for j in _mine(len(blocks), comm):
        b = blocks[j]
        p = data.predict(model, b, False)
        vals[j] = {k: v.detach().cpu().numpy() for k, v in p.items()}
    if comm is not None and comm.Get_size() > 1:
        merged = {}
        for part in comm.allgather(vals):
            merged.update(part)
        vals = merged
    return {k: np.concatenate([vals[j][k] for j in range(len(blocks))]) for k in vals[0]}


def evaluate(model, data: _Data, idx, cfg, comm=None, prefix: str = "") -> dict:
    """Transverse RMSE, R^2 and net-torque error on configurations ``idx``.

    Collective over comm. Keys: ``{prefix}rmse`` etc. for the total field and, when
    equilibrium fields are known, ``{prefix}eq_*`` (E part vs H(0)) and
    ``{prefix}neq_*`` (A/vector part vs H(V) - H(0)).
    """
    if len(idx) == 0:
        return {}
    pred = _predict(model, data, idx, cfg, comm)
    s = data.spins[idx].cpu().numpy()
    h = data.fields[idx].cpu().numpy()
    out = field_metrics(pred["total"], h, s, prefix)
    if data.eq is not None:
        h0 = data.eq[idx].cpu().numpy()
        out.update(field_metrics(pred["eq"], h0, s, prefix + "eq_"))
        out.update(field_metrics(pred["neq"], h - h0, s, prefix + "neq_"))
    return out


@dataclass
class _State:
    epoch: int = 0
    best: float = float("inf")
    best_state: dict | None = None
    bad: int = 0
    history: list = field(default_factory=list)


def _checkpoint_state(model, opt, sched, st: _State, fp, spec, cfg) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": None if sched is None else sched.state_dict(),
        "epoch": st.epoch,
        "best": st.best,
        "best_state": st.best_state,
        "bad": st.bad,
        "history": st.history,
        "fingerprint": fp,
        "spec": spec.to_dict(),
        "config": {k: v for k, v in asdict(cfg).items() if k != "interrupt"},
        "torch_rng": torch.random.get_rng_state(),
    }


#: Training settings a resumed run must share with its checkpoint (epochs, patience and
#: the progress cadence may change: a run can be extended).
_SAME_ON_RESUME = (
    "lr",
    "batch_size",
    "block_size",
    "weight_decay",
    "seed",
    "val_fraction",
    "schedule",
    "lr_factor",
    "lr_patience",
    "min_lr",
    "separate_targets",
    "torque_weight",
    "fit",
)


def _training_changes(ck: dict, fingerprint: str, spec: ModelSpec, cfg: TrainConfig) -> list[str]:
    """What differs between a checkpoint's model/training settings and this run's."""
    changes = []
    if ck.get("fingerprint") != fingerprint:
        old = str(ck.get("fingerprint", "?"))[:12]
        changes.append(f"training data: fingerprint {old} -> {fingerprint[:12]}")
    old_spec, new_spec = ck.get("spec", {}), spec.to_dict()
    for k in sorted(set(old_spec) | set(new_spec)):
        if old_spec.get(k) != new_spec.get(k):
            changes.append(f"model {k}: {old_spec.get(k)!r} -> {new_spec.get(k)!r}")
    old_cfg = ck.get("config", {})
    defaults = TrainConfig()
    for k in _SAME_ON_RESUME:
        old = old_cfg.get(k, getattr(defaults, k))  # a key added later: its default then
        if old != getattr(cfg, k):
            changes.append(f"{k}: {old!r} -> {getattr(cfg, k)!r}")
    return changes


def _restore(ck, model, opt, sched, st: _State):
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if sched is not None and ck["scheduler"] is not None:
        sched.load_state_dict(ck["scheduler"])
    st.epoch, st.best, st.best_state = ck["epoch"], ck["best"], ck["best_state"]
    st.bad, st.history = ck["bad"], list(ck["history"])
    torch.random.set_rng_state(ck["torch_rng"])


def _epoch(model, opt, data, train_idx, cfg, epoch, comm) -> float:
    """One pass over the shuffled training configurations; mean training loss."""
    order = train_idx[np.random.default_rng([cfg.seed, epoch]).permutation(len(train_idx))]
    total = 0.0
    for i in range(0, len(order), cfg.batch_size):
        batch = order[i : i + cfg.batch_size]
        total += _step(model, opt, data, batch, cfg, comm) * len(batch)
    return total / max(len(order), 1)


def train_model(
    spins,
    fields,
    lattice,
    spec: ModelSpec | dict,
    config: TrainConfig | None = None,
    *,
    bias=None,
    mu=None,
    fields_eq=None,
    neq_weight=None,
    comm=None,
) -> TrainResult:
    """Fit a force model to NEGF (or synthetic) fields. Collective over comm.

    Args:
        spins: (n_cfg, N, 3) unit spins.
        fields: (n_cfg, N, 3) target fields H(V).
        lattice: the lattice of every configuration.
        spec: model specification (its ``kind`` must be the lattice's).
        config: hyperparameters (default :class:`TrainConfig`).
        bias: (n_cfg,) or scalar bias V (needed if the model takes "bias").
        mu: (n_cfg,) or scalar chemical potential (needed if it takes "mu").
        fields_eq: (n_cfg, N, 3) equilibrium fields H(0) of the same spins, for
            separate targets (see ``TrainConfig.separate_targets``).
        neq_weight: (n_cfg,) weights >= 0 of each configuration in the nonequilibrium
            part of the loss (H(V) - H(0); separate targets only); 0 leaves a
            configuration to the E part alone. Default: all 1.
        comm: mpi4py communicator for data parallelism, or None (serial). Every rank
            passes the same arrays.

    Returns:
        TrainResult with the best model (lowest validation loss), metrics on the
        training and validation configurations, the per-epoch history and the
        training-data fingerprint.
    """
    cfg = config or TrainConfig()
    spec = ModelSpec.from_dict(spec) if isinstance(spec, dict) else spec
    model = build_model(spec, seed=cfg.seed)
    model.check_lattice(lattice)
    weights = [] if neq_weight is None else [neq_weight]  # default: the fingerprint as before
    fp = data_fingerprint(spins, fields, bias, mu, fields_eq, *weights)
    data = _Data(
        model, lattice, spins, fields, bias, mu, fields_eq, cfg.separate_targets, neq_weight
    )
    data.torque_weight = float(cfg.torque_weight)
    if cfg.cache_vector_inputs and getattr(model, "vector_inputs_fixed", False):
        data.cache_vectors(model)
    train_idx, val_idx = split_configs(data.n, cfg.val_fraction, cfg.seed)
    _set_scales(model, data, train_idx)
    if cfg.init_state is not None:  # continued training starts from the given model
        model.load_state_dict(cfg.init_state, strict=True)
    with _fitting(model, data, cfg) as params:
        fit_train, fit_val = (_fitted(data, i, cfg.fit) for i in (train_idx, val_idx))
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        run = _Run(model, opt, _make_scheduler(opt, cfg), _State(), data, spec, cfg, fp, comm)
        _resume(run)
        _loop(run, fit_train, fit_val)
    st = run.st
    if st.best_state is not None:
        model.load_state_dict(st.best_state)
    metrics = {
        "epochs_run": st.epoch,
        "best_val_loss": st.best,
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
    }
    metrics.update(evaluate(model, data, train_idx, cfg, comm, "train_"))
    metrics.update(evaluate(model, data, val_idx, cfg, comm, "val_"))
    model.eval()
    return TrainResult(model, metrics, st.history, fp, lattice)


@contextlib.contextmanager
def _fitting(model: ForceModel, data: _Data, cfg: TrainConfig):
    """Restrict the model to the fitted part for the training loop; yields its parameters.

    The terms and the networks of the other part are set aside (no forward pass, no
    gradient) and restored on exit, so the saved model has every part.
    """
    if cfg.fit != "both" and not (data.separate and cfg.init_state is not None):
        raise HpcspinError(
            f"fit = {cfg.fit!r} needs split targets (H(0) and H(V) - H(0)), a head with "
            "both parts and a model to take the other part from (init_state)"
        )
    terms, fused = model.terms, model.fused
    keep = [t for t in terms if cfg.fit == "both" or t.equilibrium == (cfg.fit == "eq")]
    frozen = [getattr(model, t.net) for t in terms if t not in keep]
    data.fit, model.terms = cfg.fit, tuple(keep)
    if frozen:
        model.fused = False  # the analytic path packs every term's network together
    for net in frozen:
        net.requires_grad_(False)
    try:
        yield [p for p in model.parameters() if p.requires_grad]
    finally:
        data.fit, model.terms, model.fused = "both", terms, fused
        for net in frozen:
            net.requires_grad_(True)


def _fitted(data: _Data, idx, fit: str):
    """The configurations of ``idx`` whose loss is not zero under ``fit``."""
    if fit != "neq":
        return idx
    return idx[data.w_neq[idx].cpu().numpy() > 0]


@dataclass
class _Run:
    """Everything one training run carries between its phases."""

    model: ForceModel
    opt: object
    sched: object
    st: _State
    data: _Data
    spec: ModelSpec
    cfg: TrainConfig
    fp: str
    comm: object = None

    @property
    def rank(self) -> int:
        return 0 if self.comm is None else self.comm.Get_rank()


def _resume(run: _Run) -> None:
    """Continue from the run's checkpoint when it exists and fits (or refuse / start afresh)."""
    cfg = run.cfg
    ck = _load_checkpoint(cfg.checkpoint, run.comm) if cfg.checkpoint and cfg.resume else None
    changes = [] if ck is None else _training_changes(ck, run.fp, run.spec, cfg)
    if changes:
        what = "; ".join(changes)
        if not cfg.fresh_on_mismatch:
            raise collective_error(  # every rank holds the same checkpoint (broadcast)
                f"training checkpoint {cfg.checkpoint} belongs to another model or other "
                f"training settings ({what}): delete it, choose another model file, or "
                "set [output] resume = 'matching' or 'never' to start afresh"
            )
        log.warning(
            "training checkpoint %s is of other settings (%s): starting afresh",
            cfg.checkpoint,
            what,
        )
        ck = None
    if ck is not None:
        _restore(ck, run.model, run.opt, run.sched, run.st)
        log.info("resumed training from %s at epoch %d", cfg.checkpoint, run.st.epoch)


def _record(run: _Run, loss: float, val: float) -> float:
    """Scheduler step, history, best state after one epoch; returns the epoch's lr."""
    st, sched = run.st, run.sched
    if not (np.isfinite(loss) and np.isfinite(val)):  # same reduced value on every rank
        raise collective_error(
            f"training loss is not finite at epoch {st.epoch + 1} (loss {loss}, validation "
            f"{val}); lower [train] lr or check the dataset (last checkpoint kept)"
        )
    lr = run.opt.param_groups[0]["lr"]
    if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
        sched.step(val)
    elif sched is not None:
        sched.step()
    st.history.append({"epoch": st.epoch + 1, "loss": loss, "val_loss": val, "lr": lr})
    if val < st.best:
        st.best, st.best_state, st.bad = val, copy.deepcopy(run.model.state_dict()), 0
    else:
        st.bad += 1
    st.epoch += 1
    return lr


def _checkpoint_or_halt(run: _Run) -> None:
    """Write the checkpoint when due; stop on a signal (RunInterrupted) after writing it."""
    st, cfg = run.st, run.cfg
    stop = st.epoch == cfg.epochs or (cfg.patience and st.bad >= cfg.patience)
    halt = bool(cfg.interrupt()) if cfg.interrupt is not None and not stop else False
    if cfg.checkpoint and run.rank == 0 and (st.epoch % cfg.checkpoint_every == 0 or stop or halt):
        state = _checkpoint_state(run.model, run.opt, run.sched, st, run.fp, run.spec, cfg)
        _save_checkpoint(cfg.checkpoint, state)
    if halt:
        from hpcspin.errors import RunInterrupted

        raise RunInterrupted(
            f"stopped on a signal after epoch {st.epoch}; checkpoint "
            f"{cfg.checkpoint or '(none: checkpoint not configured)'}; run again to resume"
        )


def _loop(run: _Run, train_idx, val_idx) -> None:
    """Epochs until the limit or early stopping. Collective over run.comm."""
    st, cfg, comm = run.st, run.cfg, run.comm
    prog = Progress(cfg.epochs, "epochs", run.rank, cfg.log_interval, logger=log, start=st.epoch)
    while st.epoch < cfg.epochs and not (cfg.patience and st.bad >= cfg.patience):
        loss = _epoch(run.model, run.opt, run.data, train_idx, cfg, st.epoch, comm)
        val = _mean_loss(run.model, run.data, val_idx, cfg, comm) if len(val_idx) else loss
        lr = _record(run, loss, val)
        prog.update(st.epoch, extra=f"loss {loss:.3e}  val {val:.3e}  lr {lr:.1e}")
        _checkpoint_or_halt(run)
