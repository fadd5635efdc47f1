"""Deck sections: one frozen dataclass each, with defaults, units and rules.

Units: hopping t = 1 (energies), hbar/t (times), lattice constant 1, |S| = 1.
The defaults are the reference domain-wall experiment (docs/physics.md, the reference experiment).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from hpcspin.deck.fields import opt

TASKS = ("negf", "datagen", "train", "dynamics", "validate")
HEADS = ("E", "EA", "E+vector")


@dataclass(frozen=True)
class RunSection:
    """``[run]``: what to do."""

    task: str = opt(doc="task to run", kind=str, choices=TASKS)
    name: str = opt("run", doc="label used in file names and logs", kind=str)
    seed: int = opt(1234, doc="master random seed", kind=int, ge=0)


@dataclass(frozen=True)
class LatticeSection:
    """``[lattice]``: the central region between the leads."""

    kind: str = opt(
        "chain",
        doc="chain, square or triangular strip",
        kind=str,
        choices=("chain", "square", "triangular"),
    )
    length: int = opt(60, doc="L: sites (columns) along the transport direction x", kind=int, ge=2)
    width: int = opt(1, doc="W: rows of a strip (1 for the chain)", kind=int, ge=1)
    periodic: bool = opt(False, doc="periodic transverse (y) boundary", kind=bool)


@dataclass(frozen=True)
class ElectronsSection:
    """``[electrons]``: conduction electrons, leads and drive (energies in t)."""

    t: float = opt(1.0, doc="nearest-neighbour hopping", kind=float, gt=0)
    J: float = opt(2.0, doc="s-d exchange coupling", kind=float)
    mu: float = opt(-1.0, doc="mean chemical potential", kind=float)
    bias: float = opt(0.0, doc="bias V: mu_L = mu + V/2, mu_R = mu - V/2", kind=float)
    temperature: float = opt(0.05, doc="electron temperature T_el (0 allowed)", kind=float, ge=0)
    lead: str = opt(
        "tight-binding", doc="lead model", kind=str, choices=("tight-binding", "wide-band")
    )
    t_lead: float = opt(1.0, doc="hopping inside the leads", kind=float, gt=0)
    t_contact: float = opt(1.0, doc="hopping between lead and central region", kind=float, gt=0)
    gamma: float = opt(1.0, doc="wide-band coupling Gamma on contact sites", kind=float, gt=0)
    onsite: float = opt(0.0, doc="uniform on-site potential eps", kind=float)


@dataclass(frozen=True)
class SpinsSection:
    """``[spins]``: classical spin energy and the initial state."""

    J_H: float = opt(1.0, doc="Heisenberg exchange between neighbouring spins", kind=float)
    K: float = opt(0.1, doc="easy-axis anisotropy", kind=float, ge=0)
    easy_axis: tuple = opt([0.0, 0.0, 1.0], doc="easy axis", kind=tuple, item=float, length=3)
    K_perp: float = opt(0.0, doc="hard-axis anisotropy", kind=float, ge=0)
    hard_axis: tuple = opt([1.0, 0.0, 0.0], doc="hard axis", kind=tuple, item=float, length=3)
    B: tuple = opt(
        [0.0, 0.0, 0.0], doc="external field (energy units)", kind=tuple, item=float, length=3
    )
    initial: str = opt(
        "wall", doc="initial state", kind=str, choices=("wall", "uniform", "random", "file")
    )
    wall_kind: str = opt("bloch", doc="wall type", kind=str, choices=("bloch", "neel"))
    wall_center: float = opt(
        -1.0, doc="wall centre X0; negative: the middle bond (L-1)/2", kind=float
    )
    wall_width: float = opt(0.0, doc="wall width lambda; 0: sqrt(J_H/(2K))", kind=float, ge=0)
    walls: int = opt(1, doc="number of walls (alternating, evenly spaced)", kind=int, ge=1)
    direction: tuple = opt(
        [0.0, 0.0, 1.0], doc="direction of a uniform state", kind=tuple, item=float, length=3
    )
    noise: float = opt(
        0.0, doc="random tilt added to the initial state (radians, rms)", kind=float, ge=0
    )
    file: str = opt("", doc="HDF5 file with a 'spins' (N, 3) dataset (initial = 'file')", kind=str)


@dataclass(frozen=True)
class NegfSection:
    """``[negf]``: the NEGF solver and its accuracy."""

    solver: str = opt(
        "rgf", doc="linear-algebra backend", kind=str, choices=("rgf", "petsc", "dense")
    )
    tol: float = opt(
        1e-6, doc="accuracy knob: target error of the spin density", kind=float, gt=0, lt=1e-2
    )
    transmission: bool = opt(False, doc="also compute T(E) (negf task)", kind=bool)
    transmission_range: tuple = opt(
        [-4.0, 4.0], doc="energy range of T(E)", kind=tuple, item=float, length=2
    )
    transmission_points: int = opt(201, doc="energies of T(E)", kind=int, ge=2)
    ranks_per_solve: int = opt(
        1,
        doc="ranks that solve one linear system together (PETSc on a group communicator); "
        "the groups split the energy points",
        kind=int,
        ge=1,
    )
    scheme: str = opt(
        "reference",
        doc="NEGF kernels: 'reference' (numpy; bit-identical to earlier versions) or 'fast' "
        "(compiled chain kernels if numba is installed; warm-started grids in dynamics)",
        kind=str,
        choices=("reference", "fast"),
    )
    estimate: str = opt(
        "strict",
        doc="window error estimate: 'strict' (|K15 - G7|: achieved errors 15-2000x below tol) "
        "or 'calibrated' (extrapolated K15 error: 2-300x below tol, fewer points; docs/negf.md)",
        kind=str,
        choices=("strict", "calibrated"),
    )
    eta: float = opt(
        0.0,
        doc="broadening of the centre in t: H -> H - i eta (electrons relax at rate 2 eta/hbar "
        "to a bath at the right lead's distribution); 0 = the exact steady state (docs/negf.md)",
        kind=float,
        ge=0.0,
        lt=0.5,
        hint="0 (default, exact) or a small rate such as 1e-4; it must stay far below T_el and V",
    )


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the ML force model."""

    head: str = opt(
        "E+vector",
        doc="E (equilibrium), EA (two potentials), E+vector (driven)",
        kind=str,
        choices=HEADS,
    )
    radius: int = opt(
        3,
        doc="descriptor radius r in lattice constants (design 'window': at most 8, its "
        "all-pairs features grow as r^4 on strips)",
        kind=int,
        ge=1,
        le=16,
    )
    hidden: tuple = opt(
        [32, 32], doc="hidden layer widths", kind=tuple, item=int, ge=1, length=(1, 6)
    )
    global_inputs: tuple = opt(
        ["bias"],
        doc="global inputs of the network",
        kind=tuple,
        item=str,
        choices=("bias", "mu"),
        length=(0, 2),
    )
    chain_mirror: bool = opt(
        True,
        doc="chains with a bias input: build in the exact symmetry x -> -x with V -> -V",
        kind=bool,
    )
    bias_gate: bool = opt(
        True,
        doc="E ignores the bias; the nonequilibrium head is multiplied by V (zero at V = 0)",
        kind=bool,
    )
    design: str = opt(
        "window",
        doc="descriptor window: 'window' (cells within radius, all pairs) or 'columns' "
        "(strips: |x| <= radius, |row| <= rows, pairs with the centre and near bonds)",
        kind=str,
        choices=("window", "columns"),
    )
    rows: int = opt(
        3, doc="'columns' design: largest row offset (W - 1: whole cross-section)", kind=int, ge=0
    )
    pair_cutoff: float = opt(
        1.0,
        doc="'columns' design: largest distance of a non-centre pair feature (lattice constants)",
        kind=float,
        ge=1.0,
    )
    drive_symmetry: bool = opt(
        False,
        doc="strips with a bias input: build in the inversion with V -> -V (v(-V) = -v(V))",
        kind=bool,
    )
    eq_radius: float = opt(
        0.0,
        doc="with drive_symmetry: radius of a plain window for the E head alone (0: the "
        "model's window; a small one makes training cheaper)",
        kind=float,
        ge=0.0,
        le=8.0,
    )
    file: str = opt(
        "model.pt", doc="model file (written by train, read by dynamics/validate)", kind=str
    )
    dtype: str = opt(
        "float64", doc="floating-point precision", kind=str, choices=("float32", "float64")
    )
    accept_domain: tuple = opt(
        [],
        doc="[electrons] keys that may differ from the model's training values, and "
        "'lattice' for a strip model on another strip (run outside its domain on purpose; "
        "a warning instead of a refusal)",
        kind=tuple,
        item=str,
        choices=(
            "t",
            "J",
            "mu",
            "temperature",
            "lead",
            "t_lead",
            "t_contact",
            "gamma",
            "onsite",
            "lattice",
        ),
        length=(0, 10),
    )


