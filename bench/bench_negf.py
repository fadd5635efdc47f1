"""NEGF benchmarks: ratios measured in the same run; JSON to bench/results/negf.json.

    .venv/bin/python bench/bench_negf.py            # everything (spawns mpirun -n 2)
    .venv/bin/python bench/bench_negf.py --quick    # smaller sizes
    .venv/bin/python bench/bench_negf.py --fast-only  # only the scheme "fast" parts
    .venv/bin/python bench/bench_negf.py --fast-only --parts field,slope  # some of them

Scheme "fast" (compiled chain kernels, docs/negf.md) against scheme "reference" (the
numpy kernels) in the same run: the chain window kernel per site-energy, the pole sum per
site-energy, cold field evaluations of the reference wall at V = 0.5 (new spins every
call) at the same achieved accuracy (against a converged tol = 1e-11 reference), a
warm-started evaluation, the V = 0 cost slope over N = 1e3..1e5, and the achieved error
over tol of the strict and calibrated error estimates on the reference wall and a wall
across a 20 x 8 strip (20 x 4 with --quick).

The machine may be shared: compare ratios, not absolute times.
"""

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.negf import ElectronParams, NEGFEngine, get_solver  # noqa: E402
from hpcspin.negf.leads import Leads  # noqa: E402
from hpcspin.negf.system import OpenSystem  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "negf.json")


def wall(n):
    x = np.clip((np.arange(n) - (n - 1) / 2) / np.sqrt(5.0), -50, 50)
    th = 2 * np.arctan(np.exp(x))
    return np.stack([0 * th, np.sin(th), np.cos(th)], axis=1)


