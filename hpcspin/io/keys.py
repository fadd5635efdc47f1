"""Names of every file, HDF5 dataset and attribute hpcspin writes, with shape, unit, meaning.

One module, so that writers and readers never spell a name twice; the tables
(:data:`DATASETS`, :data:`ATTRS`) are what ``docs/outputs.md`` documents and what the
tests compare with files actually written. Shapes use ``n_frames`` (trajectory
frames), ``n_cfg`` (configurations of a dataset), ``n_E`` (energy points), ``N``
(sites), ``L`` x ``W`` (columns x rows), ``n_walls`` (wall centres tracked). Units: t = 1
(energies), hbar = 1 (times in hbar/t), |S| = 1, lattice constant 1; currents are
particle currents in units of t/hbar (electrons per unit time, left to right > 0).

Pure data: no h5py here (``annotate`` works on anything with an ``attrs`` mapping).
"""

from __future__ import annotations

from dataclasses import dataclass

# -- file names inside an [output] dir ----------------------------------------------
TRAJECTORY_FILE = "trajectory.h5"  # dynamics: frames
TRAJECTORY_VTKHDF = "trajectory.vtkhdf"  # dynamics: VTKHDF sidecar (ParaView)
SUMMARY_FILE = "summary.json"  # dynamics: velocity, per-wall velocities, timings
CHECKPOINT_DIR = "checkpoints"  # dynamics: checkpoint_<step>.h5
TRAJECTORY_PNG = "trajectory.png"  # dynamics plot
DATASET_FILE = "dataset.h5"  # datagen
DATAGEN_SUMMARY_FILE = "datagen_summary.json"  # datagen timings (next to the dataset)
NEGF_FILE = "negf.h5"  # negf task
NEGF_SUMMARY_FILE = "negf_summary.json"  # negf task summary
VALIDATION_FILE = "validation.json"  # validate: held-out field metrics
VELOCITY_JSON = "velocity.json"  # validate: v(V) per method
VELOCITY_MD = "velocity.md"  # validate: the same as a table
VELOCITY_PNG = "velocity.png"  # validate plot
FIELDS_PARITY_PNG = "fields_parity.png"  # validate plot
TRAIN_SUMMARY_SUFFIX = "_train.json"  # train: <model stem>_train.json

# -- per-frame data of a trajectory (kind "trajectory") ------------------------------
SPINS = "spins"  # also the spins of negf, dataset and checkpoint files
TIME = "time"
STEP = "step"
POSITIONS = "positions"
WALL_X = "wall_x"
WALL_CENTRES = "wall_centres"
MAGNETISATION = "magnetisation"
ENERGY = "energy"
CURRENT = "current"  # also in negf and dataset files

# -- dataset of configurations and reference fields (kind "dataset") -----------------
FIELD = "field"  # also in negf files
FIELD_EQ = "field_eq"
DENSITY = "spin_density"  # also in negf files
BIAS = "bias"
MU = "mu"
SAMPLE_KIND = "kind"
NOISE = "noise"
WALL_CENTER = "wall_center"
WALL_WIDTH = "wall_width"
NEGF_ERROR = "negf_error"
SESSION = "session"
DONE = "done"

# -- NEGF results (kind "negf") --------------------------------------------------------
CHARGE = "charge_density"
ENERGIES = "energies"
TRANSMISSION = "transmission"

# -- checkpoint (kind "checkpoint") ----------------------------------------------------
RNG_STATE = "rng_state"

# -- attributes ---------------------------------------------------------------------------
N_FRAMES_DONE = "n_frames_done"
RNG_FORMAT = "rng_format"
CK_TIME = "time"
CK_STEP = "step"
EXTRA = "extra_json"
CHECKSUM = "spins_crc32"  # the name predates the 64-bit hash; kept for older files
COMPLETE = "complete"
DECK_TEXT = "deck"
CONFIG = "config_json"
VERSION = "hpcspin_version"
UNITS = "units"
N_RANKS = "n_ranks"
KIND = "hpcspin_kind"
N_SITES = "n_sites"
LATTICE_SHAPE = "lattice_shape"
LATTICE_KIND = "lattice_kind"
FINGERPRINT = "fingerprint"
FINGERPRINT_JSON = "fingerprint_json"
N_CONFIGS = "n_configs"
SESSIONS = "sessions"
KIND_NAMES = "kind_names"
LATTICE_JSON = "lattice_json"
ELECTRONS_JSON = "electrons_json"
SAMPLER_JSON = "sampler_json"
NEGF_JSON = "negf_json"
#: per-dataset attributes of trajectories (and negf files): unit and meaning
UNIT_ATTR = "unit"
DESCRIPTION_ATTR = "description"
NAN_REASON_ATTR = "nan_reason"  # why a dataset holds NaN (e.g. no current with ML forces)

