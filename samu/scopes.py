"""Scopes of the SAMU board and who sees which message: pure rules, no I/O but reading the
reference tables (``samu/data``, origins in its README) once.

A scope is one of four nested levels:

| scope | written | who |
|---|---|---|
| France | ``national`` | the national crisis centre (CORRUSS) |
| zone de défense et de sécurité | ``zone:paris``, ``zone:sud-ouest``... | the zone's staff |
| region (2016 regions, INSEE code) | ``region:11`` | the ARS |
| département (one SAMU each) | ``samu:75`` | the SAMU's regulators |

A message is addressed to one scope. A viewer sees the messages addressed to their own scope
and to every scope containing it (a SAMU of Paris sees ``samu:75``, ``region:11``,
``zone:paris`` and ``national``), the messages sent from their own scope, and the national
level sees everything.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

NATIONAL = "national"
LEVELS = ("national", "zone", "region", "samu")
_SCOPE = re.compile(r"national|zone:[a-z-]{3,20}|region:\d{2}|samu:(?:\d{2,3}|2[AB])")


class ScopeError(ValueError):
    """A scope that names nothing."""


@cache
def departements() -> dict[str, tuple[str, str]]:
    """Département code → (name, region code): the 101 départements."""
    with (DATA / "departements.csv").open(encoding="utf-8") as f:
        return {row["code"]: (row["name"], row["region"]) for row in csv.DictReader(f)}


@cache
def regions() -> dict[str, tuple[str, str]]:
    """Region code → (name, zone code)."""
    with (DATA / "regions.csv").open(encoding="utf-8") as f:
        return {row["code"]: (row["name"], row["zone"]) for row in csv.DictReader(f)}


@cache
def zones() -> dict[str, str]:
    """Zone code → name."""
    with (DATA / "zones.csv").open(encoding="utf-8") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


@dataclass(frozen=True, slots=True, order=True)
class Scope:
    """A level and its key: ``national`` (no key), ``zone:paris``, ``region:11``, ``samu:75``."""

    level: str
    key: str = ""

    def __str__(self) -> str:
        return self.level if self.level == NATIONAL else f"{self.level}:{self.key}"

    @property
    def name(self) -> str:
        """A label for people: "France", "Zone Paris", "Île-de-France", "SAMU 75 (Paris)"."""
        if self.level == NATIONAL:
            return "France"
        if self.level == "zone":
            return f"Zone {zones()[self.key]}"
        if self.level == "region":
            return regions()[self.key][0]
        return f"SAMU {self.key} ({departements()[self.key][0]})"

    @property
    def parent(self) -> Scope | None:
        """The scope just above (None for national)."""
        if self.level == "samu":
            return Scope("region", departements()[self.key][1])
        if self.level == "region":
            return Scope("zone", regions()[self.key][1])
        if self.level == "zone":
            return Scope(NATIONAL)
        return None

    def ancestry(self) -> list[Scope]:
        """This scope and every scope containing it, up to national."""
        chain: list[Scope] = []
        here: Scope | None = self
        while here is not None:
            chain.append(here)
            here = here.parent
        return chain

    def contains(self, other: Scope) -> bool:
        """Whether ``other`` is this scope or lies within it."""
        return self in other.ancestry()


NATIONAL_SCOPE = Scope(NATIONAL)


def parse_scope(text: str) -> Scope:
    """``national``, ``zone:CODE``, ``region:NN`` or ``samu:DEP``, checked against the tables."""
    text = text.strip()
    if not _SCOPE.fullmatch(text):
        raise ScopeError("a scope is national, zone:CODE, region:NN or samu:DEP")
    if text == NATIONAL:
        return NATIONAL_SCOPE
    level, key = text.split(":")
    known: dict[str, str] | dict[str, tuple[str, str]] = (
        zones() if level == "zone" else regions() if level == "region" else departements()
    )
    if key not in known:
        raise ScopeError(f"no {level} {key}")
    return Scope(level, key)


def scope_of_departement(departement: str) -> Scope:
    """The SAMU scope of a département."""
    if departement not in departements():
        raise ScopeError(f"no département {departement}")
    return Scope("samu", departement)


def region_of(departement: str) -> str:
    """The region code of a département."""
    return departements()[departement][1]


def may_see(viewer: Scope, target: Scope, sender: Scope | None = None) -> bool:
    """Whether a viewer of scope ``viewer`` sees a message addressed to ``target`` (sent from
    ``sender``): national sees all; others the messages addressed to their scope or a scope
    containing it, and those they sent from their own scope."""
    if viewer == NATIONAL_SCOPE:
        return True
    return target in viewer.ancestry() or (sender is not None and sender == viewer)


def may_address(sender: Scope, target: Scope) -> bool:
    """Whether ``sender`` may address ``target``: its own scope, a scope containing it (a SAMU
    writes to its region, its zone, the nation) or one within it (an ARS to its SAMU)."""
    return target.contains(sender) or sender.contains(target)


def visible_targets(viewer: Scope) -> list[str] | None:
    """The target scopes whose messages ``viewer`` sees (None: all), for a database filter."""
    if viewer == NATIONAL_SCOPE:
        return None
    return [str(s) for s in viewer.ancestry()]