@dataclass(frozen=True)
class TrainSection:
    """``[train]``: fitting the model to a dataset."""

    dataset: str = opt("dataset.h5", doc="training dataset (from the datagen task)", kind=str)
    extra_datasets: tuple = opt(
        [],
        doc="further datasets of the same system appended to dataset (e.g. NEGF labels "
        "of configurations flagged during dynamics: active learning)",
        kind=tuple,
        item=str,
    )
    init_model: str = opt(
        "",
        doc="model file of the deck's architecture to continue training from (e.g. with "
        "new data: active learning); empty: random initial weights",
        kind=str,
    )
    epochs: int = opt(300, doc="maximum epochs", kind=int, ge=1)
    lr: float = opt(3e-3, doc="initial learning rate", kind=float, gt=0)
    batch_size: int = opt(8, doc="configurations per batch (over all ranks)", kind=int, ge=1)
    weight_decay: float = opt(0.0, doc="L2 weight decay", kind=float, ge=0)
    val_fraction: float = opt(0.2, doc="share of configurations held out", kind=float, gt=0, lt=1)
    patience: int = opt(40, doc="early stopping: epochs without improvement", kind=int, ge=1)
    targets: str = opt(
        "split",
        doc="total field, or H(0) and H(V)-H(0) separately",
        kind=str,
        choices=("total", "split"),
    )
    neq_kinds: tuple = opt(
        [],
        doc="configuration families (dataset kind names) whose H(V)-H(0) the "
        "nonequilibrium head fits; the E head still fits H(0) of all (empty: all)",
        kind=tuple,
        item=str,
    )
    neq_kind_weights: tuple = opt(
        [],
        doc="a weight per neq_kinds family in the current-induced loss (same order; empty: "
        "all 1): a family with large errors that cannot be fitted (noisy walls) otherwise "
        "outweighs the clean walls that the dynamics visits",
        kind=tuple,
        item=float,
    )
    neq_loss_weight: float = opt(
        1.0,
        doc="weight of the current-induced part H(V) - H(0) in the loss relative to H(0) "
        "(split targets): it also steers the learning-rate schedule and the best-epoch "
        "choice, which the larger equilibrium error dominates at 1",
        kind=float,
        gt=0,
    )
    torque_weight: float = opt(
        0.0,
        doc="weight of each configuration's squared net-torque error |sum_i S_i x dH_i|^2 "
        "in the loss (current-induced part): a wall moves with its net torque, a sum in "
        "which correlated site errors add up; 0 fits site fields alone",
        kind=float,
        ge=0,
    )
    bias_balance: bool = opt(
        False,
        doc="weigh each configuration's current-induced error by (V_max / V)^2: the field "
        "grows about linearly with V, so relative errors count alike at every bias (else "
        "the largest bias dominates the loss)",
        kind=bool,
    )
    fit: str = opt(
        "both",
        doc="which part to fit: both, or only 'eq' (the E head on H(0)) or 'neq' (the "
        "current-induced head on H(V) - H(0) of the neq_kinds configurations), the other "
        "part taken from init_model (split targets; a part trained alone gets its own "
        "schedule and best epoch, at the cost of that part alone)",
        kind=str,
        choices=("both", "eq", "neq"),
    )
    min_eq_r2: float = opt(
        0.95, doc="WARNING when the held-out R^2 of the equilibrium field is below", kind=float
    )
    min_neq_r2: float = opt(
        0.8,
        doc="WARNING when the held-out R^2 of the current-induced field on clean walls is below",
        kind=float,
    )
    max_torque_err: float = opt(
        0.1,
        doc="WARNING when the held-out relative net-torque error (clean walls) is above",
        kind=float,
        ge=0,
    )


