"""Strip designs: the columns window and the built-in drive symmetry (hpcspin.ml.strip)."""

import numpy as np
import pytest

from hpcspin.dynamics.llg import llg_rhs
from hpcspin.dynamics.observables import sz_profile, wall_centre
from hpcspin.errors import HpcspinError
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.descriptors import basis, features, gather_window
from hpcspin.ml.export import export_model
from hpcspin.ml.kernels import grid_basis, grid_features
from hpcspin.ml.modelfile import load_model, save_model
from hpcspin.ml.strip import ColumnWindow, DriveSymmetricModel


def spins_of(n, seed=0):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def make(kind="square", design="columns", radius=3, rows=2, seed=3, **kw):
    spec = ModelSpec(
        head="E+vector",
        kind=kind,
        radius=radius,
        design=design,
        rows=rows,
        hidden=(8, 8),
        globals=("bias",),
        bias_gate=True,
        drive_symmetry=True,
        **kw,
    )
    return build_model(spec, seed=seed)


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_column_window_geometry(kind):
    w = ColumnWindow(kind, 4, rows=2)
    p = w.position(w.offsets)
    assert np.abs(p[:, 0]).max() <= 4 + 1e-9 and np.abs(w.offsets[:, 1]).max() == 2
    assert w.reach[1] == 2
    # closed under both mirrors (cell permutations exist) and every centre pair is a feature
    assert sorted(w.mirror.tolist()) == list(range(w.size))
    assert sorted(w.inversion.tolist()) == list(range(w.size))
    with_centre = {int(b if a == w.centre else a) for a, b in w.pairs if w.centre in (a, b)}
    assert with_centre == set(range(w.size)) - {w.centre}
    far = [(a, b) for a, b in w.pairs if w.centre not in (a, b)]
    assert far and max(np.linalg.norm(p[a] - p[b]) for a, b in far) <= 1.0 + 1e-9


def test_columns_design_needs_a_strip():
    with pytest.raises(ValueError):
        ColumnWindow("chain", 3)
    with pytest.raises(HpcspinError):
        ModelSpec(kind="square", design="nope")


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_grid_kernels_match_window_reference(kind):
    w = ColumnWindow(kind, 3, rows=2)
    grid = spins_of(2 * 14 * 8, seed=4).reshape(2, 14, 8, 3)
    valid = np.ones((2, 14, 8))
    valid[1, :, 0] = 0
    import torch

    sp = torch.as_tensor(grid * valid[..., None])
    vp = torch.as_tensor(valid)
    block = (5, 4, 2, 4)
    win = gather_window(sp, w, *block).reshape(-1, w.size, 3)
    mw = gather_window(vp[..., None], w, *block).reshape(-1, w.size)
    spc = sp.permute(3, 0, 1, 2).contiguous()
    np.testing.assert_allclose(grid_features(spc, vp, w, *block), features(win, mw, w), atol=1e-14)
    np.testing.assert_allclose(grid_basis(spc, w, *block), basis(win, w).permute(1, 2, 0))


@pytest.mark.parametrize("design,eq_radius", [("columns", 0), ("window", 0), ("columns", 1)])
def test_fields_match_finite_differences(design, eq_radius):
    model = make(
        design=design, radius=2 if design == "columns" else 1.5, rows=1, eq_radius=eq_radius
    )
    assert isinstance(model, DriveSymmetricModel)
    spins = spins_of(5 * 3, seed=5).reshape(5, 3, 3)
    g = {"bias": 0.3}
    parts, _ = model.local_field(spins, None, (0, 0), g, parts=True, potentials=True)
    h, fd = 1e-5, np.zeros_like(spins)
    for idx in np.ndindex(spins.shape):
        sp, sm = spins.copy(), spins.copy()
        sp[idx] += h
        sm[idx] -= h
        ep = model.local_field(sp, None, (0, 0), g, potentials=True)[1]["E"]
        em = model.local_field(sm, None, (0, 0), g, potentials=True)[1]["E"]
        fd[idx] = (ep - em).item() / (2 * h)
    scale = np.abs(fd).max()
    assert scale > 1e-3
    np.testing.assert_allclose(parts["eq"].numpy(), -fd, atol=1e-6 * scale, rtol=0)
    assert np.abs(parts["neq"].numpy()).max() > 1e-3


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_rotation_covariance(kind):
    lat = make_lattice(kind, 9, 4, False)
    model = make(kind=kind)
    s = spins_of(lat.n_sites, seed=7)
    q, r = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r)) * np.sign(np.linalg.det(q * np.sign(np.diag(r))))
    h = model.field(s, lat, {"bias": 0.4})
    np.testing.assert_allclose(model.field(s @ q.T, lat, {"bias": 0.4}), h @ q.T, atol=1e-12)


