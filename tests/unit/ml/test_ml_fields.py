"""ML force model: autograd fields, covariance, symmetry and the domain API."""

import numpy as np
import pytest
import torch

from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, Window, build_model
from hpcspin.ml.descriptors import basis, features, gather_window
from hpcspin.ml.kernels import grid_basis, grid_features

HEADS = ["E", "EA", "E+vector"]


def random_spins(n, seed=0, batch=None):
    rng = np.random.default_rng(seed)
    shape = (n, 3) if batch is None else (batch, n, 3)
    s = rng.normal(size=shape)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def random_rotation(seed=1):
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def make(head, kind="chain", radius=2, globals_=("bias",), seed=3, path="window", **kw):
    """A small random model; path selects the kernels (all three must agree).

    "window" and "grid": autograd reference on stacked windows / bond grids;
    "fused": the analytic inference path (training always takes the reference).
    """
    spec = ModelSpec(head=head, kind=kind, radius=radius, hidden=(8, 8), globals=globals_, **kw)
    model = build_model(spec, seed=seed)
    model.grid_kernel_min_sites = 0 if path == "grid" else 10**9
    model.fused = path == "fused"
    return model


PATHS = pytest.mark.parametrize("path", ["window", "grid", "fused"])


def test_window_chain_is_ordered():
    w = Window("chain", 3)
    assert w.offsets[:, 0].tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert w.reach == (3, 0)
    assert w.n_basis == 15  # 5 r
    # The chain's mirror is x -> -x (used only together with V -> -V).
    assert w.mirror.tolist() == [6, 5, 4, 3, 2, 1, 0]


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_window_mirror_is_permutation(kind):
    w = Window(kind, 2)
    p = w.position(w.offsets)
    pm = w.position(w.offsets[w.mirror])
    np.testing.assert_allclose(pm, p * [1, -1], atol=1e-12)


@PATHS
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("kind,shape", [("chain", (7, 1)), ("square", (4, 3))])
def test_fields_match_finite_differences(head, kind, shape, path):
    model = make(head, kind=kind, radius=2 if kind == "chain" else 1.5, path=path)
    spins = random_spins(shape[0] * shape[1], seed=5).reshape(*shape, 3)
    g = {"bias": 0.3}
    parts, pot = model.local_field(spins, None, (0, 0), g, parts=True, potentials=True)
    h = 1e-5
    fd_e = np.zeros_like(spins)
    fd_a = np.zeros_like(spins)
    for idx in np.ndindex(spins.shape):
        sp, sm = spins.copy(), spins.copy()
        sp[idx] += h
        sm[idx] -= h
        _, pp = model.local_field(sp, None, (0, 0), g, potentials=True)
        _, pm = model.local_field(sm, None, (0, 0), g, potentials=True)
        fd_e[idx] = (pp["E"] - pm["E"]).item() / (2 * h)
        if "A" in pp:
            fd_a[idx] = (pp["A"] - pm["A"]).item() / (2 * h)
    eq = parts["eq"].numpy()
    scale = np.abs(fd_e).max()
    assert scale > 1e-3
    np.testing.assert_allclose(eq, -fd_e, atol=1e-6 * scale, rtol=0)
    if head == "EA":
        want = np.cross(spins, fd_a)
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(parts["neq"].numpy(), want, atol=1e-6 * np.abs(want).max())
    assert set(pot) == ({"E", "A"} if head == "EA" else {"E"})


@PATHS
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(
    "kind,length,width,periodic",
    [("chain", 12, 1, False), ("square", 5, 4, False), ("triangular", 5, 4, True)],
)
def test_rotation_covariance(head, kind, length, width, periodic, path):
    lat = make_lattice(kind, length, width, periodic)
    model = make(head, kind=kind, radius=2 if kind == "chain" else 1.5, path=path)
    s = random_spins(lat.n_sites, seed=7, batch=2)
    r = random_rotation()
    h = model.field(s, lat, {"bias": np.array([0.2, -0.4])})
    hr = model.field(s @ r.T, lat, {"bias": np.array([0.2, -0.4])})
    assert np.abs(h).max() > 1e-2
    np.testing.assert_allclose(hr, h @ r.T, atol=1e-10 * np.abs(h).max())


@pytest.mark.parametrize("head", HEADS)
def test_chain_model_is_not_mirror_symmetric(head):
    """Left and right are different features: reversing the chain is not a symmetry."""
    lat = make_lattice("chain", 12)
    model = make(head)
    s = random_spins(12, seed=2)
    h = model.field(s, lat, {"bias": 0.5})
    for sign in (1, -1):  # plain reversal, and reversal with S -> -S (fixes triple signs)
        hr = model.field(sign * s[::-1].copy(), lat, {"bias": 0.5})[::-1]
        diff = np.abs(hr - sign * h).max()
        assert diff > 1e-3 * np.abs(h).max()


