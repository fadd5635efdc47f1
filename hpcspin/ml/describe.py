"""``python -m hpcspin inspect MODEL.pt``: what a model file holds and whether to trust it.

Prints the checksum status, the spec, the lattice and training domain, the held-out
quality with its verdict, and the training provenance. ``--json`` prints the
metadata as JSON instead; ``--seal`` rewrites a model file of an older hpcspin
(no checksum) with its checksum header, payload unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from hpcspin.errors import HpcspinError


def _num(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _stats(name: str, s: dict | None) -> str:
    if not s:
        return f"  {name:<14} -"
    return (
        f"  {name:<14} [{_num(s['min'])}, {_num(s['max'])}]  mean {_num(s['mean'])}  "
        f"({s['n']} values)"
    )


def _domain_lines(domain: dict | None) -> list[str]:
    if not domain:
        return ["training domain: not recorded (older model file)"]
    el = ", ".join(f"{k} = {v}" for k, v in domain.get("electrons", {}).items())
    lines = [
        "training domain:",
        f"  electrons      {el or '-'}",
        _stats("bias", domain.get("bias")),
        _stats("mu", domain.get("mu")),
        _stats("wall width", domain.get("wall_width")),
        _stats("min S_i.S_j", domain.get("bond_product")),
        f"  configurations {domain.get('n_configs', {})}",
    ]
    return lines


def _quality_lines(metrics: dict) -> list[str]:
    q = metrics.get("quality")
    if not q:
        keys = [k for k in sorted(metrics) if k.startswith("val_")]
        body = [f"  {k:<22} {_num(metrics[k])}" for k in keys]
        return ["held-out quality: no verdict recorded (older model file)", *body]
    verdict = "PASSED" if q.get("passed") else "FAILED"
    lines = [f"held-out quality: {verdict} (limits {q.get('limits', {})})"]
    for k in ("eq_r2", "neq_r2", "neq_torque_err", "r2", "torque_err", "n_held_out", "n_walls"):
        if k in q:
            lines.append(f"  {k:<22} {_num(q[k])}")
    lines += [f"  WARNING: {f}" for f in q.get("failed", [])]
    return lines


def describe(meta: dict, path: str) -> str:
    """The human-readable summary of a model file's metadata."""
    spec = meta.get("spec", {})
    extra = meta.get("extra", {})
    lines = [
        f"model file {path}",
        f"checksum: {meta.get('checksum', '?')}"
        + (" (SHA-256 of the whole payload)" if meta.get("checksum") == "verified" else ""),
        f"format {meta.get('format')} v{meta.get('model_version')}, written by hpcspin "
        f"{meta.get('hpcspin_version')}",
        "spec: " + ", ".join(f"{k} = {v}" for k, v in spec.items()),
        f"lattice: {meta.get('lattice')}",
        *_domain_lines(meta.get("domain")),
        *_quality_lines(meta.get("metrics", {})),
        f"training data fingerprint: {meta.get('fingerprint') or '-'}",
        f"dataset: {extra.get('dataset', '-')}, {extra.get('train_seconds', float('nan')):.1f} s "
        f"on {extra.get('n_ranks', '?')} rank(s)",
    ]
    return "\n".join(lines)


def _jsonable(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k not in ("state_dict", "extra")} | {
        "extra": {k: v for k, v in meta.get("extra", {}).items() if k != "deck"}
    }


def main(argv: list[str]) -> int:
    """Entry point of the ``inspect`` subcommand; returns the exit status."""
    from hpcspin.ml.modelfile import read_model_file, write_payload

    p = argparse.ArgumentParser(prog="python -m hpcspin inspect", description=__doc__)
    p.add_argument("model", help="a model file (.pt) written by the train task")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.add_argument("--seal", action="store_true", help="add the checksum to an older file")
    args = p.parse_args(argv)
    try:
        meta = read_model_file(args.model)
        if args.seal and meta["checksum"] == "none":
            write_payload(args.model, {k: v for k, v in meta.items() if k != "checksum"})
            meta = read_model_file(args.model)
    except HpcspinError as exc:
        print(f"python -m hpcspin inspect: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(
            f"python -m hpcspin inspect: error: cannot write {args.model}: {exc}", file=sys.stderr
        )
        return 2
    if args.json:
        print(json.dumps(_jsonable(meta), indent=1, sort_keys=True, default=str))
    else:
        print(describe(meta, args.model))
    return 0