def _site_map(lat, sx, sy):
    """Index of the image of every site under (x, y) -> (sx x, sy y) about the centre."""
    idx = np.arange(lat.n_sites).reshape(lat.length, lat.width)
    return idx[:: int(sx), :: int(sy)].reshape(-1)


@pytest.mark.parametrize("kind", ["square", "triangular"])
@pytest.mark.parametrize("design,eq_radius", [("columns", 0), ("window", 0), ("columns", 1.5)])
def test_drive_symmetry_is_exact(kind, design, eq_radius):
    """H[S o I; -V]_i = H[S; V]_I(i): inversion about the strip centre with V -> -V."""
    lat = make_lattice(kind, 10, 4, False)
    radius = 3 if design == "columns" else 2
    model = make(kind=kind, design=design, radius=radius, eq_radius=eq_radius)
    s = spins_of(lat.n_sites, seed=2)
    inv = _site_map(lat, -1, -1)
    h = model.field(s, lat, {"bias": 0.35})
    h_inv = model.field(s[inv], lat, {"bias": -0.35})
    assert np.abs(h).max() > 1e-2
    np.testing.assert_allclose(h_inv, h[inv], atol=1e-13)
    if kind == "square":  # the y mirror at the same bias
        my = _site_map(lat, 1, -1)
        np.testing.assert_allclose(model.field(s[my], lat, {"bias": 0.35}), h[my], atol=1e-13)


def test_wall_velocity_is_odd_in_the_bias():
    """dX/dt of a tilted wall at V equals minus that of its inverted image at -V."""
    lat = make_lattice("square", 16, 4, False)
    model = make(radius=4, rows=3)
    s = domain_wall(lat, 6.3, 2.0, phi=0.4)
    s = s + 0.05 * spins_of(lat.n_sites, seed=9)
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    # image: inversion of the sites, then a pi rotation about x (wall type restored)
    img = s[_site_map(lat, -1, -1)] * np.array([1.0, -1.0, -1.0])
    x0 = wall_centre(sz_profile(s, lat))
    x1 = wall_centre(sz_profile(img, lat))
    np.testing.assert_allclose(x0 + x1, lat.length - 1, atol=1e-12)
    dt = 1e-3

    def rate(spins, bias):
        ds = llg_rhs(spins, model.field(spins, lat, {"bias": bias}), 0.1)
        a = wall_centre(sz_profile(spins - dt * ds, lat))
        b = wall_centre(sz_profile(spins + dt * ds, lat))
        return (b - a) / (2 * dt)

    v = rate(s, 0.5)
    assert abs(v) > 1e-4
    np.testing.assert_allclose(rate(img, -0.5), -v, rtol=1e-10)


def test_model_file_round_trip(tmp_path):
    lat = make_lattice("square", 10, 4, False)
    model = make(eq_radius=1.5)
    path = tmp_path / "strip.pt"
    save_model(path, model, lat)
    back = load_model(path, lat)
    assert isinstance(back, DriveSymmetricModel) and back.window == model.window
    s = spins_of(lat.n_sites, seed=3)
    np.testing.assert_array_equal(
        back.field(s, lat, {"bias": 0.5}), model.field(s, lat, {"bias": 0.5})
    )
    assert back.halo_width == (3, 2)
    with pytest.raises(ValueError):
        make(radius=2, rows=1, eq_radius=3)  # the E window must fit in the halo
    with pytest.raises(HpcspinError, match="not exportable"):
        export_model(back, tmp_path / "strip.ts")


def test_device_window_sees_the_leads():
    """With radius L/2 every site sees past one end of the strip (the lead interfaces),
    so the field of a shifted wall is not the shifted field; with a short window the
    sites away from both ends see only the texture, and it is."""
    lat = make_lattice("square", 12, 3)
    walls = [domain_wall(lat, x0, 1.5, "bloch") for x0 in (5.0, 6.0)]
    for radius, covariant in ((2, True), (6, False)):
        m = make(radius=radius, rows=2, seed=7)
        h = [m.field(s, lat, {"bias": 0.5}).reshape(12, 3, 3) for s in walls]
        # the field of column x depends on the spins within 2 radii (the potentials of
        # the sites it sees): columns 4..6 see no end with radius 2 in either wall
        mid = slice(4, 7)
        diff = np.abs(h[1][1:][mid] - h[0][:-1][mid]).max()
        assert (diff < 1e-12) == covariant, (radius, diff)


