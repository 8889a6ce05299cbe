"""Where a result is counted: the patient's département from the postcode, else the lab's from
its FINESS (docs/health.md §3.2), and the region of a département. Pure functions over the
reference tables of ``sidep/data`` (INSEE codes, origins in its README).
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

_OVERSEAS = {"971", "972", "973", "974", "976"}
# FINESS numbers of the overseas départements start with a letter code in the 2nd position in
# some extracts (9A Guadeloupe ... 9F Mayotte) and with 97 + 0 + digit in others: both read.
_FINESS_LETTERS = {"9A": "971", "9B": "972", "9C": "973", "9D": "974", "9F": "976"}


@cache
def departements() -> dict[str, str]:
    """The 101 départements (96 metropolitan and 5 overseas): code -> region code."""
    with (DATA / "departements.csv").open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["region"] for row in csv.DictReader(f)}


@cache
def regions() -> dict[str, str]:
    """The 18 regions: code -> name."""
    with (DATA / "regions.csv").open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


def region_of(dep: str) -> str | None:
    """The region code of a département, None when it is not one."""
    return departements().get(dep)


def dep_from_postcode(postcode: str | None) -> str | None:
    """The département of a French postcode: ``75011`` -> ``75``, ``20000`` -> ``2A`` (Corse-du-
    Sud: 200xx-201xx), ``20200`` -> ``2B`` (Haute-Corse), ``97400`` -> ``974``. None for a postcode
    that is not a French département's (Monaco 980xx, the other overseas collectivities, junk).
    """
    if postcode is None:
        return None
    pc = postcode.strip()
    if len(pc) != 5 or not pc.isascii() or not pc.isdigit():
        return None
    if pc.startswith("97"):
        dep = pc[:3]
        return dep if dep in _OVERSEAS else None
    if pc.startswith("20"):
        return "2A" if pc[2] in "01" else "2B"
    dep = pc[:2]
    return dep if dep in departements() else None


def dep_from_finess(finess: str | None) -> str | None:
    """The département of a FINESS number (its first two characters; three overseas)."""
    if finess is None:
        return None
    f = finess.strip().upper()
    if len(f) != 9 or not f.isascii() or not f.isalnum():
        return None
    if f[:2] in _FINESS_LETTERS:
        return _FINESS_LETTERS[f[:2]]
    if f.startswith("97"):
        dep = "97" + (f[3] if f[2] == "0" else f[2])
        return dep if dep in _OVERSEAS else None
    dep = f[:2]
    return dep if dep in departements() else None


def dep_of(postcode: str | None, lab_finess: str | None) -> str | None:
    """The département a result counts in: the patient's, else the lab's, else None."""
    return dep_from_postcode(postcode) or dep_from_finess(lab_finess)