def timed(fn, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def system(lat, spins):
    return OpenSystem(lat, spins, Leads(lat))


def bench_rgf_vs_dense(n):
    lat = make_lattice("chain", n)
    sys_ = system(lat, wall(n))
    e = np.linspace(-1.9, -0.1, 64)
    rgf, dense = get_solver("rgf")(sys_), get_solver("dense")(sys_)
    t_dense, cd = timed(lambda: dense.first_column(e[:1]))
    t_rgf1, cr = timed(lambda: rgf.first_column(e[:1]), 3)
    t_rgf64, _ = timed(lambda: rgf.first_column(e), 2)
    diff = float(np.abs(cd - cr).max())
    r = {
        "n": n,
        "dense_s_per_energy": t_dense,
        "rgf_s_one_energy": t_rgf1,
        "rgf_s_per_energy_batch64": t_rgf64 / 64,
        "ratio_same_energy": t_dense / t_rgf1,
        "ratio_batched": t_dense / (t_rgf64 / 64),
        "max_abs_diff": diff,
    }
    print(
        f"rgf vs dense, chain N={n}: dense {t_dense:.2f} s/energy, rgf {t_rgf1 * 1e3:.1f} ms "
        f"(1 energy) / {t_rgf64 / 64 * 1e3:.2f} ms per energy in a batch of 64; ratio "
        f"{r['ratio_same_energy']:.0f}x (1 energy), {r['ratio_batched']:.0f}x (batched); "
        f"max diff {diff:.1e}"
    )
    return r


def bench_scaling(sizes, n_e=16):
    e = np.linspace(-1.9, -0.1, n_e)
    times = []
    for n in sizes:
        lat = make_lattice("chain", n)
        rgf = get_solver("rgf")(system(lat, wall(n)))
        t, _ = timed(lambda rgf=rgf: rgf.first_column(e), 2 if n <= 10000 else 1)
        times.append(t)
        print(f"rgf first column, chain N={n}, {n_e} energies: {t:.3f} s")
    slope = float(np.polyfit(np.log(sizes), np.log(times), 1)[0])
    print(f"log-log slope of rgf time vs N: {slope:.3f}")
    return {"sizes": list(sizes), "seconds": times, "energies": n_e, "slope": slope}


def bench_field(n_big):
    out = {}
    lat = make_lattice("chain", 60)
    s = wall(60)
    for v in (0.0, 0.5):
        eng = NEGFEngine(lat, ElectronParams(bias=v))
        t, r = timed(lambda eng=eng: eng.compute(s), 3)
        out[f"N60_V{v}"] = {"seconds": t, "points": r.n_energy_points, "current": r.current}
        print(
            f"field eval reference wall N=60 V={v}: {t * 1e3:.1f} ms, "
            f"{r.n_energy_points} energy points, I = {r.current:.6g}"
        )
    lat = make_lattice("chain", n_big)
    eng = NEGFEngine(lat, ElectronParams(bias=0.0))
    t, r = timed(lambda: eng.compute(wall(n_big)))
    out[f"N{n_big}_V0"] = {"seconds": t, "points": r.n_energy_points}
    print(f"field eval wall N={n_big} V=0 (default tol): {t:.2f} s, {r.n_energy_points} points")
    sizes = (120, 250) if n_big < 10000 else (120, 250, 500, 1000)
    ts, pts = [], []
    for n in sizes:
        eng = NEGFEngine(make_lattice("chain", n), ElectronParams(bias=0.5))
        t, r = timed(lambda eng=eng, n=n: eng.compute(wall(n)))
        ts.append(t)
        pts.append(r.n_energy_points)
        out[f"N{n}_V0.5"] = {"seconds": t, "points": r.n_energy_points}
        print(f"field eval wall N={n} V=0.5: {t:.2f} s, {r.n_energy_points} points")
    slope_t = float(np.polyfit(np.log(sizes), np.log(ts), 1)[0])
    slope_p = float(np.polyfit(np.log(sizes), np.log(pts), 1)[0])
    t_big = float(np.exp(np.polyval(np.polyfit(np.log(sizes), np.log(ts), 1), np.log(n_big))))
    out["V0.5_scaling"] = {
        "time_slope": slope_t,
        "points_slope": slope_p,
        f"extrapolated_N{n_big}_seconds": t_big,
    }
    print(
        f"V=0.5 wall: points ~ N^{slope_p:.2f}, time ~ N^{slope_t:.2f} (Fabry-Perot resonances "
        f"of the coherent chain, ~pi v_F/N apart, must each be resolved); extrapolated "
        f"N={n_big}: {t_big:.0f} s (not run)"
    )
    return out


def bench_petsc(width, length, n_e=8):
    try:
        petsc = get_solver("petsc")
    except Exception as exc:  # noqa: BLE001 - report and go on
        print(f"petsc: skipped ({exc})")
        return {"skipped": str(exc)}
    lat = make_lattice("square", length, width)
    rng = np.random.default_rng(0)
    s = rng.normal(size=(lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    sys_ = system(lat, s)
    e = np.linspace(-1.0, 1.0, n_e)
    rgf, pet = get_solver("rgf")(sys_), petsc(sys_)
    t_r, a = timed(lambda: rgf.first_column(e), 2)
    t_p, b = timed(lambda: pet.first_column(e), 2)
    z = np.array([-0.5 + 0.3j, 0.5 + 0.3j])
    t_rd, c = timed(lambda: rgf.diagonal_blocks(z), 2)
    t_pd, d = timed(lambda: pet.diagonal_blocks(z), 1)
    r = {
        "W": width,
        "L": length,
        "first_column_rgf_s": t_r,
        "first_column_petsc_s": t_p,
        "ratio_first_column": t_p / t_r,
        "diag_rgf_s": t_rd,
        "diag_petsc_s": t_pd,
        "ratio_diag": t_pd / t_rd,
        "max_diff": float(max(np.abs(a - b).max(), np.abs(c - d).max())),
    }
    print(
        f"petsc vs rgf, square W={width} L={length}: first column {n_e} energies "
        f"petsc/rgf = {r['ratio_first_column']:.1f}x; diagonal blocks (all columns) "
        f"petsc/rgf = {r['ratio_diag']:.1f}x; max diff {r['max_diff']:.1e}"
    )
    return r


def mpi_part(sizes):
    """Energy points over 2 ranks at the default blocking, best of 4 warm calls each:

    * serial: rank 0 alone (the other rank idle);
    * parallel: both ranks on one evaluation;
    * ceiling: both ranks each running the serial evaluation at the same time - what
      the machine allows two independent copies (shared cache and memory bandwidth);
      serial / ceiling is the best efficiency any energy split could reach here.
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD.Dup()
    out = {"ranks": comm.size}
    for n in sizes:
        lat = make_lattice("chain", n)
        p = ElectronParams(bias=0.5)
        s = wall(n)
        serial = NEGFEngine(lat, p)
        par = NEGFEngine(lat, p, comm=comm)
        serial.compute(s)
        ts, tp, tc, a, b = [], [], [], None, None
        for _ in range(4):
            comm.Barrier()
            if comm.rank == 0:
                t, a = timed(lambda: serial.compute(s))  # noqa: B023
                ts.append(t)
            comm.Barrier()
            t0 = time.perf_counter()
            b = par.compute(s)
            comm.Barrier()
            tp.append(time.perf_counter() - t0)
            comm.Barrier()
            t0 = time.perf_counter()
            serial.compute(s)
            tc.append(comm.allreduce(time.perf_counter() - t0, op=MPI.MAX))
        if comm.rank == 0:
            out[str(n)] = {
                "n": n,
                "block_intervals": par.block_intervals,
                "serial_s": min(ts),
                "parallel_s": min(tp),
                "efficiency": min(ts) / (comm.size * min(tp)),
                "machine_ceiling": min(ts) / min(tc),
                "bit_identical": bool(np.array_equal(a.spin_density, b.spin_density)),
                "points": b.n_energy_points,
            }
    if comm.rank == 0:
        print(json.dumps(out))


def bench_parallel(sizes):
    env = dict(
        os.environ,
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
        OMP_NUM_THREADS="1",
    )
    arg = ",".join(str(n) for n in sizes)
    cmd = ["timeout", "600", "mpirun", "-n", "2", sys.executable, __file__, "--mpi-part", arg]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if not line:
        print("parallel: failed\n" + out.stdout[-2000:] + out.stderr[-2000:])
        return {"failed": True}
    r = json.loads(line[-1])
    for n in sizes:
        q = r[str(n)]
        print(
            f"energy-point parallelism, wall N={n} V=0.5 ({q['points']} points), 2 ranks "
            f"(best of 4 warm calls): serial {q['serial_s']:.3f} s, parallel "
            f"{q['parallel_s']:.3f} s, efficiency {q['efficiency']:.2f} (machine ceiling for "
            f"two copies {q['machine_ceiling']:.2f}), bit-identical {q['bit_identical']}"
        )
    return r


def best_of(fn, repeat):
    """Best CPU time of ``repeat`` calls (this process; the machine may be shared)."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def _kernel_case(n, n_e):
    """us per site-energy of the window kernel and the pole sum, compiled and numpy."""
    from hpcspin.negf.solvers import RGFSolver

    sys_ = system(make_lattice("chain", n), wall(n))
    e = np.linspace(-1.9, -0.1, n_e)
    gl, gr = sys_.gammas(e)
    w = np.ones(n_e)
    z = -1.25 + 1j * np.geomspace(0.05, 10, 20)
    wz = np.ones(len(z))
    fast, ref = RGFSolver(sys_, compiled=True), RGFSolver(sys_)
    fast.window_terms(e, gl, gr, w)
    fast.pole_terms(z, wz)
    k = max(2, 20000 // n)
    per_w, per_p = 1e6 / (n * n_e), 1e6 / (n * len(z))
    return {
        "window_us_per_site_energy": best_of(lambda: fast.window_terms(e, gl, gr, w), k) * per_w,
        "window_numpy_us": best_of(lambda: ref.window_terms(e, gl, gr, w), max(2, k // 5)) * per_w,
        "pole_us_per_site_energy": best_of(lambda: fast.pole_terms(z, wz), k) * per_p,
        "pole_numpy_us": best_of(lambda: ref.pole_terms(z, wz), max(2, k // 5)) * per_p,
    }


def bench_kernels(sizes=(60, 1000), n_e=480):
    """Chain window kernel and pole sum: us per site-energy, compiled vs numpy."""
    from hpcspin.negf import kernels

    out = {"numba": kernels.AVAILABLE}
    for n in sizes:
        r = out[str(n)] = _kernel_case(n, n_e)
        tw, tr = r["window_us_per_site_energy"], r["window_numpy_us"]
        tp, tq = r["pole_us_per_site_energy"], r["pole_numpy_us"]
        print(
            f"chain N={n}: window kernel {tw:.4f} us/site-energy (numpy {tr:.3f}: {tr / tw:.0f}x; "
            f"goal <= 0.05), pole sum {tp:.4f} us/site-energy (numpy {tq:.3f}: {tq / tp:.0f}x; "
            f"{tp / tw:.2f}x the window kernel)"
        )
    return out


def _field_error(eng, s, ref):
    r = eng.compute(s)
    return r, float(
        max(np.abs(r.spin_density - ref.spin_density).max(), abs(r.current - ref.current))
    )


def shifted_walls(n, k=7):
    """``k`` reference walls with centres 0.05 sites apart: each cold call sees new spins."""
    out = []
    for j in range(k):
        x = np.clip((np.arange(n) - (n - 1) / 2 - 0.05 * j) / np.sqrt(5.0), -50, 50)
        th = 2 * np.arctan(np.exp(x))
        out.append(np.stack([0 * th, np.sin(th), np.cos(th)], axis=1))
    return out


#: Scheme "fast" settings timed against the reference scheme at tol 1e-6.
FAST_CASES = (
    ("strict", 1e-4),
    ("strict", 1e-5),
    ("strict", 1e-6),
    ("calibrated", 1e-6),
    ("calibrated", 1e-7),
)


def bench_field_fast(n=60, v=0.5, repeat=5):
    """Reference wall field evaluation: scheme fast vs reference at the same accuracy.

    Cold calls cycle over shifted walls (new spins every call, as in datagen; the lead
    and kernel-input caches keep only what does not depend on the spins); errors are
    those of the centred wall against a tol = 1e-11 reference (spin density and
    current). Warm: the previous grid of the same spins.
    """
    from hpcspin.negf.warm import WarmStart

    lat, s = make_lattice("chain", n), wall(n)
    walls = shifted_walls(n)
    p = ElectronParams(bias=v)
    conv = NEGFEngine(lat, p, tol=1e-11).compute(s)

    def cold(eng):
        return best_of(lambda: [eng.compute(w) for w in walls], repeat) / len(walls)

    base = NEGFEngine(lat, p, tol=1e-6)
    rb, eb = _field_error(base, s, conv)
    tb = cold(base)
    out = {"reference_tol1e-06": {"seconds": tb, "points": rb.n_energy_points, "error": eb}}
    print(f"field N={n} V={v} reference tol 1e-6: {tb * 1e3:.2f} ms, error {eb:.1e}")
    for est, tol in FAST_CASES:
        eng = NEGFEngine(lat, p, tol=tol, scheme="fast", estimate=est)
        r, e = _field_error(eng, s, conv)
        t = cold(eng)
        warm = WarmStart()
        eng.compute(s, warm=warm)
        tw = best_of(lambda eng=eng, warm=warm: eng.compute(s, warm=warm), 3 * repeat)
        out[f"fast_{est}_tol{tol:.0e}"] = {
            "seconds": t,
            "warm_seconds": tw,
            "points": r.n_energy_points,
            "error": e,
            "speedup": tb / t,
            "warm_speedup": tb / tw,
        }
        print(
            f"  fast {est} tol {tol:.0e}: {t * 1e3:.2f} ms ({tb / t:.1f}x), warm-started "
            f"{tw * 1e3:.2f} ms ({tb / tw:.1f}x), {r.n_energy_points} points, error {e:.1e}"
        )
    same = [c for c in out.values() if "speedup" in c and c["error"] <= eb * (1 + 1e-3)]
    best = max(same, key=lambda c: c["speedup"]) if same else None
    out["same_accuracy_speedup"] = best["speedup"] if best else None
    if best:
        print(f"  fastest at the reference's achieved error or better: {best['speedup']:.1f}x")
    return out


def _all_errors(r, ref) -> float:
    """Largest error over everything the estimate covers (densities and currents)."""
    return float(
        max(
            np.abs(r.spin_density - ref.spin_density).max(),
            np.abs(r.charge_density - ref.charge_density).max(),
            abs(r.current - ref.current),
            abs(r.current_left - ref.current_left),
            np.abs(r.spin_current_left - ref.spin_current_left).max(),
            np.abs(r.spin_current_right - ref.spin_current_right).max(),
        )
    )


def bench_estimate(lat, spins, tols, label):
    """Achieved error / tol of the strict and calibrated estimates (scheme fast, V = 0.5)."""
    p = ElectronParams(bias=0.5)
    conv = NEGFEngine(lat, p, tol=1e-10, scheme="fast").compute(spins)
    out = {}
    for est in ("strict", "calibrated"):
        rows = []
        for tol in tols:
            eng = NEGFEngine(lat, p, tol=tol, scheme="fast", estimate=est)
            r = eng.compute(spins)
            e = _all_errors(r, conv)
            rows.append(
                {"tol": tol, "error": e, "estimate": r.error_estimate, "points": r.n_energy_points}
            )
            print(
                f"{label} {est:10s} tol {tol:.0e}: error {e:.2e} = {e / tol:.3f} tol "
                f"(estimate {r.error_estimate:.2e}), {r.n_energy_points} points"
            )
        out[est] = rows
    return out


def bench_estimates(quick):
    """The calibrated estimate on the reference wall and a Bloch wall across a strip."""
    from hpcspin.hamiltonian.textures import domain_wall

    res = {
        "wall": bench_estimate(
            make_lattice("chain", 60), wall(60), (1e-4, 1e-5, 1e-6, 1e-7, 1e-8), "wall N=60"
        )
    }
    w = 4 if quick else 8
    lat = make_lattice("square", 20, w)
    s = domain_wall(lat, 9.5, np.sqrt(5.0), "bloch")
    res[f"strip_20x{w}"] = bench_estimate(lat, s, (1e-4, 1e-5, 1e-6, 1e-7), f"strip 20x{w}")
    return res


def bench_pole_slope(sizes=(1000, 3000, 10000, 30000, 100000)):
    """V = 0 (pole sum only), scheme fast: field evaluation and pole kernel CPU time vs N.

    Calls cycle over shifted walls (new spins every call: nothing spin-dependent can be
    reused). The fixed set-up per call is reported twice: the intercept a of t = a + b N
    fitted with relative weights over ``sizes``, and the whole cost of a 10-site chain's
    evaluation (almost all set-up; mean of 200 calls, best of 5).
    """
    from itertools import cycle

    from hpcspin.negf.solvers import RGFSolver

    def engine(n):
        eng = NEGFEngine(make_lattice("chain", n), ElectronParams(bias=0.0), scheme="fast")
        walls = cycle(shifted_walls(n))
        eng.compute(next(walls))
        return eng, lambda: eng.compute(next(walls))

    _, call = engine(10)
    small = best_of(lambda: [call() for _ in range(200)], 5) / 200
    ts, tk = [], []
    for n in sizes:
        eng, call = engine(n)
        rep = 7 if n <= 10000 else 5
        ts.append(best_of(call, rep))
        solver = RGFSolver(eng.system(wall(n)), compiled=True)
        z = -1.25 + 1j * np.geomspace(0.05, 10, 20)
        tk.append(best_of(lambda sv=solver, z=z: sv.pole_terms(z, np.ones(20)), rep))
        print(
            f"V=0 fast, N={n}: field eval {ts[-1] * 1e3:.2f} ms CPU ({ts[-1] / n * 1e6:.3f} "
            f"us/site), pole kernel {tk[-1] / (20 * n) * 1e6:.4f} us/site-energy"
        )
    slope = float(np.polyfit(np.log(sizes), np.log(ts), 1)[0])
    slope_k = float(np.polyfit(np.log(sizes), np.log(tk), 1)[0])
    slope_big = float(np.polyfit(np.log(sizes[1:]), np.log(ts[1:]), 1)[0])
    per_site, fixed = (float(x) for x in np.polyfit(sizes, ts, 1, w=1 / np.array(ts)))
    print(
        f"V = 0 scheme fast: log-log slope of CPU time vs N: field {slope:.3f} "
        f"(N >= {sizes[1]}: {slope_big:.3f}), pole kernel {slope_k:.3f} (goal 1.00 +- 0.03); "
        f"t = a + b N: a = {fixed * 1e3:.3f} ms, b = {per_site * 1e6:.3f} us/site; "
        f"N = 10: {small * 1e3:.3f} ms per call"
    )
    return {
        "sizes": list(sizes),
        "seconds": ts,
        "kernel_seconds": tk,
        "slope": slope,
        "slope_without_smallest": slope_big,
        "kernel_slope": slope_k,
        "fixed_seconds_fit": fixed,
        "per_site_seconds_fit": per_site,
        "seconds_n10": small,
    }


FAST_PARTS = ("kernels", "field", "slope", "estimates")


def fast_parts(quick, parts=FAST_PARTS):
    res = {"load": os.getloadavg()}
    print(f"load average {res['load'][0]:.2f}")
    if "kernels" in parts:
        res["kernels"] = bench_kernels()
    if "field" in parts:
        res["field_fast"] = bench_field_fast()
    if "slope" in parts:
        sizes = (1000, 3000, 10000) if quick else (1000, 3000, 10000, 30000, 100000)
        res["pole_slope"] = bench_pole_slope(sizes)
    if "estimates" in parts:
        res["estimates"] = bench_estimates(quick)
    res["load_end"] = os.getloadavg()
    return res


def main():
    if "--mpi-part" in sys.argv:
        mpi_part([int(x) for x in sys.argv[-1].split(",")])
        return
    quick = "--quick" in sys.argv
    parts = FAST_PARTS
    if "--parts" in sys.argv:
        parts = tuple(sys.argv[sys.argv.index("--parts") + 1].split(","))
    res = fast_parts(quick, parts)
    if "--fast-only" in sys.argv:
        name = "_fast.json" if parts == FAST_PARTS else "_fast_" + "_".join(parts) + ".json"
        with open(OUT.replace(".json", name), "w") as f:
            json.dump(res, f, indent=1)
        return
    res["rgf_vs_dense"] = bench_rgf_vs_dense(500 if quick else 2000)
    sizes = [1000, 3000, 10000] if quick else [1000, 3000, 10000, 30000, 100000]
    res["rgf_scaling"] = bench_scaling(sizes)
    res["field"] = bench_field(2000 if quick else 10000)
    res["petsc_vs_rgf"] = bench_petsc(16, 16 if quick else 32)
    res["parallel"] = bench_parallel([60, 250] if quick else [60, 250, 600])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
