"""Communes and postcodes: where a search "around 75011" or "around Rennes" starts from.

The table (``data/communes.csv``, see ``data/README.md``) holds each commune's INSEE code,
name, département, postcodes and the coordinates of its centre. It is a slice (communes of
10,000 inhabitants or more, every chef-lieu, Paris by arrondissement); a postcode it does not
know still finds a starting point: its département's centre (``Places.locate``).
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from citizens.geo import departement_of_postcode

COMMUNES = Path(__file__).resolve().parent / "data" / "communes.csv"
POSTCODE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")


@dataclass(frozen=True, slots=True)
class Place:
    """A commune (or a municipal arrondissement) and its centre."""

    insee: str
    name: str
    departement: str
    postcodes: tuple[str, ...]
    lat: float
    lon: float
    population: int


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a search starts, and how it was found (shown to the person: "around ...")."""

    label: str
    lat: float
    lon: float
    precision: str
    """``commune`` (a commune's centre), ``departement`` (a département's centre: the postcode
    was not in the table) or ``position`` (coordinates the person gave)."""


def fold(text: str) -> str:
    """A name for comparison: no accents, no case, hyphens and apostrophes as spaces, ``st``
    and ``ste`` as ``saint`` and ``sainte``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    plain = re.sub(r"[^a-z0-9]+", " ", plain).strip()
    return re.sub(r"\bst(e?)\b", r"saint\1", plain)


class Places:
    """The communes of the table, found by postcode or by name."""

    def __init__(self, places: list[Place]) -> None:
        self.places = places
        self._by_postcode: dict[str, list[Place]] = defaultdict(list)
        self._by_departement: dict[str, list[Place]] = defaultdict(list)
        for place in places:
            for postcode in place.postcodes:
                self._by_postcode[postcode].append(place)
            self._by_departement[place.departement].append(place)
        # the most specific place first: an arrondissement before its city
        for found in self._by_postcode.values():
            found.sort(key=lambda p: (len(p.postcodes), p.population))
        self._folded = [(fold(p.name), p) for p in places]

    @classmethod
    def load(cls, path: Path = COMMUNES) -> Places:
        """Read the table."""
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        return cls(
            [
                Place(
                    insee=row["insee"],
                    name=row["name"],
                    departement=row["departement"],
                    postcodes=tuple(row["postcodes"].split()),
                    lat=float(row["lat"]),
                    lon=float(row["lon"]),
                    population=int(row["population"]),
                )
                for row in rows
            ]
        )

    def by_postcode(self, postcode: str) -> list[Place]:
        """The communes a postcode serves, the most specific first."""
        return list(self._by_postcode.get(postcode.strip(), ()))

    def by_name(self, query: str, limit: int = 10) -> list[Place]:
        """Communes whose name is ``query`` or starts with it (accents and case ignored),
        exact matches first, then the most populous."""
        wanted = fold(query)
        if not wanted:
            return []
        found = [
            (name != wanted, -p.population, p)
            for name, p in self._folded
            if name == wanted or name.startswith(wanted + " ") or name.startswith(wanted)
        ]
        found.sort(key=lambda t: (t[0], t[1]))
        return [p for _, _, p in found[:limit]]

    def departement_centre(self, departement: str) -> tuple[float, float] | None:
        """The population-weighted centre of the département's communes in the table."""
        places = self._by_departement.get(departement)
        if not places:
            return None
        total = sum(p.population for p in places) or 1
        return (
            sum(p.lat * p.population for p in places) / total,
            sum(p.lon * p.population for p in places) / total,
        )

    def locate_postcode(self, postcode: str) -> Origin | None:
        """Where a search by postcode starts: the commune's centre, else the centre of the
        postcode's département, else None (not a French postcode we can place)."""
        postcode = postcode.strip().upper()
        if not POSTCODE.match(postcode):
            return None
        found = self.by_postcode(postcode)
        if found:
            place = found[0]
            return Origin(f"{place.name} ({postcode})", place.lat, place.lon, "commune")
        departement = departement_of_postcode(postcode)
        centre = self.departement_centre(departement)
        if centre is None:
            return None
        return Origin(postcode, centre[0], centre[1], "departement")

    def namesakes(self, name: str) -> list[Place]:
        """The communes named exactly ``name`` (accents and case ignored), most populous
        first: more than one (Saint-Denis in 93 and in 974) means the name alone is not
        enough to place a search."""
        wanted = fold(name)
        found = [p for folded, p in self._folded if folded == wanted]
        return sorted(found, key=lambda p: (-p.population, p.insee))

    def locate_commune(self, name: str) -> Origin | None:
        """Where a search by commune name starts: the best match's centre (callers check
        ``namesakes`` first: a name several communes share is ambiguous)."""
        found = self.by_name(name, 1)
        if not found:
            return None
        place = found[0]
        return Origin(f"{place.name} ({place.departement})", place.lat, place.lon, "commune")


@cache
def shipped_places() -> Places:
    """The table shipped with the package (read once)."""
    return Places.load()
