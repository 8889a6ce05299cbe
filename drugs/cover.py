"""Days of cover and alerts: pure arithmetic.

Days of cover = stock on hand ÷ average daily use (``health.md`` §4.3). No use means no end
to the stock (None: infinite cover, never an alert). Thresholds are configurable; the defaults
follow the 2020 practice: below 7 days an alert, below 3 days critical (ARS aimed at several
weeks of stock; **assumption**: no official alert threshold was published).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Alert(StrEnum):
    """How close a stock is to running out."""

    OK = "ok"
    LOW = "low"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class CoverThresholds:
    """Days of cover under which an alert is raised."""

    low: float = 7.0
    critical: float = 3.0

    def alert(self, days: float | None) -> Alert:
        """The alert of a number of days of cover (None: no use, no alert)."""
        if days is None or days >= self.low:
            return Alert.OK
        return Alert.CRITICAL if days < self.critical else Alert.LOW


def days_of_cover(on_hand: float, daily_use: float) -> float | None:
    """Stock ÷ average daily use, in days; None when nothing is used."""
    if daily_use <= 0:
        return None
    return on_hand / daily_use
