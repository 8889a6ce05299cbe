"""Départements and regions (INSEE codes) from the reference tables in ``sivic/data``."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


OVERSEAS = frozenset({"971", "972", "973", "974", "976"})


@cache
def departements() -> dict[str, tuple[str, str]]:
    """The 101 départements of SpF's files (metropolitan France, Corsica's 2A and 2B, and the
    five overseas départements; not the overseas collectivities): code → (name, region)."""
    with (DATA / "departements.csv").open(encoding="utf-8") as f:
        return {
            row["code"]: (row["name"], row["region"])
            for row in csv.DictReader(f)
            if len(row["code"]) == 2 or row["code"] in OVERSEAS
        }


@cache
def regions() -> dict[str, str]:
    """The 18 regions of those départements: code → name."""
    used = {r for _, r in departements().values()}
    with (DATA / "regions.csv").open(encoding="utf-8") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f) if row["code"] in used}


def region_of(dep: str) -> str:
    """The region code of a département (KeyError for an unknown one)."""
    return departements()[dep][1]


def departements_of_region(region: str) -> list[str]:
    """The départements of a region."""
    return [d for d, (_, r) in departements().items() if r == region]
