"""bias_gate: the nonequilibrium head vanishes at V = 0; the E head ignores the bias."""

import numpy as np
import pytest

from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model


@pytest.mark.parametrize("head", ["E+vector", "EA"])
def test_gated_neq_vanishes_at_zero_bias_and_eq_ignores_bias(head):
    lat = make_lattice("chain", 16)
    rng = np.random.default_rng(0)
    s = rng.normal(size=(16, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    spec = ModelSpec(head=head, radius=2, hidden=(8,), globals=("bias",), bias_gate=True)
    m = build_model(spec, seed=1)
    p0 = m.field(s, lat, {"bias": 0.0}, parts=True)
    p1 = m.field(s, lat, {"bias": 0.4}, parts=True)
    assert np.abs(np.asarray(p0["neq"])).max() == 0.0
    assert np.abs(np.asarray(p1["neq"])).max() > 1e-6
    np.testing.assert_allclose(np.asarray(p0["eq"]), np.asarray(p1["eq"]), atol=1e-14)
    # Without the gate the E part does depend on the bias input.
    m2 = build_model(ModelSpec(head=head, radius=2, hidden=(8,), globals=("bias",)), seed=1)
    q0, q1 = (m2.field(s, lat, {"bias": v}, parts=True) for v in (0.0, 0.4))
    assert np.abs(np.asarray(q0["eq"]) - np.asarray(q1["eq"])).max() > 1e-8


@pytest.mark.parametrize("head", ["E+vector", "EA"])
@pytest.mark.parametrize("gate", [True, False])
def test_chain_mirror_makes_the_driven_symmetry_exact(head, gate):
    """H(M S, -V) = M H(S, V): mirror x -> N-1-x with a pi rotation about y."""
    lat = make_lattice("chain", 14)
    rng = np.random.default_rng(4)
    s = rng.normal(size=(14, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    rot = np.diag([-1.0, 1.0, -1.0])
    ms = (s @ rot.T)[::-1].copy()
    kw = dict(head=head, radius=2, hidden=(8,), globals=("bias",), bias_gate=gate)
    sym = build_model(ModelSpec(chain_mirror=True, **kw), seed=5)
    h = np.asarray(sym.field(s, lat, {"bias": 0.3}))
    hm = np.asarray(sym.field(ms, lat, {"bias": -0.3}))
    np.testing.assert_allclose(hm, (h @ rot.T)[::-1], atol=1e-12)
    # Without the symmetrisation the same network breaks the symmetry...
    raw = build_model(ModelSpec(**kw), seed=5)
    h = np.asarray(raw.field(s, lat, {"bias": 0.3}))
    hm = np.asarray(raw.field(ms, lat, {"bias": -0.3}))
    assert np.abs(hm - (h @ rot.T)[::-1]).max() > 1e-6
    # ... and the symmetric model is still not mirror symmetric at fixed V.
    h1 = np.asarray(sym.field(ms, lat, {"bias": 0.3}))
    h0 = np.asarray(sym.field(s, lat, {"bias": 0.3}))
    assert np.abs(h1 - (h0 @ rot.T)[::-1]).max() > 1e-6