@pytest.mark.parametrize(
    "design,radius,ok",
    [("columns", 10, True), ("columns", 11, False), ("window", 9, False), ("window", 8, True)],
)
def test_deck_radius_rules(design, radius, ok):
    from hpcspin.deck import parse_deck
    from hpcspin.errors import DeckError

    text = f"""
[run]
task = "train"
[lattice]
kind = "square"
length = 20
width = 4
[model]
head = "E+vector"
design = "{design}"
radius = {radius}
global_inputs = ["bias"]
[train]
dataset = "d.h5"
"""
    if ok:
        parse_deck(text, check_files=False, n_ranks=1)
    else:
        with pytest.raises(DeckError, match="radius"):
            parse_deck(text, check_files=False, n_ranks=1)


@pytest.mark.parametrize("kind,periodic", [("square", False), ("triangular", True)])
def test_cached_vector_inputs_train_the_same_weights(kind, periodic, monkeypatch):
    """Training with the vector term's inputs computed once per configuration gives the
    weights of training that recomputes them every step (the cache changes no number)."""
    from hpcspin.ml.train import TrainConfig, train_model

    calls = []
    inputs = DriveSymmetricModel.vector_inputs
    monkeypatch.setattr(
        DriveSymmetricModel, "vector_inputs", lambda *a, **k: calls.append(1) or inputs(*a, **k)
    )

    lat = make_lattice(kind, 8, 3, periodic)
    model = make(kind, radius=3, rows=2, eq_radius=1.5)
    assert model.vector_inputs_fixed
    n = 10
    spins = np.stack([spins_of(lat.n_sites, k) for k in range(n)])
    bias = np.linspace(-0.5, 0.5, n)
    h_eq = model.field(spins, lat, {"bias": 0 * bias})
    h = h_eq + 0.1 * spins_of(n * lat.n_sites, 99).reshape(spins.shape)
    out = []
    for cache in (True, False):
        cfg = TrainConfig(epochs=3, batch_size=4, block_size=2, lr=1e-2, cache_vector_inputs=cache)
        calls.clear()
        res = train_model(spins, h, lat, model.spec, cfg, bias=bias, fields_eq=h_eq)
        assert len(calls) == (n if cache else 0)  # the cache is built (once per config)
        out.append((res.history, res.model.field(spins, lat, {"bias": bias})))
    losses = [[r["loss"] for r in hist] for hist, _ in out]
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=0, atol=1e-12)


def test_given_vector_inputs_must_fit_the_call():
    lat = make_lattice("square", 8, 3, False)
    model = make(radius=3, rows=2, eq_radius=1.5)
    s = spins_of(lat.n_sites)
    d, vb = model.vector_inputs(s[None], lat, {"bias": 0.3})
    ref = model.field(s, lat, {"bias": 0.3})
    with model.given_vector_inputs(d, vb):
        np.testing.assert_array_equal(model.field(s, lat, {"bias": 0.3}), ref)
    two = np.stack([s, s])
    with model.given_vector_inputs(d, vb), pytest.raises(HpcspinError, match="24 sites"):
        model.field(two, lat, {"bias": 0.3})


def test_validate_reports_each_model_torque_on_the_relaxed_wall():
    """The strip checks' model column: T_z of H(V) - H(0) equals the net torque of the
    model's own current-induced part, and the Markdown gives it relative to NEGF's."""
    from hpcspin.negf.observables import net_torque
    from hpcspin.tasks.validate_strip import model_torques, strip_markdown

    lat = make_lattice("square", 8, 3)
    model = make(radius=3, rows=2, eq_radius=1.5)
    s = spins_of(24, seed=4)  # 8 x 3 sites
    tz = model_torques({"m": model}, lat, s, 0.3, -1.0)["m"]
    neq = model.field(s[None], lat, {"bias": np.array([0.3])}, parts=True)["neq"][0]
    assert tz == pytest.approx(float(net_torque(s, neq)[2]), rel=1e-10, abs=1e-14)
    assert tz != 0.0
    row = {
        "bias": 0.3,
        "net_torque": [0.0, 0.0, tz / 1.05],
        "absorbed_spin_current": [0.0, 0.0, tz / 1.05],
        "balance_residual": 0.0,
        "torque_velocity": 0.0,
        "symmetry_residual": None,
        "model_net_torque_z": {"m": tz},
    }
    md = "\n".join(strip_markdown([row], False))
    assert "T_z of m's H(V) - H(0) on this wall relative to NEGF's: +5.00% at 0.30" in md
