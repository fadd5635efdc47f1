"""Samplers of spin configurations: reproducibility, norms, shares, ranges."""

import numpy as np
import pytest

from hpcspin.datagen.samplers import (
    KIND_RANDOM,
    KIND_TEXTURE,
    KIND_WALL,
    KIND_WALL_NOISY,
    SamplerSettings,
    sample_config,
    smooth_texture,
    thermal_tilt,
    wall_center_range,
    wall_config,
)
from hpcspin.dynamics.observables import sz_profile, wall_centre
from hpcspin.lattice import make_lattice

CHAIN = make_lattice("chain", 40)
STRIP = make_lattice("square", 20, 4)


def _samples(lattice, settings, n, seed=7):
    return [sample_config(k, seed, lattice, settings) for k in range(n)]


@pytest.mark.parametrize("lattice", [CHAIN, STRIP], ids=["chain", "strip"])
def test_reproducible_per_seed_and_index(lattice):
    st = SamplerSettings(biases=(-0.5, 0.25, 0.5))
    a = sample_config(5, 11, lattice, st)
    # Same (seed, k) after drawing other configurations, in another order: same sample.
    for k in (9, 3, 0):
        sample_config(k, 11, lattice, st)
    b = sample_config(5, 11, lattice, st)
    assert np.array_equal(a.spins, b.spins)
    assert (a.bias, a.kind, a.noise) == (b.bias, b.kind, b.noise)
    c = sample_config(5, 12, lattice, st)
    d = sample_config(6, 11, lattice, st)
    assert not np.array_equal(a.spins, c.spins)
    assert not np.array_equal(a.spins, d.spins)


@pytest.mark.parametrize("lattice", [CHAIN, STRIP], ids=["chain", "strip"])
def test_unit_norm_and_shape(lattice):
    for s in _samples(lattice, SamplerSettings(mix=(1, 1, 1)), 60):
        assert s.spins.shape == (lattice.n_sites, 3)
        assert s.spins.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(s.spins, axis=1), 1.0, atol=1e-14)


def test_shares_of_kinds():
    st = SamplerSettings(mix=(0.5, 0.3, 0.2), noise=(0.0, 0.3), clean_share=0.4)
    kinds = np.array([s.kind for s in _samples(CHAIN, st, 2000)])
    walls = np.isin(kinds, [KIND_WALL, KIND_WALL_NOISY]).mean()
    # Binomial 4-sigma bands around the requested shares.
    for share, got in (
        (0.5, walls),
        (0.3, (kinds == KIND_TEXTURE).mean()),
        (0.2, (kinds == KIND_RANDOM).mean()),
    ):
        assert abs(got - share) < 4 * np.sqrt(share * (1 - share) / 2000)
    clean = (kinds == KIND_WALL).sum() / np.isin(kinds, [KIND_WALL, KIND_WALL_NOISY]).sum()
    assert abs(clean - 0.4) < 4 * np.sqrt(0.24 / 1000)


def test_zero_share_never_drawn_and_bias_from_list():
    st = SamplerSettings(mix=(0.0, 1.0, 0.0), biases=(-0.5, 0.25))
    samples = _samples(CHAIN, st, 200)
    assert {s.kind for s in samples} == {KIND_TEXTURE}
    biases = [s.bias for s in samples]
    assert set(biases) == {-0.5, 0.25}
    assert all(s.mu == st.mu for s in samples)


def test_walls_in_range_and_measured_centre():
    st = SamplerSettings(mix=(1, 0, 0), noise=(0.0, 0.0), width_range=(1.5, 3.5))
    seen_phi, seen_pol = set(), set()
    for s in _samples(CHAIN, st, 200):
        assert s.kind == KIND_WALL and s.noise == 0.0
        assert 1.5 <= s.width <= 3.5
        lo, hi = wall_center_range(CHAIN.length, s.width)
        assert lo <= s.center <= hi
        # The sign change of S^z (independent observable) sits at the drawn centre:
        # the Walker profile is odd about X0, so linear interpolation is exact to
        # O(1/lambda^2) (well below half a site).
        x = wall_centre(sz_profile(s.spins, CHAIN))
        assert abs(x - s.center) < 0.1
        mid = s.spins[np.argmin(np.abs(s.spins[:, 2]))]
        seen_phi.add(round(float(np.arctan2(mid[1], mid[0])) / (np.pi / 2)) % 4)
        seen_pol.add(int(np.sign(s.spins[0, 2])))
    assert seen_phi == {0, 1, 2, 3}  # Neel/Bloch, both chiralities
    assert seen_pol == {-1, 1}


