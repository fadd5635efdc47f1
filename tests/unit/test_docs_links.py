"""The documentation is self-contained: every relative link and anchor resolves.

Covers README.md, bench/README.md and docs/*.md: links ``[text](path#anchor)`` must
name an existing file (relative to the page) and, when an anchor is given, a heading of
that page (GitHub's anchor rule). No page may send the reader to files that are not
part of the repository.
"""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`[^`]*`")
FORBIDDEN = re.compile(r"SPEC|ENVIRONMENT\.md|ARCHITECTURE|STYLE\.md|shared/")


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
    text = CODE.sub(lambda m: m.group(0)[1:-1], heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: pathlib.Path) -> set[str]:
    """Anchors of every heading of a markdown page (outside fenced code)."""
    out, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            out.add(anchor(line.lstrip("#")))
    return out


def links(page: pathlib.Path) -> list[str]:
    """Link targets of a page, outside fenced and indented code blocks."""
    out, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or line.startswith("    "):
            continue
        out += LINK.findall(CODE.sub("", line))
    return out


def test_anchor_rule():
    assert anchor("Units and conventions") == "units-and-conventions"
    assert anchor("The s-d model") == "the-s-d-model"
    assert anchor("Results: ML vs NEGF (details in [x](y))") == "results-ml-vs-negf-details-in-xy"
    assert anchor("`hpcspin.run` and friends") == "hpcspinrun-and-friends"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    bad = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no file {dest}")
        elif frag and dest.suffix == ".md" and frag not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{frag} in {dest.name}")
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_external_references(page):
    hits = [
        f"line {n}: {line.strip()}"
        for n, line in enumerate(page.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert not hits, f"{page.relative_to(ROOT)} names files outside the repository: {hits}"


def test_physics_page_has_the_sections_others_link_to():
    need = {
        "units-and-conventions",
        "the-s-d-model",
        "steady-state-negf",
        "two-potentials-and-their-limit",
        "the-equivariant-vector-head",
        "spin-dynamics",
        "the-reference-experiment",
    }
    assert need <= anchors(ROOT / "docs" / "physics.md")


def test_code_and_decks_do_not_cite_outside_files():
    """Comments and docstrings point to docs/physics.md, not to files outside the repo."""
    pat = re.compile(r"SPEC section|SPEC \d|ENVIRONMENT\.md|ARCHITECTURE\.md|STYLE\.md")
    files = [
        *(ROOT / "hpcspin").rglob("*.py"),
        *(ROOT / "bench").glob("*.py"),
        *(ROOT / "input_decks").glob("*.toml"),
        *(ROOT / "jobs").glob("*"),
    ]
    bad = [str(f.relative_to(ROOT)) for f in files if f.is_file() and pat.search(f.read_text())]
    assert not bad, f"cite files outside the repository: {bad}"
