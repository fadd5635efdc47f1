"""What identifies a dynamics run (stored in checkpoints, compared on resume)."""

import os

from hpcspin.deck import parse_deck
from hpcspin.tasks.common import identity_changes, run_identity

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = f'[model]\nfile = "{ROOT}/models/chain_dw_Evector.pt"\n'
BASE = """
[run]
task = "dynamics"
[lattice]
kind = "chain"
length = 40
[dynamics]
forces = "{forces}"
t_end = 10.0
[output]
dir = "runs/x"
"""


def cfg(forces="none", extra=""):
    return parse_deck(BASE.format(forces=forces) + extra)


def test_how_long_where_and_how_many_ranks_are_not_part_of_it():
    a = run_identity(cfg())
    b = run_identity(
        cfg(extra="[parallel]\ngrid = [1]\n")
        .replace("dynamics", t_end=99.0)
        .replace("output", dir="elsewhere", every=3)
    )
    assert a == b and identity_changes(a, b) == []


def test_physics_changes_are_named():
    a = run_identity(cfg())
    b = run_identity(cfg().replace("dynamics", alpha=0.3).replace("electrons", bias=0.2))
    assert identity_changes(a, b) == ["dynamics.alpha: 0.1 -> 0.3", "electrons.bias: 0.0 -> 0.2"]


def test_solver_sections_only_with_their_forces():
    assert "negf" not in run_identity(cfg()) and "model" not in run_identity(cfg())
    negf = run_identity(cfg("negf"))
    assert negf["negf"]["tol"] == 1e-6 and "ranks_per_solve" not in negf["negf"]
    ml = run_identity(cfg("ml", MODEL), model_sha256="abc")
    assert ml["model"]["file_sha256"] == "abc" and "file" not in ml["model"]
    other = run_identity(cfg("ml", MODEL), model_sha256="abd")
    assert identity_changes(ml, other) == ["model.file_sha256: 'abc' -> 'abd'"]


def test_train_neq_kinds_selects_families_or_fails_clearly():
    import numpy as np
    import pytest

    from hpcspin.errors import HpcspinError
    from hpcspin.tasks.train import _neq_weight

    ds = f"{ROOT}/models/chain_dw_Evector.pt"  # any existing file: only its name is checked
    deck = (
        f'[run]\ntask = "train"\n[lattice]\nkind = "chain"\nlength = 8\n[train]\ndataset = "{ds}"\n'
    )
    data = {"kind": np.array([0, 1, 2, 3, 0]), "kind_names": ["wall", "wall_noisy", "t", "r"]}
    c = parse_deck(deck + 'neq_kinds = ["wall", "wall_noisy"]\n')
    assert list(_neq_weight(c, data, True)) == [1, 1, 0, 0, 1]
    assert _neq_weight(parse_deck(deck), data, True) is None
    with pytest.raises(HpcspinError, match=r"\['walls'\] not among"):
        _neq_weight(parse_deck(deck + 'neq_kinds = ["walls"]\n'), data, True)
    with pytest.raises(HpcspinError, match="needs targets = 'split'"):
        _neq_weight(c, data, False)
    data["spins"] = np.zeros((5, 8, 3))
    scaled = parse_deck(deck + 'neq_kinds = ["wall", "wall_noisy"]\nneq_loss_weight = 10.0\n')
    assert list(_neq_weight(scaled, data, True)) == [10, 10, 0, 0, 10]
    assert list(_neq_weight(parse_deck(deck + "neq_loss_weight = 4.0\n"), data, True)) == [4] * 5
    with pytest.raises(HpcspinError, match="neq_loss_weight = 4 needs targets"):
        _neq_weight(parse_deck(deck + "neq_loss_weight = 4.0\n"), data, False)
    # a weight per family, in the order of neq_kinds, times the scale
    kw = 'neq_kinds = ["wall_noisy", "wall"]\nneq_kind_weights = [1.0, 20.0]\n'
    np.testing.assert_allclose(_neq_weight(parse_deck(deck + kw), data, True), [20, 1, 0, 0, 20])
    kw2 = parse_deck(deck + kw + "neq_loss_weight = 0.5\n")
    np.testing.assert_allclose(_neq_weight(kw2, data, True), [10, 0.5, 0, 0, 10])
    with pytest.raises(HpcspinError, match="neq_kind_weights"):
        parse_deck(deck + 'neq_kinds = ["wall"]\nneq_kind_weights = [1.0, 2.0]\n')
    with pytest.raises(HpcspinError, match="one positive weight"):
        parse_deck(deck + 'neq_kinds = ["wall"]\nneq_kind_weights = [0.0]\n')
    # bias_balance: (V_max / V)^2, on top of the families and the scale
    data["bias"] = np.array([0.5, -0.25, 0.5, 0.1, -0.5])
    bal = parse_deck(deck + 'neq_kinds = ["wall", "wall_noisy"]\nbias_balance = true\n')
    np.testing.assert_allclose(_neq_weight(bal, data, True), [1, 4, 0, 0, 1])
    bal2 = parse_deck(deck + "bias_balance = true\nneq_loss_weight = 2.0\n")
    np.testing.assert_allclose(_neq_weight(bal2, data, True), [2, 8, 2, 50, 2])
    with pytest.raises(HpcspinError, match="bias_balance = true needs targets"):
        _neq_weight(parse_deck(deck + "bias_balance = true\n"), data, False)


def test_validation_runs_are_queued_longest_first_and_claimed_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from hpcspin.tasks.validate import claim, run_order

    biases = (-0.5, 0.5, 0.0)
    jobs = [("m", "m.pt", v) for v in biases] + [("negf", "negf", v) for v in biases]
    # the two NEGF runs at V != 0 (the costly ones) first, then NEGF at V = 0, then ML
    assert run_order(jobs) == [3, 4, 5, 0, 1, 2]
    # every run is taken exactly once however many takers race for it
    with ThreadPoolExecutor(4) as pool:
        taken = list(pool.map(lambda k: [i for i in range(50) if claim(tmp_path, i)], range(4)))
    assert sorted(i for t in taken for i in t) == list(range(50))
