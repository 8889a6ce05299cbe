"""Tension indicators of a territory, from its units' latest counts: pure arithmetic, no I/O.

**Tension rate** (SpF's *taux d'occupation*, ``health.md`` §4.1): COVID patients currently in
critical care (réanimation, intensive and continuous care: all three kinds) divided by the
**initial** capacity of réanimation beds, the pre-crisis capacity. Surge beds are not in the
denominator, so the rate passes 100 % when a crisis fills more beds than there were before it
(SpF's national figure was above 100 % in April 2020 and in spring 2021).

**Occupancy**: occupied beds over the beds open now (installed + surge), all kinds.

A stale unit (no update for longer than the allowed age) still counts with its last known
values (the best estimate there is); the dashboards show how many are stale beside the figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from beds.model import BedKind, Counts

DENOMINATOR_KINDS = frozenset({BedKind.REA})
"""Kinds of beds whose initial capacity is the tension rate's denominator (SpF: réanimation)."""


class Level(StrEnum):
    """Where a tension rate stands against the configured thresholds."""

    NONE = "none"
    LOW = "low"
    ALERT = "alert"
    CRISIS = "crisis"
    OVER = "over"
    """Beyond the initial capacity (above 100 %)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Tension rate thresholds, as fractions (0.6 = 60 %). Configurable: they varied (a 2020
    ministry note called 60-80 % an alert level; ``health.md`` §4.1)."""

    alert: float = 0.6
    crisis: float = 0.8

    def level(self, rate: float | None) -> Level:
        """The level of a tension rate (NONE when there is no rate)."""
        if rate is None:
            return Level.NONE
        if rate > 1.0:
            return Level.OVER
        if rate >= self.crisis:
            return Level.CRISIS
        if rate >= self.alert:
            return Level.ALERT
        return Level.LOW


@dataclass(frozen=True, slots=True)
class UnitFigures:
    """What the indicators need of one unit."""

    departement: str
    kind: BedKind
    initial: int
    counts: Counts | None
    stale: bool


@dataclass(frozen=True, slots=True)
class Tension:
    """A territory's indicators at one moment."""

    covid_critical: int
    initial_capacity: int
    occupied: int
    available: int
    installed: int
    surge: int
    units: int
    stale_units: int

    @property
    def tension_rate(self) -> float | None:
        """COVID patients in critical care over initial réanimation capacity; None without
        any initial capacity."""
        if self.initial_capacity == 0:
            return None
        return self.covid_critical / self.initial_capacity

    @property
    def occupancy(self) -> float | None:
        """Occupied over open beds (installed + surge); None without open beds."""
        open_beds = self.installed + self.surge
        return None if open_beds == 0 else self.occupied / open_beds

    def __add__(self, other: Tension) -> Tension:
        return Tension(*(getattr(self, f) + getattr(other, f) for f in _FIELDS))


_FIELDS = (
    "covid_critical",
    "initial_capacity",
    "occupied",
    "available",
    "installed",
    "surge",
    "units",
    "stale_units",
)

EMPTY = Tension(0, 0, 0, 0, 0, 0, 0, 0)


def tension_of(units: Iterable[UnitFigures]) -> Tension:
    """The indicators of a set of units."""
    total = [0] * len(_FIELDS)
    for u in units:
        c = u.counts
        if u.kind in DENOMINATOR_KINDS:
            total[1] += u.initial
        total[6] += 1
        total[7] += u.stale
        if c is None:
            continue
        total[0] += c.covid
        total[2] += c.occupied
        total[3] += c.available
        total[4] += c.installed
        total[5] += c.surge
    return Tension(*total)


def by_departement(units: Iterable[UnitFigures]) -> dict[str, Tension]:
    """The indicators of each département having units."""
    groups: dict[str, list[UnitFigures]] = {}
    for u in units:
        groups.setdefault(u.departement, []).append(u)
    return {dep: tension_of(group) for dep, group in groups.items()}


def total(parts: Iterable[Tension]) -> Tension:
    """The indicators of the union of disjoint parts (sums: rates are recomputed, never
    averaged)."""
    result = EMPTY
    for part in parts:
        result = result + part
    return result
