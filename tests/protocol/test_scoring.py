"""Exposure scoring (the reference's algorithm version 2)."""

import math

import pytest

from protocol.scoring import (
    DEFAULT_SCORING,
    ScoringConfig,
    is_at_risk,
    risk,
    risk_level,
    score_contact,
    softmax_average,
)

T0 = 3_900_000_000


def every(seconds: int, minutes: int, rssi: int) -> list[tuple[int, int]]:
    return [(T0 + s, rssi) for s in range(0, minutes * 60, seconds)]


def test_softmax_average_bounds() -> None:
    assert softmax_average([-50.0], 4.342) == pytest.approx(-50.0)
    value = softmax_average([-40.0, -80.0], 4.342)
    assert -80 < value < -40 and value > -60  # leans to the largest


def test_close_full_epoch_scores_about_its_minutes() -> None:
    assert score_contact(every(10, 15, -40)) == pytest.approx(14.0)


def test_far_contact_scores_zero() -> None:
    assert score_contact(every(10, 15, -90)) == 0.0


def test_errors_are_dropped_and_strong_signals_clipped() -> None:
    assert score_contact(every(10, 15, 0)) == 0.0  # above -5 dBm: device error
    assert score_contact(every(10, 15, -10)) == score_contact(every(10, 15, -35))


def test_samples_beyond_the_window_are_ignored() -> None:
    assert score_contact(every(10, 20, -40)) == score_contact(every(10, 15, -40))


def test_single_minute_scores_zero_as_in_the_reference() -> None:
    assert score_contact(every(10, 1, -40)) == 0.0


def test_score_grows_with_duration_and_proximity() -> None:
    assert score_contact(every(10, 5, -40)) < score_contact(every(10, 10, -40))
    assert score_contact(every(10, 10, -70)) < score_contact(every(10, 10, -50))


def test_risk_aggregation() -> None:
    assert risk([]) == 0.0
    assert risk([10.0, 5.0]) == pytest.approx(1 - math.exp(-0.0071 * 15))
    assert not is_at_risk([14.0])
    assert is_at_risk([14.0, 1.0])
    assert risk_level([]) == 0 and risk_level([20.0]) == 4
    assert 0 < risk_level([10.0]) < 4


def test_configuration_is_used() -> None:
    strict = ScoringConfig(risk_threshold=0.5)
    assert is_at_risk([20.0]) and not is_at_risk([20.0], strict)
    assert DEFAULT_SCORING.deltas == (39.0, 27.0, 23.0, 21.0, 20.0, 15.0)