@PATHS
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("periodic", [False, True])
def test_square_strip_is_mirror_symmetric(head, periodic, path):
    """y -> W-1-y is a symmetry of the square strip: group averaging keeps it."""
    lat = make_lattice("square", 5, 4, periodic)
    model = make(head, kind="square", radius=2, path=path)
    s = random_spins(lat.n_sites, seed=3).reshape(5, 4, 3)
    h = model.field(s.reshape(-1, 3), lat, {"bias": 0.1}).reshape(5, 4, 3)
    hm = model.field(s[:, ::-1].reshape(-1, 3), lat, {"bias": 0.1}).reshape(5, 4, 3)
    np.testing.assert_allclose(hm[:, ::-1], h, atol=1e-12)
    # without averaging the model is not mirror symmetric (the test can fail)
    m2 = make(head, kind="square", radius=2, symmetrize=False, path=path)
    h2 = m2.field(s.reshape(-1, 3), lat, {"bias": 0.1}).reshape(5, 4, 3)
    h2m = m2.field(s[:, ::-1].reshape(-1, 3), lat, {"bias": 0.1}).reshape(5, 4, 3)
    assert np.abs(h2m[:, ::-1] - h2).max() > 1e-4


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_site_terms_mirror_invariant(kind):
    """Site energy and vector field of a window equal those of the mirrored window."""
    model = make("E+vector", kind=kind, radius=2)
    w = model.window
    win = torch.as_tensor(random_spins(w.size * 4, seed=9).reshape(4, w.size, 3))
    mask = torch.ones(4, w.size, dtype=torch.float64)
    mask[0, 3] = 0.0
    glob = torch.full((4, 1), 0.2, dtype=torch.float64)
    perm = torch.as_tensor(w.mirror)

    def terms(wn, mk):
        d = features(wn, mk, w, glob)
        with torch.no_grad():
            return model.site_terms(d, basis(wn, w).permute(1, 2, 0))

    t, tm = terms(win, mask), terms(win[:, perm], mask[:, perm])
    np.testing.assert_allclose(tm["eps"], t["eps"], atol=1e-13)
    # the vector field is built from the mirrored window's own cells
    np.testing.assert_allclose(tm["vec"], t["vec"], atol=1e-13)
    assert np.abs(t["vec"].numpy()).max() > 1e-3


@pytest.mark.parametrize("kind,radius", [("chain", 3), ("square", 2), ("triangular", 2)])
def test_grid_kernels_match_window_reference(kind, radius):
    """Bond-grid features and basis == features of explicitly gathered windows."""
    w = Window(kind, radius)
    rng = np.random.default_rng(0)
    g = torch.as_tensor(rng.normal(size=(2, 9, 8, 3)))
    valid = torch.as_tensor(rng.random((2, 9, 8)) > 0.2, dtype=torch.float64)
    g = g * valid[..., None]
    rx, ry = w.reach
    ox, oy = 9 - 2 * rx, 8 - 2 * ry
    win = gather_window(g, w, rx, ox, ry, oy).reshape(-1, w.size, 3)
    mk = gather_window(valid[..., None], w, rx, ox, ry, oy).reshape(-1, w.size)
    spc = g.permute(3, 0, 1, 2).contiguous()
    got = grid_features(spc, valid, w, rx, ox, ry, oy)
    np.testing.assert_allclose(got, features(win, mk, w), atol=1e-14)
    gb = grid_basis(spc, w, rx, ox, ry, oy)
    np.testing.assert_allclose(gb, basis(win, w).permute(1, 2, 0), atol=1e-14)


@pytest.mark.parametrize("head", HEADS)
def test_periodic_strip_translation_invariance(head):
    lat = make_lattice("square", 4, 5, periodic=True)
    model = make(head, kind="square", radius=2, path="grid")
    s = random_spins(lat.n_sites, seed=4).reshape(4, 5, 3)
    h = model.field(s.reshape(-1, 3), lat, {"bias": 0.1}).reshape(4, 5, 3)
    hr = model.field(np.roll(s, 2, axis=1).reshape(-1, 3), lat, {"bias": 0.1})
    np.testing.assert_allclose(hr.reshape(4, 5, 3), np.roll(h, 2, axis=1), atol=1e-12)