@dataclass(frozen=True)
class DatagenSection:
    """``[datagen]``: sampling spin configurations for the training set."""

    n_configs: int = opt(64, doc="number of configurations", kind=int, ge=1)
    biases: tuple = opt(
        [0.5], doc="biases V drawn per configuration", kind=tuple, item=float, length=(1, 64)
    )
    with_equilibrium: bool = opt(
        True, doc="also store the V = 0 field of each configuration", kind=bool
    )
    mix: tuple = opt(
        [0.7, 0.2, 0.1],
        doc="shares of walls, smooth textures, random spins",
        kind=tuple,
        item=float,
        ge=0,
        length=3,
    )
    noise: tuple = opt(
        [0.0, 0.3],
        doc="range of thermal tilt on walls (radians rms)",
        kind=tuple,
        item=float,
        ge=0,
        length=2,
    )
    width_range: tuple = opt(
        [1.5, 3.5], doc="range of wall widths", kind=tuple, item=float, gt=0, length=2
    )
    flush_every: int = opt(8, doc="configurations between dataset flushes", kind=int, ge=1)
    ranks_per_config: int = opt(
        1,
        doc="ranks that compute one configuration together (its energy points split "
        "between them); the groups share the configurations",
        kind=int,
        ge=1,
    )
    snapshots: str = opt(
        "",
        doc="HDF5 file of spin snapshots (a trajectory, e.g. of an NEGF-driven run, or a "
        "'spins' (N, 3) dataset) to draw configurations from",
        kind=str,
    )
    snapshot_share: float = opt(
        0.0, doc="share of configurations taken from the snapshots", kind=float, ge=0, le=1
    )


