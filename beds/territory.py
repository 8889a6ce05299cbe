"""Territories of the dashboards: France, its regions and départements (INSEE codes), and the
département of a postcode. Reference tables are data files (``beds/data``, origins in its
README), read once."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

FRANCE = "fr"
_TERRITORY = re.compile(r"fr|dep:(?:\d{2,3}|2[AB])|reg:\d{2}")
_POSTCODE = re.compile(r"\d{5}")


class TerritoryError(ValueError):
    """A territory or postcode that names nothing."""


@dataclass(frozen=True, slots=True)
class Territory:
    """France (``fr``), a region (``reg:11``) or a département (``dep:75``)."""

    code: str
    name: str

    @property
    def level(self) -> str:
        """``fr``, ``reg`` or ``dep``."""
        return self.code.split(":", 1)[0]

    @property
    def key(self) -> str:
        """The INSEE code (``75``, ``11``), empty for France."""
        return self.code.partition(":")[2]


@cache
def departements() -> dict[str, tuple[str, str]]:
    """Département code → (name, region code)."""
    with (DATA / "departements.csv").open(encoding="utf-8") as f:
        return {row["code"]: (row["name"], row["region"]) for row in csv.DictReader(f)}


@cache
def regions() -> dict[str, str]:
    """Region code → name."""
    with (DATA / "regions.csv").open(encoding="utf-8") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


def parse_territory(code: str) -> Territory:
    """``fr``, ``reg:NN`` or ``dep:NN``, checked against the reference tables."""
    code = code.strip()
    if not _TERRITORY.fullmatch(code):
        raise TerritoryError("territory must be fr, reg:NN or dep:NN")
    if code == FRANCE:
        return Territory(FRANCE, "France")
    level, key = code.split(":")
    if level == "reg":
        if key not in regions():
            raise TerritoryError(f"no region {key}")
        return Territory(code, regions()[key])
    if key not in departements():
        raise TerritoryError(f"no département {key}")
    return Territory(code, departements()[key][0])


def region_of(departement: str) -> str:
    """The region code of a département."""
    return departements()[departement][1]


def departements_of(territory: Territory) -> list[str]:
    """The département codes a territory covers."""
    if territory.level == "dep":
        return [territory.key]
    if territory.level == "reg":
        return sorted(d for d, (_, r) in departements().items() if r == territory.key)
    return sorted(departements())


def contains(territory: Territory, departement: str) -> bool:
    """Whether ``departement`` lies in ``territory``."""
    if territory.level == "fr":
        return True
    if territory.level == "reg":
        return region_of(departement) == territory.key
    return departement == territory.key


def departement_of_postcode(postcode: str) -> str:
    """The département of a French postcode: its first two digits, three overseas (97x),
    Corsica split at 20200 (20000-20199 Corse-du-Sud, 20200-20999 Haute-Corse)."""
    if not _POSTCODE.fullmatch(postcode):
        raise TerritoryError("a postcode is five digits")
    if postcode.startswith("97"):
        code = postcode[:3]
    elif postcode.startswith("20"):
        code = "2A" if int(postcode) < 20200 else "2B"
    else:
        code = postcode[:2]
    if code not in departements():
        raise TerritoryError(f"no département for postcode {postcode}")
    return code
