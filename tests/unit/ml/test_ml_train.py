"""Training core: each head recovers its own kind of synthetic field; checkpoints resume.

Synthetic targets, written independently of hpcspin.ml (numpy, open chain):
E = sum_i -J1 S_i.S_{i+1} - J2 S_i.S_{i+2};  A = sum_i k S_i.(S_{i-1} x S_{i+1});
vector field c S_i x S_{i+1}. Spins beyond the chain ends are zero (no bonds).
"""

import numpy as np
import pytest
import torch

from hpcspin.errors import HpcspinError
from hpcspin.lattice import make_lattice
from hpcspin.ml.metrics import net_torque, transverse_r2, transverse_rmse
from hpcspin.ml.model import ModelSpec, build_model
from hpcspin.ml.modelfile import load_model
from hpcspin.ml.train import TrainConfig, data_fingerprint, split_configs, train_model


def rand_spins(n_cfg, n, seed):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n_cfg, n, 3))
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def sh(s, d):
    """S_{i+d} with zero spins beyond the chain ends."""
    out = np.zeros_like(s)
    n = s.shape[-2]
    if d >= 0:
        out[..., : n - d, :] = s[..., d:, :]
    else:
        out[..., -d:, :] = s[..., : n + d, :]
    return out


def field_E(s, j1=1.0, j2=0.3):
    """-dE/dS_i."""
    return j1 * (sh(s, -1) + sh(s, 1)) + j2 * (sh(s, -2) + sh(s, 2))


def field_A(s, k=0.5):
    """S_i x dA/dS_i: the three triples that contain S_i."""
    grad = (
        np.cross(sh(s, -1), sh(s, 1))
        + np.cross(sh(s, 2), sh(s, 1))
        + np.cross(sh(s, -1), sh(s, -2))
    )
    return np.cross(s, k * grad)


def field_vec(s, c=0.4):
    return c * np.cross(s, sh(s, 1))


LAT = make_lattice("chain", 16)
SPINS = rand_spins(48, 16, seed=0)


def fit(head, fields, epochs=150, **kw):
    cfg = TrainConfig(
        epochs=epochs,
        lr=1e-2,
        batch_size=12,
        block_size=6,
        val_fraction=0.25,
        patience=None,
        schedule="cosine",
        min_lr=1e-4,
    )
    spec = ModelSpec(head=head, radius=2, hidden=(16, 16), globals=kw.pop("globals_", ()))
    return train_model(SPINS, fields, LAT, spec, cfg, **kw)


def test_E_head_recovers_conservative_field():
    res = fit("E", field_E(SPINS))
    assert res.metrics["val_r2"] >= 0.999
    assert res.metrics["n_val"] == 12 and res.metrics["n_train"] == 36


def test_E_head_cannot_fit_nonconservative_field():
    res = fit("E", field_A(SPINS), epochs=30)
    assert res.metrics["val_r2"] < 0.1


def test_EA_head_recovers_A_field():
    res = fit("EA", field_A(SPINS))
    assert res.metrics["val_r2"] >= 0.999


def test_EA_on_conservative_field_keeps_A_small():
    h = field_E(SPINS)
    res = fit("EA", h)
    assert res.metrics["val_r2"] >= 0.999
    parts = res.model.field(SPINS, LAT, parts=True)
    ratio = transverse_rmse(parts["neq"], 0 * h, SPINS) / transverse_rmse(h, 0 * h, SPINS)
    assert ratio < 0.05


def test_vector_head_separate_targets():
    """E+vector with H(0) given: E fits H(0), the vector head fits H(V) - H(0)."""
    h0 = field_E(SPINS)
    h = h0 + field_vec(SPINS)
    res = fit("E+vector", h, fields_eq=h0)
    m = res.metrics
    assert m["val_r2"] >= 0.999
    assert m["val_eq_r2"] >= 0.999 and m["val_neq_r2"] >= 0.999
    assert m["val_neq_torque_err"] < 0.05