def test_globals_enter_and_are_checked():
    lat = make_lattice("chain", 8)
    model = make("E+vector", globals_=("bias", "mu"))
    s = random_spins(8)
    h1 = model.field(s, lat, {"bias": 0.1, "mu": -1.0})
    h2 = model.field(s, lat, {"bias": 0.4, "mu": -1.0})
    assert np.abs(h1 - h2).max() > 1e-6
    with pytest.raises(HpcspinError, match="mu"):
        model.field(s, lat, {"bias": 0.1})


def test_batched_equals_single():
    lat = make_lattice("chain", 10)
    model = make("EA")
    s = random_spins(10, seed=1, batch=3)
    v = np.array([0.1, -0.2, 0.3])
    hb = model.field(s, lat, {"bias": v})
    for k in range(3):
        np.testing.assert_allclose(hb[k], model.field(s[k], lat, {"bias": v[k]}), atol=1e-14)


# -- domain API ------------------------------------------------------------------
def split(n, parts):
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:]))


def domain_field(model, lat, spins, xsplit, ysplit, halo, g):
    """Field assembled from domains: numpy halo fill, local_field, numpy reverse sum."""
    ln, wd = lat.length, lat.width
    grid = spins.reshape(ln, wd, 3)
    total = np.zeros_like(grid)
    hx, hy = halo
    for xs, xe in split(ln, xsplit):
        for ys, ye in split(wd, ysplit):
            gx = np.arange(xs - hx, xe + hx)
            gy = np.arange(ys - hy, ye + hy)
            okx = (gx >= 0) & (gx < ln)
            if lat.periodic:
                oky = np.ones_like(gy, dtype=bool)
                gy = gy % wd
            else:
                oky = (gy >= 0) & (gy < wd)
            valid = okx[:, None] & oky[None, :]
            loc = np.zeros((len(gx), len(gy), 3))
            ix, iy = np.nonzero(valid)
            loc[ix, iy] = grid[gx[ix], gy[iy]]
            loc[~valid] = 0.0  # garbage in invalid cells must not matter
            out = model.local_field(loc, valid, halo, g).numpy()
            np.add.at(total, (gx[ix], gy[iy]), out[ix, iy])
    return total.reshape(-1, 3)


@PATHS
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize(
    "case",
    [
        ("chain", 17, 1, False, 3, 1, 0),
        ("square", 9, 6, True, 2, 2, 0),
        ("square", 7, 5, False, 3, 2, 1),
        ("triangular", 8, 6, True, 2, 3, 0),
    ],
)
def test_domains_reproduce_single_domain(head, case, path):
    kind, ln, wd, periodic, nxd, nyd, extra = case
    lat = make_lattice(kind, ln, wd, periodic)
    model = make(head, kind=kind, radius=2 if kind == "chain" else 1.5, path=path)
    s = random_spins(lat.n_sites, seed=11)
    g = {"bias": 0.25}
    ref = model.field(s, lat, g)
    hx, hy = model.halo_width
    halo = (hx + extra, (hy + extra) if wd > 1 else 0)
    got = domain_field(model, lat, s, nxd, nyd, halo, g)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_ghost_contributions_need_reverse_sum():
    """Without the reverse sum the E head's owned-block field is wrong (the API is not trivial)."""
    lat = make_lattice("chain", 12)
    model = make("E", globals_=())
    s = random_spins(12, seed=2)
    ref = model.field(s, lat)
    hx = model.halo_width[0]
    loc = np.zeros((6 + 2 * hx, 1, 3))
    valid = np.zeros((6 + 2 * hx, 1), bool)
    loc[hx:, 0] = s[: 6 + hx]
    valid[hx:] = True
    out = model.local_field(loc, valid, (hx, 0)).numpy()[hx : hx + 6, 0]
    assert np.abs(out[-1] - ref[5]).max() > 1e-6


def test_no_owned_cells_is_an_error():
    model = make("E", globals_=())
    with pytest.raises(HpcspinError):
        model.local_field(np.zeros((4, 1, 3)), None, (2, 0))


def test_numpy_wrapper_and_inference_mode():
    model = make("EA", globals_=())
    s = random_spins(9, seed=3).reshape(9, 1, 3)
    ref = model.local_field(s, None, (0, 0))
    got = model.local_field_numpy(s, None, (0, 0))
    assert got.dtype == np.float64 and got.shape == (9, 1, 3)
    np.testing.assert_array_equal(got, ref.numpy())
    with torch.inference_mode():
        inf = model.local_field(torch.as_tensor(s), None, (0, 0))
    np.testing.assert_array_equal(inf.numpy(), got)
