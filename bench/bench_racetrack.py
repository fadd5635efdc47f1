"""Racetrack scale: a 1e6-site chain with 200 walls, ML forces, 2 ranks, a short drive.

Runs input_decks/cluster_chain_1e6_walls.toml through the command line with
overrides for a short run (no relaxation, no noise, t = --t), then

- a 1-rank run with the same sites per rank (5e5 sites, 100 walls, t = --t1):
  weak-scaling efficiency = rate(2 ranks) / (2 rate(1 rank)), both in site-steps/s;
- a 2-wall reference on 1e4 sites (same wall spacing, profile and protocol):
  each racetrack wall's velocity against the reference wall of the same sign.

Per-wall velocities are straight-line fits of the wall centres of the trajectory
frames over the whole drive; the single-wall NEGF velocity v(0.5) = +0.023412
(docs/experiment.md, steady state after relaxation) is printed for comparison,
but a short unrelaxed drive is a transient: the reference run is the like-for-like
comparison. The cost on R ranks is extrapolated as t_step(R) = t_step(1) / e_w
(weak scaling: equal sites per rank; e_w measured here at 2 ranks). Writes
bench/results/racetrack.json.

    .venv/bin/python bench/bench_racetrack.py [--t 4] [--t1 1] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hpcspin.io.trajectory import read_trajectory  # noqa: E402

DECK = os.path.join(ROOT, "input_decks", "cluster_chain_1e6_walls.toml")
V_NEGF = 0.023412  # docs/experiment.md, single wall, V = 0.5
ENV = dict(
    os.environ,
    OMP_NUM_THREADS="1",
    OMPI_ALLOW_RUN_AS_ROOT="1",
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
    OMPI_MCA_rmaps_base_oversubscribe="1",
)


def run(out: str, ranks: int, length: int, walls: int, t: float, dtype: str) -> dict:
    """One CLI run; returns its summary.json plus the wall time of the process."""
    sets = {
        "lattice.length": length,
        "spins.walls": walls,
        "spins.noise": 0.0,
        "dynamics.relax": "false",
        "dynamics.t_end": t,
        "dynamics.ml_dtype": f'"{dtype}"',
        "output.dir": f'"{out}"',
        "output.every": 5,
        "output.checkpoint_every": 100000,
        "output.resume": '"never"',
    }
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(ranks)]
    cmd += [sys.executable, "-m", "hpcspin", DECK]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=ROOT)
    if r.returncode:
        raise SystemExit(f"run failed ({r.returncode}):\n{r.stderr[-3000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    summary["process_seconds"] = time.perf_counter() - t0
    return summary


def wall_velocities(out: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(initial centres, velocities, signs) of every wall, from the trajectory frames."""
    tr = read_trajectory(os.path.join(out, "trajectory.h5"))
    t, x = np.asarray(tr["time"]), np.asarray(tr["wall_centres"])
    x0 = x[0]
    # follow each wall: the centre nearest its previous position
    track = np.empty_like(x)
    track[0] = x0
    for k in range(1, len(t)):
        xs = x[k][np.isfinite(x[k])]
        track[k] = [xs[np.argmin(np.abs(xs - p))] for p in track[k - 1]]
    v = np.polyfit(t, track, 1)[0]
    sign = np.where(np.arange(len(x0)) % 2 == 0, 1, -1)  # walls alternate +z|-z, -z|+z
    return x0, v, sign


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--t", type=float, default=4.0, help="drive time of the 2-rank run")
    ap.add_argument("--t1", type=float, default=1.0, help="drive time of the 1-rank run")
    ap.add_argument("--length", type=int, default=10**6)
    ap.add_argument("--walls", type=int, default=200)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--work", default="/tmp/hpcspin_racetrack")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "racetrack.json"))
    ap.add_argument("--quick", action="store_true", help="2e4 sites, 4 walls, t = 1")
    args = ap.parse_args()
    if args.quick:
        args.length, args.walls, args.t, args.t1 = 20000, 4, 1.0, 0.4
    load0 = os.getloadavg()
    seg = args.length // args.walls
    cases = {
        "racetrack_2ranks": (2, args.length, args.walls, args.t),
        "half_1rank": (1, args.length // 2, args.walls // 2, args.t1),
        "reference_2walls": (1, 2 * seg, 2, args.t),
    }
    res = {}
    for name, (ranks, length, walls, t) in cases.items():
        out = os.path.join(args.work, name)
        res[name] = run(out, ranks, length, walls, t, args.dtype)
        print(
            f"{name:17s} ranks={ranks} N={length:<8d} walls={walls:<4d} t={t:g}: "
            f"{res[name]['site_steps_per_second']:.3g} site-steps/s, "
            f"{res[name]['wall_seconds_this_segment']:.0f} s",
            flush=True,
        )
    _, v, sign = wall_velocities(os.path.join(args.work, "racetrack_2ranks"))
    _, v_ref, s_ref = wall_velocities(os.path.join(args.work, "reference_2walls"))
    ref_of = {int(s): float(vr) for s, vr in zip(s_ref, v_ref)}
    dev = np.array([v[i] / ref_of[int(sign[i])] - 1 for i in range(len(v))])
    r2, r1 = (res[k]["site_steps_per_second"] for k in ("racetrack_2ranks", "half_1rank"))
    eff = r2 / (2 * r1)
    step1 = (args.length // 2) / r1  # seconds per step of one rank with 5e5 sites
    sites64 = args.length / 64
    report = {
        "n_sites": args.length,
        "walls": args.walls,
        "t_drive": args.t,
        "ml_dtype": args.dtype,
        "runs": res,
        "site_steps_per_s_2ranks": r2,
        "site_steps_per_s_1rank_half": r1,
        "weak_scaling_efficiency_2ranks": eff,
        "velocity_mean": float(v.mean()),
        "velocity_min": float(v.min()),
        "velocity_max": float(v.max()),
        "velocity_reference_by_sign": ref_of,
        "max_rel_dev_from_reference": float(np.abs(dev).max()),
        "velocity_negf_steady": V_NEGF,
        "mean_over_negf": float(v.mean() / V_NEGF),
        "extrapolated_64_ranks_s_per_step": step1 * sites64 / (args.length // 2) / eff,
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
    }
    print(
        f"walls: v mean {v.mean():+.6f}, range [{v.min():+.6f}, {v.max():+.6f}]; "
        f"reference (same protocol) {ref_of}; max |v/v_ref - 1| = {np.abs(dev).max():.2e}; "
        f"mean / v_NEGF(steady) = {v.mean() / V_NEGF:.3f}"
    )
    print(
        f"weak scaling 1 -> 2 ranks: {eff:.2f}; 64 ranks x {sites64:.0f} sites: "
        f"{report['extrapolated_64_ranks_s_per_step']:.3f} s per rk4 step (extrapolated)"
    )
    print(f"load average {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
