"""The one transverse projection H - (H.S) S, for numpy arrays and torch tensors."""

from __future__ import annotations

import numpy as np
import pytest

from hpcspin.dynamics.llg import transverse


def unit(rng, n):
    s = rng.normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def test_projection_and_keyword_only_spins():
    rng = np.random.default_rng(3)
    s, h = unit(rng, 50), rng.normal(size=(50, 3))
    p = transverse(h, spins=s)
    np.testing.assert_allclose(np.sum(p * s, axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(transverse(p, spins=s), p, atol=1e-15)  # idempotent
    # the datagen formula it replaced gives the same bits (datasets stay identical)
    np.testing.assert_array_equal(p, h - np.sum(h * s, axis=1, keepdims=True) * s)
    with pytest.raises(TypeError):
        transverse(s, h)  # the old argument order cannot be used by mistake


def test_torch_tensors_give_the_training_formula():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    s, h = torch.tensor(unit(rng, 20)), torch.tensor(rng.normal(size=(20, 3)))
    want = h - (h * s).sum(-1, keepdim=True) * s  # the loss formula it replaced
    assert torch.equal(transverse(h, spins=s), want)
    np.testing.assert_array_equal(
        transverse(h, spins=s).numpy(), transverse(h.numpy(), spins=s.numpy())
    )
