"""Benchmark of ML force evaluation against the model's own matrix-product bound.

For every shipped model (models/chain_dw_{E,EA,Evector}.pt; random weights of the
same architecture when a file is missing), float64 and float32, and chains of
N = 1e4, 1e5, 1e6 sites on ONE thread, it measures

- the site-evaluations/s of the inference path (``hpcspin.ml.fused``: compiled
  kernels on CPU when numba is installed) per core;
- the GEMM bound: the same matrix products the path makes (every layer's W @ X,
  the first layers of a head's networks stacked as the path stacks them, and for
  potentials W^T @ G for every layer below the last, on blocks of the size the path
  uses, mirrored copy included) timed alone on reused buffers;
- the same products on blocks of 4096 sites (``bound_4096``: a check that a small
  block does not flatter the fraction by slowing the products down);
- the autograd reference path at the first size.

On a shared machine the rates of all of these drift with the load, so they are
timed INTERLEAVED: every round times each once (process CPU time, at least
``--seconds`` and one call each), over ``--rounds`` rounds. The fraction
rate / bound is formed per round from neighbouring timings; the JSON keeps its
median, min and max over the rounds, and the medians, min and max of every rate.

Writes bench/results/ml.json.

    .venv/bin/python bench/bench_ml.py [--sizes 1e4,1e5,1e6] [--rounds 5] [--quick]
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
from hpcspin.ml import ModelSpec, build_model, fused, fused_cpu, load_model  # noqa: E402

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


def block_sites(model) -> int:
    """Centre cells per block of the path the model takes."""
    if fused.USE_CPU_KERNELS and fused_cpu.available(model):
        return fused_cpu.BLOCK_SITES[model.dtype]
    return fused.BLOCK_SITES


def gemm_plan(model) -> list[tuple[int, int]]:
    """(rows, inner) of every matrix product of one block (transposes have the same cost)."""
    nets = [(t, getattr(model, t.net).linears()) for t in model.terms]
    stacked = fused.USE_CPU_KERNELS and fused_cpu.available(model)
    plan = []
    if stacked:  # one product for all first layers
        plan.append((sum(ls[0].weight.shape[0] for _, ls in nets), nets[0][1][0].weight.shape[1]))
    for t, lins in nets:
        plan += [tuple(lin.weight.shape) for lin in lins[1 if stacked else 0 :]]
        if t.kind != "vector":  # backward: W^T @ G for every layer below the last
            plan += [tuple(lin.weight.shape[::-1]) for lin in lins[:-1]]
    return plan


def gemm_block(model, sites: int):
    """(callable doing one block's products, flop per site)."""
    cols = sites * (2 if model._symm else 1)
    dt = model.dtype
    bufs = [
        (
            torch.randn(r, k, dtype=dt),
            torch.randn(k, cols, dtype=dt),
            torch.empty(r, cols, dtype=dt),
        )
        for r, k in gemm_plan(model)
    ]

    def block():
        for w, x, out in bufs:
            torch.mm(w, x, out=out)

    return block, sum(2 * r * k * cols for (r, k) in gemm_plan(model)) / sites


def timed_rate(fn, sites: float, seconds: float) -> float:
    """Sites/s of ``fn`` over at least ``seconds`` of process CPU time and one call."""
    n, t0 = 0, time.process_time()
    while True:
        fn()
        n += 1
        el = time.process_time() - t0
        if el >= seconds:
            return sites * n / el


def interleaved(fns: dict, rounds: int, seconds: float) -> dict:
    """{name: [rate per round]}: each round times every (fn, sites) once, in turn."""
    for fn, _ in fns.values():
        fn()  # warm-up (compilation, buffers)
    out = {k: [] for k in fns}
    for r in range(rounds):
        names = list(fns) if r % 2 == 0 else list(fns)[::-1]  # alternate the order
        for k in names:
            out[k].append(timed_rate(*fns[k], seconds))
    return out


def _stats(x) -> dict:
    return {"median": float(np.median(x)), "min": float(np.min(x)), "max": float(np.max(x))}


def case(head, dtype, n, ref_n, rounds, seconds) -> dict:
    """One (model, dtype, N): interleaved rounds of path, bound, bound_4096 (and reference)."""
    model, src = shipped(head, dtype)
    lat, s = make_lattice("chain", n), spins(n, model.dtype)
    bs = block_sites(model)
    gemm, flop = gemm_block(model, bs)
    gemm4k, _ = gemm_block(model, 4096)
    fns = {
        "path": (lambda: model.field(s, lat, GLOBALS), n),
        "bound": (gemm, bs),
        "bound_4096": (gemm4k, 4096),
    }
    if n == ref_n:
        ref = build_model(model.spec)
        ref.load_state_dict(model.state_dict())
        ref.fused = False
        fns["reference"] = (lambda: ref.field(s, lat, GLOBALS), n)
    r = interleaved(fns, rounds, seconds)
    frac = np.array(r["path"]) / np.array(r["bound"])
    row = {
        "head": head, "model": src, "hidden": list(model.spec.hidden), "dtype": dtype,
        "n_sites": n, "block_sites": bs, "rounds": rounds,
        "site_evals_per_s_per_core": _stats(r["path"]),
        "gemm_bound_per_s": _stats(r["bound"]),
        "gemm_bound_4096_per_s": _stats(r["bound_4096"]),
        "fraction_of_gemm_bound": _stats(frac),
        "fraction_of_bound_4096": _stats(np.array(r["path"]) / np.array(r["bound_4096"])),
        "fraction_best_of_rounds": max(r["path"]) / max(r["bound"]),
        "gemm_flop_per_site": flop,
        "gemm_gflops": _stats(np.array(r["bound"]) * flop / 1e9),
    }  # fmt: skip
    if "reference" in r:
        row["reference_per_s"] = _stats(r["reference"])
        row["speedup_vs_reference"] = _stats(np.array(r["path"]) / np.array(r["reference"]))
    return row


def show(row) -> None:
    f, p, b = (
        row[k] for k in ("fraction_of_gemm_bound", "site_evals_per_s_per_core", "gemm_gflops")
    )
    sp = row.get("speedup_vs_reference", {}).get("median")
    print(
        f"{row['head']:9s} {row['dtype']}  N={row['n_sites']:<8d} {p['median']:9.3g}/s  "
        f"GEMM {b['median']:5.1f} GFLOP/s ({b['min']:4.1f}-{b['max']:4.1f})  "
        f"fraction {f['median']:5.2f} ({f['min']:4.2f}-{f['max']:4.2f})  "
        f"vs 4096-blocks {row['fraction_of_bound_4096']['median']:4.2f}"
        + (f"  x{sp:4.1f} vs autograd" if sp else ""),
        flush=True,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="CPU seconds per timing")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--heads", default=",".join(MODELS))
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--quick", action="store_true", help="N <= 1e5, 3 rounds of 0.1 s")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "ml.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    sizes = [int(float(x)) for x in args.sizes.split(",")]
    rounds, secs = args.rounds, args.seconds
    if args.quick:
        sizes, rounds, secs = [s for s in sizes if s <= 10**5] or sizes[:1], 3, 0.1
    load0 = os.getloadavg()
    rows = []
    for dtype in args.dtypes.split(","):
        for head in args.heads.split(","):
            for n in sizes:
                rows.append(case(head, dtype, n, sizes[0], rounds, secs))
                show(rows[-1])
    info = {
        "hpcspin_version": __version__,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "threads": 1,
        "timer": "process CPU time, interleaved rounds",
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
