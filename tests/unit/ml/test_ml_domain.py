"""Training domain: recorded in the model file, compared with decks; held-out quality."""

import json

import numpy as np
import pytest

from hpcspin.deck import parse_deck
from hpcspin.deck.schema import ModelSection
from hpcspin.errors import ModelMismatchError
from hpcspin.hamiltonian.textures import domain_wall
from hpcspin.lattice import make_lattice
from hpcspin.ml import ModelSpec, build_model
from hpcspin.ml.describe import main as inspect_main
from hpcspin.ml.domain import PHYSICAL, bond_products, check_deck, deck_wall_width, training_domain
from hpcspin.ml.modelfile import load_model, read_model_file, save_model
from hpcspin.ml.quality import Thresholds, held_out_quality, table, verdict

LAT = make_lattice("chain", 16)
ELECTRONS = {"t": 1.0, "J": 2.0, "mu": -1.0, "temperature": 0.05, "lead": "tight-binding"}
ELECTRONS |= {"t_lead": 1.0, "t_contact": 1.0, "gamma": 1.0, "onsite": 0.0, "bias": 0.0}


def dataset(n=6):
    widths = np.linspace(1.5, 3.5, n)
    spins = np.stack([domain_wall(LAT, 7.5, w) for w in widths])
    return {
        "spins": spins,
        "field": np.zeros_like(spins),
        "bias": np.tile([-0.5, 0.5], n // 2),
        "mu": np.full(n, -1.0),
        "wall_width": widths,
        "kind": np.zeros(n, int),
        "kind_names": ["wall", "wall_noisy"],
        "electrons": dict(ELECTRONS),
    }


@pytest.fixture
def model_file(tmp_path):
    model = build_model(ModelSpec(head="E+vector", kind="chain", radius=2, hidden=(4,)), seed=1)
    path = tmp_path / "m.pt"
    save_model(path, model, LAT, domain=training_domain(dataset(), LAT))
    return str(path)


def deck(extra="", electrons="", model="", file="m.pt"):
    text = f"""
[run]
task = "dynamics"
[lattice]
kind = "chain"
length = 16
[electrons]
J = 2.0
mu = -1.0
{electrons}
[model]
file = "{file}"
{model}
[dynamics]
forces = "ml"
{extra}
"""
    return parse_deck(text, check_files=False)


def test_domain_records_data_ranges():
    d = training_domain(dataset(), LAT)
    assert d["bias"]["min"] == -0.5 and d["bias"]["max"] == 0.5
    assert d["wall_width"]["min"] == 1.5 and d["wall_width"]["max"] == 3.5
    assert d["electrons"]["J"] == 2.0 and "bias" not in d["electrons"]
    assert d["n_configs"] == {"total": 6, "wall": 6}
    # the narrowest wall has the most negative nearest-neighbour product
    prod = bond_products(dataset()["spins"], LAT).min(axis=1)
    assert d["bond_product"]["min"] == prod.min() == prod[0]
    json.dumps(d)  # plain data


def test_domain_round_trip_and_same_deck_passes(model_file):
    meta = load_model(model_file, lattice=LAT).meta
    assert meta["domain"] == json.loads(json.dumps(training_domain(dataset(), LAT)))
    assert check_deck(meta, deck(), model_file) == []


@pytest.mark.parametrize(
    "key,value", [("J", 3.0), ("mu", 0.7), ("t", 1.2), ("temperature", 0.1), ("t_lead", 2.0)]
)
def test_changed_parameter_refused_naming_both_values(model_file, key, value):
    meta = read_model_file(model_file)
    cfg = deck().replace("electrons", **{key: value})
    with pytest.raises(ModelMismatchError) as exc:
        check_deck(meta, cfg, model_file)
    msg = str(exc.value)
    assert f"[electrons] {key} = {value}" in msg and "trained" in msg and "accept_domain" in msg
    accepted = cfg.replace("model", accept_domain=(key,))
    assert check_deck(meta, accepted, model_file) == []  # a warning, no refusal


def test_wide_band_gamma_ignored_for_tight_binding(model_file):
    meta = read_model_file(model_file)
    assert check_deck(meta, deck(electrons="gamma = 5.0"), model_file) == []


def test_bias_outside_range_warns(model_file):
    meta = read_model_file(model_file)
    warn = check_deck(meta, deck(electrons="bias = 1.0"), model_file)
    assert len(warn) == 1 and "bias 1" in warn[0] and "[-0.5, 0.5]" in warn[0]
    assert check_deck(meta, deck(electrons="bias = 0.3"), model_file) == []
    warn = check_deck(meta, deck(), model_file, biases=[0.1, -0.75])
    assert len(warn) == 1 and "-0.75" in warn[0]


def test_narrow_initial_wall_warns(model_file):
    meta = read_model_file(model_file)
    cfg = deck(extra="[spins]\nK = 0.3\ninitial = 'wall'")
    assert deck_wall_width(cfg) == pytest.approx(np.sqrt(1 / 0.6))
    warn = check_deck(meta, cfg, model_file, wall_width=deck_wall_width(cfg))
    assert len(warn) == 1 and "wall width 1.29" in warn[0]


@pytest.mark.parametrize("line,match", [("head = 'EA'", "head"), ("radius = 3", "radius")])
def test_deck_head_radius_must_match_file(model_file, line, match):
    meta = read_model_file(model_file)
    with pytest.raises(ModelMismatchError, match=f"\\[model\\] {match} = .* model file"):
        check_deck(meta, deck(model=line, file=model_file), model_file)
    same = {"head": "head = 'E+vector'", "radius": "radius = 2"}[match]
    assert check_deck(meta, deck(model=same, file=model_file), model_file) == []
    # validate's other models: the deck's head/radius describe its own [model] file
    assert check_deck(meta, deck(model=line, file="other.pt"), model_file) == []
    assert check_deck(meta, deck(model=line, file=model_file), model_file, check_spec=False) == []


def test_accept_domain_choices_are_the_physical_keys():
    import dataclasses

    f = next(x for x in dataclasses.fields(ModelSection) if x.name == "accept_domain")
    assert tuple(f.metadata["choices"]) == PHYSICAL + ("lattice",)


STRIP = make_lattice("square", 12, 3)


def strip_deck(lattice_lines, model=""):
    text = f"""
[run]
task = "dynamics"
[lattice]
kind = "square"
{lattice_lines}
[electrons]
J = 2.0
mu = -1.0
[model]
file = "s.pt"
{model}
[dynamics]
forces = "ml"
"""
    return parse_deck(text, check_files=False)


@pytest.mark.parametrize(
    "lines,change",
    [
        ("length = 16\nwidth = 3", "length 12 -> 16"),
        ("length = 12\nwidth = 4", "width 3 -> 4"),
        ("length = 12\nwidth = 3\nperiodic = true", "periodic False -> True"),
    ],
)
def test_strip_model_refused_on_another_strip(tmp_path, lines, change):
    spec = ModelSpec(head="E+vector", kind="square", radius=1.5, hidden=(4,))
    path = tmp_path / "s.pt"
    data = dataset() | {"spins": np.stack([domain_wall(STRIP, 5.5, w) for w in range(1, 7)])}
    save_model(path, build_model(spec, seed=1), STRIP, domain=training_domain(data, STRIP))
    meta = read_model_file(path)
    assert check_deck(meta, strip_deck("length = 12\nwidth = 3"), str(path)) == []
    with pytest.raises(ModelMismatchError) as exc:
        check_deck(meta, strip_deck(lines), str(path))
    assert change in str(exc.value) and "accept_domain" in str(exc.value)
    accepted = strip_deck(lines, "accept_domain = ['lattice']")
    assert check_deck(meta, accepted, str(path)) == []  # a warning instead


def test_chain_model_runs_on_any_length(model_file):
    meta = read_model_file(model_file)
    assert check_deck(meta, deck().replace("lattice", length=64), model_file) == []


def test_quality_verdict_and_table():
    data = dataset()
    rng = np.random.default_rng(0)
    data["field"] = rng.normal(size=data["spins"].shape)
    data["field_eq"] = data["field"] * 0.5
    model = build_model(ModelSpec(head="E+vector", kind="chain", radius=2, hidden=(4,)), seed=1)
    q = held_out_quality(model, LAT, data, [0, 3, 5])
    assert q["n_held_out"] == 3 and q["n_walls"] == 3
    assert q["eq_r2"] < 0.5  # an untrained model on random targets
    failed = verdict(q, Thresholds())
    assert any("equilibrium" in f and "min_eq_r2 = 0.95" in f for f in failed)
    assert verdict({"eq_r2": 0.99, "neq_r2": 0.9, "neq_torque_err": 0.05}, Thresholds()) == []
    assert "neq_torque_err" in table(q, Thresholds())


def test_inspect_command(model_file, capsys, tmp_path):
    assert inspect_main([model_file]) == 0
    out = capsys.readouterr().out
    assert "checksum: verified" in out and "wall width" in out and "J = 2.0" in out
    assert inspect_main([model_file, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["domain"]["bias"]["max"] == 0.5
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert inspect_main([str(tmp_path / "bad.pt")]) == 2
    assert "bad.pt" in capsys.readouterr().err


def half_metal_cfg(mu, width=1):
    text = f"""
[run]
task = "validate"
[lattice]
kind = "{"chain" if width == 1 else "square"}"
length = 16
width = {width}
[electrons]
J = 2.0
mu = {mu}
"""
    return parse_deck(text, check_files=False)


def test_half_metal_closed_form_only_where_it_applies():
    from hpcspin.tasks.validate_fields import half_metal_problem

    # t = 1, J = 2: majority band [-4, 0], minority band [0, 4]
    assert half_metal_problem(half_metal_cfg(-1.0), 0.5) is None
    assert half_metal_problem(half_metal_cfg(-1.0), -1.9) is None
    why = half_metal_problem(half_metal_cfg(-1.0), 2.4)  # mu_L = 0.2
    assert "mu_L = 0.2" in why and "minority band [0, 4]" in why
    why = half_metal_problem(half_metal_cfg(-1.0), -2.4)  # mu_R = 0.2
    assert "mu_R = 0.2" in why
    assert "outside the majority band" in half_metal_problem(half_metal_cfg(-4.5), 0.1)
    assert "strip" in half_metal_problem(half_metal_cfg(-1.0, width=2), 0.1)


def test_velocity_markdown_says_why_no_closed_form(tmp_path):
    from hpcspin.tasks.validate_fields import _markdown

    rows = [
        {"bias": 0.5, "negf_velocity": 0.1, "closed_form_velocity": 0.099},
        {"bias": 2.4, "negf_velocity": 0.3, "closed_form_velocity": None},
    ]
    rows[1]["closed_form_note"] = "mu_L = 0.2 lies in the minority band [0, 4]"
    _markdown({"width": 1, "rows": rows}, ["negf"], tmp_path / "v.md")
    text = (tmp_path / "v.md").read_text()
    assert "+0.09900" in text and "V = +2.40: mu_L = 0.2 lies in the minority band" in text
