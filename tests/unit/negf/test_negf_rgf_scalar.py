"""The per-energy scalar chain kernel equals the vectorised one and a dense inverse."""

import numpy as np
import pytest

from hpcspin.negf import rgf


@pytest.mark.parametrize("n_sites", [1, 2, 7, 40])
@pytest.mark.parametrize("n_e", [1, 2, 3])
def test_scalar_kernel_equals_vectorised_and_dense(n_sites, n_e):
    rng = np.random.default_rng(n_sites * 10 + n_e)
    hd = rng.normal(size=(n_sites, 2, 2)) + 1j * rng.normal(size=(n_sites, 2, 2))
    hd = hd + hd.conj().transpose(0, 2, 1)
    z = rng.normal(size=n_e) + 0.05j
    sl = -0.5j * np.eye(2) * rng.uniform(0.2, 1.0, size=(n_e, 1, 1))
    sr = -0.5j * np.eye(2) * rng.uniform(0.2, 1.0, size=(n_e, 1, 1))
    c = -0.8
    got = rgf.rgf_column0(hd, c * np.eye(2), z, sl, sr)  # scalar path (n_e <= 3)
    rows = rgf._chain_column0(hd, c, z.astype(complex), sl, sr)  # (L, 4, n) row layout
    vec = rows.transpose(0, 2, 1).reshape(n_sites, n_e, 2, 2)
    np.testing.assert_allclose(got, vec, rtol=0, atol=1e-12)
    for i, e in enumerate(z):  # dense: first block column of (z - H - Sigma)^-1
        h = np.zeros((2 * n_sites, 2 * n_sites), complex)
        for x in range(n_sites):
            h[2 * x : 2 * x + 2, 2 * x : 2 * x + 2] = hd[x]
            if x + 1 < n_sites:
                h[2 * x : 2 * x + 2, 2 * x + 2 : 2 * x + 4] = c * np.eye(2)
                h[2 * x + 2 : 2 * x + 4, 2 * x : 2 * x + 2] = c * np.eye(2)
        h[:2, :2] += sl[i]
        h[-2:, -2:] += sr[i]
        g = np.linalg.inv(e * np.eye(2 * n_sites) - h)
        np.testing.assert_allclose(got[:, i], g[:, :2].reshape(n_sites, 2, 2), atol=1e-10)
