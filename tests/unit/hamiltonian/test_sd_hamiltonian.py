import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.sd import (
    PAULI,
    onsite_blocks,
    pauli_components,
    sd_matrix,
    slice_blocks,
)
from hpcspin.lattice import make_lattice

LATTICES = [
    ("chain", 7, 1, False),
    ("square", 5, 3, False),
    ("square", 4, 4, True),
    ("triangular", 4, 3, False),
    ("triangular", 4, 4, True),
]


def _spins(rng, n):
    s = rng.normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1, keepdims=True)


@pytest.mark.parametrize("kind,L,W,per", LATTICES)
def test_slice_blocks_assemble_to_sparse_matrix(rng, kind, L, W, per):
    lat = make_lattice(kind, L, W, per)
    s = _spins(rng, lat.n_sites)
    eps = rng.normal(size=lat.n_sites)
    h = sd_matrix(lat, s, t=0.7, J=1.3, onsite=eps).toarray()
    hd, v = slice_blocks(lat, s, t=0.7, J=1.3, onsite=eps)
    b = 2 * W
    full = np.zeros_like(h)
    for x in range(L):
        full[x * b : (x + 1) * b, x * b : (x + 1) * b] = hd[x]
        if x + 1 < L:
            full[x * b : (x + 1) * b, (x + 1) * b : (x + 2) * b] = v
            full[(x + 1) * b : (x + 2) * b, x * b : (x + 1) * b] = v.conj().T
    assert np.allclose(h, h.conj().T)
    assert np.allclose(full, h)
    # hopping count: -t per bond and spin, both directions
    nb = len(lat.bonds(1))
    assert np.isclose(-np.sum(h[0::2, 0::2][np.triu_indices(lat.n_sites, 1)]) / 0.7, nb)


def test_onsite_block_is_eps_minus_J_S_sigma(rng):
    s = _spins(rng, 5)
    eps = rng.normal(size=5)
    blk = onsite_blocks(s, 2.0, eps)
    ref = eps[:, None, None] * np.eye(2) - 2.0 * np.einsum("ia,ajk->ijk", s, PAULI[1:])
    assert np.allclose(blk, ref)
    # eigenvalues eps -+ J: the majority spin (parallel to S) is lower for J > 0
    w = np.linalg.eigvalsh(blk)
    assert np.allclose(w, np.stack([eps - 2.0, eps + 2.0], 1))
    vec = np.linalg.eigh(blk[0])[1][:, 0]
    spin = np.real(np.einsum("j,ajk,k->a", vec.conj(), PAULI[1:], vec))
    assert np.allclose(spin, s[0])


def test_pauli_components_roundtrip(rng):
    x = rng.normal(size=(6, 2, 2)) + 1j * rng.normal(size=(6, 2, 2))
    c = pauli_components(x)
    back = 0.5 * np.einsum("na,ajk->njk", c, PAULI)
    assert np.allclose(back, x)


def test_ferromagnet_chain_bands():
    lat = make_lattice("chain", 40)
    s = np.tile([0.0, 0.0, 1.0], (40, 1))
    h = sd_matrix(lat, s, t=1.0, J=2.0).toarray()
    w = np.linalg.eigvalsh(h)
    k = np.pi * np.arange(1, 41) / 41
    ref = np.sort(np.concatenate([-2 * np.cos(k) - 2.0, -2 * np.cos(k) + 2.0]))
    assert np.allclose(w, ref)


def test_bad_spins_shape():
    lat = make_lattice("chain", 4)
    with pytest.raises(HpcspinError):
        sd_matrix(lat, np.zeros((3, 3)))


def test_large_chain_is_fast_and_sparse():
    lat = make_lattice("chain", 100_000)
    s = np.tile([0.0, 0.0, 1.0], (100_000, 1))
    h = sd_matrix(lat, s)
    assert h.shape == (200_000, 200_000)
    assert h.nnz <= 4 * 100_000 + 4 * (100_000 - 1)  # on-site 2x2 blocks + hops
    hd, v = slice_blocks(lat, s)
    assert hd.shape == (100_000, 2, 2) and v.shape == (2, 2)