@dataclass(frozen=True)
class DynamicsSection:
    """``[dynamics]``: Landau-Lifshitz-Gilbert integration (times in hbar/t)."""

    forces: str = opt(
        "ml",
        doc="electron forces (the classical field is always added)",
        kind=str,
        choices=("ml", "negf", "none"),
    )
    integrator: str = opt(
        "rk4", doc="time stepper", kind=str, choices=("rk4", "sib", "depondt", "heun")
    )
    dt: float = opt(0.2, doc="time step", kind=float, gt=0)
    t_end: float = opt(500.0, doc="simulated time after relaxation", kind=float, gt=0)
    alpha: float = opt(0.1, doc="Gilbert damping", kind=float, ge=0)
    relax: bool = opt(True, doc="relax at V = 0 before the drive", kind=bool)
    relax_alpha: float = opt(0.5, doc="damping during relaxation", kind=float, gt=0)
    relax_tol: float = opt(
        1e-7, doc="relaxation ends when max|S x H| < relax_tol", kind=float, gt=0
    )
    relax_max_time: float = opt(400.0, doc="upper bound on relaxation time", kind=float, gt=0)
    temperature: float = opt(
        0.0, doc="spin temperature (stochastic field; heun only)", kind=float, ge=0
    )
    ml_dtype: str = opt(
        "float64",
        doc="precision of the ML force evaluation (forces = 'ml'); float32 is faster, its "
        "field differs by ~1e-7 relative, too coarse for relax_tol below ~1e-6 (docs/ml.md)",
        kind=str,
        choices=("float64", "float32"),
    )
    committee: tuple = opt(
        [],
        doc="model files of a committee (forces = 'ml'): their per-site disagreement is "
        "written to every frame (committee_max, committee_mean, committee_site)",
        kind=tuple,
        item=str,
    )
    committee_threshold: float = opt(
        0.0,
        doc="disagreement (field units) above which committee_action applies; 0: never",
        kind=float,
        ge=0,
    )
    committee_action: str = opt(
        "warn",
        doc="above the threshold: warn, flag (also append the configuration to "
        "committee_file) or stop (flag, then exit 2)",
        kind=str,
        choices=("warn", "flag", "stop"),
    )
    committee_file: str = opt(
        "flagged.h5",
        doc="snapshots file of flagged configurations, in [output] dir (datagen snapshots)",
        kind=str,
    )
    spot_check_every: int = opt(
        0,
        doc="steps between NEGF spot checks of the ML field (forces = 'ml'; 0: none); "
        "spot_rms, spot_rel_rms, spot_torque_err in the frames",
        kind=int,
        ge=0,
    )


