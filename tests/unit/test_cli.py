"""The command line: clean messages and exit status 2 for every user mistake."""

import subprocess
import sys

import pytest

from hpcspin.cli import main

GOOD = '[run]\ntask = "negf"\n[lattice]\nlength = 20\n'


def run_cli(*args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "hpcspin", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_check_ok(tmp_path, capsys):
    deck = tmp_path / "a.toml"
    deck.write_text(GOOD)
    assert main([str(deck), "--check"]) == 0
    assert "OK  task=negf" in capsys.readouterr().out


def test_check_ranks_catches_grid_mismatch(tmp_path, capsys):
    deck = tmp_path / "a.toml"
    deck.write_text(GOOD + "[parallel]\ngrid = [4, 1]\n")
    assert main([str(deck), "--check", "--ranks", "4"]) == 0
    assert main([str(deck), "--check", "--ranks", "2"]) == 2
    assert "[parallel] grid = [4, 1]: needs 4 ranks but the job has 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, expect",
    [
        (None, "not found"),
        ("[run\n", "TOML syntax error"),
        ('[run]\ntask = "negff"\n', "must be one of"),
        ("dir", "is a directory"),
    ],
)
def test_user_mistakes_exit_2_without_traceback(tmp_path, content, expect):
    deck = tmp_path / "d.toml"
    if content == "dir":
        deck = tmp_path
    elif content is not None:
        deck.write_text(content)
    for extra in ([], ["--check"]):
        r = run_cli(str(deck), *extra)
        assert r.returncode == 2, r.stderr
        assert expect in r.stderr
        assert "Traceback" not in r.stderr + r.stdout


def test_bad_set_and_missing_deck(tmp_path):
    deck = tmp_path / "a.toml"
    deck.write_text(GOOD)
    r = run_cli(str(deck), "--check", "--set", "lattice.length=1")
    assert r.returncode == 2 and "[lattice] length = 1: must be >= 2" in r.stderr
    r = run_cli()
    assert r.returncode == 2 and "a deck file is required" in r.stderr


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("hpcspin ")
