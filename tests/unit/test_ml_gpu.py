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
def test_cuda_fields_equal_cpu_fields(head, kind, length, width, periodic):
    lat = make_lattice(kind, length, width, periodic)
    spec = ModelSpec(head=head, kind=kind, radius=2, hidden=(16, 16), globals=("bias",))
    cpu = build_model(spec, seed=1)
    gpu = build_model(spec, seed=1).to("cuda")
    s = np.random.default_rng(0).normal(size=(2, lat.n_sites, 3))
    s /= np.linalg.norm(s, axis=-1, keepdims=True)
    g = {"bias": np.array([0.1, -0.3])}
    for path_min in (0, 10**9):  # bond-grid and stacked-window kernels
        cpu.grid_kernel_min_sites = gpu.grid_kernel_min_sites = path_min
        h_cpu = cpu.field(s, lat, g)
        h_gpu = gpu.field(torch.as_tensor(s, device="cuda"), lat, g).cpu().numpy()
        np.testing.assert_allclose(h_gpu, h_cpu, atol=1e-12 * np.abs(h_cpu).max())
