"""Names of every HDF5 dataset and attribute hpcspin writes, with shape and meaning.

One module, so writers and readers never spell a name twice. Shapes use
``n_frames`` (trajectory frames), ``n_cfg`` (configurations of a dataset),
``n_E`` (energy points), ``N`` (sites), ``L`` (columns). Units: t = 1, hbar = 1,
|S| = 1, lattice constant 1, e = 1 (currents in units of e t / hbar).
"""

# -- per-frame data of a trajectory (kind "trajectory") --------------------------
SPINS = "spins"  # (n_frames, N, 3) float64: unit spin vectors, site order i = x*W + y
TIME = "time"  # (n_frames,) float64: simulated time in hbar / t
STEP = "step"  # (n_frames,) int64: integrator step of each frame
WALL_X = "wall_x"  # (n_frames,) float64: domain-wall centre along x (lattice constants)
MAGNETISATION = "magnetisation"  # (n_frames, 3) float64: mean spin over all sites
ENERGY = "energy"  # (n_frames,) float64: total classical/electronic energy, units of t
CURRENT = "current"  # (n_frames,) float64: charge current through the device
N_FRAMES_DONE = "n_frames_done"  # attr, int: frames fully written (live readers stop here)

# -- dataset of spin configurations and reference forces (kind "dataset") ---------
FIELD = "field"  # (n_cfg, N, 3) float64: effective field -dE/dS on each site, units of t
BIAS = "bias"  # (n_cfg,) float64: applied voltage (mu_L - mu_R), units of t / e
MU = "mu"  # (n_cfg, 2) float64: chemical potentials (mu_L, mu_R), units of t
TORQUE = "torque"  # (n_cfg, N, 3) float64: current-induced (spin-transfer) torque
DENSITY = "spin_density"  # (n_cfg, N, 3) float64: electronic spin density <s_i>
CONFIGS = "configs"  # (n_cfg, N, 3) float64: spin configurations of a dataset

# -- NEGF results (kind "negf") ----------------------------------------------------
ENERGIES = "energies"  # (n_E,) float64: energy grid points, units of t
TRANSMISSION = "transmission"  # (n_cfg, n_E) float64: lead-to-lead transmission
WEIGHTS = "weights"  # (n_E,) float64: quadrature weights of the energy grid

# -- checkpoint (kind "checkpoint") -------------------------------------------------
RNG_STATE = "rng_state"  # (n_bytes,) uint8: generator state (bytes, or UTF-8 JSON)
RNG_FORMAT = "rng_format"  # attr, str: "bytes" or "json", how to decode RNG_STATE
CK_TIME = "time"  # attr, float: simulated time of the checkpoint
CK_STEP = "step"  # attr, int: integrator step of the checkpoint
EXTRA = "extra_json"  # attr, str: JSON of further state a restart needs
CHECKSUM = "spins_crc32"  # attr, int: CRC-32 of the spins bytes (little-endian float64)
COMPLETE = "complete"  # attr, bool: written last; absent means an interrupted write

# -- provenance attributes, on the root group of every file -----------------------
DECK_TEXT = "deck"  # str: the input deck, verbatim
CONFIG = "config_json"  # str: the resolved configuration as JSON
VERSION = "hpcspin_version"  # str: hpcspin.__version__ of the writer
UNITS = "units"  # str: unit system (UNITS_TEXT)
N_RANKS = "n_ranks"  # int: number of MPI ranks that wrote the file
KIND = "hpcspin_kind"  # str: one of KINDS
N_SITES = "n_sites"  # int: N
LATTICE_SHAPE = "lattice_shape"  # (2,) int: (L, W)

KINDS = ("trajectory", "checkpoint", "dataset", "negf")
UNITS_TEXT = "t = 1, hbar = 1, |S| = 1, lattice constant = 1, e = 1"
