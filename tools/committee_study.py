"""How well committee disagreement tracks the true error of the ML field.

For each held-out dataset (NEGF fields of configurations no member saw), the
committee's per-site disagreement d_i is compared with the true per-site error
of the committee mean, e_i = |H_perp,mean,i - H_perp,NEGF,i|, and per
configuration max_i d_i with the configuration's RMS error. Prints Pearson and
Spearman correlations and the mean disagreement / error of each set, writes a
JSON and a scatter figure.

    .venv/bin/python tools/committee_study.py --members m1.pt m2.pt m3.pt \
        --data indomain=held_indomain/dataset.h5 narrow=held_narrow/dataset.h5 \
        --out bench/results/committee_study.json --figure docs/img/committee.png
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import pearsonr, spearmanr

from hpcspin.dynamics.llg import transverse
from hpcspin.io.dataset import read_dataset
from hpcspin.lattice import make_lattice
from hpcspin.ml.committee import Committee


def study(committee: Committee, data: dict, lattice) -> dict:
    """Correlations of disagreement and true error on one dataset."""
    s, h = data["spins"], data["field"]
    mean, d = committee.predict(s, lattice, {"bias": data["bias"], "mu": data["mu"]})
    e = np.linalg.norm(transverse(mean - h, spins=s), axis=-1)
    d_cfg, e_cfg = d.max(axis=1), np.sqrt(np.mean(e**2, axis=1))
    return {
        "n_configs": int(len(s)),
        "site_pearson": float(pearsonr(d.ravel(), e.ravel())[0]),
        "site_spearman": float(spearmanr(d.ravel(), e.ravel())[0]),
        "config_pearson": float(pearsonr(d_cfg, e_cfg)[0]),
        "config_spearman": float(spearmanr(d_cfg, e_cfg)[0]),
        "mean_disagreement": float(d.mean()),
        "mean_error": float(e.mean()),
        "max_disagreement_median": float(np.median(d_cfg)),
        "_points": (d_cfg, e_cfg),
    }


def _figure(results: dict, path: str) -> None:
    from hpcspin.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    for name, r in results.items():
        dc, ec = r["_points"]
        ax.loglog(dc, ec, ".", ms=4, label=f"{name} (Spearman {r['config_spearman']:.2f})")
    ax.set(xlabel="committee disagreement, max over sites", ylabel="true RMS error vs NEGF")
    ax.set_title("Committee disagreement vs true error (per configuration)", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Run the study (arguments: see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", nargs="+", required=True)
    p.add_argument("--data", nargs="+", required=True, help="name=dataset.h5 ...")
    p.add_argument("--length", type=int, default=60)
    p.add_argument("--out", default="")
    p.add_argument("--figure", default="")
    args = p.parse_args()
    lattice = make_lattice("chain", args.length)
    committee = Committee.load(args.members, lattice=lattice)
    results = {}
    for item in args.data:
        name, path = item.split("=", 1)
        results[name] = study(committee, read_dataset(path), lattice)
        shown = {k: round(v, 4) for k, v in results[name].items() if not k.startswith("_")}
        print(name, shown)
    if args.figure:
        _figure(results, args.figure)
    if args.out:
        plain = {
            n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in results.items()
        }
        with open(args.out, "w") as fh:
            json.dump({"members": args.members, "results": plain}, fh, indent=1)


if __name__ == "__main__":
    main()
