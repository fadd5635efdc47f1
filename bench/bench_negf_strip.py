"""Strip NEGF speed: scheme "fast" against a plain reference computed in the same run.

    .venv/bin/python bench/bench_negf_strip.py            # W = 8, L = 40 square strip wall
    .venv/bin/python bench/bench_negf_strip.py --quick    # W = 4, L = 20
    .venv/bin/python bench/bench_negf_strip.py --kwant-python /path/to/python  # + Kwant

One configuration: a Bloch wall across the square strip, reference electrons (J = 2,
mu = -1, T = 0.05), V = 0.5. Every time is process CPU time (one core).

* converged solution: scheme "fast" at tol 1e-10;
* reference: a plain dense-block RGF in numpy, one energy at a time (``np.linalg.inv``
  of every b x b slice block, b = 2W, a right sweep and the forward products of the
  first block column; the pole sum from left and right sweeps), on a fixed composite
  Gauss-Legendre grid (PANEL_ORDER nodes per panel, equal panels in the variable s of
  each window segment, the same segments and the same Ozaki poles as the engine). The
  panel count is the smallest of a doubling sequence whose achieved error (max over
  sites and components of |delta s_i|, and |delta I|) is <= the target 1e-6. The
  accuracy of a grid does not depend on who evaluates the integrand, so the grid
  search uses the fast kernel; the plain reference is then timed on the chosen grid.
  The bound states of the window (the straight wall's closed-channel states, which no
  real-axis grid sees) get the engine's mean lead occupation, from the Brent root
  search; that term's CPU time is printed and not counted in the reference time;
* fast: scheme "fast" (compiled strip kernels), cold evaluations in a fresh engine
  (kernels already compiled), at the largest tol of TOLS whose achieved error is <= 1e-6.

Printed: achieved errors, energy points, CPU times, per-energy costs and the ratio
reference / fast. JSON to bench/results/negf_strip.json. With ``--kwant-python`` (an
interpreter where ``import kwant`` works) the same strip is also timed in Kwant (one
``kwant.greens_function`` column per energy: the minimum Kwant needs for the window
integrand, and its per-energy cost times the reference's point count) in a subprocess.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from hpcspin.hamiltonian.sd import pauli_components  # noqa: E402
from hpcspin.hamiltonian.textures import domain_wall  # noqa: E402
from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.negf import ElectronParams, NEGFEngine, strip_kernels  # noqa: E402
from hpcspin.negf.bound_states import bound_state_density  # noqa: E402
from hpcspin.negf.contour import fermi  # noqa: E402
from hpcspin.negf.observables import lead_currents  # noqa: E402
from hpcspin.negf.resonances import centre_band, strip_roots  # noqa: E402
from hpcspin.negf.solvers import RGFSolver  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "negf_strip.json")
TARGET = 1e-6
TOLS = (1e-4, 1e-5, 1e-6)
PANEL_ORDER = 16
BIAS = 0.5


# -- the plain reference -------------------------------------------------------------------
def _site_pauli(blocks: np.ndarray) -> np.ndarray:
    """Pauli components (N_slice, 4) of the diagonal 2x2 site blocks of a b x b matrix."""
    w = blocks.shape[0] // 2
    d = blocks.reshape(w, 2, w, 2)[np.arange(w), :, np.arange(w), :]
    return pauli_components(d).real


def plain_window(hd, v, e, sl, sr, gl, gr) -> np.ndarray:
    """One energy: Pauli components of G Gamma_L G^+ per site and j^L, j^R (4N + 8,)."""
    L, b = hd.shape[0], hd.shape[1]
    eye, vh = np.eye(b), v.conj().T
    g_right = [None] * L
    s = sr
    for x in range(L - 1, 0, -1):
        g_right[x] = np.linalg.inv(e * eye - hd[x] - s)
        s = v @ g_right[x] @ vh
    col = [np.linalg.inv(e * eye - hd[0] - sl - s)]
    for x in range(1, L):
        col.append(g_right[x] @ vh @ col[-1])
    dens = [_site_pauli(c @ gl @ c.conj().T) for c in col]
    jl, jr = lead_currents(np.stack(col)[None], gl[None], gr[None])
    return np.concatenate([np.concatenate(dens).ravel(), jl[0], jr[0]])


def plain_diagonal(hd, v, z, sl, sr) -> np.ndarray:
    """One energy: Pauli components of the site blocks of G_xx, (N, 4) complex."""
    L, b = hd.shape[0], hd.shape[1]
    eye, vh = np.eye(b), v.conj().T
    s_right = [None] * L
    s_right[L - 1] = sr
    for x in range(L - 1, 0, -1):
        s_right[x - 1] = v @ np.linalg.inv(z * eye - hd[x] - s_right[x]) @ vh
    out, s_left = [], sl
    for x in range(L):
        a = z * eye - hd[x] - s_left
        g = np.linalg.inv(a - s_right[x])
        w = b // 2
        out.append(pauli_components(g.reshape(w, 2, w, 2)[np.arange(w), :, np.arange(w), :]))
        s_left = vh @ np.linalg.inv(a) @ v
    return np.concatenate(out)


def gl_grid(segments, panels: int):
    """(segment index, energies, weights incl. dE/ds) of the composite GL rule."""
    x, w = np.polynomial.legendre.leggauss(PANEL_ORDER)
    edges = np.linspace(0.0, 1.0, panels + 1)
    u = (0.5 * (edges[:-1] + edges[1:]))[:, None] + 0.5 * np.diff(edges)[:, None] * x
    wu = (0.5 * np.diff(edges)[:, None] * w).ravel()
    out = []
    for seg in segments:
        z, dz = seg.map(u.ravel())
        out.append((z.real, wu * dz.real))
    return out


def window_weights(e, de, mu_l, mu_r, temp):
    return (fermi(e, mu_l, temp) - fermi(e, mu_r, temp)) * de / (2 * np.pi)


class Problem:
    """The strip, its wall, the engine's plan (poles, window segments)."""

    def __init__(self, length: int, width: int):
        self.lat = make_lattice("square", length, width)
        self.spins = domain_wall(self.lat, (length - 1) / 2, np.sqrt(5.0))
        self.params = ElectronParams(bias=BIAS)
        eng = NEGFEngine(self.lat, self.params, tol=TARGET, scheme="fast")
        self.system = eng.system(self.spins)
        p = self.params
        self.mu_l, self.mu_r = p.mu + 0.5 * BIAS, p.mu - 0.5 * BIAS
        self.eq = eng._plan_equilibrium(self.system, self.mu_r)
        self.segments = eng._plan_window(self.system, self.mu_l, self.mu_r, None, None)
        self.bound, self.bound_cpu = self.bound_states()

    def bound_states(self) -> tuple[np.ndarray, float]:
        """Density (N, 4) of the bound states in the window at the mean lead occupation
        (the engine adds it; no real-axis grid sees them), and its CPU time. Roots from
        the Brent search (the reference root finder)."""
        t0 = time.process_time()
        lo = self.segments[0].origin
        hi = self.segments[-1].origin + self.segments[-1].width
        ab, kd = centre_band(self.system)
        roots = strip_roots(self.system, ab, kd, lo, hi, method="brent")
        temp = self.params.temperature

        def occupation(e):
            return 0.5 * (fermi(e, self.mu_l, temp) - fermi(e, self.mu_r, temp))

        dens = bound_state_density(self.system, ab, kd, roots, occupation)
        out = np.zeros((self.lat.n_sites, 4)) if dens is None else np.real(dens)
        return out, time.process_time() - t0

    def fast_rows(self, grid) -> np.ndarray:
        """Window integral on a fixed grid with the compiled kernel (grid search)."""
        sy, solver = self.system, RGFSolver(self.system, compiled=True)
        total = 0.0
        for e, de in grid:
            gl, gr = sy.gammas(e)
            w = window_weights(e, de, self.mu_l, self.mu_r, self.params.temperature)
            total = total + solver.window_terms(e, gl, gr, w).sum(axis=0)
        return total

    def assemble(self, window_total, pole_total) -> np.ndarray:
        """(spin density (N, 3) flattened, current) from the two parts."""
        n = self.lat.n_sites
        dens = window_total[: 4 * n].reshape(n, 4) + pole_total.reshape(n, 4) + self.bound
        return np.concatenate([dens[:, 1:].ravel(), [window_total[4 * n + 4]]])

    def pole_fast(self) -> np.ndarray:
        solver = RGFSolver(self.system, compiled=True)
        return solver.pole_terms(self.eq.poles, self.eq.pole_weights)

    def reference_run(self, panels: int) -> tuple[np.ndarray, float, int]:
        """The plain reference on the GL grid: (result, CPU seconds, energy points)."""
        sy = self.system
        t0 = time.process_time()
        grid = gl_grid(self.segments, panels)
        window, npts = 0.0, 0
        for e, de in grid:
            sl, sr = sy.self_energies(e)
            gl, gr = sy.gammas(e)
            w = window_weights(e, de, self.mu_l, self.mu_r, self.params.temperature)
            for k in range(len(e)):
                window = window + w[k] * plain_window(sy.hd, sy.v, e[k], sl[k], sr[k], gl[k], gr[k])
            npts += len(e)
        z, wz = self.eq.poles, self.eq.pole_weights
        sl, sr = sy.self_energies(z)
        poles = sum(
            wz[k] * plain_diagonal(sy.hd, sy.v, z[k], sl[k], sr[k]).real for k in range(len(z))
        )
        return self.assemble(window, poles.ravel()), time.process_time() - t0, npts + len(z)


