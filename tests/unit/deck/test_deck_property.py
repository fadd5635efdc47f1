"""Property test: mutated decks give a config or a DeckError, never anything else."""

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcspin.deck import parse_deck
from hpcspin.deck.schema import SECTIONS
from hpcspin.errors import DeckError

BASE = """
[run]
task = "dynamics"
seed = 7
[lattice]
kind = "chain"
length = 40
[electrons]
J = 2.0
mu = -1.0
bias = 0.5
[spins]
initial = "wall"
B = [0.0, 0.0, 0.0]
[dynamics]
forces = "none"
dt = 0.1
[output]
every = 5
[parallel]
grid = [2, 1]
"""

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.text(max_size=3)), max_size=4),
)
keys = st.sampled_from(
    sorted({(s, f) for s, cls in SECTIONS.items() for f in cls.__dataclass_fields__})
)


def to_toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, list):
        return "[" + ", ".join(to_toml(x) for x in v) + "]"
    return str(v)


mutation = st.one_of(
    st.tuples(st.just("set"), keys, values),
    st.tuples(st.just("drop"), keys, st.none()),
    st.tuples(
        st.just("rename"),
        keys,
        st.text(min_size=1, max_size=6, alphabet="abcdefghijklmnopqrstuvwxyz_"),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, max_size=5), st.integers(1, 8))
def test_mutated_decks_never_crash(muts, n_ranks):
    data = tomllib.loads(BASE)
    for op, (sec, key), arg in muts:
        table = data.setdefault(sec, {})
        if op == "set" and arg is not None:
            table[key] = arg
        elif op == "drop":
            table.pop(key, None)
        elif op == "rename" and key in table:
            table[arg] = table.pop(key)
    text = "\n".join(
        f"[{s}]\n" + "".join(f"{k} = {to_toml(v)}\n" for k, v in t.items()) for s, t in data.items()
    )
    try:
        cfg = parse_deck(text, n_ranks=n_ranks, check_files=False)
    except DeckError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert cfg.run.task in ("negf", "datagen", "train", "dynamics", "validate")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    try:
        parse_deck(text, check_files=False)
    except DeckError:
        pass