def test_neq_weight_leaves_excluded_configurations_to_the_E_head():
    """Configurations with neq weight 0 only train E: garbage in their H(V) - H(0)
    changes nothing, and the vector head still learns the others' field."""
    h0 = field_E(SPINS)
    h = h0 + field_vec(SPINS)
    w = np.ones(len(SPINS))
    w[::3] = 0.0
    garbage = h.copy()
    garbage[::3] += np.random.default_rng(5).normal(size=garbage[::3].shape)
    a = fit("E+vector", h, fields_eq=h0, neq_weight=w, epochs=60)
    b = fit("E+vector", garbage, fields_eq=h0, neq_weight=w, epochs=60)
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)
    assert fit("E+vector", h, fields_eq=h0, neq_weight=w).metrics["val_neq_r2"] >= 0.999
    # without the weights the garbage spoils the nonequilibrium fit
    c = fit("E+vector", garbage, fields_eq=h0, epochs=60)
    assert not all(
        torch.equal(pa, pc) for pa, pc in zip(a.model.parameters(), c.model.parameters())
    )
    with pytest.raises(HpcspinError, match="neq_weight"):
        fit("E+vector", h, fields_eq=h0, neq_weight=w[:-1])
    with pytest.raises(HpcspinError, match="separate targets"):
        fit("E+vector", h, neq_weight=w)


def test_bias_as_global_input(tmp_path):
    bias = np.linspace(-0.5, 0.5, len(SPINS))
    np.random.default_rng(1).shuffle(bias)
    h = bias[:, None, None] * field_vec(SPINS, c=1.0)
    res = fit("E+vector", h, globals_=("bias",), bias=bias)
    assert res.metrics["val_r2"] >= 0.99
    res.save(tmp_path / "m.pt")
    m = load_model(tmp_path / "m.pt", lattice=LAT, expect_head="E+vector")
    assert m.meta["fingerprint"] == data_fingerprint(SPINS, h, bias, None, None)
    assert m.meta["metrics"]["val_r2"] == res.metrics["val_r2"]


def test_metrics_closed_forms():
    s = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    h = np.array([[1.0, 0.0, 5.0], [0.0, 2.0, 0.0]])
    assert transverse_rmse(h, 0 * h, s) == pytest.approx(np.sqrt(5.0 / 6.0))
    np.testing.assert_allclose(net_torque(s, h), [0.0, 1.0, 2.0])
    assert transverse_r2(h, h, s) == 1.0


def test_resume_reproduces_uninterrupted_run(tmp_path):
    h = field_E(SPINS[:12])
    spec = ModelSpec(head="EA", radius=2, hidden=(8,))
    base = dict(
        lr=1e-2,
        batch_size=4,
        block_size=2,
        val_fraction=0.25,
        schedule="plateau",
        lr_patience=1,
        patience=None,
    )
    full = train_model(SPINS[:12], h, LAT, spec, TrainConfig(epochs=6, **base))
    ck = str(tmp_path / "train.ckpt")
    train_model(SPINS[:12], h, LAT, spec, TrainConfig(epochs=3, checkpoint=ck, **base))
    res = train_model(
        SPINS[:12], h, LAT, spec, TrainConfig(epochs=6, checkpoint=ck, checkpoint_every=2, **base)
    )
    assert [e["epoch"] for e in res.history] == list(range(1, 7))
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(res.model.state_dict()[k], v, rtol=0, atol=0)
    # a checkpoint of other data, another model or other settings is refused, by name
    with pytest.raises(HpcspinError, match="training data: fingerprint"):
        train_model(SPINS[:12], 2 * h, LAT, spec, TrainConfig(epochs=8, checkpoint=ck, **base))
    wider = ModelSpec(head=spec.head, radius=spec.radius, hidden=(12,))
    with pytest.raises(HpcspinError, match=r"model hidden: \[8\] -> \[12\]") as info:
        train_model(SPINS[:12], h, LAT, wider, TrainConfig(epochs=8, checkpoint=ck, **base))
    assert getattr(info.value, "collective", False)  # every rank raises it: exit 2, no abort
    with pytest.raises(HpcspinError, match="lr: "):
        train_model(
            SPINS[:12], h, LAT, spec, TrainConfig(epochs=8, checkpoint=ck, **{**base, "lr": 0.5})
        )
    # ... or replaced by a fresh start on request, which equals a run without checkpoint
    fresh = train_model(
        SPINS[:12],
        h,
        LAT,
        wider,
        TrainConfig(epochs=2, checkpoint=ck, fresh_on_mismatch=True, **base),
    )
    plain = train_model(SPINS[:12], h, LAT, wider, TrainConfig(epochs=2, **base))
    for k, v in plain.model.state_dict().items():
        torch.testing.assert_close(fresh.model.state_dict()[k], v, rtol=0, atol=0)


