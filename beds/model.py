"""The bed service's records: small frozen values, no I/O.

A *unit* (unité) of an establishment (FINESS of the site) has beds of one kind. Its state is
five counts, each a ROR capacity status (``health.md`` §4.2): beds ``installed`` in normal
operation, ``surge`` beds opened for the crisis, ``occupied`` and ``available`` beds, and the
``covid`` patients among the occupied. The unit's ``initial`` beds (its pre-crisis capacity)
are the tension rate's denominator and do not change with the crisis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class BedKind(StrEnum):
    """The three kinds of critical-care beds (the "rea" of SpF's files counts all three)."""

    REA = "rea"
    """Réanimation (intensive care with organ support)."""
    SI = "si"
    """Soins intensifs (intensive care of one organ: cardiology, neurology...)."""
    SC = "sc"
    """Surveillance continue (high-dependency care)."""

    @property
    def label(self) -> str:
        """The English name, a message id of the pages."""
        return {
            "rea": "Intensive care",
            "si": "Specialised intensive care",
            "sc": "High dependency",
        }[self.value]


class Source(StrEnum):
    """Where an update came from."""

    FORM = "form"
    API = "api"
    FHIR = "fhir"
    FILE = "file"


@dataclass(frozen=True, slots=True)
class Establishment:
    """A hospital site, by its FINESS (géographique) number."""

    finess: str
    name: str
    commune: str
    postcode: str
    departement: str
    region: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Counts:
    """The state of a unit's beds. ``validate`` says what is inconsistent."""

    installed: int
    surge: int
    occupied: int
    available: int
    covid: int

    def problems(self) -> list[str]:
        """What is wrong with these counts (empty when they hold together)."""
        found = []
        for name in ("installed", "surge", "occupied", "available", "covid"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000:
                found.append(f"{name} must be a whole number from 0 to 10000")
        if found:
            return found
        if self.occupied + self.available > self.installed + self.surge:
            found.append("occupied + available cannot exceed installed + surge beds")
        if self.covid > self.occupied:
            found.append("COVID patients cannot exceed occupied beds")
        return found

    def one_bed_less(self) -> Counts:
        """A patient admitted: one available bed fewer, one occupied more."""
        return Counts(self.installed, self.surge, self.occupied + 1, self.available - 1, self.covid)


ZERO = Counts(0, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Unit:
    """A care unit of an establishment with beds of one kind."""

    id: int
    finess: str
    code: str
    """The unit's identifier in the establishment (its ROR unit id, or the hospital's own)."""
    name: str
    kind: BedKind
    initial: int
    """Initial (pre-crisis) capacity: the tension rate's denominator for réanimation."""


@dataclass(frozen=True, slots=True)
class UnitState:
    """A unit with its latest counts (None before its first update)."""

    unit: Unit
    establishment: Establishment
    counts: Counts | None
    updated_at: datetime | None
    source: str | None

    def is_stale(self, now: datetime, max_age_seconds: float) -> bool:
        """Never updated, or not for longer than the allowed age."""
        return self.updated_at is None or (now - self.updated_at).total_seconds() > max_age_seconds


@dataclass(frozen=True, slots=True)
class Update:
    """One kept update of a unit (the history)."""

    id: int
    unit_id: int
    at: datetime
    counts: Counts
    source: str
    actor: str
