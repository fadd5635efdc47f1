"""ML force evaluation against the NEGF field it replaces, measured in the same run.

    .venv/bin/python bench/bench_ml_vs_negf.py [--quick]

Cases: the reference chain of docs/physics.md (N = 60, the shipped model when present, else random
weights of the same architecture), longer chains (N = 250, 1000), and a W = 16 square
strip (L = 32, random weights; the NEGF time is what matters there). For each: seconds
per field evaluation of NEGF (V = 0.5, default accuracy) and of the ML model (one CPU
core), and their ratio; plus whole ML-driven vs NEGF-driven LLG steps (rk4) at N = 60.
Writes bench/results/ml_vs_negf.json.
"""

import json
import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hpcspin.dynamics.integrators import make_integrator  # noqa: E402
from hpcspin.dynamics.observables import domain_wall  # noqa: E402
from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.ml import ModelSpec, build_model, load_model  # noqa: E402
from hpcspin.negf import ElectronParams, NEGFEngine  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "bench", "results", "ml_vs_negf.json")
SHIPPED = os.path.join(ROOT, "models", "chain_dw_Evector.pt")
torch.set_num_threads(1)


def best_of(fn, repeat):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def model_for(lat):
    if lat.kind == "chain" and os.path.exists(SHIPPED):
        return load_model(SHIPPED, lattice=lat), "shipped"
    spec = ModelSpec(
        head="E+vector",
        kind=lat.kind,
        radius=3.0,
        hidden=(32, 32),
        globals=("bias",),
        bias_gate=True,
    )
    return build_model(spec, seed=0), "random weights"


def case(lat, repeat_negf, repeat_ml):
    spins = domain_wall(lat, (lat.length - 1) / 2, np.sqrt(5.0))
    eng = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, bias=0.5, temperature=0.05))
    res = eng.compute(spins)
    t_negf = best_of(lambda: eng.compute(spins), repeat_negf)
    model, kind = model_for(lat)
    g = {"bias": 0.5}
    model.field(spins, lat, g)
    t_ml = best_of(lambda: model.field(spins, lat, g), repeat_ml)
    return {
        "lattice": f"{lat.kind} {lat.length}x{lat.width}",
        "n_sites": lat.n_sites,
        "negf_seconds": t_negf,
        "negf_energy_points": res.n_energy_points,
        "ml_seconds": t_ml,
        "ml_weights": kind,
        "negf_over_ml": t_negf / t_ml,
    }


def llg_steps(n_steps):
    lat = make_lattice("chain", 60)
    spins = domain_wall(lat, 29.5, np.sqrt(5.0))
    eng = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, bias=0.5, temperature=0.05))
    model, _ = model_for(lat)
    integ = make_integrator("rk4", 0.1)
    out = {}
    for name, fn in (
        ("negf", lambda s: eng.field(s)),
        ("ml", lambda s: np.asarray(model.field(s, lat, {"bias": 0.5}))),
    ):
        s = spins.copy()
        t0 = time.perf_counter()
        for _ in range(n_steps):
            s = integ.step(s, 0.0, 0.2, fn)
        out[name] = (time.perf_counter() - t0) / n_steps
    return {
        "n_sites": 60,
        "steps": n_steps,
        "negf_seconds_per_step": out["negf"],
        "ml_seconds_per_step": out["ml"],
        "negf_over_ml": out["negf"] / out["ml"],
    }


def main():
    quick = "--quick" in sys.argv
    rows = [case(make_lattice("chain", 60), 3, 20)]
    if not quick:
        rows.append(case(make_lattice("chain", 250), 1, 10))
        rows.append(case(make_lattice("chain", 1000), 1, 10))
    rows.append(case(make_lattice("square", 32, 16), 1, 5))
    steps = llg_steps(5 if quick else 20)
    print(f"{'lattice':>16} {'N':>6} {'NEGF s':>9} {'points':>7} {'ML s':>9}  NEGF/ML")
    for r in rows:
        print(
            f"{r['lattice']:>16} {r['n_sites']:>6} {r['negf_seconds']:9.4f} "
            f"{r['negf_energy_points']:>7} {r['ml_seconds']:9.5f}  {r['negf_over_ml']:8.1f}"
            f"  ({r['ml_weights']})"
        )
    print(
        f"LLG rk4 step, N = 60: NEGF {steps['negf_seconds_per_step']:.4f} s, ML "
        f"{steps['ml_seconds_per_step']:.5f} s, ratio {steps['negf_over_ml']:.1f}"
    )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as fh:
        json.dump(
            {
                "host": platform.node(),
                "cores": os.cpu_count(),
                "loadavg": os.getloadavg(),
                "torch_threads": torch.get_num_threads(),
                "field": rows,
                "llg": steps,
            },
            fh,
            indent=2,
        )


if __name__ == "__main__":
    main()
