"""The NEGF-driven v(V) set of the reference experiment, timed by parts.

The reference experiment (input_decks/dynamics_chain_negf.toml: 60-site chain, J = 2,
mu = -1, T_el = 0.05, rk4 dt = 0.2): relax the Bloch wall at V = 0, then drive it at
V in {-0.5, -0.25, 0, 0.25, 0.5} to t_end and fit v over the second half. The
relaxation is at V = 0 for every bias, so it is run once and its state shared.

    .venv/bin/python bench/bench_vset.py                    # t_end = 500, scheme fast
    .venv/bin/python bench/bench_vset.py --quick            # t_end = 50
    .venv/bin/python bench/bench_vset.py --tol 1e-8 --biases 0.5   # a converged v

The default tol = 1e-4 (the error estimate is conservative: v moves by < 1e-6
relative between tol = 1e-4 and 1e-8; measured in docs/negf.md).

Times are CPU seconds of this process (wall seconds too): the machine may be shared.
Also times the same drive steps with scheme "reference" (``--ref-steps``, default 100
steps at V = 0.5) for the speed ratio measured in the same run. Prints the machine load
(the machine may be shared: compare ratios). JSON to bench/results/vset.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from hpcspin.deck.load import load_deck  # noqa: E402
from hpcspin.dynamics.observables import wall_centre, wall_velocity  # noqa: E402
from hpcspin.dynamics.simulation import DRIVE, RELAX  # noqa: E402
from hpcspin.parallel.context import ParallelContext  # noqa: E402
from hpcspin.tasks.common import initial_spins  # noqa: E402
from hpcspin.tasks.dynamics import simulation_from  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
DECK = os.path.join(ROOT, "input_decks", "dynamics_chain_negf.toml")
OUT = os.path.join(os.path.dirname(__file__), "results", "vset.json")
BIASES = (-0.5, -0.25, 0.0, 0.25, 0.5)


def config(scheme: str, tol: float, bias: float, t_end: float, estimate: str = "strict"):
    """The reference deck with the scheme, tol, error estimate, bias and t_end of this run."""
    cfg = load_deck(DECK, check_files=False)
    cfg = cfg.replace("negf", scheme=scheme, tol=tol, estimate=estimate)
    cfg = cfg.replace("electrons", bias=bias)
    return cfg.replace("dynamics", t_end=t_end)


def negf_force(sim):
    return next(p for p in sim.providers if p.name == "negf")


def relax(ctx, scheme: str, tol: float, estimate: str = "strict") -> tuple[np.ndarray, dict]:
    """The wall relaxed at V = 0 (shared by every bias) and its cost."""
    cfg = config(scheme, tol, 0.0, 1.0, estimate)
    sim = simulation_from(cfg, ctx)
    state = sim.state(initial_spins(cfg, sim.lattice), phase=RELAX)
    sim.set_bias(0.0)
    t0, c0 = time.perf_counter(), time.process_time()
    dyn = cfg.dynamics
    sim.relax(state, dyn.relax_alpha, dyn.relax_tol, dyn.relax_max_time)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "seconds": secs,
        "cpu_seconds": cpu,
        "time": state.relax_time,
        "evals": sim.field.n_calls,
    }
    spins = sim.gather(state)
    sim.free()
    return spins, out


def drive(ctx, scheme, tol, bias, t_end, spins, max_steps=None, estimate="strict") -> dict:
    """Drive the relaxed wall at ``bias``; wall centre every 5 steps; v over t >= t_end/2."""
    cfg = config(scheme, tol, bias, t_end, estimate)
    sim = simulation_from(cfg, ctx)
    state = sim.state(spins, phase=DRIVE)
    sim.set_bias(bias)
    integ_steps = sim.n_steps(t_end) if max_steps is None else max_steps
    ts, xs = [0.0], [wall_centre(spins[:, 2])]
    t0, c0 = time.perf_counter(), time.process_time()
    chunk = 5
    done = 0
    while done < integ_steps:
        k = min(chunk, integ_steps - done)
        sim.drive(state, (state.step + k) * sim.dt, cfg.dynamics.alpha)
        done += k
        ts.append(state.time)
        xs.append(wall_centre(state.spins[..., 2].ravel(), xs[-1]))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    warm = negf_force(sim).warm
    res = {
        "bias": bias,
        "steps": done,
        "seconds": secs,
        "cpu_seconds": cpu,
        "evals": sim.field.n_calls,
        "ms_per_eval": 1e3 * cpu / max(1, sim.field.n_calls),
        "warm": dict(warm.counts) if warm is not None else None,
    }
    if max_steps is None:
        res["v"] = wall_velocity(np.array(ts), np.array(xs), t_end / 2, t_end)
        res["x_end"] = xs[-1]
        # Half-metal chain: every electron crossing the wall flips its spin, so
        # v = I / (2 (1 + alpha^2)) with I the particle current (docs/physics.md).
        cur = negf_force(sim).last_current
        res["current"] = cur
        res["v_closed_form"] = cur / (2 * (1 + cfg.dynamics.alpha**2))
    sim.free()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="t_end = 50")
    ap.add_argument("--t-end", type=float, default=None)
    ap.add_argument("--scheme", default="fast", choices=("fast", "reference"))
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--estimate", default="strict", choices=("strict", "calibrated"))
    ap.add_argument("--biases", type=float, nargs="*", default=list(BIASES))
    ap.add_argument("--ref-steps", type=int, default=100, help="reference-scheme steps (0: none)")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    t_end = a.t_end or (50.0 if a.quick else 500.0)
    load = os.getloadavg()
    ctx = ParallelContext()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; scheme {a.scheme}, "
        f"tol {a.tol}, estimate {a.estimate}"
    )
    t_all, c_all = time.perf_counter(), time.process_time()
    spins, rel = relax(ctx, a.scheme, a.tol, a.estimate)
    print(
        f"relax at V = 0 (once): {rel['cpu_seconds']:.2f} s CPU ({rel['seconds']:.2f} s wall), "
        f"t = {rel['time']:.1f}, "
        f"{rel['evals']} evals"
    )
    runs = []
    for v in a.biases:
        r = drive(ctx, a.scheme, a.tol, v, t_end, spins, estimate=a.estimate)
        runs.append(r)
        print(
            f"V = {v:+.2f}: v = {r['v']:+.8f} (closed form {r['v_closed_form']:+.8f}), "
            f"{r['cpu_seconds']:.2f} s CPU ({r['seconds']:.2f} s wall), {r['evals']} evals "
            f"({r['ms_per_eval']:.3f} ms CPU each), warm/cold {r['warm']}"
        )
    total, cpu = time.perf_counter() - t_all, time.process_time() - c_all
    print(
        f"whole set (relax + {len(runs)} drives to t = {t_end:g}): {cpu:.1f} s CPU "
        f"({total:.1f} s wall; goal <= 60 s on one core)"
    )
    res = {"load": load, "scheme": a.scheme, "tol": a.tol, "estimate": a.estimate}
    res.update(t_end=t_end, relax=rel)
    res.update(runs=runs, total_seconds=total, total_cpu_seconds=cpu)
    if a.ref_steps:
        n = a.ref_steps
        fast = drive(ctx, a.scheme, a.tol, 0.5, t_end, spins, max_steps=n, estimate=a.estimate)
        ref = drive(ctx, "reference", a.tol, 0.5, t_end, spins, max_steps=n)
        ratio = ref["cpu_seconds"] / fast["cpu_seconds"]
        print(
            f"{n} drive steps at V = 0.5, same run: reference "
            f"{ref['ms_per_eval']:.2f} ms CPU/eval, "
            f"{a.scheme} {fast['ms_per_eval']:.3f} ms CPU/eval: {ratio:.1f}x"
        )
        res["same_steps"] = {"reference": ref, a.scheme: fast, "ratio": ratio}
    ctx.free()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
