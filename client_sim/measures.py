"""What a run's infection tree says: reproduction number, generation interval, growth.

Pure functions over the epidemic's arrays (``client_sim.epidemic``): who was infected when, and
by whom. The reproduction number is counted, not fitted: the mean number of people each person
infected, over the people infected early enough in the run for their whole infectious period to
be in it (``COMPLETE_DAYS``). The doubling time is fitted on the daily new infections and turned
into a reproduction number through the generation-time distribution (Wallinga and Lipsitch 2007,
R = 1 / M(-r)), a check that the two agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from client_sim.epidemic import DAY, NOBODY, generation_density

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

COMPLETE_DAYS = 10
"""People infected at least this many days before the end have done 99 % of their infecting
(the Weibull generation time's 99.3th percentile is 10 days)."""
FIT_FROM_DAY = 7
"""The growth fit starts after the first week, when the initial infections' offspring dominate
no more."""
PLACE_NAMES = ("home", "work", "school", "leisure", "train")


def reproduction(
    infected_at: Floats, infector: npt.NDArray[np.int32], start: float, days: int
) -> dict[str, Any]:
    """R counted on the tree, overall and per week of infection, and the generation interval."""
    n = len(infected_at)
    end = start + days * DAY
    during = np.isfinite(infected_at) & (infector != NOBODY)
    offspring = np.bincount(infector[during].astype(np.int64), minlength=n)
    complete = during & (infected_at < end - COMPLETE_DAYS * DAY)
    weeks = []
    for week in range(-(-days // 7)):
        lo, hi = start + week * 7 * DAY, start + (week + 1) * 7 * DAY
        cohort = complete & (infected_at >= lo) & (infected_at < hi)
        if cohort.any():
            weeks.append(
                {
                    "week": week,
                    "infected": int(cohort.sum()),
                    "r": round(float(offspring[cohort].mean()), 3),
                }
            )
    children = np.flatnonzero(during)
    parents = infector[children].astype(np.int64)
    from_complete = complete[parents]
    gaps = (infected_at[children] - infected_at[parents])[from_complete] / DAY
    return {
        "r_effective": round(float(offspring[complete].mean()), 3) if complete.any() else None,
        "r_people": int(complete.sum()),
        "r_by_week": weeks,
        "generation_days_mean": round(float(gaps.mean()), 2) if len(gaps) else None,
        "generation_days_sd": round(float(gaps.std()), 2) if len(gaps) > 1 else None,
    }


def growth(new_infections: list[int], shape: float, scale: float) -> dict[str, Any]:
    """Exponential growth fitted on the daily new infections (least squares on the log, from
    day ``FIT_FROM_DAY``): rate per day, doubling (or halving) time, and the R it implies."""
    counts = np.array(new_infections[FIT_FROM_DAY:], dtype=np.float64)
    days = np.arange(len(counts), dtype=np.float64)
    if len(counts) < 5 or counts.sum() < 10:
        return {"growth_per_day": None, "doubling_days": None, "r_from_growth": None}
    rate = float(np.polyfit(days, np.log(counts + 0.5), 1)[0])
    return {
        "growth_per_day": round(rate, 4),
        "doubling_days": round(math.log(2) / rate, 1) if rate > 0 else None,
        "halving_days": round(math.log(2) / -rate, 1) if rate < 0 else None,
        "r_from_growth": round(r_from_growth(rate, shape, scale), 3),
    }


def r_from_growth(rate: float, shape: float, scale: float) -> float:
    """R = 1 / M(-r) for a Weibull generation time (M: its moment generating function)."""
    t = np.linspace(0.0, 40.0, 40_001)
    density = generation_density(t, shape, scale)
    integrand = density * np.exp(-rate * t)
    return float(1.0 / np.sum((integrand[1:] + integrand[:-1]) / 2 * np.diff(t)))


def places(infected_where: npt.NDArray[np.int8]) -> dict[str, int]:
    """Infections during the run by kind of place."""
    counts = np.bincount(infected_where[infected_where >= 0].astype(np.int64), minlength=5)
    return {name: int(c) for name, c in zip(PLACE_NAMES, counts, strict=True)}


def mean_ci(values: list[float | None], floor: float | None = None) -> dict[str, Any]:
    """Mean and 95 % Student-t interval over seeds (no interval for a single value), the
    interval clipped at ``floor`` (0 for counts), and the values themselves."""
    x = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(x) == 0:
        return {"mean": None, "low": None, "high": None, "n": 0, "values": []}
    mean = float(x.mean())
    listed = [float(v) for v in x]
    if len(x) == 1:
        return {"mean": mean, "low": None, "high": None, "n": 1, "values": listed}
    half = T_95.get(len(x) - 1, 1.96) * float(x.std(ddof=1)) / math.sqrt(len(x))
    low = mean - half if floor is None else max(floor, mean - half)
    return {"mean": mean, "low": low, "high": mean + half, "n": len(x), "values": listed}


T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}  # fmt: skip
"""Two-sided 95 % quantiles of Student's t by degrees of freedom."""
