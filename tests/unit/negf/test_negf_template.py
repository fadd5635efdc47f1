"""Scheme "fast" set-up: SliceTemplate and the kept pole-sum inputs change no number."""

import numpy as np
import pytest

from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice
from hpcspin.negf import ElectronParams, NEGFEngine
from hpcspin.negf.leads import Leads
from hpcspin.negf.solvers import RGFSolver
from hpcspin.negf.system import OpenSystem, SliceTemplate

SHAPES = [("chain", 7, 1), ("square", 5, 3), ("triangular", 4, 2)]


def _lattice(kind, length, width):
    return make_lattice(kind, length) if kind == "chain" else make_lattice(kind, length, width)


def _spins(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    s[::3, 0] = 0.0  # exact zeros: the signs of zero must match too
    s[1::4, 1] = -0.0
    return s / np.linalg.norm(s, axis=1)[:, None]


def _same_bits(a, b):
    a, b = np.asarray(a, dtype=complex), np.asarray(b, dtype=complex)
    return (
        a.shape == b.shape
        and np.array_equal(a, b)
        and np.array_equal(np.signbit(a.real), np.signbit(b.real))
        and np.array_equal(np.signbit(a.imag), np.signbit(b.imag))
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("onsite", [None, 0.3, "array"])
def test_template_systems_equal_plain_ones_bit_for_bit(shape, onsite):
    lat = _lattice(*shape)
    n = lat.n_sites
    eps = np.random.default_rng(1).normal(size=n) if onsite == "array" else onsite
    leads = Leads(lat, t_contact=1.3)
    tpl = SliceTemplate(lat, leads, 0.9, 1.7, eps)
    for seed in range(3):
        s = _spins(n, seed)
        plain = OpenSystem(lat, s, leads, 0.9, 1.7, eps)
        fast = OpenSystem(lat, s, leads, 0.9, 1.7, eps, template=tpl)
        assert _same_bits(plain.hd, fast.hd)
        assert _same_bits(plain.v, fast.v)
        assert plain.spectral_bounds() == fast.spectral_bounds()
        assert plain.scalar_coupling() == fast.scalar_coupling()
        # The Gershgorin bounds as first written (row sums by numpy's reduction).
        d = np.real(np.diagonal(plain.hd, axis1=1, axis2=2))
        radius = np.abs(plain.hd).sum(axis=2) - np.abs(d)
        coup = (np.abs(plain.v).sum(1) + np.abs(plain.v).sum(0)) * 1.3
        lo, hi = float((d - radius - coup).min()), float((d + radius + coup).max())
        blo, bhi = leads.band_bounds()
        assert plain.spectral_bounds() == (min(lo, blo), max(hi, bhi))


def test_template_rejects_spins_of_the_wrong_shape():
    lat = make_lattice("chain", 5)
    tpl = SliceTemplate(lat, Leads(lat), 1.0, 2.0)
    with pytest.raises(HpcspinError, match="spins must have shape"):
        OpenSystem(lat, np.zeros((4, 3)), Leads(lat), template=tpl)


def test_kept_pole_inputs_follow_the_spins():
    """Pole-sum inputs kept from earlier calls: every call equals a fresh engine's."""
    lat = make_lattice("chain", 40)
    p = ElectronParams(bias=0.0)
    eng = NEGFEngine(lat, p, scheme="fast")
    for seed in range(3):
        s = _spins(40, seed)
        got = eng.compute(s)
        fresh = NEGFEngine(lat, p, scheme="fast").compute(s)
        assert _same_bits(got.spin_density, fresh.spin_density)
        assert _same_bits(got.charge_density, fresh.charge_density)
        # ... and the solver's own pole sum over the same blocks
        system = eng.system(s)
        eq = eng._plan_equilibrium(system, p.mu)
        solver = RGFSolver(system, compiled=True)
        total = np.zeros((40, 4))
        for sl in eng._blocks(len(eq.poles)):
            total += solver.pole_terms(eq.poles[sl], eq.pole_weights[sl])
        total[:, 0] += eq.constant
        assert _same_bits(got.spin_density, total[:, 1:])