def test_noisy_walls_have_requested_tilt():
    st = SamplerSettings(mix=(1, 0, 0), noise=(0.1, 0.3))
    for s in _samples(CHAIN, st, 50):
        assert s.kind == KIND_WALL_NOISY and 0.1 <= s.noise <= 0.3
    rng = np.random.default_rng(0)
    clean = wall_config(make_lattice("chain", 4000), 2000.0, 3.0)
    noisy = thermal_tilt(clean, 0.2, rng)
    ang = np.arccos(np.clip(np.sum(clean * noisy, axis=1), -1, 1))
    # Small-angle rms tilt ~ sigma (arctan of a Rayleigh kick, 2 % tolerance).
    assert abs(np.sqrt(np.mean(np.tan(ang) ** 2)) - 0.2) < 0.02 * 0.2 * 3


def test_strip_wall_runs_along_rows():
    s = wall_config(STRIP, 9.5, 2.0, phi=np.pi / 2)
    grid = s.reshape(STRIP.length, STRIP.width, 3)
    assert np.allclose(grid, grid[:, :1, :])  # untilted: same profile in every row
    assert np.all(grid[0, :, 2] > 0.9) and np.all(grid[-1, :, 2] < -0.9)
    tilted = wall_config(STRIP, 9.5, 2.0, tilt=0.3).reshape(STRIP.length, STRIP.width, 3)
    centres = [wall_centre(tilted[:, y, 2]) for y in range(STRIP.width)]
    assert np.allclose(np.diff(centres), 0.3, atol=0.05)


def test_texture_is_smooth_and_random_is_not():
    rng = np.random.default_rng(3)
    lat = make_lattice("chain", 400)
    tex = smooth_texture(lat, rng, (1.5, 3.5))
    rand = sample_config(0, 0, lat, SamplerSettings(mix=(0, 0, 1))).spins
    step = lambda s: np.mean(np.sum(s[1:] * s[:-1], axis=1))  # noqa: E731
    assert step(tex) > 0.8  # neighbours nearly parallel
    assert abs(step(rand)) < 0.15  # independent: mean S_i.S_j ~ 0


def test_settings_validation():
    with pytest.raises(ValueError):
        SamplerSettings(mix=(0, 0, 0))
    with pytest.raises(ValueError):
        SamplerSettings(noise=(0.3, 0.1))
    with pytest.raises(ValueError):
        SamplerSettings(biases=())


def test_cost_estimate_follows_the_sampled_family():
    from hpcspin.datagen.samplers import FAMILY_COST, FAMILY_KINDS, cost_estimate
    from hpcspin.datagen.schedule import longest_first

    st = SamplerSettings(mix=(0.5, 0.3, 0.2))
    family = {kind: name for name, kinds in FAMILY_KINDS.items() for kind in kinds}
    assert family[KIND_WALL] == family[KIND_WALL_NOISY] == "wall"
    assert (family[KIND_TEXTURE], family[KIND_RANDOM]) == ("texture", "random")
    for k in range(100):
        assert cost_estimate(k, 4, st) == FAMILY_COST[family[sample_config(k, 4, CHAIN, st).kind]]
    order = longest_first(range(100), lambda k: cost_estimate(k, 4, st))
    costs = [cost_estimate(k, 4, st) for k in order]
    assert costs == sorted(costs, reverse=True) and sorted(order) == list(range(100))


def test_snapshot_family_copies_frames_and_leaves_other_draws_alone():
    from hpcspin.datagen.samplers import KIND_SNAPSHOT, SamplerSettings, sample_config
    from hpcspin.lattice import make_lattice

    lat = make_lattice("chain", 10)
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(5, 10, 3))
    frames /= np.linalg.norm(frames, axis=2, keepdims=True)
    plain = SamplerSettings(mix=(1.0, 1.0, 0.0), biases=(0.5,))
    snap = SamplerSettings(
        mix=(1.0, 1.0, 0.0),
        biases=(0.5,),
        snapshot_share=0.5,
        snapshot_frames=5,
        snapshot_sha256="x",
    )
    kinds = []
    for k in range(60):
        s = sample_config(k, 3, lat, snap, frames)
        kinds.append(s.kind)
        if s.kind == KIND_SNAPSHOT:
            assert any(np.array_equal(s.spins, f) for f in frames)
        again = sample_config(k, 3, lat, snap, frames)
        assert np.array_equal(again.spins, s.spins)  # reproducible per (seed, k)
    share = np.mean(np.array(kinds) == KIND_SNAPSHOT)
    assert 0.3 < share < 0.7
    # Without snapshots the draws are those of a plain dataset.
    a = sample_config(7, 3, lat, plain)
    assert a.kind != KIND_SNAPSHOT
    with pytest.raises(ValueError, match="snapshot"):
        first = next(k for k in range(60) if kinds[k] == KIND_SNAPSHOT)
        sample_config(first, 3, lat, snap, None)
