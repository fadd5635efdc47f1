"""Memory estimate of a run per rank, checked against the node before anything is allocated.

The estimate counts the arrays a task holds (spins, fields, integrator stages,
halo, gathered frames on rank 0, NEGF blocks, ML activations, training data) from
the deck alone: no physics module is imported, so ``--check`` stays cheap. It is
an upper-bound style estimate (constants are generous round numbers, not a
measurement of every temporary); it exists to turn a run that cannot fit (a
1e9-site chain on one rank) into a clear error instead of an allocation failure
deep inside numpy.
"""

from __future__ import annotations

import os

_GIB = float(1 << 30)
#: Vectors (3 float64) per site held by the LLG steppers: spins, field, stages, noise.
_STAGE_VECTORS = {"rk4": 16, "heun": 14, "sib": 14, "depondt": 12}
#: Full-lattice vectors rank 0 holds when it gathers a frame or a checkpoint.
_GATHER_VECTORS = 2
#: Interpreter, numpy, h5py, torch and MPI libraries (measured: about 0.1 GiB).
_BASE = 0.25 * (1 << 30)
#: Complex (2W x 2W) blocks per column that the recursive Green's function keeps.
_RGF_BLOCKS = 8
#: Sites per ML force call (MLForce's chunk on a CPU): activations exist for one slab.
_ML_SLAB = 1 << 16
#: Autograd keeps roughly this many copies of each activation for the force pass.
_AUTOGRAD_COPIES = 4
#: Local ranks variables of common launchers (Open MPI, MPICH/Hydra, SLURM).
_LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE")


def _cells(cfg) -> int:
    """Sites in one descriptor window (upper bound)."""
    r = cfg.model.radius
    rows = 1 if cfg.lattice.kind == "chain" else min(2 * r + 1, cfg.lattice.width)
    return (2 * r + 1) * rows


def _ml_bytes_per_site(cfg, itemsize: int = 8) -> float:
    k = _cells(cfg)
    features = k + k * (k - 1) // 2 + 2  # pairs, triples bound, globals
    width = features + 3 * sum(cfg.model.hidden) + 6 * k
    return float(itemsize * _AUTOGRAD_COPIES * width)


def _negf_bytes(cfg) -> float:
    """One NEGF evaluation of the whole lattice (every rank holds the lattice)."""
    lat = cfg.lattice
    n, w = lat.length * lat.width, lat.width
    if cfg.negf.solver == "dense":
        return 3 * 16.0 * (2 * n) ** 2
    return _RGF_BLOCKS * 16.0 * (2 * w) ** 2 * lat.length + 10 * 24.0 * n


def estimate_bytes(cfg, n_ranks: int) -> tuple[float, float]:
    """Estimated peak bytes of (any rank, rank 0) for ``cfg`` at ``n_ranks`` ranks."""
    per, root = _arrays(cfg, max(int(n_ranks), 1))
    return per + _BASE, root + _BASE


def _arrays(cfg, p: int) -> tuple[float, float]:
    lat = cfg.lattice
    n = float(lat.length) * float(lat.width)
    task = cfg.run.task
    vec = 24.0
    if task == "dynamics":
        halo = 2 * (cfg.model.radius + 2) * lat.width
        owned = n / p + halo
        per = owned * vec * _STAGE_VECTORS.get(cfg.dynamics.integrator, 12)
        if cfg.dynamics.forces == "ml":  # evaluated in slabs of at most _ML_SLAB sites
            itemsize = 4 if cfg.dynamics.ml_dtype == "float32" else 8
            per += min(owned, _ML_SLAB) * _ml_bytes_per_site(cfg, itemsize)
        elif cfg.dynamics.forces == "negf":
            per += _negf_bytes(cfg)
        return per, per + _GATHER_VECTORS * vec * n
    if task in ("negf", "datagen"):
        per = _negf_bytes(cfg) + 4 * vec * n
        return per, per
    if task in ("train", "validate"):
        # the dataset is read whole on every rank; its size is unknown here, so
        # count the lattice-sized parts only (one batch of activations)
        per = cfg.train.batch_size * n * (_ml_bytes_per_site(cfg) + 8 * vec)
        return per, per
    return 8 * vec * n, 8 * vec * n


def local_ranks() -> int:
    """Ranks on this node according to the launcher (1 when unknown)."""
    for var in _LOCAL_SIZE_VARS:
        try:
            return max(int(os.environ[var].split("(")[0]), 1)
        except (KeyError, ValueError):
            continue
    return 1


def available_bytes() -> tuple[float, str]:
    """Memory this process may use and where the number comes from.

    MemAvailable of /proc/meminfo under a launcher (other jobs' memory counts), the
    node's total otherwise (``--check`` on a login node), capped by a cgroup limit.
    """
    under_mpi = any(v in os.environ for v in _LOCAL_SIZE_VARS)
    key = "MemAvailable" if under_mpi else "MemTotal"
    value, source = None, ""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    value, source = float(line.split()[1]) * 1024, f"{key} of /proc/meminfo"
    except OSError:
        pass
    if value is None:
        value = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        source = "physical memory"
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            text = fh.read().strip()
        if text.isdigit() and float(text) < value:
            value, source = float(text), "cgroup memory.max"
    except OSError:
        pass
    return value, source


def run_size_problems(cfg, n_ranks: int | None) -> list[str]:
    """Deck problem lines of a run that would do nothing or cannot fit in memory."""
    p = []
    dyn = cfg.dynamics
    if cfg.run.task == "dynamics" and dyn.dt > dyn.t_end:
        p.append(
            f"[dynamics] dt = {dyn.dt}: must be <= t_end = {dyn.t_end} "
            "(else the drive takes no step)"
        )
    return p + memory_problems(cfg, n_ranks)


def memory_problems(cfg, n_ranks: int | None) -> list[str]:
    """Deck problem lines when the estimated memory per rank exceeds what the node has."""
    p = max(int(n_ranks or 1), 1)
    per, root = estimate_bytes(cfg, p)
    on_node = min(local_ranks(), p)
    need = root + per * (on_node - 1)  # rank 0 and its neighbours on the same node
    have, source = available_bytes()
    if need <= have:
        return []
    lat = cfg.lattice
    return [
        f"[lattice] length = {lat.length}: a {cfg.run.task} run of {lat.length}x{lat.width} "
        f"sites on {p} rank(s) needs about {per / _GIB:.3g} GiB per rank "
        f"({root / _GIB:.3g} GiB on rank 0, {need / _GIB:.3g} GiB for the {on_node} rank(s) "
        f"on this node), but only {have / _GIB:.3g} GiB are available ({source}) "
        "(use more ranks or nodes, or a smaller lattice)"
    ]
