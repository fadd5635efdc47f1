"""Force providers: the chunked ML evaluation equals one call; classical grid field."""

import numpy as np
import pytest

from hpcspin.dynamics.forces import MLForce
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.parallel.decomp import Decomposition


@pytest.mark.parametrize(
    "kind, width, head", [("chain", 1, "E+vector"), ("chain", 1, "EA"), ("square", 4, "E+vector")]
)
def test_chunked_ml_equals_single_call(kind, width, head):
    lat = make_lattice(kind, 40, width, periodic=width > 2)
    spec = ModelSpec(head=head, kind=kind, radius=2.0, hidden=(8,), globals=("bias",))
    model = build_model(spec, seed=2)
    hx, hy = model.halo_width
    d = Decomposition.from_lattice(lat, 1, 0, halo=(hx, hy if kind != "chain" else 0))
    rng = np.random.default_rng(0)
    s = rng.normal(size=(lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    grid = d.scatter(s)
    whole = MLForce(model, {"bias": 0.3})
    ref = whole.local(grid, d.valid, d.halo)
    cut = MLForce(model, {"bias": 0.3})
    cut.chunk_sites = 7 * width  # slabs of 7 columns: several chunks, uneven last one
    got = cut.local(grid, d.valid, d.halo)
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
