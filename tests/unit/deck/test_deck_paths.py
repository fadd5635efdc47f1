"""Messages about missing files say what a relative path is relative to."""

from __future__ import annotations

import os

import pytest

from hpcspin.deck.load import load_deck, parse_deck
from hpcspin.errors import DeckError

DECK = '[run]\ntask = "dynamics"\n[model]\nfile = "{}"\n'


def test_relative_model_path_names_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeckError) as err:
        parse_deck(DECK.format("models/m.pt"), "d.toml")
    msg = str(err.value)
    assert "[model] file = 'models/m.pt': file not found" in msg
    assert f"relative to the working directory {tmp_path}" in msg
    assert os.path.join(str(tmp_path), "models", "m.pt") in msg


def test_absolute_path_has_no_note(tmp_path):
    with pytest.raises(DeckError) as err:
        parse_deck(DECK.format(tmp_path / "m.pt"), "d.toml")
    assert "relative to" not in str(err.value)


def test_missing_deck_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DeckError, match="relative to the working directory"):
        load_deck("decks/none.toml")
