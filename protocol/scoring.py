"""Exposure scoring [robert.md: Risk scoring] (the reference's "algorithm version 2").

A contact is what one reported phone heard of one EBID (so within about one epoch). Its HELLOs
are bucketed by minute; each minute's calibrated RSSIs (with the next minute's) are averaged by a
soft-max, turned into a proximity weight gamma in [0, 1], and the contact's score is about the
number of minutes of close exposure. Scores add up per registration, and
``risk = 1 - exp(-R0 * sum(scores))`` decides whether its holder is notified.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protocol.epochs import EPOCHS_PER_DAY

CONTAGIOUS_PERIOD_DAYS = 14
"""Days a HELLO or an exposure matters: phones keep and report the HELLOs of the last 14 days,
and the server purges exposed epochs older than that [robert.md: Report]."""
AT_RISK_DAYS = 7
"""Only an exposure within the last 7 days makes a registration at risk
[robert.md: What the later reference server added]."""


@dataclass(frozen=True, slots=True)
class ScoringConfig:
    """Every parameter of exposure scoring, with the reference's values as defaults."""

    rssi_error_above: int = -5
    """RSSI strictly above this is a device error and is dropped (dBm)."""
    rssi_max: int = -35
    """RSSI is clipped to at most this value (dBm): closer than ~10 cm adds nothing."""
    rssi_softmax: float = 10 / math.log(10)
    """A: temperature of the soft-max average of RSSIs within a minute (dB)."""
    p0: float = -66.0
    """RSSI (dBm) below which a minute counts as no exposure."""
    deltas: tuple[float, ...] = (39.0, 27.0, 23.0, 21.0, 20.0, 15.0)
    """Width (dB) of the RSSI ramp from p0 to full exposure, by number of samples."""
    gamma_softmax: float = 0.2
    """B: temperature of the soft-max over the minutes' gammas."""
    gain: float = 1.2
    """Multiplier of the soft-max of gammas before clipping at 1."""
    window_minutes: int = 15
    """Minutes of a contact that are scored (one epoch)."""
    r0: float = 0.0071
    """Risk per unit of score: risk = 1 - exp(-r0 * sum of scores)."""
    risk_threshold: float = 0.1
    """A registration is at risk when its risk reaches this (about 15 close minutes)."""
    at_risk_days: int = AT_RISK_DAYS
    """Only exposures in the last 7 days make a registration at risk."""
    retention_days: int = CONTAGIOUS_PERIOD_DAYS
    """Exposed epochs older than the contagious period are purged."""


DEFAULT_SCORING = ScoringConfig()


def softmax_average(values: Sequence[float], temperature: float) -> float:
    """temperature * ln(mean(exp(v / temperature))): a mean that leans to the largest value."""
    top = max(values)  # subtract the max for numerical stability
    total = sum(math.exp((v - top) / temperature) for v in values)
    return top + temperature * math.log(total / len(values))


def score_contact(
    samples: Iterable[tuple[int, int]], config: ScoringConfig = DEFAULT_SCORING
) -> float:
    """Score of one contact from its (time collected in NTP seconds, calibrated RSSI) samples."""
    cap, error = config.rssi_max, config.rssi_error_above
    kept = [(t, min(rssi, cap)) for t, rssi in samples if rssi <= error]
    if not kept:
        return 0.0
    t0 = min(t for t, _ in kept)
    minutes: list[list[int]] = [[] for _ in range(config.window_minutes)]
    for t, rssi in kept:
        k = (t - t0) // 60
        if k < config.window_minutes:
            minutes[k].append(rssi)
    gammas = []
    last = config.window_minutes - 1
    for k in range(config.window_minutes):
        window = minutes[k] + (minutes[k + 1] if k < last else [])
        if not window:
            continue
        q = softmax_average(window, config.rssi_softmax)
        delta = config.deltas[min(len(window), len(config.deltas) - 1)]
        gammas.append(min(max((q - config.p0) / delta, 0.0), 1.0))
    k_max = max(k for k in range(config.window_minutes) if minutes[k])
    return min(config.gain * softmax_average(gammas, config.gamma_softmax), 1.0) * k_max


def risk(scores: Iterable[float], config: ScoringConfig = DEFAULT_SCORING) -> float:
    """Probability-like risk of a registration from the scores of its exposures."""
    return 1.0 - math.exp(-config.r0 * sum(scores))


def is_at_risk(scores: Iterable[float], config: ScoringConfig = DEFAULT_SCORING) -> bool:
    """True when the exposures' risk reaches the notification threshold."""
    return risk(scores, config) >= config.risk_threshold


def risk_level(scores: Iterable[float], config: ScoringConfig = DEFAULT_SCORING) -> int:
    """``riskLevel`` of the later status answer: 0 (none) to 4 (at risk).

    *Choice*: the levels split [0, threshold) in quarters, so 4 means at risk and 1 to 3 say
    how close a registration is to it; the reference left the mapping to its configuration.
    """
    value = risk(scores, config)
    if value >= config.risk_threshold:
        return 4
    return min(3, int(4 * value / config.risk_threshold))


@dataclass(frozen=True, slots=True)
class Assessment:
    """A registration's risk, as the status answer reports it."""

    at_risk: bool
    risk_level: int
    last_contact_epoch: int
    """Latest exposed epoch, or -1 if there is none."""


def assess(
    scores_by_epoch: dict[int, float], now_epoch: int, config: ScoringConfig = DEFAULT_SCORING
) -> Assessment:
    """Risk from the exposures retained for a registration [robert.md: Risk scoring].

    Only exposures within the contagious period count (older ones are purged anyway), and a
    registration is at risk only while its last exposure is within ``at_risk_days``
    [robert.md: What the later reference server added].
    """
    oldest = now_epoch - config.retention_days * EPOCHS_PER_DAY
    recent = [score for epoch, score in scores_by_epoch.items() if epoch >= oldest]
    last = max((e for e, s in scores_by_epoch.items() if e >= oldest and s > 0), default=-1)
    level = risk_level(recent, config)
    fresh = last >= now_epoch - config.at_risk_days * EPOCHS_PER_DAY
    return Assessment(
        at_risk=level == 4 and fresh, risk_level=level if fresh else 0, last_contact_epoch=last
    )
