"""Shipped models give the fields they gave when they were shipped.

The arrays in data/ml_shipped_fields.npz were written by the code before the
head interface and the analytic inference path existed (a fixed 200-site chain,
V = 0 and 0.5). The autograd reference must reproduce them bit for bit; the
analytic path to round-off.
"""

import pathlib

import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.ml import load_model

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = np.load(ROOT / "tests" / "regression" / "data" / "ml_shipped_fields.npz")
CASES = sorted(k for k in DATA.files if "|" in k)


@pytest.mark.parametrize("case", CASES)
def test_shipped_model_field_unchanged(case):
    name, bias = case.split("|")
    model = load_model(ROOT / "models" / f"{name}.pt")
    s = DATA["spins"]
    lat = make_lattice("chain", len(s))
    g = {"bias": float(bias), "mu": -1.0}
    want = DATA[case]
    model.fused = False
    np.testing.assert_array_equal(model.field(s, lat, g), want)
    model.fused = True
    got = model.field(s, lat, g)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
