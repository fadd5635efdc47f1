"""CUDA fields equal CPU fields (skipped without CUDA)."""

import numpy as np
import pytest
import torch

from hpcspin.lattice import make_lattice
from hpcspin.ml import HEADS, ModelSpec, build_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(
    "kind,length,width,periodic", [("chain", 3000, 1, False), ("triangular", 40, 6, True)]
)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_cuda_fields_equal_cpu_fields(head, kind, length, width, periodic, dtype, tol):
    lat = make_lattice(kind, length, width, periodic)
    spec = ModelSpec(head=head, kind=kind, radius=2, hidden=(16, 16), globals=("bias",))
    cpu = build_model(spec, seed=1).to(dtype)
    gpu = build_model(spec, seed=1).to("cuda", dtype)
    s = np.random.default_rng(0).normal(size=(2, lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=-1, keepdims=True)
    g = {"bias": np.array([0.1, -0.3])}
    # analytic path, autograd on bond grids, autograd on stacked windows
    for fused, path_min in ((True, 0), (False, 0), (False, 10**9)):
        cpu.fused = gpu.fused = fused
        cpu.grid_kernel_min_sites = gpu.grid_kernel_min_sites = path_min
        h_cpu = cpu.field(torch.as_tensor(s, dtype=dtype), lat, g).double().numpy()
        h_gpu = gpu.field(torch.as_tensor(s, dtype=dtype, device="cuda"), lat, g)
        h_gpu = h_gpu.double().cpu().numpy()
        np.testing.assert_allclose(h_gpu, h_cpu, rtol=0, atol=tol * np.abs(h_cpu).max())
