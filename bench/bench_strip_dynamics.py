"""NEGF-driven strip wall: warm starts with tracked resonances against the older warm starts.

A Bloch wall across the 20 x 4 open square strip (input_decks/dynamics_strip_square_negf.toml,
relaxed wall of bench/strip_wall_vset.py if its JSON is there), driven at V = 0.5 (rk4,
dt = 0.2) for ``--steps`` steps in the same run with

* ``tracked``: the default (strip roots searched on cold starts, followed on warm ones;
  the grid moves with the resonances; negf/pole_tracking.py);
* ``searched``: warm grids reused as they are and the full root search on every
  evaluation (the bound-state occupation needs the roots), seeds on cold starts only:
  the engine before the tracking;
* ``no-seed``: no resonance search at all (``resonances=False``);
* ``ladder``: the narrow resonances graded by ladders of ratio FAST_LADDER in the plain
  window variable (``map_poles=False``), instead of mapped into the variable
  (negf/pole_map.py): the engine before the map.

Prints CPU seconds (process time) per field evaluation, points, cold/warm counts, ratios
to ``tracked``, and the error of sampled evaluations: max |delta s_i| against a cold
evaluation of the same spins at tol 1e-6 (fresh full search). ``--t-end`` instead drives
the tracked engine to that time and fits the wall velocity over the second half.

    .venv/bin/python bench/bench_strip_dynamics.py --steps 50 --tols 1e-4 1e-5 1e-6
    .venv/bin/python bench/bench_strip_dynamics.py --baselines ladder
    .venv/bin/python bench/bench_strip_dynamics.py --t-end 150 --tols 1e-4

JSON to bench/results/strip_dynamics.json (or strip_dynamics_t<t_end>_tol<tols>.json).
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
from hpcspin.dynamics.simulation import DRIVE  # noqa: E402
from hpcspin.negf import NEGFEngine  # noqa: E402
from hpcspin.parallel.context import ParallelContext  # noqa: E402
from hpcspin.tasks.common import electron_params_from, initial_spins, lattice_from  # noqa: E402
from hpcspin.tasks.dynamics import simulation_from  # noqa: E402

HERE = os.path.dirname(__file__)
RESULTS = os.path.join(HERE, "results")
DECK = os.path.join(HERE, "..", "input_decks", "dynamics_strip_square_negf.toml")
BIAS = 0.5


def start_spins(cfg, lattice) -> tuple[np.ndarray, str]:
    path = os.path.join(RESULTS, f"strip_wall_{cfg.run.name}.json")
    if os.path.exists(path):
        with open(path) as f:
            return np.array(json.load(f)["relaxed_spins"]), path
    return initial_spins(cfg, lattice), "initial wall of the deck"


def engine_of(sim):
    return next(p for p in sim.field.providers if hasattr(p, "engine"))


def drive(cfg, ctx, spins, mode: str, tol: float, steps: int, every: int) -> dict:
    """Drive ``steps`` rk4 steps; CPU per evaluation, points, sampled spins."""
    c = cfg.replace("negf", scheme="fast", tol=tol).replace("electrons", bias=BIAS)
    sim = simulation_from(c, ctx)
    prov = engine_of(sim)
    eng = prov.engine
    if mode == "no-seed":
        eng.resonances = False
    if mode == "ladder":
        eng.map_poles = False  # graded ladders (ratio 16): the engine before the map
    if mode == "searched":
        eng._tracks = lambda system: False  # the engine before the tracking
    cpu, pts, samples = [], [], []
    compute = eng.compute

    def timed(s, **kw):
        c0 = time.process_time()
        r = compute(s, **kw)
        cpu.append(time.process_time() - c0)
        pts.append(r.n_energy_points)
        if (len(cpu) - 1) % every == every - 1:
            samples.append((len(cpu) - 1, np.array(s), r.spin_density.copy()))
        return r

    eng.compute = timed
    state = sim.state(spins, phase=DRIVE)
    sim.set_bias(BIAS)
    sim.drive(state, steps * sim.dt, c.dynamics.alpha)
    out = {"mode": mode, "tol": tol, "evals": len(cpu), "cpu_total": float(np.sum(cpu))}
    out["cpu_per_eval_ms"] = 1e3 * float(np.mean(cpu))
    out["cpu_per_eval_ms_after_first"] = 1e3 * float(np.mean(cpu[1:]))
    out["points_min_max"] = [int(min(pts)), int(max(pts))]
    out["points_first"] = int(pts[0])
    out["points_mean"] = float(np.mean(pts))
    out["warm_counts"] = dict(prov.warm.counts)
    out["pole_counts"] = dict(prov.warm.poles.counts)
    sim.free()
    return out, samples


def errors(cfg, samples) -> list[dict]:
    """max |delta s| of sampled evaluations against cold tol 1e-6 ones (fresh search)."""
    lat = lattice_from(cfg)
    ref = NEGFEngine(lat, electron_params_from(cfg, BIAS), tol=1e-6, scheme="fast")
    out = []
    for k, spins, s in samples:
        r = ref.compute(spins, bias=BIAS)
        out.append({"eval": k, "max_abs_ds": float(np.abs(s - r.spin_density).max())})
    return out


def short_runs(cfg, ctx, spins, a) -> list[dict]:
    rows = []
    for tol in a.tols:
        for mode in ["tracked"] + (a.baselines if tol == a.tols[0] else []):
            row, samples = drive(cfg, ctx, spins, mode, tol, a.steps, a.every)
            row["errors"] = errors(cfg, samples)
            row["max_error"] = max(e["max_abs_ds"] for e in row["errors"])
            rows.append(row)
            print(
                f"tol {tol:.0e} {mode:9s}: {row['cpu_per_eval_ms']:.0f} ms CPU/eval "
                f"({row['cpu_per_eval_ms_after_first']:.0f} after the first), points "
                f"{row['points_min_max']} (first {row['points_first']}), {row['warm_counts']}, "
                f"{row['pole_counts']}, "
                f"max |ds| vs cold 1e-6 {row['max_error']:.1e}",
                flush=True,
            )
    base = {r["mode"]: r for r in rows if r["tol"] == a.tols[0]}
    for mode, r in base.items():
        ratio = r["cpu_per_eval_ms"] / base["tracked"]["cpu_per_eval_ms"]
        print(f"tol {a.tols[0]:.0e}: {mode} / tracked CPU per evaluation = {ratio:.2f}")
    return rows


def long_run(cfg, ctx, spins, tol: float, t_end: float) -> dict:
    c = cfg.replace("negf", scheme="fast", tol=tol).replace("electrons", bias=BIAS)
    sim = simulation_from(c, ctx)
    w = sim.lattice.width
    state = sim.state(spins, phase=DRIVE)
    sim.set_bias(BIAS)
    ts, xs = [0.0], [wall_centre(spins[:, 2].reshape(-1, w).mean(axis=1))]
    c0 = time.process_time()
    n, done = sim.n_steps(t_end), 0
    while done < n:
        k = min(5, n - done)
        sim.drive(state, (state.step + k) * sim.dt, c.dynamics.alpha)
        done += k
        ts.append(state.time)
        xs.append(wall_centre(state.spins.reshape(-1, 3)[:, 2].reshape(-1, w).mean(axis=1)))
    prov = engine_of(sim)
    out = {"tol": tol, "t_end": t_end, "cpu_seconds": time.process_time() - c0}
    out["evals"] = sim.field.n_calls
    out["v"] = wall_velocity(np.array(ts), np.array(xs), t_end / 2, t_end)
    out["warm_counts"], out["pole_counts"] = dict(prov.warm.counts), dict(prov.warm.poles.counts)
    out["time"], out["wall_x"] = ts, xs
    sim.free()
    print(
        f"tol {tol:.0e}, t = {t_end}: v = {out['v']:+.7f}, {out['cpu_seconds']:.0f} s CPU, "
        f"{out['evals']} evaluations, {out['warm_counts']}, {out['pole_counts']}",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deck", default=DECK)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--every", type=int, default=50, help="sample every this many evaluations")
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-4])
    ap.add_argument("--baselines", nargs="*", default=["searched", "no-seed"])
    ap.add_argument("--t-end", type=float, default=0.0, help="a long tracked run instead")
    ap.add_argument("--quick", action="store_true", help="10 steps, errors every 10 evaluations")
    a = ap.parse_args()
    if a.quick:
        a.steps, a.every = 10, 10
    cfg = load_deck(a.deck, check_files=False)
    ctx = ParallelContext()
    spins, source = start_spins(cfg, lattice_from(cfg))
    out = {"deck": a.deck, "start": source, "load": os.getloadavg(), "bias": BIAS}
    os.makedirs(RESULTS, exist_ok=True)
    if a.t_end:
        out["runs"] = [long_run(cfg, ctx, spins, tol, a.t_end) for tol in a.tols]
        name = f"strip_dynamics_t{a.t_end:g}_tol{'_'.join(f'{t:.0e}' for t in a.tols)}.json"
    else:
        out["steps"], out["rows"] = a.steps, short_runs(cfg, ctx, spins, a)
        name = "strip_dynamics.json"
    with open(os.path.join(RESULTS, name), "w") as f:
        json.dump(out, f, indent=1)
    ctx.free()
    print(f"wrote {os.path.join(RESULTS, name)}")


if __name__ == "__main__":
    main()