@dataclass(frozen=True)
class OutputSection:
    """``[output]``: where and how often results are written."""

    dir: str = opt("runs/out", doc="output directory (relative to the working directory)", kind=str)
    every: int = opt(10, doc="steps between trajectory frames", kind=int, ge=1)
    checkpoint_every: int = opt(500, doc="steps between checkpoints", kind=int, ge=1)
    resume: str = opt(
        "auto",
        doc="auto: continue from the newest valid checkpoint (dynamics, train: refused "
        "if the deck changed what the run computes); matching: continue only a run of "
        "the same settings, else start afresh; never: always start afresh",
        kind=str,
        choices=("auto", "matching", "never"),
    )
    progress_interval: float = opt(10.0, doc="seconds between progress lines", kind=float, ge=0)
    plots: bool = opt(True, doc="write PNG plots at the end", kind=bool)


@dataclass(frozen=True)
class ParallelSection:
    """``[parallel]``: process grid and devices."""

    grid: tuple = opt(
        [], doc="process grid [px, py]; empty: automatic", kind=tuple, item=int, ge=1, length=(0, 2)
    )
    device: str = opt(
        "auto",
        doc="ML device: auto (cuda if present), cpu or cuda",
        kind=str,
        choices=("auto", "cpu", "cuda"),
    )


@dataclass(frozen=True)
class ValidateSection:
    """``[validate]``: comparing ML models with NEGF."""

    models: tuple = opt(
        [], doc="model files to compare (empty: [model] file)", kind=tuple, item=str, length=(0, 8)
    )
    dataset: str = opt("", doc="held-out dataset (empty: [train] dataset)", kind=str)
    velocity_biases: tuple = opt(
        [0.5], doc="biases for the wall-velocity comparison", kind=tuple, item=float, length=(0, 16)
    )
    velocity_t_end: float = opt(
        250.0, doc="driven time of the velocity comparison", kind=float, gt=0
    )


SECTIONS: dict[str, type] = {
    "run": RunSection,
    "lattice": LatticeSection,
    "electrons": ElectronsSection,
    "spins": SpinsSection,
    "negf": NegfSection,
    "model": ModelSection,
    "train": TrainSection,
    "datagen": DatagenSection,
    "dynamics": DynamicsSection,
    "output": OutputSection,
    "parallel": ParallelSection,
    "validate": ValidateSection,
}


@dataclass(frozen=True)
class RunConfig:
    """A whole validated deck: one attribute per section, plus the deck text."""

    run: RunSection
    lattice: LatticeSection
    electrons: ElectronsSection
    spins: SpinsSection
    negf: NegfSection
    model: ModelSection
    train: TrainSection
    datagen: DatagenSection
    dynamics: DynamicsSection
    output: OutputSection
    parallel: ParallelSection
    validate: ValidateSection
    deck_text: str = ""
    deck_path: str = ""

    def to_dict(self) -> dict:
        """Resolved configuration as plain data (for provenance attributes)."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    def to_json(self) -> str:
        """Resolved configuration as JSON text."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def replace(self, section: str, **changes) -> RunConfig:
        """A copy with some keys of one section changed (no validation)."""
        new = dataclasses.replace(getattr(self, section), **changes)
        return dataclasses.replace(self, **{section: new})
