"""The NEGF-driven wall experiment on a strip: v(V), torque balance, drive symmetry.

Reads a dynamics deck of a strip wall (e.g. input_decks/dynamics_strip_square_negf.toml):
relaxes the wall at V = 0 once (shared by every bias), then on the relaxed wall

* checks, with single NEGF evaluations at tol ``--check-tol``: the drive symmetry
  (mirror or C2 with a pi spin rotation, :func:`hpcspin.negf.observables.drive_symmetry`):
  max |H(-V) - image of H(V)|; the torque balance sum_i S_i x H_i = (j^L - j^R)/2;
  the net torque T_z(V)/V at small biases (linear response) and the velocity it
  predicts for a rigid wall, v_T = T_z / (2 W (1 + alpha^2)) (the strip's version of the
  chain's I / (2 (1 + alpha^2)): W spins flip per column the wall advances);
* drives the wall at every bias to ``--t-end`` (rk4 of the deck) and fits v over the
  second half, as the validate task does.

    .venv/bin/python bench/strip_wall_vset.py input_decks/dynamics_strip_square_negf.toml \
        --biases 0.5 -0.5 --t-end 30

Prints CPU seconds (the machine may be shared). JSON to bench/results/strip_wall_<name>.json.
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
from hpcspin.negf import NEGFEngine  # noqa: E402
from hpcspin.negf.observables import (  # noqa: E402
    absorbed_spin_current,
    drive_symmetry,
    mirror_image,
    net_torque,
)
from hpcspin.parallel.context import ParallelContext  # noqa: E402
from hpcspin.tasks.common import electron_params_from, initial_spins, lattice_from  # noqa: E402
from hpcspin.tasks.dynamics import simulation_from  # noqa: E402

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def mean_x(spins, width):
    """Wall centre from the row-averaged S^z profile (column units)."""
    sz = spins[:, 2].reshape(-1, width).mean(axis=1)
    return wall_centre(sz)


def relax(cfg, ctx):
    sim = simulation_from(cfg.replace("electrons", bias=0.0), ctx)
    state = sim.state(initial_spins(cfg, sim.lattice), phase=RELAX)
    sim.set_bias(0.0)
    c0 = time.process_time()
    d = cfg.dynamics
    sim.relax(state, d.relax_alpha, d.relax_tol, d.relax_max_time)
    out = {"cpu_seconds": time.process_time() - c0, "time": state.relax_time}
    out["evals"] = sim.field.n_calls
    spins = sim.gather(state)
    sim.free()
    return spins, out


def checks(cfg, lat, spins, biases, tol) -> dict:
    """Symmetry, torque balance and linear response on the relaxed wall."""
    eng = NEGFEngine(lat, electron_params_from(cfg, 0.0), tol=tol, scheme="fast")
    alpha, w = cfg.dynamics.alpha, lat.width
    sym = drive_symmetry(lat, spins, tol=1e-5)
    out = {"texture_symmetric": sym is not None, "rows": []}
    if sym is not None:
        perm, rot = sym
        out["texture_symmetry_residual"] = float(np.abs(spins[perm] @ rot.T - spins).max())
    h0 = eng.compute(spins, bias=0.0).field
    out["net_torque_V0"] = net_torque(spins, h0).tolist()
    for v in sorted({abs(b) for b in biases} | {0.05, 0.1, 0.2}):
        rp, rm = eng.compute(spins, bias=v), eng.compute(spins, bias=-v)
        row = {"bias": v, "current": rp.current, "current_minus": rm.current}
        for tag, r in (("", rp), ("_minus", rm)):
            t = net_torque(spins, r.field)
            a = absorbed_spin_current(r.spin_current_left, r.spin_current_right)
            row["net_torque" + tag] = t.tolist()
            row["absorbed" + tag] = a.tolist()
            row["balance_residual" + tag] = float(np.abs(t - a).max())
        row["T_z_over_V"] = row["net_torque"][2] / v
        row["v_torque"] = row["net_torque"][2] / (2 * w * (1 + alpha**2))
        row["v_full_absorption"] = rp.current / (2 * w * (1 + alpha**2))
        if sym is not None:
            row["symmetry_residual"] = float(np.abs(mirror_image(rp.field, *sym) - rm.field).max())
        row["field_max"] = float(np.abs(rp.field).max())
        out["rows"].append(row)
        print(json.dumps(row), flush=True)
    return out


def drive(cfg, ctx, bias, t_end, spins) -> dict:
    c = cfg.replace("electrons", bias=bias).replace("dynamics", t_end=t_end)
    sim = simulation_from(c, ctx)
    w = sim.lattice.width
    state = sim.state(spins, phase=DRIVE)
    sim.set_bias(bias)
    ts, xs = [0.0], [mean_x(spins, w)]
    c0 = time.process_time()
    n = sim.n_steps(t_end)
    done = 0
    while done < n:
        k = min(5, n - done)
        sim.drive(state, (state.step + k) * sim.dt, c.dynamics.alpha)
        done += k
        ts.append(state.time)
        xs.append(mean_x(state.spins.reshape(-1, 3), w))
    res = {"bias": bias, "t_end": t_end, "cpu_seconds": time.process_time() - c0}
    res["evals"] = sim.field.n_calls
    res["v"] = wall_velocity(np.array(ts), np.array(xs), t_end / 2, t_end)
    res["time"], res["wall_x"] = ts, xs
    sim.free()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("deck")
    ap.add_argument("--biases", type=float, nargs="*", default=[0.5, -0.5, 0.25, -0.25])
    ap.add_argument("--t-end", type=float, default=30.0)
    ap.add_argument("--tol", type=float, default=1e-4, help="tol of the driven runs")
    ap.add_argument("--check-tol", type=float, default=1e-6)
    ap.add_argument("--width", type=int, default=0, help="override [lattice] width")
    ap.add_argument("--no-drive", action="store_true", help="relaxation and checks only")
    a = ap.parse_args()
    cfg = load_deck(a.deck, check_files=False)
    cfg = cfg.replace("negf", scheme="fast", tol=a.tol)
    if a.width:
        name = f"{cfg.run.name}_W{a.width}"
        cfg = cfg.replace("lattice", width=a.width).replace("run", name=name)
    ctx = ParallelContext()
    name = cfg.run.name
    out = {"deck": a.deck, "tol": a.tol, "load": os.getloadavg()}
    spins, out["relax"] = relax(cfg, ctx)
    print(f"{name}: relaxed in {out['relax']['cpu_seconds']:.1f} s CPU", flush=True)
    lat = lattice_from(cfg)
    path = os.path.join(RESULTS, f"strip_wall_{name}.json")
    os.makedirs(RESULTS, exist_ok=True)
    out["relaxed_spins"] = spins.tolist()
    out["checks"] = checks(cfg, lat, spins, a.biases, a.check_tol)
    out["runs"] = []
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    for b in [] if a.no_drive else a.biases:
        r = drive(cfg, ctx, b, a.t_end, spins)
        out["runs"].append(r)
        print(f"V = {b:+.3f}: v = {r['v']:+.7f}, {r['cpu_seconds']:.0f} s CPU", flush=True)
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
    ctx.free()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
