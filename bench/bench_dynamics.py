"""Benchmark of ML-driven spin dynamics: throughput, weak scaling, halo and I/O shares.

Three parts, all on chains with the ML force of the dynamics task (E+vector head,
radius 3, hidden (32, 32), bias as a gated global input, RANDOM weights: the cost
of a step does not depend on the weights) plus the classical spin force, rk4:

1. Throughput, one process, one torch thread: site-steps/s for N = 1e4, 1e5, 1e6
   in float64 and float32, measured through the library pieces the task uses
   (Simulation: Decomposition, HaloExchanger, DomainField; make_integrator). Baseline in the
   same run: the classical force alone; the ratio ML/classical says what the ML
   force costs.
2. Weak scaling at 1, 2, 4 ranks (``mpirun -n P``), a fixed number of sites per
   rank: efficiency t(1)/t(P) of one step. On a machine with fewer cores than
   ranks the ranks share cores and the efficiency says nothing about the code.
3. Time shares at 2 ranks: the dynamics task itself (``hpcspin.tasks.dynamics.run``
   on a generated deck: frames every 10 steps, checkpoints every 500), with
   timers wrapped around HaloExchanger.forward/reverse, TrajectoryWriter
   (open, write_frame, close) and the checkpoint handler inside this script
   only. Reported: the shares of the drive loop's wall time measured in the run,
   and the steady-state shares at that cadence (a short run writes one final
   checkpoint in far fewer than 500 steps, so its checkpoint cost is spread over
   500 steps). Goal: <= 5 % each. Also the cost of a bare halo exchange (ranks
   synchronised first), separate from waiting for the slower rank.

Writes bench/results/dynamics.json.

    .venv/bin/python bench/bench_dynamics.py [--sizes 1e4,1e5,1e6] [--per-rank 20000]
        [--ranks 1,2,4] [--weak-steps 4] [--share-steps 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMP_NUM_THREADS": "1",
}
RESULT_TAG = "BENCH_RESULT "
BIAS, MU, DT, ALPHA = 0.5, -1.0, 0.2, 0.1
NOTE = "random model weights (timing only; a step's cost does not depend on the weights)"


# -- shared pieces --------------------------------------------------------------------
def model_spec(dtype: str = "float64"):
    """The ML model timed here: the dynamics task's default kind of model."""
    from hpcspin.ml import ModelSpec

    return ModelSpec(
        head="E+vector",
        kind="chain",
        radius=3,
        hidden=(32, 32),
        globals=("bias",),
        bias_gate=True,
        dtype=dtype,
    )


def random_spins(n: int, seed: int = 0) -> np.ndarray:
    """Random unit spins (N, 3)."""
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def providers(kind: str, dtype: str | None):
    """Classical force, plus the ML force when ``dtype`` is given."""
    from hpcspin.dynamics.forces import ClassicalForce, MLForce
    from hpcspin.hamiltonian.spin import SpinParams

    out = [ClassicalForce(kind, SpinParams(J_H=1.0, K=0.1))]
    if dtype is not None:
        from hpcspin.ml import build_model

        model = build_model(model_spec(dtype), seed=0).eval()
        out.append(MLForce(model, {"bias": BIAS, "mu": MU}, "cpu"))
    return out


def machine_info(threads: int) -> dict:
    """Host, cores, load and library versions."""
    import torch

    from hpcspin import __version__

    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "torch_threads": threads,
        "numpy": np.__version__,
        "hpcspin_version": __version__,
        "python": platform.python_version(),
    }


