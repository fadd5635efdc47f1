"""Deck parsing and validation: every problem class pinned with its message."""

import pytest

from hpcspin.deck import load_deck, parse_deck
from hpcspin.deck.load import parse_override
from hpcspin.errors import DeckError

MIN = '[run]\ntask = "negf"\n'


def problems_of(text, **kw):
    with pytest.raises(DeckError) as ei:
        parse_deck(text, **kw)
    return ei.value.problems


def test_minimal_deck_gets_section7_defaults():
    cfg = parse_deck(MIN)
    assert cfg.lattice.kind == "chain" and cfg.lattice.length == 60
    assert cfg.electrons.J == 2.0 and cfg.electrons.mu == -1.0
    assert cfg.electrons.temperature == 0.05
    assert cfg.spins.K == 0.1 and cfg.dynamics.alpha == 0.1
    assert cfg.deck_text == MIN


def test_missing_task():
    assert problems_of("[lattice]\nlength = 10\n") == ["[run] task: is required (task to run)"]


def test_unknown_key_suggests_close_match():
    (p,) = problems_of(MIN + "[lattice]\nlenght = 10\n")
    assert p == "[lattice] lenght = 10: unknown key (did you mean 'length'?)"


def test_unknown_section_suggests_close_match():
    (p,) = problems_of(MIN + "[dynamic]\ndt = 0.1\n")
    assert p.startswith("[dynamic] (section): unknown section (did you mean 'dynamics'?")


def test_wrong_type_and_range_and_choice_all_at_once():
    ps = problems_of(
        MIN + '[lattice]\nlength = "long"\nkind = "hex"\n[dynamics]\ndt = -1\nalpha = true\n'
    )
    assert "[lattice] length = 'long': must be an integer" in ps[0] + ps[1]
    assert any(p.startswith("[lattice] kind = 'hex': must be one of 'chain'") for p in ps)
    assert any(p.startswith("[dynamics] dt = -1: must be > 0") for p in ps)
    assert any(p.startswith("[dynamics] alpha = true: must be a number") for p in ps)
    assert len(ps) == 4


def test_list_rules():
    ps = problems_of(MIN + "[spins]\nB = [1, 2]\neasy_axis = [0, 0, 0]\n")
    assert ps[0].startswith("[spins] B = [1, 2]: must be a list of 3 items")
    assert ps[1] == "[spins] easy_axis = [0.0, 0.0, 0.0]: must not be the zero vector"


def test_int_accepted_for_float():
    cfg = parse_deck(MIN + "[electrons]\nJ = 3\n")
    assert cfg.electrons.J == 3.0 and isinstance(cfg.electrons.J, float)


def test_toml_syntax_error_has_line_and_column():
    (p,) = problems_of(MIN + "[lattice\nlength = 3\n")
    assert p.startswith("TOML syntax error") and "line 3" in p and "column" in p


def test_cross_section_chain_width_and_periodic():
    ps = problems_of(MIN + "[lattice]\nwidth = 2\nperiodic = true\n")
    assert ps[0].startswith("[lattice] width = 2: a chain has width 1")
    assert ps[1].startswith("[lattice] periodic = true: needs width >= 3")


def test_process_grid_vs_rank_count():
    text = MIN + "[lattice]\nkind = 'square'\nwidth = 4\n[parallel]\ngrid = [2, 2]\n"
    parse_deck(text, n_ranks=4)
    (p,) = problems_of(text, n_ranks=2)
    assert p.startswith("[parallel] grid = [2, 2]: needs 4 ranks but the job has 2")


def test_lattice_too_small_for_cutoff():
    text = (
        '[run]\ntask = "dynamics"\n[lattice]\nlength = 12\n[model]\nradius = 4\n'
        '[dynamics]\nforces = "ml"\n'
    )
    (p,) = problems_of(text, n_ranks=4, check_files=False)
    assert p.startswith("[lattice] length = 12: too short for 4 ranks along x with a halo of 4")


def test_missing_input_file_named(tmp_path):
    text = '[run]\ntask = "train"\n[train]\ndataset = "nope.h5"\n'
    (p,) = problems_of(text)
    assert p.startswith("[train] dataset = 'nope.h5': file not found (the training data; ")
    assert "relative to the working directory" in p


def test_temperature_needs_heun():
    (p,) = problems_of(MIN + "[dynamics]\ntemperature = 0.1\n")
    assert "needs integrator = 'heun'" in p


def test_overrides_apply_and_are_validated():
    cfg = parse_deck(MIN, overrides={"lattice.length": 30})
    assert cfg.lattice.length == 30
    ps = problems_of(MIN, overrides={"lattice.length": 0, "latice.width": 2})
    assert any(p.startswith("--set latice.width=2: expected section.key") for p in ps)
    assert any(p.startswith("[lattice] length = 0: must be >= 2") for p in ps)


def test_parse_override_values():
    assert parse_override("dynamics.dt=0.1") == ("dynamics.dt", 0.1)
    assert parse_override("output.dir=runs/a") == ("output.dir", "runs/a")
    assert parse_override("parallel.grid=[2,1]") == ("parallel.grid", [2, 1])
    with pytest.raises(DeckError):
        parse_override("dynamics.dt")


def test_file_errors(tmp_path):
    with pytest.raises(DeckError, match="not found"):
        load_deck(str(tmp_path / "missing.toml"))
    with pytest.raises(DeckError, match="is a directory"):
        load_deck(str(tmp_path))
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DeckError, match="not UTF-8"):
        load_deck(str(bad))


def test_config_roundtrips_to_json():
    import json

    cfg = parse_deck(MIN)
    d = json.loads(cfg.to_json())
    assert d["lattice"]["length"] == 60 and d["run"]["task"] == "negf"


def test_ranks_per_solve_rules():
    text = MIN + "[negf]\nranks_per_solve = 2\n"
    (p,) = problems_of(text, n_ranks=4)
    assert p.startswith("[negf] ranks_per_solve = 2: only the petsc solver shares a system")
    text = MIN + '[negf]\nsolver = "petsc"\nranks_per_solve = 2\n'
    parse_deck(text, n_ranks=4)
    (p,) = problems_of(text, n_ranks=3)
    assert p == "[negf] ranks_per_solve = 2: must divide the rank count 3"


def test_ranks_per_config_rules():
    text = '[run]\ntask = "datagen"\n[datagen]\nranks_per_config = 2\n'
    parse_deck(text, n_ranks=4)
    (p,) = problems_of(text, n_ranks=3)
    assert p == "[datagen] ranks_per_config = 2: must divide the rank count 3"
    text += '[negf]\nsolver = "petsc"\nranks_per_solve = 4\n'
    ps = problems_of(text, n_ranks=4)
    assert "[negf] ranks_per_solve = 4: must divide [datagen] ranks_per_config = 2" in ps


def test_fit_one_part_needs_a_model_to_start_from():
    train = '[run]\ntask = "train"\n[model]\nhead = "E+vector"\n'

    def fit_problems(text):
        return [p for p in problems_of(train + text) if "[train] fit" in p]

    (p,) = fit_problems('[train]\nfit = "neq"\n')
    assert "init_model" in p
    (p,) = fit_problems('[train]\nfit = "eq"\ntargets = "total"\ninit_model = "m.pt"\n')
    assert "targets = 'split'" in p
    ok = fit_problems('[train]\nfit = "neq"\ninit_model = "m.pt"\nepochs = 0\n')
    assert ok == []  # the deck fails on epochs alone