def test_split_and_fingerprint():
    tr, va = split_configs(20, 0.2, seed=3)
    assert len(va) == 4 and len(tr) == 16 and not set(tr) & set(va)
    assert data_fingerprint(SPINS) != data_fingerprint(SPINS[:, ::-1])
    assert data_fingerprint(SPINS, None) == data_fingerprint(SPINS.copy(), None)


def test_bad_inputs():
    with pytest.raises(HpcspinError):
        TrainConfig(schedule="step")
    with pytest.raises(HpcspinError, match="bias"):
        fit("E", field_E(SPINS), epochs=1, globals_=("bias",))
    with pytest.raises(HpcspinError, match="n_cfg"):
        train_model(SPINS, SPINS[:, :3], LAT, ModelSpec(head="E", radius=2), TrainConfig())


def test_early_stopping_and_restores_best():
    h = field_E(SPINS[:8])
    cfg = TrainConfig(
        epochs=50, lr=0.0, batch_size=4, val_fraction=0.25, patience=2, schedule="none"
    )
    res = train_model(SPINS[:8], h, LAT, ModelSpec(head="E", radius=2, hidden=(4,)), cfg)
    assert res.metrics["epochs_run"] == 3  # best at epoch 1, no improvement in 2 more
    assert res.metrics["best_val_loss"] == res.history[0]["val_loss"]


def test_float32_model_matches_float64():
    lat = make_lattice("chain", 12)
    s = SPINS[0, :12]
    m64 = build_model(ModelSpec(head="E+vector", radius=2, hidden=(8,)), seed=4)
    m32 = build_model(ModelSpec(head="E+vector", radius=2, hidden=(8,), dtype="float32"))
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    h64, h32 = m64.field(s, lat), m32.field(s, lat)
    assert np.abs(h64).max() > 1e-2
    np.testing.assert_allclose(h32, h64, atol=1e-5)


def test_interrupt_checkpoints_then_resume_finishes(tmp_path):
    """A stop request after an epoch writes the checkpoint and raises RunInterrupted."""
    from hpcspin.errors import RunInterrupted
    from hpcspin.lattice import make_lattice
    from hpcspin.ml import ModelSpec
    from hpcspin.ml.train import TrainConfig, train_model

    rng = np.random.default_rng(3)
    s = rng.normal(size=(8, 10, 3))
    s /= np.linalg.norm(s, axis=-1, keepdims=True)
    h = np.roll(s, 1, axis=1) + np.roll(s, -1, axis=1)
    lat = make_lattice("chain", 10)
    spec = ModelSpec(head="E", radius=1, hidden=(4,))
    ck = str(tmp_path / "t.ckpt")
    calls = []
    cfg = TrainConfig(
        epochs=6,
        batch_size=4,
        val_fraction=0.25,
        checkpoint=ck,
        patience=None,
        interrupt=lambda: calls.append(1) or len(calls) >= 2,
    )
    with pytest.raises(RunInterrupted, match="after epoch 2"):
        train_model(s, h, lat, spec, cfg)
    res = train_model(
        s,
        h,
        lat,
        spec,
        TrainConfig(epochs=6, batch_size=4, val_fraction=0.25, checkpoint=ck, patience=None),
    )
    assert res.metrics["epochs_run"] == 6
    ref = train_model(
        s, h, lat, spec, TrainConfig(epochs=6, batch_size=4, val_fraction=0.25, patience=None)
    )
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, res.model.state_dict()[k]), k


def test_torque_weight_adds_the_net_torque_error():
    """The loss gains w * sum_c |sum_i S_i x (H^neq_pred - H^neq)_i|^2 / norm (numpy)."""
    from hpcspin.ml.train import _block_loss, _Data

    h0 = field_E(SPINS)
    h = h0 + field_vec(SPINS)
    spec = ModelSpec(head="E+vector", radius=2, hidden=(8,))
    model = build_model(spec, seed=3)
    data = _Data(model, LAT, SPINS, h, None, None, h0, True, None)
    idx = np.arange(5)
    norm = 3.0 * len(idx) * LAT.n_sites
    with torch.no_grad():
        plain = float(_block_loss(model, data, idx, norm, False))
        data.torque_weight = 2.5
        weighted = float(_block_loss(model, data, idx, norm, False))
    pred = model.field(SPINS[idx], LAT, parts=True)["neq"]
    dt = net_torque(SPINS[idx], pred - (h - h0)[idx])
    assert weighted - plain == pytest.approx(2.5 * (dt**2).sum() / norm, rel=1e-10)
    assert weighted > plain
    with pytest.raises(HpcspinError, match="torque_weight"):
        TrainConfig(torque_weight=-1.0)