KINDS = ("trajectory", "checkpoint", "dataset", "negf")
UNITS_TEXT = "t = 1, hbar = 1, |S| = 1, lattice constant = 1, e = 1"


@dataclass(frozen=True)
class Entry:
    """One dataset or attribute: shape (as text), dtype, unit and meaning.

    Attributes:
        shape: symbolic shape, e.g. ``"(n_frames, N, 3)"``; ``""`` for scalars.
        dtype: numpy dtype name, or ``"str"``.
        unit: unit in the project's system (``"1"``: dimensionless).
        description: meaning, one line.
        optional: written only in some runs (the condition is in the description).
    """

    shape: str
    dtype: str
    unit: str
    description: str
    optional: bool = False


E = Entry
_V3 = "(n_cfg, N, 3)"
PROVENANCE = {
    DECK_TEXT: E("", "str", "", "the input deck, verbatim"),
    CONFIG: E("", "str", "", "the resolved configuration as JSON"),
    VERSION: E("", "str", "", "hpcspin version of the writer"),
    UNITS: E("", "str", "", "unit system: " + UNITS_TEXT),
    N_RANKS: E("", "int64", "", "MPI ranks that wrote the file"),
    KIND: E("", "str", "", "file kind: one of " + ", ".join(KINDS)),
}

#: Datasets of every file kind.
DATASETS: dict[str, dict[str, Entry]] = {
    "trajectory": {
        SPINS: E("(n_frames, N, 3)", "float64", "1", "unit spins S_i, site i = x*W + y"),
        TIME: E("(n_frames,)", "float64", "hbar/t", "simulated time since the drive started"),
        STEP: E("(n_frames,)", "int64", "1", "integrator step of the frame"),
        POSITIONS: E("(N, 3)", "float64", "a", "Cartesian site positions (lattice constant a)"),
        WALL_X: E("(n_frames,)", "float64", "a", "centre of the followed wall (column index)"),
        WALL_CENTRES: E(
            "(n_frames, n_walls)",
            "float64",
            "a",
            "every wall centre, sorted; NaN where fewer walls remain",
        ),
        MAGNETISATION: E("(n_frames, 3)", "float64", "1", "mean spin over all sites"),
        ENERGY: E("(n_frames,)", "float64", "t", "classical spin energy H_spin"),
        CURRENT: E(
            "(n_frames,)",
            "float64",
            "t/hbar",
            "Landauer particle current, left to right > 0 (NaN without NEGF forces)",
        ),
    },
    "dataset": {
        SPINS: E(_V3, "float64", "1", "unit spins S_i, site i = x*W + y"),
        FIELD: E(_V3, "float64", "t", "electron field H_i^el = J s_i at the bias V"),
        FIELD_EQ: E(_V3, "float64", "t", "the same at V = 0 (with_equilibrium)", True),
        DENSITY: E(_V3, "float64", "1", "electron spin density s_i at the bias V"),
        BIAS: E("(n_cfg,)", "float64", "t", "bias V = mu_L - mu_R"),
        MU: E("(n_cfg,)", "float64", "t", "mean chemical potential (mu_L + mu_R) / 2"),
        CURRENT: E("(n_cfg,)", "float64", "t/hbar", "particle current at V, left to right > 0"),
        SAMPLE_KIND: E("(n_cfg,)", "int8", "1", "sampler kind, index into attr kind_names"),
        NOISE: E("(n_cfg,)", "float64", "rad", "rms thermal tilt of noisy configurations"),
        WALL_CENTER: E("(n_cfg,)", "float64", "a", "wall centre X0 (NaN: not a wall)"),
        WALL_WIDTH: E("(n_cfg,)", "float64", "a", "wall width lambda (NaN: not a wall)"),
        NEGF_ERROR: E(
            "(n_cfg,)", "float64", "1", "achieved NEGF error estimate of s_i (> tol: not met)", True
        ),
        SESSION: E("(n_cfg,)", "int16", "1", "run session that computed the row (-1: none)"),
        DONE: E("(n_cfg,)", "uint8", "1", "1: row complete"),
    },
    "negf": {
        SPINS: E("(N, 3)", "float64", "1", "unit spins S_i, site i = x*W + y"),
        DENSITY: E("(N, 3)", "float64", "1", "electron spin density s_i"),
        FIELD: E("(N, 3)", "float64", "t", "electron field J s_i on each spin"),
        CHARGE: E("(N,)", "float64", "1", "electrons per site (both spins)"),
        CURRENT: E("()", "float64", "t/hbar", "Landauer particle current, left to right > 0"),
        ENERGIES: E("(n_E,)", "float64", "t", "energies of T(E) ([negf] transmission)", True),
        TRANSMISSION: E("(n_E,)", "float64", "1", "transmission T(E)", True),
    },
    "checkpoint": {
        SPINS: E("(N, 3)", "float64", "1", "unit spins S_i, site i = x*W + y"),
        RNG_STATE: E("(n_bytes,)", "uint8", "", "random generator state (see rng_format)"),
    },
}

