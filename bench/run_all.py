"""Run every bench/bench_*.py in turn and collect their results (``make bench``).

Each benchmark runs in its own process group under a time limit; a failure or a
timeout is recorded and the next benchmark runs. The JSON files a benchmark
writes to bench/results/ during its run are read back and gathered, with the
exit status, wall time and load average of each run, into
bench/results/summary.json.

    .venv/bin/python bench/run_all.py [--only dynamics,ml] [--timeout 900] [--quick] [--list]

``--quick`` passes ``--quick`` to the benchmarks that accept it (smoke test).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import signal
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
SUMMARY = os.path.join(RESULTS, "summary.json")
ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


def discover() -> list[str]:
    """Paths of bench/bench_*.py, sorted by name."""
    return sorted(glob.glob(os.path.join(BENCH, "bench_*.py")))


def bench_name(path: str) -> str:
    """``bench/bench_ml.py`` -> ``ml``."""
    return os.path.basename(path)[len("bench_") : -len(".py")]


def _results_mtimes() -> dict[str, float]:
    return {
        p: os.path.getmtime(p)
        for p in glob.glob(os.path.join(RESULTS, "*.json"))
        if os.path.abspath(p) != SUMMARY
    }


def _stop_group(proc: subprocess.Popen) -> None:
    """End the benchmark's own process group (it and the mpirun it started)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_one(path: str, timeout: float, quick: bool, log_dir: str) -> dict:
    """Run one benchmark; return its record (status, seconds, results)."""
    name = bench_name(path)
    args = [sys.executable, path]
    with open(path) as fh:
        if quick and '"--quick"' in fh.read():
            args.append("--quick")
    env = dict(os.environ, **ENV)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    before = _results_mtimes()
    load = os.getloadavg()
    log_path = os.path.join(log_dir, f"{name}.log")
    t0 = time.perf_counter()
    started = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            rc, status = None, "timeout"
    seconds = time.perf_counter() - t0
    with open(log_path) as fh:
        output = fh.read()
    # Files written during the run: its own <name>.json, and any other new file that is
    # not named after another benchmark (those may be written by concurrent runs).
    others = {bench_name(p) + ".json" for p in discover()} - {name + ".json"}
    results = {}
    for p, m in sorted(_results_mtimes().items()):
        if os.path.basename(p) in others:
            continue
        if m >= started - 1 and before.get(p) != m:
            try:
                with open(p) as fh:
                    results[os.path.basename(p)] = json.load(fh)
            except (OSError, ValueError) as exc:
                results[os.path.basename(p)] = {"error": f"unreadable: {exc}"}
    return {
        "name": name,
        "script": os.path.relpath(path, ROOT),
        "command": " ".join(os.path.relpath(a, ROOT) if a == path else a for a in args),
        "status": status,
        "returncode": rc,
        "seconds": seconds,
        "timeout_s": timeout,
        "load_average_before": list(load),
        "output_tail": output[-3000:],
        "results": results,
    }


def headline(rec: dict, limit: int = 6) -> str:
    """A few numbers of a benchmark's results for the printed summary.

    A result file's ``headline`` dict if it has one, else its top-level numbers.
    """
    parts = []
    for data in rec["results"].values():
        items = data.get("headline", data) if isinstance(data, dict) else {}
        for k, v in items.items():
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if k in ("cores", "cpus", "torch_threads", "threads", "benchmark_seconds"):
                continue
            parts.append(f"{k}={v:.4g}")
            if len(parts) >= limit:
                return ", ".join(parts)
    return ", ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated names, e.g. dynamics,ml")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark")
    ap.add_argument("--quick", action="store_true", help="--quick to those that accept it")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args()
    scripts = discover()
    if args.list:
        for p in scripts:
            print(bench_name(p), os.path.relpath(p, ROOT))
        return 0
    if args.only:
        want = {w.strip() for w in args.only.split(",") if w.strip()}
        unknown = want - {bench_name(p) for p in scripts}
        if unknown:
            print(f"unknown benchmark(s) {sorted(unknown)}; see --list", file=sys.stderr)
            return 2
        scripts = [p for p in scripts if bench_name(p) in want]
    os.makedirs(RESULTS, exist_ok=True)
    log_dir = os.path.join(RESULTS, "logs")
    os.makedirs(log_dir, exist_ok=True)
    print(
        f"{len(scripts)} benchmark(s) on {platform.node()} ({os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f}); limit {args.timeout:.0f} s each; logs in "
        f"{os.path.relpath(log_dir, ROOT)}/",
        flush=True,
    )
    records = []
    t0 = time.perf_counter()
    for p in scripts:
        print(f"== {bench_name(p)}", flush=True)
        rec = run_one(p, args.timeout, args.quick, log_dir)
        records.append(rec)
        tail = "\n".join(rec["output_tail"].rstrip().splitlines()[-4:])
        print(f"   {rec['status']} in {rec['seconds']:.0f} s\n{tail}", flush=True)
    summary = {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "load_average_end": list(os.getloadavg()),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": time.perf_counter() - t0,
        "benchmarks": records,
    }
    if args.only and os.path.exists(SUMMARY):  # keep the other benchmarks' last records
        try:
            with open(SUMMARY) as fh:
                old = json.load(fh)
            ran = {r["name"] for r in records}
            summary["benchmarks"] = [
                r for r in old.get("benchmarks", []) if r.get("name") not in ran
            ] + records
        except (OSError, ValueError):
            pass
    tmp = SUMMARY + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(summary, fh, indent=1)
    os.replace(tmp, SUMMARY)
    print("\nsummary")
    for rec in records:
        files = ", ".join(rec["results"]) or "no results written"
        print(f"  {rec['name']:10s} {rec['status']:8s} {rec['seconds']:7.0f} s  {files}")
        h = headline(rec)
        if h:
            print(f"  {'':10s} {h}")
    print(f"wrote {os.path.relpath(SUMMARY, ROOT)}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