def _two_part_start(seed=3):
    """An E+vector model whose E head already fits field_E, the vector head random."""
    h0 = field_E(SPINS)
    spec = ModelSpec(head="E+vector", radius=2, hidden=(16, 16))
    cfg = TrainConfig(epochs=40, lr=1e-2, batch_size=12, val_fraction=0.25, patience=None)
    start = train_model(SPINS, h0 + 0.0 * SPINS, LAT, spec, cfg, fields_eq=h0).model
    return spec, h0, h0 + field_vec(SPINS), start


@pytest.mark.parametrize("part", ["neq", "eq"])
def test_fit_one_part_keeps_the_other(part):
    """fit = 'neq' moves the vector head alone (the E head stays bitwise), fits the
    current-induced field, and trains on the configurations of nonzero neq weight only;
    fit = 'eq' the converse."""
    spec, h0, h, start = _two_part_start()
    init = {k: v.clone() for k, v in start.state_dict().items()}
    w = np.ones(len(SPINS))
    w[:10] = 0.0  # these configurations carry no current-induced loss
    cfg = TrainConfig(
        epochs=60,
        lr=1e-2,
        batch_size=12,
        val_fraction=0.25,
        patience=None,
        schedule="cosine",
        init_state=init,
        fit=part,
    )
    res = train_model(SPINS, h, LAT, spec, cfg, fields_eq=h0, neq_weight=w)
    fixed, moved = ("energy_net", "vec_net") if part == "neq" else ("vec_net", "energy_net")
    state = res.model.state_dict()
    for k, v in init.items():
        if k.startswith(fixed):
            assert torch.equal(state[k], v), k
    assert any(not torch.equal(state[k], v) for k, v in init.items() if k.startswith(moved))
    assert [t.name for t in res.model.terms] == ["eps", "vec"]  # restored for the saved model
    before = start.field(SPINS, LAT, parts=True)
    after = res.model.field(SPINS, LAT, parts=True)
    if part == "neq":
        np.testing.assert_array_equal(after["eq"], before["eq"])
        assert res.metrics["val_neq_r2"] >= 0.99
        assert res.metrics["n_train"] == 36  # metrics of every configuration
    else:
        np.testing.assert_array_equal(after["neq"], before["neq"])


def test_fit_one_part_needs_a_start_and_split_targets():
    spec, h0, h, start = _two_part_start()
    with pytest.raises(HpcspinError, match="init_state"):
        train_model(SPINS, h, LAT, spec, TrainConfig(epochs=1, fit="neq"), fields_eq=h0)
    init = start.state_dict()
    with pytest.raises(HpcspinError, match="split targets"):
        train_model(SPINS, h, LAT, spec, TrainConfig(epochs=1, fit="neq", init_state=init))
    with pytest.raises(HpcspinError, match="fit must be"):
        TrainConfig(fit="vector")


def test_a_checkpoint_of_the_joint_fit_is_refused_for_one_part(tmp_path):
    """A checkpoint written before the key existed counts as fit = 'both'."""
    spec, h0, h, start = _two_part_start()
    ck = str(tmp_path / "t.ckpt")
    base = dict(batch_size=12, val_fraction=0.25, patience=None, checkpoint=ck)
    train_model(SPINS, h, LAT, spec, TrainConfig(epochs=1, **base), fields_eq=h0)
    state = torch.load(ck, weights_only=True)
    del state["config"]["fit"]  # as written by a version without the key
    torch.save(state, ck)
    cfg = TrainConfig(epochs=2, fit="neq", init_state=start.state_dict(), **base)
    with pytest.raises(HpcspinError, match="fit: 'both' -> 'neq'"):
        train_model(SPINS, h, LAT, spec, cfg, fields_eq=h0)
