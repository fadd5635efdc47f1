"""Training cost of the strip model: cached vector inputs, and the vector head trained alone.

The strip design of input_decks/train_strip_walls.toml (columns window, radius 10, E head
on its own radius-3 window) computes the vector term's descriptors without a graph, so
training can compute them once per configuration (``TrainConfig.cache_vector_inputs``).
This times a few epochs of the same training both ways, on one process and one torch
thread (process CPU seconds: the machine may be shared), on the 20 x 4 strip with random
wall-like spins and random targets (an epoch costs the same whatever the numbers), and
checks that both give the same losses. Then the second stage of the strip training
(``fit = "neq"``: the vector head alone, the E head kept from the first run) on the same
configurations: CPU per configuration against the joint training with the cache.

    .venv/bin/python bench/bench_train.py [--quick]

Writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = os.path.join(os.path.dirname(__file__), "..")
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hpcspin.deck.load import load_deck  # noqa: E402
from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.ml.train import TrainConfig, train_model  # noqa: E402
from hpcspin.tasks.train import _spec_from  # noqa: E402

DECK = os.path.join(ROOT, "input_decks", "train_strip_walls.toml")


def data(lat, n, seed=0):
    """Wall-like spins (a tanh profile with noise), random targets."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.arange(lat.length), lat.width)
    th = 2 * np.arctan(np.exp((x[None] - rng.uniform(5, 14, (n, 1))) / 2))
    s = np.stack([np.sin(th), 0 * th, np.cos(th)], -1) + 0.2 * rng.normal(size=(n, lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=-1, keepdims=True)
    return s, 0.01 * rng.normal(size=s.shape), 0.01 * rng.normal(size=s.shape)


def timed(spec, lat, arrays, bias, epochs, cache, fit="both", init=None) -> tuple[dict, object]:
    s, h, h0 = arrays
    stamps = []  # process time after every epoch (the per-epoch callback)
    cfg = TrainConfig(
        interrupt=lambda: stamps.append(time.process_time()) and False,
        epochs=epochs,
        lr=3e-3,
        batch_size=32,
        val_fraction=0.15,
        patience=None,
        torque_weight=1.0,
        cache_vector_inputs=cache,
        log_interval=1e9,
        fit=fit,
        init_state=init,
    )
    c0 = time.process_time()
    res = train_model(s, h, lat, spec, cfg, bias=bias, fields_eq=h0)
    cpu = time.process_time() - c0
    row = {
        "cache": cache,
        "fit": fit,
        "cpu_s": cpu,  # with the setup (scales, cache, final metrics)
        "per_epoch_s": (stamps[-1] - stamps[0]) / (len(stamps) - 1),  # epochs 2 to n-1
        "loss": [r["loss"] for r in res.history],
    }
    return row, res.model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 configurations, 3 epochs")
    ap.add_argument("--configs", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=4, help="at least 3 (epochs 2 to n-1 are timed)")
    a = ap.parse_args()
    n, epochs = (64, 3) if a.quick else (a.configs, max(a.epochs, 3))
    torch.set_num_threads(1)
    torch.optim.AdamW([torch.zeros(1)])  # its first construction imports torch's compiler
    cfg = load_deck(DECK, check_files=False)
    lat = make_lattice(
        cfg.lattice.kind, cfg.lattice.length, cfg.lattice.width, cfg.lattice.periodic
    )
    spec = _spec_from(cfg, lat)
    arrays = data(lat, n)
    bias = np.random.default_rng(1).choice([-0.5, -0.25, 0.25, 0.5], n)
    rows, models = zip(*(timed(spec, lat, arrays, bias, epochs, c) for c in (False, True)))
    neq, _ = timed(spec, lat, arrays, bias, epochs, True, "neq", models[1].state_dict())
    rows = [*rows, neq]
    ratio = rows[0]["per_epoch_s"] / rows[1]["per_epoch_s"]
    same = float(np.max(np.abs(np.array(rows[0]["loss"]) / np.array(rows[1]["loss"]) - 1)))
    for r in rows:
        print(
            f"fit {r['fit']:4s} cache {str(r['cache']):5s}: {r['per_epoch_s']:7.2f} s CPU "
            f"per epoch ({n} configurations)"
        )
    alone = rows[1]["per_epoch_s"] / rows[2]["per_epoch_s"]
    print(f"speedup of the cache: {ratio:.2f}x; largest relative loss difference {same:.1e}")
    print(f"vector head alone (fit = 'neq') vs joint, both cached: {alone:.2f}x per epoch")
    out = {
        "configs": n,
        "epochs": epochs,
        "lattice": [lat.kind, lat.length, lat.width],
        "runs": rows,
        "speedup": ratio,
        "loss_rel_diff": same,
        "neq_alone_speedup": alone,
        "load": os.getloadavg(),
    }
    path = os.path.join(ROOT, "bench", "results", "train.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
