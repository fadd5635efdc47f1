"""Benchmark of ML force evaluation against the model's own matrix-product bound.

For every shipped model (models/chain_dw_{E,EA,Evector}.pt; random weights of the
same architecture when a file is missing), float64 and float32, and chains of
N = 1e4, 1e5, 1e6 sites on ONE thread, it reports

- the site-evaluations/s of the inference path (the analytic path of
  ``hpcspin.ml.fused``) per core;
- the GEMM bound measured in the same run, just before: the same matrix products
  (every layer's W @ X forward and, for potentials, W^T @ G backward, on blocks of
  the size the model uses, mirrored copy included) timed alone on reused buffers;
  ``fraction`` = rate / bound (goal >= 0.5, no drop from 1e4 to 1e6);
- the autograd reference path at N = 1e4 (``speedup`` = fused / reference).

Writes bench/results/ml.json.

    .venv/bin/python bench/bench_ml.py [--sizes 1e4,1e5,1e6] [--seconds 2] [--quick]
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
from hpcspin.ml import ModelSpec, build_model, fused, load_model  # noqa: E402

MODELS = {"E": "chain_dw_E.pt", "EA": "chain_dw_EA.pt", "E+vector": "chain_dw_Evector.pt"}
GLOBALS = {"bias": 0.5, "mu": -1.0}


def shipped(head: str, dtype: str):
    """The shipped model of ``head`` cast to ``dtype`` (random weights if absent)."""
    path = os.path.join(ROOT, "models", MODELS[head])
    if os.path.exists(path):
        model, src = load_model(path), MODELS[head]
    else:
        spec = ModelSpec(head=head, hidden=(32, 32), globals=("bias",), chain_mirror=True)
        model, src = build_model(spec, seed=0), "random"
    return model.to(getattr(torch, dtype)), src


def spins(n: int, dtype) -> torch.Tensor:
    s = np.random.default_rng(0).normal(size=(n, 3))
    return torch.as_tensor(s / np.linalg.norm(s, axis=1, keepdims=True), dtype=dtype)


def timed(fn, seconds: float) -> float:
    """Seconds per call of ``fn`` (after one warm-up call), at least 2 calls."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if el >= seconds and n >= 2:
            return el / n


def gemm_plan(model) -> list[tuple[tuple[int, int], bool]]:
    """((rows, inner), transposed) of every matrix product of one block."""
    plan = []
    for t in model.terms:
        lins = getattr(model, t.net).linears()
        plan += [(tuple(lin.weight.shape), False) for lin in lins]
        if t.kind != "vector":  # backward: W^T @ G for every layer below the last
            plan += [(tuple(lin.weight.shape[::-1]), True) for lin in lins[:-1]]
    return plan


def gemm_bound(model, seconds: float) -> tuple[float, float]:
    """(sites/s, flop per site) if the model's matrix products were all it did."""
    cols = fused.BLOCK_SITES * (2 if model._symm else 1)
    dt = model.dtype
    bufs = []
    for (r, k), _ in gemm_plan(model):
        w = torch.randn(r, k, dtype=dt)
        bufs.append((w, torch.randn(k, cols, dtype=dt), torch.empty(r, cols, dtype=dt)))

    def block():
        for w, x, out in bufs:
            torch.mm(w, x, out=out)

    per_block = timed(block, seconds)
    flop = sum(2 * w.shape[0] * w.shape[1] * cols for w, _, _ in bufs) / fused.BLOCK_SITES
    return fused.BLOCK_SITES / per_block, flop


def rate(model, n: int, seconds: float, reference: bool = False) -> float:
    """Site-evaluations/s of model.field on a chain of n sites."""
    lat = make_lattice("chain", n)
    s = spins(n, model.dtype)
    model.fused = not reference
    try:
        return n / timed(lambda: model.field(s, lat, GLOBALS), seconds)
    finally:
        model.fused = True


def case(head: str, dtype: str, sizes, seconds: float) -> list[dict]:
    model, src = shipped(head, dtype)
    ref = rate(model, sizes[0], seconds, reference=True)
    rows = []
    for n in sizes:
        bound, flop = gemm_bound(model, seconds)
        r = rate(model, n, seconds)
        rows.append(
            {
                "head": head,
                "model": src,
                "hidden": list(model.spec.hidden),
                "dtype": dtype,
                "n_sites": n,
                "site_evals_per_s_per_core": r,
                "gemm_bound_per_s": bound,
                "fraction_of_gemm_bound": r / bound,
                "gemm_flop_per_site": flop,
                "gemm_gflops": bound * flop / 1e9,
                "reference_per_s_at_first_size": ref,
                "speedup_vs_reference": r / ref,
            }
        )
        print(
            f"{head:9s} {dtype}  N={n:<8d} {r:9.3g}/s  GEMM bound {bound:9.3g}/s "
            f"({bound * flop / 1e9:5.1f} GFLOP/s)  fraction {r / bound:5.2f}  "
            f"x{r / ref:4.1f} vs autograd",
            flush=True,
        )
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--heads", default=",".join(MODELS))
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--quick", action="store_true", help="N = 1e4 and 1e5, 0.5 s per case")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "ml.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    secs = args.seconds
    if args.quick:
        sizes, secs = [s for s in sizes if s <= 10**5] or sizes[:1], 0.5
    load0 = os.getloadavg()
    rows = []
    for dtype in args.dtypes.split(","):
        for head in args.heads.split(","):
            rows += case(head, dtype, sizes, secs)
    info = {
        "hpcspin_version": __version__,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "block_sites": fused.BLOCK_SITES,
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
        "results": rows,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(info, f, indent=1)
    print(f"load average {load0[0]:.2f} -> {os.getloadavg()[0]:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
