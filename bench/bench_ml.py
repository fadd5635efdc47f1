"""Benchmark of ML force evaluation: site-evaluations per second.

One CPU core (torch.set_num_threads(1)), chains of N = 60 (the reference
experiment), 1e4 and 1e5 sites, each head (radius 3, hidden (32, 32), bias as a
global input), float64 and float32. The baseline measured in the same run is
the stacked-window descriptor path (the reference kernels); the ratio
grid/window shows what the bond-grid kernels buy. With CUDA present, float32
chains of 1e6 and 4e6 sites on the GPU too (goal >= 1e8 site-evals/s). Writes
bench/results/ml.json.

    .venv/bin/python bench/bench_ml.py [--seconds 1.5] [--sizes 60,10000,100000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hpcspin import __version__  # noqa: E402
from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.ml import HEADS, ModelSpec, build_model  # noqa: E402


def spins(n, seed=0):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def rate(model, s, lat, seconds, device):
    """Site-evaluations per second of model.field on one configuration."""

    def call():
        model.field(s, lat, {"bias": 0.25})
        if device == "cuda":
            torch.cuda.synchronize()

    call()  # warm-up (allocations, caches)
    n, t0 = 0, time.perf_counter()
    while True:
        call()
        n += 1
        el = time.perf_counter() - t0
        if el >= seconds and n >= 2:
            break
    return lat.n_sites * n / el, el / n


def bench(head, n, dtype, path, seconds, device="cpu"):
    spec = ModelSpec(head=head, radius=3, hidden=(32, 32), globals=("bias",), dtype=dtype)
    model = build_model(spec, seed=0).to(device)
    model.grid_kernel_min_sites = 0 if path == "grid" else 10**12
    lat = make_lattice("chain", n)
    s = torch.as_tensor(spins(n), dtype=model.dtype, device=device)
    r, per_call = rate(model, s, lat, seconds, device)
    return {
        "head": head,
        "n_sites": n,
        "dtype": dtype,
        "path": path,
        "device": device,
        "site_evals_per_s": r,
        "ms_per_call": per_call * 1e3,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--sizes", default="60,10000,100000")
    ap.add_argument("--quick", action="store_true", help="float64 only, 0.5 s per case")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "ml.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    secs = 0.5 if args.quick else args.seconds
    rows = []
    for dtype in ["float64"] if args.quick else ["float64", "float32"]:
        for n in sizes:
            for head in HEADS:
                base = bench(head, n, dtype, "window", secs)
                grid = bench(head, n, dtype, "grid", secs)
                rows += [base, grid]
                print(
                    f"{head:9s} N={n:<7d} {dtype}  window {base['site_evals_per_s']:.3g}/s "
                    f"({base['ms_per_call']:.2f} ms)  grid {grid['site_evals_per_s']:.3g}/s "
                    f"({grid['ms_per_call']:.2f} ms)  grid/window "
                    f"{grid['site_evals_per_s'] / base['site_evals_per_s']:.2f}",
                    flush=True,
                )
    if torch.cuda.is_available():
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        for n in (10**6, 4 * 10**6):
            for head in HEADS:
                r = bench(head, n, "float32", "grid", secs, device="cuda")
                rows.append(r)
                ok = "meets" if r["site_evals_per_s"] >= 1e8 else "below"
                print(
                    f"{head:9s} N={n:<8d} float32 cuda  {r['site_evals_per_s']:.3g}/s "
                    f"({r['ms_per_call']:.2f} ms)  {ok} the 1e8 goal",
                    flush=True,
                )
    else:
        print("no CUDA device: GPU cases skipped")
    info = {
        "hpcspin_version": __version__,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": os.getloadavg(),
        "results": rows,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(info, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
