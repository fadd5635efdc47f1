"""The Python API: hpcspin.run on decks given as dicts, text and paths; docs/python.md runs."""

from __future__ import annotations

import os
import re
import sys

import pytest

import hpcspin
from hpcspin.api import deck_text
from hpcspin.deck.load import parse_deck
from hpcspin.errors import DeckError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh directory that sees the repository's decks and models."""
    for name in ("input_decks", "models"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_deck_text_of_a_dict_parses_back():
    sections = {
        "run": {"task": "dynamics", "name": 'a "quoted" name'},
        "spins": {"B": [0.0, 0.0, 0.01], "initial": "wall"},
        "dynamics": {"relax": False, "dt": 0.1, "t_end": 2},
    }
    cfg = parse_deck(deck_text(sections), "dict", check_files=False)
    assert cfg.run.name == 'a "quoted" name'
    assert cfg.spins.B == (0.0, 0.0, 0.01) and cfg.dynamics.relax is False
    assert cfg.dynamics.t_end == 2.0


def test_run_dict_text_and_path_agree(in_tmp):
    deck = {
        "run": {"task": "negf"},
        "lattice": {"length": 12},
        "electrons": {"bias": 0.5},
        "spins": {"wall_width": 2.0},
        "output": {"dir": "a"},
    }
    a = hpcspin.run(deck)
    assert a.task == "negf" and a.output_dir == str(in_tmp / "a")
    assert set(a.files) == {"negf", "summary"} and a.summary["current"] > 0
    assert a.threads >= 1
    text = deck_text({**deck, "output": {"dir": "b"}})
    b = hpcspin.run(text)
    (in_tmp / "c.toml").write_text(text)
    c = hpcspin.run("c.toml", overrides={"output.dir": "c"})
    assert a.summary["current"] == b.summary["current"] == c.summary["current"]


def test_bad_deck_raises_every_problem(in_tmp):
    with pytest.raises(DeckError) as err:
        hpcspin.run({"run": {"task": "negf"}, "lattice": {"length": 0, "kindd": "chain"}})
    msg = str(err.value)
    assert "[lattice] length = 0" in msg and "[lattice] kindd" in msg


def test_docs_python_example_runs(in_tmp, capsys):
    with open(os.path.join(ROOT, "docs", "python.md")) as fh:
        blocks = re.findall(r"```python\n(.*?)```", fh.read(), re.S)
    assert len(blocks) == 3
    scope: dict = {}
    for code in blocks:
        exec(compile(code, "docs/python.md", "exec"), scope)  # noqa: S102
    out = capsys.readouterr().out
    assert "frames; the wall moved" in out
    # the ML wall moves forward at V > 0, at a speed near the closed form
    assert scope["x"][-1] > scope["x"][0]
    assert 0.5 < scope["v_ml"] / scope["v_closed"] < 1.5


def test_threads_from_the_ranks_on_the_node(monkeypatch):
    from types import SimpleNamespace

    from hpcspin.api import set_threads

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        n = set_threads(SimpleNamespace(local_size=2))
        assert n == max(1, (os.cpu_count() or 1) // 2)
        assert os.environ["OMP_NUM_THREADS"] == str(n)
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert set_threads(SimpleNamespace(local_size=1)) == 3
        if torch:
            assert torch.get_num_threads() == 3
    finally:  # later tests in this process keep their thread count
        if torch:
            torch.set_num_threads(before)
