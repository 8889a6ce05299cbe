"""The infection tree's measures, the generation-time profile and the sweep's statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from client_sim.epidemic import (
    DAY,
    NOBODY,
    WEIBULL_SCALE,
    WEIBULL_SHAPE,
    generation_density,
    infectiousness,
    mean_generation_days,
)
from client_sim.measures import growth, mean_ci, places, r_from_growth, reproduction

START = 3_981_772_800.0


def test_generation_time_is_ferrettis_weibull() -> None:
    assert mean_generation_days(WEIBULL_SHAPE, WEIBULL_SCALE) == pytest.approx(5.0, abs=0.06)
    t = np.linspace(0, 40, 40_001)
    density = generation_density(t, WEIBULL_SHAPE, WEIBULL_SCALE)
    assert np.trapezoid(density, t) == pytest.approx(1.0, abs=1e-4)
    sd = math.sqrt(np.trapezoid(density * (t - 5.05) ** 2, t))
    assert sd == pytest.approx(1.9, abs=0.05)
    profile = infectiousness(t, WEIBULL_SHAPE, WEIBULL_SCALE)
    assert profile.max() == pytest.approx(1.0, abs=1e-6)
    assert 4.5 < t[profile.argmax()] < 5.0
    assert infectiousness(np.array([-1.0, 0.0, 14.5]), WEIBULL_SHAPE, WEIBULL_SCALE).tolist() == [
        0.0,
        0.0,
        0.0,
    ]


def test_r_from_growth_matches_ferretti() -> None:
    """Ferretti et al.: growth 0.14 a day with this generation time gives R0 about 2."""
    assert r_from_growth(0.0, WEIBULL_SHAPE, WEIBULL_SCALE) == pytest.approx(1.0, abs=1e-3)
    assert 1.85 < r_from_growth(0.14, WEIBULL_SHAPE, WEIBULL_SCALE) < 2.05
    assert r_from_growth(-0.05, WEIBULL_SHAPE, WEIBULL_SCALE) < 1.0


def test_reproduction_counts_the_tree() -> None:
    # 0 was infected before the run; 1 and 2 by 0; 3, 4, 5 by 1; 6 by 5 near the end.
    days = 30
    at = np.array([-2, 3, 4, 8, 9, 10, 27, np.inf]) * DAY + START
    infector = np.array([NOBODY, 0, 0, 1, 1, 1, 5, NOBODY], dtype=np.int32)
    measures = reproduction(at, infector, START, days)
    # People infected during the run and at least 10 days before its end: 1, 2, 3, 4, 5.
    assert measures["r_people"] == 5
    assert measures["r_effective"] == pytest.approx((3 + 0 + 0 + 0 + 1) / 5)
    # Generation intervals from complete infectors: 1->3, 1->4, 1->5 (5, 6, 7 days), 5->6 (17).
    assert measures["generation_days_mean"] == pytest.approx((5 + 6 + 7 + 17) / 4)
    assert [(w["week"], w["infected"]) for w in measures["r_by_week"]] == [(0, 2), (1, 3)]


def test_growth_finds_the_doubling_time() -> None:
    counts = [round(10 * math.exp(0.1 * d)) for d in range(40)]
    fitted = growth(counts, WEIBULL_SHAPE, WEIBULL_SCALE)
    assert fitted["doubling_days"] == pytest.approx(math.log(2) / 0.1, rel=0.05)
    falling = growth([round(500 * math.exp(-0.05 * d)) for d in range(40)], 2.826, 5.665)
    assert falling["doubling_days"] is None and falling["halving_days"] == pytest.approx(13.9, 0.1)
    assert growth([0, 1, 0], 2.826, 5.665)["doubling_days"] is None  # too little to fit


def test_places_and_intervals() -> None:
    assert places(np.array([-1, 0, 0, 2, 4], dtype=np.int8)) == {
        "home": 2,
        "work": 0,
        "school": 1,
        "leisure": 0,
        "train": 1,
    }
    ci = mean_ci([1.0, 2.0, 3.0])
    assert ci["mean"] == 2.0 and ci["n"] == 3 and ci["values"] == [1.0, 2.0, 3.0]
    assert ci["high"] == pytest.approx(2.0 + 4.303 / math.sqrt(3))
    assert mean_ci([1.0, 2.0, 3.0], floor=0.0)["low"] == 0.0
    assert mean_ci([None, 4.0])["low"] is None
    assert mean_ci([])["mean"] is None
