"""GPU verification and measurement of the ML forces, in one call (bench/gpu_check.sh).

Parts (each a JSON section of the output; a failing part is recorded and the
others still run):

fields      CUDA field == CPU field for every head (chain and periodic triangular
            strip, random weights, and every shipped model), fused and autograd
            paths, float64 (tolerance 1e-10 relative) and float32 (1e-5).
dynamics    the demo deck, driven without relaxation for t = 10, on 1 and 2 ranks
            with [parallel] device = "cuda" and "cpu": final spins compared.
halo        2 ranks: forward + reverse halo exchange of CUDA tensors of a
            chain domain (staged through the host unless HPCSPIN_CUDA_AWARE_MPI=1),
            timed against the ML field of the same domain on the GPU.
throughput  N = 1e4 .. 1e7 sites per GPU, float32 and float64, shipped E+vector
            model: site-evaluations/s, the ratio to one CPU core (measured in the
            same run at N = 1e5), TFLOP/s from the model's matrix products and
            the fraction of the H200's peak (67 TFLOP/s float32, 34 float64), memory
            per site (peak allocation / N), and an estimate of the bandwidth used
            (every byte of the peak allocation written and read once per call)
            against 4.8 TB/s.
shared      4 ranks on one node: the device each picks (cuda:(local rank mod GPUs))
            and their aggregate rate at N = 1e6 each, against one rank alone.
largest     the largest N per GPU predicted from the memory per site and the free
            memory, checked by one evaluation at 80 % of it (float32).

``--cpu`` (implied without CUDA, e.g. under ``make bench``) substitutes the CPU for
CUDA and uses small sizes: it checks that the script runs end to end on a machine
without a GPU (the numbers then mean nothing).

    .venv/bin/python bench/bench_gpu.py --out $OUT/gpu.json [--cpu] [--parts a,b]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.ml import HEADS, ModelSpec, build_model, load_model  # noqa: E402

PEAK_TFLOPS = {"float32": 67.0, "float64": 34.0}
BANDWIDTH = 4.8e12
MODEL = os.path.join(ROOT, "models", "chain_dw_Evector.pt")
DEMO = os.path.join(ROOT, "input_decks", "demo_chain_ml.toml")
ENV = dict(
    os.environ,
    OMP_NUM_THREADS="1",
    OMPI_ALLOW_RUN_AS_ROOT="1",
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
    OMPI_MCA_rmaps_base_oversubscribe="1",
)


def device(cpu: bool) -> torch.device:
    return torch.device("cpu") if cpu else torch.device("cuda")


def sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def spins(n: int, batch: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n, 3) if batch is None else (batch, n, 3)
    s = np.random.default_rng(seed).normal(size=shape)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def rate(model, n: int, dev, seconds: float) -> float:
    """Site-evaluations/s of model.field on a chain of n sites on ``dev``."""
    lat = make_lattice("chain", n)
    s = torch.as_tensor(spins(n), dtype=model.dtype, device=dev)
    g = {"bias": 0.5}
    model.field(s, lat, g)
    sync(dev)
    k, t0 = 0, time.perf_counter()
    while True:
        model.field(s, lat, g)
        sync(dev)
        k += 1
        el = time.perf_counter() - t0
        if el >= seconds and k >= 2:
            return n * k / el


# -- parts -------------------------------------------------------------------------
def part_fields(args) -> dict:
    dev, rows, ok = device(args.cpu), [], True
    cases = [("chain", 3000, 1, False), ("triangular", 40, 6, True)]
    models = []
    for head in HEADS:
        for kind, ln, wd, per in cases:
            spec = ModelSpec(head=head, kind=kind, radius=2, hidden=(16, 16), globals=("bias",))
            models.append((f"random {head} {kind}", build_model(spec, seed=1), (kind, ln, wd, per)))
    for path in sorted(os.listdir(os.path.join(ROOT, "models"))):
        if path.endswith(".pt"):
            models.append((path, load_model(os.path.join(ROOT, "models", path)), cases[0]))
    for name, model, (kind, ln, wd, per) in models:
        lat = make_lattice(kind, ln, wd, per)
        s = spins(lat.n_sites, batch=2)
        g = {"bias": np.array([0.1, -0.3])}
        for dtype, tol in (("float64", 1e-10), ("float32", 1e-5)):
            for fused in (True, False):
                cpu = copy.deepcopy(model).to(getattr(torch, dtype))
                cpu.fused = fused
                gpu = copy.deepcopy(cpu).to(dev)
                ref = cpu.field(torch.as_tensor(s, dtype=cpu.dtype), lat, g).double().numpy()
                h = gpu.field(torch.as_tensor(s, dtype=gpu.dtype, device=dev), lat, g)
                err = float(np.abs(h.double().cpu().numpy() - ref).max() / np.abs(ref).max())
                ok &= err <= tol
                rows.append({"model": name, "dtype": dtype, "fused": fused, "rel_err": err})
    return {"ok": bool(ok), "rows": rows}


def _dyn_run(out: str, ranks: int, dev: str) -> np.ndarray:
    from hpcspin.io.trajectory import read_trajectory

    sets = [
        f'output.dir="{out}"',
        "output.plots=false",
        "dynamics.relax=false",
        "dynamics.t_end=10.0",
        f'parallel.device="{dev}"',
        'output.resume="never"',
    ]
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(ranks), sys.executable]
    cmd += ["-m", "hpcspin", DEMO] + [a for s in sets for a in ("--set", s)]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=ROOT, timeout=240)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return np.asarray(read_trajectory(os.path.join(out, "trajectory.h5"))["spins"][-1])


def part_dynamics(args) -> dict:
    gpu = "cpu" if args.cpu else "cuda"
    rows, ok = [], True
    with tempfile.TemporaryDirectory() as tmp:
        ref = _dyn_run(os.path.join(tmp, "cpu1"), 1, "cpu")
        for ranks in (1, 2):
            got = _dyn_run(os.path.join(tmp, f"{gpu}{ranks}"), ranks, gpu)
            err = float(np.abs(got - ref).max())
            ok &= err <= 1e-9
            rows.append({"ranks": ranks, "device": gpu, "max_spin_diff_vs_cpu_1rank": err})
    return {"ok": bool(ok), "rows": rows, "tolerance": 1e-9}


def part_halo(args) -> dict:
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", "2", sys.executable]
    cmd += [os.path.abspath(__file__), "--worker", "halo", "--n-halo", str(args.n_halo)]
    cmd += ["--cpu"] if args.cpu else []
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=ROOT, timeout=240)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def worker_halo(args) -> None:
    from hpcspin.parallel.context import ParallelContext, cuda_aware_mpi
    from hpcspin.parallel.decomp import Decomposition
    from hpcspin.parallel.halo import HaloExchanger

    ctx = ParallelContext()
    lat = make_lattice("chain", args.n_halo * ctx.size)
    model = load_model(MODEL)
    hx = model.halo_width[0]
    d = Decomposition.from_lattice(lat, ctx.size, ctx.rank, halo=(hx, 0))
    dev = device(args.cpu) if args.cpu else torch.device(f"cuda:{ctx.local_rank}")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    model = model.to(dev)
    t = torch.as_tensor(spins(d.shape[0]).reshape(d.shape + (3,)), device=dev)
    ex = HaloExchanger(ctx.comm, d)
    g = {"bias": 0.5}
    valid = torch.as_tensor(d.valid, device=dev)

    def halo():
        ex.forward(t)
        ex.reverse(t)
        sync(dev)

    def field():
        model.local_field(t, valid, d.halo, g)
        sync(dev)

    times = {}
    for name, fn in (("halo_s", halo), ("field_s", field)):
        fn()
        ctx.comm.Barrier()
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < 1.0 or k < 3:
            fn()
            k += 1
        times[name] = ctx.comm.allreduce((time.perf_counter() - t0) / k, op=max_op())
    if ctx.rank == 0:
        mode = "cuda-aware MPI" if cuda_aware_mpi() else "staged through host memory"
        share = times["halo_s"] / (times["halo_s"] + times["field_s"])
        print(
            json.dumps(
                {
                    "ok": True,
                    "mode": mode,
                    "sites_per_rank": args.n_halo,
                    **times,
                    "halo_share_of_field_eval": share,
                }
            )
        )


def max_op():
    from mpi4py import MPI

    return MPI.MAX


def _flop_per_site(model) -> float:
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from bench_ml import gemm_plan

    mult = 2 if model._symm else 1
    return sum(2 * r * k * mult for (r, k), _ in gemm_plan(model))


def part_throughput(args) -> dict:
    dev, rows = device(args.cpu), []
    for dtype in ("float32", "float64"):
        cpu_model = load_model(MODEL).to(getattr(torch, dtype))
        torch.set_num_threads(1)
        cpu_rate = rate(cpu_model, args.cpu_n, torch.device("cpu"), args.seconds)
        model = load_model(MODEL).to(dev, getattr(torch, dtype))
        flop = _flop_per_site(model)
        for n in args.sizes:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            r = rate(model, n, dev, args.seconds)
            row = {
                "dtype": dtype,
                "n_sites": n,
                "site_evals_per_s": r,
                "ratio_to_one_cpu_core": r / cpu_rate,
                "cpu_core_rate": cpu_rate,
                "tflops": r * flop / 1e12,
                "peak_fraction": r * flop / 1e12 / PEAK_TFLOPS[dtype],
                "flop_per_site": flop,
            }
            if dev.type == "cuda":
                per_site = (torch.cuda.max_memory_allocated() - base) / n
                row["bytes_per_site"] = per_site
                row["bandwidth_fraction_estimate"] = 2 * per_site * r / BANDWIDTH
            rows.append(row)
            print(f"  {dtype} N={n:.0e}: {r:.3g}/s  x{r / cpu_rate:.0f} vs 1 core", flush=True)
    goal = [r for r in rows if r["dtype"] == "float32" and r["n_sites"] >= 10**6]
    return {
        "ok": True,
        "goal_1e8_met": bool(goal) and all(r["site_evals_per_s"] >= 1e8 for r in goal),
        "rows": rows,
    }


def part_shared(args) -> dict:
    out = {}
    for ranks in (1, 4):
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(ranks), sys.executable]
        cmd += [os.path.abspath(__file__), "--worker", "shared", "--n-shared", str(args.n_shared)]
        cmd += ["--cpu"] if args.cpu else []
        r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, cwd=ROOT, timeout=240)
        if r.returncode:
            raise RuntimeError(r.stderr[-2000:])
        out[f"ranks_{ranks}"] = json.loads(r.stdout.strip().splitlines()[-1])
    mapping = out["ranks_4"]["devices"]
    n_gpu = 0 if args.cpu else torch.cuda.device_count()
    want = ["cpu"] * 4 if n_gpu == 0 else [f"cuda:{r % n_gpu}" for r in range(4)]
    out["ok"] = mapping == want
    out["aggregate_over_single"] = out["ranks_4"]["aggregate"] / out["ranks_1"]["aggregate"]
    return out


def worker_shared(args) -> None:
    from hpcspin.ml.device import pick_device
    from hpcspin.parallel.context import ParallelContext

    ctx = ParallelContext()
    dev = pick_device(ctx.local_rank, "cpu" if args.cpu else "auto")
    model = load_model(MODEL).to(dev, torch.float32)
    ctx.comm.Barrier()
    r = rate(model, args.n_shared, dev, args.seconds)
    devs = ctx.comm.gather(str(dev), root=0)
    total = ctx.comm.reduce(r, root=0)
    if ctx.rank == 0:
        print(json.dumps({"devices": devs, "aggregate": total}))


def part_largest(args) -> dict:
    if args.cpu:
        return {"ok": True, "skipped": "no GPU"}
    model = load_model(MODEL).to("cuda", torch.float32)
    n0 = 10**6
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    rate(model, n0, torch.device("cuda"), 0.1)
    per_site = (torch.cuda.max_memory_allocated() - base) / n0
    free, total = torch.cuda.mem_get_info()
    n_pred = int(free / per_site)
    n_try = int(0.8 * n_pred)
    try:
        r = rate(model, n_try, torch.device("cuda"), 0.1)
        ok = True
    except torch.cuda.OutOfMemoryError:
        r, ok = None, False
    return {
        "ok": ok,
        "bytes_per_site_float32": per_site,
        "free_bytes": free,
        "total_bytes": total,
        "predicted_max_n": n_pred,
        "tried_n": n_try,
        "rate_at_tried": r,
    }


PARTS = {
    "fields": part_fields,
    "dynamics": part_dynamics,
    "halo": part_halo,
    "throughput": part_throughput,
    "shared": part_shared,
    "largest": part_largest,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "gpu.json"))
    ap.add_argument("--cpu", action="store_true", help="CPU instead of CUDA, small sizes")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--worker", choices=("halo", "shared"), help=argparse.SUPPRESS)
    ap.add_argument("--n-halo", type=int, default=10**6)
    ap.add_argument("--n-shared", type=int, default=10**6)
    ap.add_argument("--quick", action="store_true", help="same as --cpu without a GPU")
    args = ap.parse_args()
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device: dry run with the CPU standing in (--cpu)", flush=True)
        args.cpu = True
    args.sizes = [10**4, 10**5, 10**6, 10**7]
    args.cpu_n = 10**5
    if args.cpu:
        args.sizes, args.cpu_n, args.n_halo, args.n_shared = [10**3, 10**4], 10**4, 10**4, 10**4
        args.seconds = min(args.seconds, 0.3)
    if args.worker:
        {"halo": worker_halo, "shared": worker_shared}[args.worker](args)
        return
    report = {
        "device": "cpu (substitute)" if args.cpu else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
    }
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        print(f"[{name}]", flush=True)
        try:
            report[name] = PARTS[name](args)
        except Exception:  # noqa: BLE001  (record it, run the other parts)
            report[name] = {"ok": False, "error": traceback.format_exc()[-3000:]}
        report[name]["seconds"] = time.perf_counter() - t0
        print(f"[{name}] ok={report[name].get('ok')} {report[name]['seconds']:.0f} s", flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1, default=str)
    print(f"wrote {args.out}")
    sys.exit(0 if all(report[p].get("ok") for p in args.parts.split(",")) else 1)


if __name__ == "__main__":
    main()
