"""Every ``[robert.md: ...]`` citation in ``ble/`` and ``docs/ble.md`` names something that exists.

A citation is ``[robert.md: <heading>]`` (the start of a ``##`` heading of the shared
``robert.md``) or ``[robert.md: <heading>, "<item>"]`` (a ``**<item>**`` bold item inside that
section). Skipped where the shared docs are not mounted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROBERT_MD = Path("/work/shared/docs/robert.md")
CITATION = re.compile(r"\[robert\.md:\s*([^\]]+?)\s*\]", re.S)


def sections(text: str) -> dict[str, str]:
    """``##`` heading -> the text of its section."""
    found: dict[str, str] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        found[heading.strip()] = body
    return found


def resolves(citation: str, known: dict[str, str]) -> bool:
    """True if the citation's heading (a prefix) exists and its item, if any, is in it."""
    citation = " ".join(citation.split())
    where = citation.split(";")[0]  # what follows a ';' is a remark, not the place
    heading, _, item = where.partition(', "')
    item = item.rstrip('"')
    for name, body in known.items():
        if name.startswith(heading) and (not item or f"**{item}**" in " ".join(body.split())):
            return True
    return False


def cited_files() -> list[Path]:
    return [*sorted((ROOT / "ble").rglob("*.py")), ROOT / "docs" / "ble.md"]


def test_resolves_headings_and_items() -> None:
    known = sections("## Time\nx\n## Contract (`/api/v6`)\n- **Bluetooth, iPhones**: y\n")
    assert resolves("Time", known)
    assert resolves('Contract, "Bluetooth, iPhones"; a remark', known)
    assert not resolves("Bluetooth, iPhones", known)  # an item is not a heading
    assert not resolves('Time, "Bluetooth, iPhones"', known)  # not in that section


@pytest.mark.skipif(not ROBERT_MD.exists(), reason="shared docs not mounted")
def test_every_robert_md_citation_exists() -> None:
    known = sections(ROBERT_MD.read_text(encoding="utf-8"))
    citations = [
        (path.relative_to(ROOT), match)
        for path in cited_files()
        for match in CITATION.findall(path.read_text(encoding="utf-8"))
    ]
    assert citations  # the pattern still finds them
    missing = [(str(path), c) for path, c in citations if not resolves(c, known)]
    assert not missing, missing