class Timer:
    """Accumulates wall time of wrapped callables by name."""

    def __init__(self):
        self.t: dict[str, float] = {}
        self.n: dict[str, int] = {}

    def wrap(self, owner, attr: str, name: str) -> None:
        """Replace ``owner.attr`` by a timed version (this process only)."""
        fn = getattr(owner, attr)

        def timed(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.t[name] = self.t.get(name, 0.0) + time.perf_counter() - t0
                self.n[name] = self.n.get(name, 0) + 1

        setattr(owner, attr, timed)

    def get(self, name: str) -> float:
        """Seconds spent in ``name``."""
        return self.t.get(name, 0.0)


# -- 1. throughput (serial) -----------------------------------------------------------
def throughput_case(n: int, dtype: str | None, steps: int, min_seconds: float = 0.0) -> dict:
    """Site-steps/s of rk4 on a chain of n sites (dtype None: classical only)."""
    from hpcspin.dynamics.integrators import make_integrator
    from hpcspin.dynamics.simulation import Simulation
    from hpcspin.lattice import make_lattice

    sim = Simulation(make_lattice("chain", n), providers("chain", dtype), None, dt=DT)
    decomp, field = sim.decomp, sim.field
    integ = make_integrator("rk4", ALPHA)
    owned = decomp.owned_from_global(random_spins(n))
    t0 = time.perf_counter()
    field(owned)  # warm-up: allocations, kernel caches
    warm = time.perf_counter() - t0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        owned = integ.step(owned, done * DT, DT, field)
        done += 1
        el = time.perf_counter() - t0
        if done >= steps and el >= min_seconds:
            break
    cpu = time.process_time() - c0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    sys_s = ru1.ru_stime - ru0.ru_stime
    if not np.all(np.isfinite(owned)):
        raise RuntimeError(f"non-finite spins after {done} steps (N = {n}, {dtype})")
    return {
        "n_sites": n,
        "force": "classical" if dtype is None else "ml+classical",
        "dtype": dtype or "float64",
        "steps": done,
        "seconds": el,
        "s_per_step": el / done,
        "warmup_field_call_s": warm,
        "site_steps_per_s": n * done / el,
        # CPU time of this (single-threaded) process: less sensitive to other jobs
        "cpu_s_per_step": cpu / done,
        "site_steps_per_cpu_s": n * done / cpu,
        "cpu_share": cpu / el,
        # kernel time, mostly page faults of freshly mapped large temporaries
        "sys_share_of_cpu": sys_s / cpu if cpu > 0 else 0.0,
        "minor_faults_per_step": (ru1.ru_minflt - ru0.ru_minflt) / done,
    }


def ml_steps_for(n: int) -> int:
    """Fewer steps at larger N (the whole benchmark must stay short on 2 cores)."""
    return 5 if n <= 10_000 else 2 if n <= 100_000 else 1


def _row(r: dict) -> str:
    ratio = ""
    if "ratio_to_classical" in r:
        ratio = f"  {r['ratio_to_classical']:.4f} / {r['ratio_to_classical_cpu']:.4f}"
    return (
        f"  {r['n_sites']:>8d}  {r['force']:12s} {r['dtype']:8s} {r['steps']:>3d} "
        f"{r['s_per_step'] * 1e3:10.1f} {r['site_steps_per_s']:12.3g} "
        f"{r['cpu_s_per_step'] * 1e3:10.1f} {r['site_steps_per_cpu_s']:12.3g} "
        f"{100 * r['cpu_share']:5.0f} % {100 * r['sys_share_of_cpu']:5.0f} %{ratio}"
    )


def throughput(sizes, dtypes) -> list[dict]:
    """Part 1: ML (each dtype) and classical rates for each size."""
    print(
        "         N  force        dtype  steps  ms/step  site-steps/s  CPU ms/step"
        "  per CPU-s  CPU/wall  sys/CPU  ML/classical (wall / CPU)"
    )
    rows = []
    for n in sizes:
        base = throughput_case(n, None, ml_steps_for(n), min_seconds=0.5)
        print(_row(base), flush=True)
        rows.append(base)
        for dt in dtypes:
            r = throughput_case(n, dt, ml_steps_for(n))
            r["ratio_to_classical"] = r["site_steps_per_s"] / base["site_steps_per_s"]
            r["ratio_to_classical_cpu"] = r["site_steps_per_cpu_s"] / base["site_steps_per_cpu_s"]
            rows.append(r)
            print(_row(r), flush=True)
    return rows


# -- MPI workers ----------------------------------------------------------------------
def _report(ctx, data: dict) -> None:
    if ctx.rank == 0:
        print(RESULT_TAG + json.dumps(data), flush=True)


def worker_weak(per_rank: int, steps: int) -> None:
    """Part 2, under mpirun: time rk4 steps with per_rank sites on every rank."""
    import torch

    from hpcspin.dynamics.integrators import make_integrator
    from hpcspin.dynamics.simulation import Simulation
    from hpcspin.lattice import make_lattice
    from hpcspin.parallel.context import ParallelContext

    torch.set_num_threads(1)
    ctx = ParallelContext()
    comm = ctx.comm
    n = per_rank * ctx.size
    sim = Simulation(make_lattice("chain", n), providers("chain", "float64"), comm, dt=DT)
    decomp, field = sim.decomp, sim.field
    timer = Timer()
    timer.wrap(sim.halo, "forward", "halo")
    timer.wrap(sim.halo, "reverse", "halo")
    integ = make_integrator("rk4", ALPHA)
    owned = decomp.owned_from_global(random_spins(n))
    owned = integ.step(owned, 0.0, DT, field)  # warm-up step
    timer.t.clear()
    comm.Barrier()
    t0 = time.perf_counter()
    for k in range(steps):
        owned = integ.step(owned, k * DT, DT, field)
    comm.Barrier()
    wall = time.perf_counter() - t0
    wall = comm.allreduce(wall, op=_mpi_max())
    halo = np.array(comm.allgather(timer.get("halo")))
    _report(
        ctx,
        {
            "ranks": ctx.size,
            "sites_per_rank": per_rank,
            "n_sites": n,
            "steps": steps,
            "seconds": wall,
            "s_per_step": wall / steps,
            "site_steps_per_s": n * steps / wall,
            "halo_share_max": float(halo.max() / wall),
            "halo_share_mean": float(halo.mean() / wall),
            "load_average": list(os.getloadavg()),
        },
    )


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


DECK = """
[run]
task = "dynamics"
name = "bench_shares"
seed = 1
[lattice]
kind = "chain"
length = {length}
[electrons]
J = 2.0
mu = {mu}
bias = {bias}
temperature = 0.05
[spins]
J_H = 1.0
K = 0.1
initial = "wall"
walls = {walls}
noise = 0.02
[model]
file = "{model}"
[dynamics]
forces = "ml"
integrator = "rk4"
dt = {dt}
t_end = {t_end}
alpha = {alpha}
relax = false
[output]
dir = "{out}"
every = {every}
checkpoint_every = {ckpt_every}
resume = "never"
progress_interval = 1000.0
plots = false
"""


def worker_shares(per_rank: int, steps: int, every: int, ckpt_every: int) -> None:
    """Part 3, under mpirun: the dynamics task with timers around halo and I/O."""
    import shutil

    import torch

    import hpcspin.tasks.dynamics as dyn
    from hpcspin.deck.load import parse_deck
    from hpcspin.dynamics.output import CheckpointHandler
    from hpcspin.dynamics.simulation import Simulation
    from hpcspin.io.trajectory import TrajectoryWriter
    from hpcspin.lattice import make_lattice
    from hpcspin.ml import build_model, save_model
    from hpcspin.parallel.context import ParallelContext
    from hpcspin.parallel.decomp import Decomposition
    from hpcspin.parallel.halo import HaloExchanger

    torch.set_num_threads(1)
    ctx = ParallelContext()
    comm = ctx.comm
    n = per_rank * ctx.size
    tmp = comm.bcast(tempfile.mkdtemp(prefix="bench_dyn_") if ctx.rank == 0 else None, root=0)
    try:
        model_path = os.path.join(tmp, "model.pt")
        if ctx.rank == 0:
            lat = make_lattice("chain", n)
            save_model(model_path, build_model(model_spec("float64"), seed=0), lat)
        comm.Barrier()
        text = DECK.format(
            length=n,
            mu=MU,
            bias=BIAS,
            walls=max(1, n // 2000),
            model=model_path,
            dt=DT,
            t_end=steps * DT,
            alpha=ALPHA,
            out=os.path.join(tmp, "out"),
            every=every,
            ckpt_every=ckpt_every,
        )
        cfg = parse_deck(text, os.path.join(tmp, "deck.toml"), None, ctx.size)

        timer = Timer()
        timer.wrap(HaloExchanger, "forward", "halo")
        timer.wrap(HaloExchanger, "reverse", "halo")
        timer.wrap(TrajectoryWriter, "__init__", "traj_open")
        timer.wrap(TrajectoryWriter, "write_frame", "frame_write")
        timer.wrap(TrajectoryWriter, "close", "traj_close")
        timer.wrap(CheckpointHandler, "write", "checkpoint")
        timer.wrap(Simulation, "observables", "observables")
        timer.wrap(Simulation, "drive", "drive")
        dyn.run(cfg, ctx)
        t = {k: np.array(comm.allgather(timer.get(k))) for k in sorted(timer.t)}
        counts = dict(timer.n)

        # A bare exchange: all ranks synchronised first, so no waiting for a slow rank.
        d = Decomposition.from_lattice(make_lattice("chain", n), ctx.size, ctx.rank, halo=(3, 0))
        hal = HaloExchanger(comm, d)
        grid = np.random.default_rng(ctx.rank).random(d.shape + (3,))
        reps = 200
        dts = np.empty(reps)
        for i in range(reps):
            comm.Barrier()
            t0 = time.perf_counter()
            hal.forward(grid)
            hal.reverse(grid)
            dts[i] = time.perf_counter() - t0
        # slowest rank of each repetition; on an oversubscribed machine a partner rank
        # that is not running stretches an exchange to a scheduler time slice, so the
        # minimum is the exchange's own cost and the median what a step typically sees
        dts = np.max(comm.allgather(dts), axis=0)
        bare, bare_min = float(np.median(dts)), float(dts.min())
    finally:
        comm.Barrier()
        if ctx.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)

    drive = float(t["drive"].max())
    frames = counts.get("frame_write", 0)  # this rank's calls = calls per rank
    ckpts = counts.get("checkpoint", 0)
    io_keys = ("traj_open", "frame_write", "traj_close", "checkpoint")
    measured = {k: float(t[k].max() / drive) for k in t if k != "drive"}
    measured["io"] = float(sum(t[k] for k in io_keys if k in t).max() / drive)
    # Steady state at the cadence: per-step loop cost + a frame every `every` steps
    # + a checkpoint every `ckpt_every` steps (the file is opened once per run).
    t_frame = float(t["frame_write"].max()) / max(1, frames)
    t_ckpt = float(t["checkpoint"].max()) / max(1, ckpts)
    io_total = float(sum(t[k] for k in io_keys if k in t).max())
    loop = (drive - io_total) / steps  # steps + observables + halo, per step
    per_step = loop + t_frame / every + t_ckpt / ckpt_every
    halo_per_step = float(t["halo"].max()) / steps
    _report(
        ctx,
        {
            "ranks": ctx.size,
            "sites_per_rank": per_rank,
            "n_sites": n,
            "steps": steps,
            "frame_every": every,
            "checkpoint_every": ckpt_every,
            "frames_written": frames,
            "checkpoints_written": ckpts,
            "drive_seconds": drive,
            "seconds_max_over_ranks": {k: float(v.max()) for k, v in t.items()},
            "calls_per_rank": counts,
            "share_measured": measured,
            "frame_write_s": t_frame,
            "checkpoint_write_s": t_ckpt,
            "trajectory_open_s": float(t.get("traj_open", np.zeros(1)).max()),
            "steady_state_s_per_step": per_step,
            "share_steady_halo": halo_per_step / per_step,
            "share_steady_io": (t_frame / every + t_ckpt / ckpt_every) / per_step,
            "share_steady_frames": (t_frame / every) / per_step,
            "share_steady_checkpoints": (t_ckpt / ckpt_every) / per_step,
            "bare_halo_fwd_rev_s": bare,
            "bare_halo_fwd_rev_min_s": bare_min,
            "share_bare_halo": 4 * bare / per_step,  # rk4: 4 field calls per step
            "share_bare_halo_min": 4 * bare_min / per_step,
            "load_average": list(os.getloadavg()),
        },
    )


# -- driver ---------------------------------------------------------------------------
def launch(n_ranks: int, worker_args: list[str], timeout: int = 300) -> dict:
    """Run this script as an MPI worker; return rank 0's result."""
    env = dict(os.environ, **MPI_ENV)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    cmd = ["timeout", "--kill-after=10", str(timeout), "mpirun", "-n", str(n_ranks)]
    cmd += ["--oversubscribe", "--bind-to", "none", "-x", "PYTHONPATH", "-x", "OMP_NUM_THREADS"]
    cmd += [sys.executable, os.path.abspath(__file__), *worker_args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"worker {worker_args} at {n_ranks} rank(s) failed ({proc.returncode}):\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(RESULT_TAG) :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="chain lengths for part 1")
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--per-rank", type=int, default=20000, help="sites per rank, parts 2-3")
    ap.add_argument("--ranks", default="1,2,4", help="rank counts for weak scaling")
    ap.add_argument("--weak-steps", type=int, default=3)
    ap.add_argument("--share-steps", type=int, default=40)
    ap.add_argument("--share-ranks", type=int, default=2)
    ap.add_argument("--every", type=int, default=10, help="frame cadence (steps)")
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "dynamics.json"))
    ap.add_argument("--worker", choices=("weak", "shares"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.dtypes, args.per_rank = "1e4", "float64", 5000
        args.ranks, args.weak_steps, args.share_steps = "1,2", 2, 20
    if args.worker == "weak":
        worker_weak(args.per_rank, args.weak_steps)
        return
    if args.worker == "shares":
        worker_shares(args.per_rank, args.share_steps, args.every, args.checkpoint_every)
        return

    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    info = machine_info(threads=1)
    cores = info["cores"] or 1
    print(
        f"host {info['host']}, {cores} cores, load average {info['load_average'][0]:.2f} "
        f"(other jobs distort every rate), torch {info['torch']} with 1 thread per process"
    )
    print(f"ML model: E+vector, radius 3, hidden (32, 32), bias input; {NOTE}")

    sizes = [int(float(x)) for x in args.sizes.split(",")]
    dtypes = [x for x in args.dtypes.split(",") if x]
    print("\n1. throughput, 1 process, rk4 (4 field evaluations per step)")
    rows = throughput(sizes, dtypes)

    ranks = [int(x) for x in args.ranks.split(",")]
    print(f"\n2. weak scaling, {args.per_rank} sites per rank, ML float64 + classical, rk4")
    weak = []
    for p in ranks:
        r = launch(
            p,
            ["--worker", "weak", "--per-rank", str(args.per_rank)]
            + ["--weak-steps", str(args.weak_steps)],
        )
        r["oversubscribed"] = p > cores
        weak.append(r)
    t1 = weak[0]["s_per_step"] if weak and weak[0]["ranks"] == 1 else None
    for r in weak:
        r["efficiency"] = t1 / r["s_per_step"] if t1 else None
        eff = f"{100 * r['efficiency']:6.1f} %" if t1 else "   n/a"
        flag = "  (more ranks than cores: not meaningful)" if r["oversubscribed"] else ""
        print(
            f"  P = {r['ranks']}  N = {r['n_sites']:>7d}  {r['s_per_step'] * 1e3:8.1f} ms/step  "
            f"{r['site_steps_per_s']:10.3g} site-steps/s  efficiency t(1)/t(P) = {eff}  "
            f"halo {100 * r['halo_share_max']:.1f} %{flag}",
            flush=True,
        )

    p = args.share_ranks
    print(
        f"\n3. time shares, dynamics task at {p} ranks, {args.per_rank} sites per rank, "
        f"{args.share_steps} steps, frames every {args.every}, checkpoints every "
        f"{args.checkpoint_every}"
    )
    sh = launch(
        p,
        ["--worker", "shares", "--per-rank", str(args.per_rank)]
        + ["--share-steps", str(args.share_steps), "--every", str(args.every)]
        + ["--checkpoint-every", str(args.checkpoint_every)],
        timeout=400,
    )
    m = sh["share_measured"]
    print(
        f"  drive loop {sh['drive_seconds']:.1f} s; measured shares: halo "
        f"{100 * m['halo']:.1f} %, I/O {100 * m['io']:.1f} % ({sh['frames_written']} frames, "
        f"{sh['checkpoints_written']} checkpoint(s), trajectory open "
        f"{1e3 * sh['trajectory_open_s']:.0f} ms), observables {100 * m['observables']:.1f} %"
    )
    print(
        f"  one frame {1e3 * sh['frame_write_s']:.1f} ms, one checkpoint "
        f"{1e3 * sh['checkpoint_write_s']:.1f} ms, one step "
        f"{1e3 * sh['steady_state_s_per_step']:.0f} ms"
    )
    ok = lambda x: "meets" if x <= 0.05 else "misses"  # noqa: E731
    print(
        f"  steady state at this cadence: halo {100 * sh['share_steady_halo']:.2f} % "
        f"({ok(sh['share_steady_halo'])} the 5 % goal), I/O {100 * sh['share_steady_io']:.2f} % "
        f"({ok(sh['share_steady_io'])} the 5 % goal: frames "
        f"{100 * sh['share_steady_frames']:.2f} %, checkpoints "
        f"{100 * sh['share_steady_checkpoints']:.3f} %)"
    )
    print(
        f"  bare halo exchange (ranks synchronised): median "
        f"{1e3 * sh['bare_halo_fwd_rev_s']:.3f} ms (min "
        f"{1e3 * sh['bare_halo_fwd_rev_min_s']:.3f} ms) per forward+reverse, "
        f"{100 * sh['share_bare_halo']:.2f} % of a step; the rest of the halo time is "
        "waiting for the slower rank"
    )

    head = {}
    for r in rows:
        if r["force"] == "ml+classical":
            key = f"ml_{r['dtype']}_N{r['n_sites']:.0e}".replace("+0", "")
            head[f"{key}_site_steps_per_s"] = r["site_steps_per_s"]
            head[f"{key}_over_classical"] = r["ratio_to_classical"]
    for r in weak:
        if r.get("efficiency") is not None and r["ranks"] > 1:
            head[f"weak_efficiency_{r['ranks']}"] = r["efficiency"]
    head["share_halo_steady"] = sh["share_steady_halo"]
    head["share_io_steady"] = sh["share_steady_io"]
    out = {
        "benchmark": "dynamics",
        "headline": head,
        "note": NOTE,
        "model": model_spec().to_dict(),
        "integrator": "rk4",
        "dt": DT,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        **info,
        "load_average_after": list(os.getloadavg()),
        "throughput": rows,
        "weak_scaling": weak,
        "weak_scaling_note": (
            f"{cores} cores: runs with more ranks than cores share cores, so their "
            "efficiency measures the machine, not the code"
        ),
        "shares": sh,
        "goal_share": 0.05,
        "benchmark_seconds": time.perf_counter() - t_start,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\nwrote {os.path.relpath(args.out, ROOT)} ({out['benchmark_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