def error_of(result: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    return float(np.abs(result[:-1] - exact[:-1]).max()), float(abs(result[-1] - exact[-1]))


def converged(prob: Problem) -> tuple[np.ndarray, dict]:
    eng = NEGFEngine(prob.lat, prob.params, tol=1e-10, scheme="fast")
    t0 = time.process_time()
    r = eng.compute(prob.spins)
    t = time.process_time() - t0
    print(f"converged (fast, tol 1e-10): {r.n_energy_points} points, {t:.1f} s CPU")
    exact = np.concatenate([r.spin_density.ravel(), [r.current]])
    return exact, {"points": r.n_energy_points, "cpu_s": t, "current": r.current}


def fast_runs(prob: Problem, exact: np.ndarray) -> list[dict]:
    """Cold evaluations of scheme fast at every tol, with the engine's resonance seeds
    (default) and without them; the CPU time of the seeding (the root search) and of
    the bound-state term are reported separately."""
    from hpcspin.negf import engine as engine_mod

    rows = []
    NEGFEngine(prob.lat, prob.params, tol=1e-3, scheme="fast").compute(prob.spins)  # compile
    seeds_cpu, bound_cpu = [0.0], [0.0]
    real_seeds, real_bound = engine_mod.NEGFEngine._seeds, engine_mod.bound_state_density

    def timed(fn, acc):
        def run(*a):
            t0 = time.process_time()
            out = fn(*a)
            acc[0] += time.process_time() - t0
            return out

        return run

    engine_mod.NEGFEngine._seeds = timed(real_seeds, seeds_cpu)
    engine_mod.bound_state_density = timed(real_bound, bound_cpu)
    try:
        for res in ("auto", False):
            for tol in TOLS:
                eng = NEGFEngine(prob.lat, prob.params, tol=tol, scheme="fast", resonances=res)
                seeds_cpu[0] = bound_cpu[0] = 0.0
                t0 = time.process_time()
                r = eng.compute(prob.spins)
                t = time.process_time() - t0
                es, ei = error_of(np.concatenate([r.spin_density.ravel(), [r.current]]), exact)
                row = {"tol": tol, "seeds": res, "points": r.n_energy_points, "cpu_s": t}
                row.update(seeding_cpu_s=seeds_cpu[0], bound_cpu_s=bound_cpu[0], err_s=es, err_I=ei)
                rows.append(row)
                print(
                    f"fast tol {tol:g} seeds {res}: {r.n_energy_points} points, {t:.3f} s CPU "
                    f"(seeding {seeds_cpu[0]:.3f} s, bound states {bound_cpu[0]:.3f} s), "
                    f"error {es:.1e} (I {ei:.1e})"
                )
    finally:
        engine_mod.NEGFEngine._seeds = real_seeds
        engine_mod.bound_state_density = real_bound
    return rows


def grid_search(prob: Problem, exact: np.ndarray) -> list[dict]:
    rows, poles = [], prob.pole_fast()
    for panels in (4, 8, 16, 32, 64, 128):
        grid = gl_grid(prob.segments, panels)
        res = prob.assemble(prob.fast_rows(grid), poles.ravel())
        es, ei = error_of(res, exact)
        npts = sum(len(e) for e, _ in grid) + len(prob.eq.poles)
        rows.append({"panels": panels, "points": npts, "err_s": es, "err_I": ei})
        print(f"GL {panels} panels/segment: {npts} points, error {es:.1e} (I {ei:.1e})")
        if max(es, ei) <= TARGET:
            break
    return rows


def per_energy(prob: Problem, n: int = 240) -> dict:
    """CPU microseconds per window energy: plain, numpy batched (scheme reference), fast."""
    sy = prob.system
    e = np.linspace(prob.mu_r - 0.3, prob.mu_l + 0.3, n)
    sl, sr = sy.self_energies(e)
    gl, gr = sy.gammas(e)
    w = np.ones(n)
    t0 = time.process_time()
    for k in range(0, n, 8):  # a sample of the plain loop
        plain_window(sy.hd, sy.v, e[k], sl[k], sr[k], gl[k], gr[k])
    plain = (time.process_time() - t0) / len(range(0, n, 8))
    t0 = time.process_time()
    RGFSolver(sy).window_terms(e, gl, gr, w)
    batched = (time.process_time() - t0) / n
    fast = RGFSolver(sy, compiled=True)
    fast.window_terms(e[:16], gl[:16], gr[:16], w[:16])
    t0 = time.process_time()
    fast.window_terms(e, gl, gr, w)
    compiled = (time.process_time() - t0) / n
    out = {"plain_us": plain * 1e6, "numpy_batched_us": batched * 1e6, "fast_us": compiled * 1e6}
    print(
        f"per window energy: plain {out['plain_us']:.0f} us, numpy batched "
        f"{out['numpy_batched_us']:.0f} us, strip kernel {out['fast_us']:.0f} us "
        f"({plain / compiled:.1f}x plain,"
        f" {batched / compiled:.1f}x batched)"
    )
    return out


KWANT_SCRIPT = r"""
import sys, time, json, numpy as np, kwant, tinyarray as ta
L, W, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
spins = np.array(json.loads(sys.argv[4])).reshape(L, W, 3)
sx, sy, sz = (np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1]))
lat = kwant.lattice.square(norbs=2)
syst = kwant.Builder()
for x in range(L):
    for y in range(W):
        s = spins[x, y]
        syst[lat(x, y)] = -2.0 * (s[0] * sx + s[1] * sy + s[2] * sz)
syst[lat.neighbors()] = -np.eye(2)
lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
lead[(lat(0, y) for y in range(W))] = np.zeros((2, 2))
lead[lat.neighbors()] = -np.eye(2)
syst.attach_lead(lead)
syst.attach_lead(lead.reversed())
f = syst.finalized()
es = np.linspace(-1.55, -0.45, n)
kwant.wave_function(f, energy=es[0])(0)
t0 = time.process_time()
for e in es:
    psi = kwant.wave_function(f, energy=e)(0)
    p = psi.reshape(len(psi), -1, 2)
    dens = np.einsum('mia,mib->iab', p, p.conj())
t = (time.process_time() - t0) / n * 1e6
tr = [kwant.smatrix(f, energy=e).transmission(1, 0) for e in (-1.3, -0.8)]
print(json.dumps({"kwant_us_per_energy": t, "version": kwant.__version__, "T": tr}))
"""


def kwant_per_energy(python: str, prob: Problem, n: int = 40) -> dict | None:
    """Kwant's CPU time per energy on the same strip (scattering states from the left)."""
    L, W = prob.lat.length, prob.lat.width
    args = [
        python,
        "-c",
        KWANT_SCRIPT,
        str(L),
        str(W),
        str(n),
        json.dumps(prob.spins.ravel().tolist()),
    ]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=600, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"Kwant not run: {exc}")
        return None
    res = json.loads(out.stdout.strip().splitlines()[-1])
    ours = NEGFEngine(prob.lat, prob.params).compute(prob.spins, transmission_energies=[-1.3, -0.8])
    res["T_hpcspin"] = ours.transmission.tolist()
    print(f"same system: T(-1.3), T(-0.8) = {res['T']} (Kwant), {res['T_hpcspin']} (hpcspin)")
    print(f"Kwant {res['version']}: {res['kwant_us_per_energy']:.0f} us per energy (wave_function)")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="W = 4, L = 20 instead of W = 8, L = 40")
    ap.add_argument("--kwant-python", default=None, help="an interpreter that imports kwant")
    args = ap.parse_args()
    length, width = (20, 4) if args.quick else (40, 8)
    print(f"square strip {length} x {width}, Bloch wall, V = {BIAS}; target error {TARGET:g}")
    prob = Problem(length, width)
    if not strip_kernels.AVAILABLE:
        print("numba not installed: the strip kernels are not available")
        return
    print(f"bound-state term of the reference: {prob.bound_cpu:.2f} s CPU (not counted)")
    exact, conv = converged(prob)
    fast = fast_runs(prob, exact)
    grid = grid_search(prob, exact)
    chosen = grid[-1]
    ref, t_ref, npts_ref = prob.reference_run(chosen["panels"])
    es, ei = error_of(ref, exact)
    print(f"plain reference: {npts_ref} points, {t_ref:.2f} s CPU, error {es:.1e} (I {ei:.1e})")
    ok = [r for r in fast if max(r["err_s"], r["err_I"]) <= TARGET]
    best = min(ok, key=lambda r: r["cpu_s"]) if ok else None
    ok_seeded = [r for r in ok if r["seeds"] == "auto"]
    b2 = min(ok_seeded, key=lambda r: r["cpu_s"]) if ok_seeded else None
    if b2 is not None:
        print(
            f"RATIO with the default resonance seeding: {t_ref / b2['cpu_s']:.2f}x (tol "
            f"{b2['tol']:g}, {b2['cpu_s']:.2f} s of which seeding {b2['seeding_cpu_s']:.2f} s, "
            f"bound states {b2['bound_cpu_s']:.2f} s)"
        )
    pe = per_energy(prob)
    result = {
        "strip": [length, width],
        "bias": BIAS,
        "target": TARGET,
        "converged": conv,
        "fast": fast,
        "gl_grid": grid,
        "reference": {"points": npts_ref, "cpu_s": t_ref, "err_s": es, "err_I": ei},
        "per_energy": pe,
        "load_average": os.getloadavg(),
    }
    if b2 is not None:
        result["ratio_with_seeding"] = t_ref / b2["cpu_s"]
    if best is not None:
        result["ratio"] = t_ref / best["cpu_s"]
        print(
            f"RATIO reference / fast at achieved error <= {TARGET:g}: {result['ratio']:.1f}x "
            f"(reference {t_ref:.2f} s, {npts_ref} points; fast tol {best['tol']:g}, seeds "
            f"{best['seeds']}: "
            f"{best['cpu_s']:.3f} s, {best['points']} points)"
        )
    if args.kwant_python:
        kw = kwant_per_energy(args.kwant_python, prob)
        if kw is not None and best is not None:
            kw["per_config_s"] = kw["kwant_us_per_energy"] * 1e-6 * npts_ref
            kw["ratio"] = kw["per_config_s"] / best["cpu_s"]
            print(f"RATIO Kwant (per-energy cost x {npts_ref} points) / fast: {kw['ratio']:.1f}x")
            if b2 is not None:
                kw["ratio_with_seeding"] = kw["per_config_s"] / b2["cpu_s"]
                print(f"RATIO Kwant / fast, default seeding: {kw['ratio_with_seeding']:.1f}x")
        result["kwant"] = kw
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    name = OUT if not args.quick else OUT.replace(".json", "_quick.json")
    with open(name, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {name}")


if __name__ == "__main__":
    main()