#: Root attributes of every file kind (provenance included).
ATTRS: dict[str, dict[str, Entry]] = {
    "trajectory": {
        **PROVENANCE,
        N_SITES: E("", "int64", "", "N"),
        LATTICE_SHAPE: E("(2,)", "int64", "", "(L, W): columns and rows"),
        LATTICE_KIND: E("", "str", "", "chain, square or triangular"),
        N_FRAMES_DONE: E("", "int64", "", "frames fully written (live readers stop here)"),
    },
    "dataset": {
        **PROVENANCE,
        N_SITES: E("", "int64", "", "N"),
        LATTICE_SHAPE: E("(2,)", "int64", "", "(L, W): columns and rows"),
        FINGERPRINT: E("", "str", "", "sha256 of fingerprint_json"),
        FINGERPRINT_JSON: E("", "str", "", "canonical JSON of what defines the data"),
        N_CONFIGS: E("", "int64", "", "n_cfg"),
        SESSIONS: E("", "int64", "", "run sessions that wrote the file so far"),
        KIND_NAMES: E("", "str", "", "JSON list: sampler kind index -> name"),
        LATTICE_JSON: E("", "str", "", "the [lattice] section"),
        ELECTRONS_JSON: E("", "str", "", "the [electrons] section"),
        SAMPLER_JSON: E("", "str", "", "sampler settings"),
        NEGF_JSON: E("", "str", "", "the [negf] section"),
    },
    "negf": dict(PROVENANCE),
    "checkpoint": {
        **PROVENANCE,
        N_SITES: E("", "int64", "", "N"),
        LATTICE_SHAPE: E("(2,)", "int64", "", "(L, W): columns and rows"),
        CK_TIME: E("", "float64", "hbar/t", "simulated time of the checkpoint"),
        CK_STEP: E("", "int64", "", "integrator step of the checkpoint"),
        EXTRA: E("", "str", "", "JSON of further state a restart needs (phase, wall_x, ...)"),
        RNG_FORMAT: E("", "str", "", '"bytes" or "json": how to decode rng_state'),
        CHECKSUM: E("", "uint64", "", "64-bit position-mixed hash of the spins (checked on read)"),
        COMPLETE: E("", "bool", "", "written last; absent: an interrupted write"),
    },
}


def annotate(dataset, kind: str, name: str | None = None) -> None:
    """Store the unit and description of ``DATASETS[kind][name]`` as attributes.

    Args:
        dataset: an h5py dataset (anything with an ``attrs`` mapping and a ``name``).
        kind: file kind.
        name: dataset name (default: the last part of ``dataset.name``).
    """
    entry = DATASETS[kind][name or dataset.name.rsplit("/", 1)[-1]]
    dataset.attrs[UNIT_ATTR] = entry.unit
    dataset.attrs[DESCRIPTION_ATTR] = entry.description
