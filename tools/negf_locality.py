"""Locality of the electron field: how fast |dH_i/dS_j| decays with |i - j|.

A study, not part of the library: this measurement chose the descriptor radius of the
ML models (docs/physics.md, descriptors).
Finite differences of the NEGF field on a chain, for transverse tilts of each spin:

    .venv/bin/python tools/negf_locality.py [--n 60] [--bias 0.5] [--out locality.json]

prints, for each distance d, the largest ||dH_i/dS_j||_F over |i - j| = d, relative to
d = 0, at V = 0 and at V = bias (equilibrium and current-induced parts separately).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np  # noqa: E402

from hpcspin.lattice import make_lattice  # noqa: E402
from hpcspin.negf.engine import ElectronParams, NEGFEngine  # noqa: E402


def _tangents(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.where(np.abs(s[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(s, a)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    return e1, np.cross(s, e1)


def jacobian(engine: NEGFEngine, spins: np.ndarray, bias: float, h: float = 1e-4):
    """dH_i/dS_j projected on the two tangent directions of S_j: (N, N, 3, 2).

    Central differences of the field under a rotation of S_j by +-h.
    """
    n = len(spins)
    e1, e2 = _tangents(spins)
    jac = np.zeros((n, n, 3, 2))
    for j in range(n):
        for c, e in enumerate((e1[j], e2[j])):
            fields = []
            for sign in (1.0, -1.0):
                s = spins.copy()
                s[j] = np.cos(h) * spins[j] + sign * np.sin(h) * e
                fields.append(engine.field(s, bias=bias))
            jac[:, j, :, c] = (fields[0] - fields[1]) / (2 * h)
    return jac


def decay(jac: np.ndarray, margin: int) -> np.ndarray:
    """Max over i, j with |i - j| = d (both ``margin`` away from the leads) of ||J_ij||."""
    n = jac.shape[0]
    norms = np.linalg.norm(jac, axis=(2, 3))
    out = np.zeros(n)
    for i in range(margin, n - margin):
        for j in range(margin, n - margin):
            d = abs(i - j)
            out[d] = max(out[d], norms[i, j])
    return out


def measure(n: int = 60, bias: float = 0.5, d_max: int = 10) -> dict:
    """Decay of the V = 0 Jacobian and of the current-induced part, on a Bloch wall."""
    from hpcspin.dynamics.observables import domain_wall

    lat = make_lattice("chain", n)
    spins = domain_wall(lat, (n - 1) / 2, np.sqrt(5.0))
    eng = NEGFEngine(lat, ElectronParams(J=2.0, mu=-1.0, temperature=0.05), tol=1e-8)
    j0 = jacobian(eng, spins, 0.0)
    jv = jacobian(eng, spins, bias)
    margin = n // 4
    d0 = decay(j0, margin)
    dneq = decay(jv - j0, margin)
    return {
        "n": n,
        "bias": bias,
        "wall_width": float(np.sqrt(5.0)),
        "margin": margin,
        "equilibrium": (d0[: d_max + 1] / d0[0]).tolist(),
        "nonequilibrium": (dneq[: d_max + 1] / dneq[0]).tolist(),
        "equilibrium_d0": float(d0[0]),
        "nonequilibrium_d0": float(dneq[0]),
    }


def main(argv=None) -> int:
    """Print the decay table (and write JSON with --out)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60)
    p.add_argument("--bias", type=float, default=0.5)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    r = measure(a.n, a.bias)
    print(f"chain N = {r['n']}, Bloch wall, J = 2, mu = -1, T = 0.05, V = {r['bias']}")
    print(f"{'d':>3} {'|dH/dS| V=0 (rel.)':>20} {'|d(H(V)-H(0))/dS| (rel.)':>26}")
    for d, (a0, a1) in enumerate(zip(r["equilibrium"], r["nonequilibrium"])):
        print(f"{d:>3} {a0:20.2e} {a1:26.2e}")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(r, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
