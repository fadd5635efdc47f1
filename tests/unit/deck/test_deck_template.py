"""--print-defaults: a complete commented deck that parses back to the defaults."""

from __future__ import annotations

import dataclasses

import pytest

from hpcspin.cli import main
from hpcspin.deck.load import parse_deck
from hpcspin.deck.schema import SECTIONS, TASKS
from hpcspin.deck.template import TASK_SECTIONS, UNITS, template


@pytest.mark.parametrize("task", [None, *TASKS])
def test_template_parses_back_to_the_defaults(task):
    text = template(task)
    cfg = parse_deck(text, "template", check_files=False)
    assert cfg.run.task == (task or "dynamics")
    for name, cls in SECTIONS.items():
        if name == "run":
            continue
        assert getattr(cfg, name) == cls(), name
    for name in TASK_SECTIONS[task] if task else SECTIONS:
        assert f"\n[{name}]\n" in text


def test_every_key_is_listed_with_its_rules_and_numeric_keys_have_units():
    text = template()
    numeric = set()
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"\n{f.name} = " in text, f"{name}.{f.name}"
            meta = f.metadata
            if meta.get("choices"):
                assert all(f'"{c}"' in text for c in meta["choices"]), f"{name}.{f.name}"
            if int in (meta.get("kind"), meta.get("item")) or float in (
                meta.get("kind"),
                meta.get("item"),
            ):
                numeric.add(f"{name}.{f.name}")
    assert numeric == set(UNITS), numeric ^ set(UNITS)


def test_cli_prints_defaults(capsys):
    assert main(["--print-defaults", "negf"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# hpcspin deck") and "[negf]\n" in out and "[train]\n" not in out
    assert main(["--print-defaults"]) == 0
    assert "[validate]\n" in capsys.readouterr().out
    assert main(["--print-defaults", "nonsense"]) == 2
    assert "unknown task 'nonsense'" in capsys.readouterr().err


def test_task_sections_cover_every_task():
    assert set(TASK_SECTIONS) == set(TASKS)
    for names in TASK_SECTIONS.values():
        assert set(names) <= set(SECTIONS) and "run" in names
