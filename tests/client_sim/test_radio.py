"""The radio model: path loss, calibration, and reproducible per-HELLO draws."""

from __future__ import annotations

import numpy as np

from client_sim.radio import (
    PHONE_MODELS,
    RadioConfig,
    calibrate,
    hear,
    mean_calibrated_rssi,
    pair_key,
    raw_rssi,
    uniform,
)

CONFIG = RadioConfig()


def test_rssi_decreases_with_distance() -> None:
    d = np.array([0.1, 0.5, 1.0, 2.0, 4.0, 8.0])
    rssi = mean_calibrated_rssi(d, CONFIG)
    assert np.all(np.diff(rssi) < 0)
    assert rssi[2] == CONFIG.rssi_1m
    # 10 n dB per decade of distance.
    assert np.isclose(rssi[0] - rssi[2], 10 * CONFIG.path_loss_exponent)


def test_calibration_removes_the_phone_models_gains() -> None:
    d, zero = np.array([1.5]), np.zeros(1)
    seen = set()
    for sender in PHONE_MODELS:
        for receiver in PHONE_MODELS:
            exact_tx, exact_rx = np.array([sender.tx_gain]), np.array([receiver.rx_gain])
            raw = raw_rssi(d, zero, zero, exact_tx, exact_rx, CONFIG)
            seen.add(int(calibrate(raw, exact_tx, exact_rx)[0]))
    assert seen == {int(np.rint(mean_calibrated_rssi(d, CONFIG)[0]))}


def test_body_shadowing_lowers_rssi() -> None:
    d, zero = np.array([1.0]), np.zeros(1)
    free = raw_rssi(d, zero, zero, zero, zero, CONFIG)
    shadowed = raw_rssi(d, np.array([10.0]), zero, zero, zero, CONFIG)
    assert shadowed[0] == free[0] - 10


def test_hashed_draws_are_uniform_and_reproducible() -> None:
    keys = np.arange(100_000, dtype=np.uint64)
    u = uniform(keys, 1)
    assert 0.49 < u.mean() < 0.51 and u.min() >= 0 and u.max() < 1
    assert np.array_equal(u, uniform(keys, 1))
    assert not np.array_equal(u, uniform(keys, 2))


def _hear(distance: float, duration: int, key_seed: int = 7) -> np.ndarray:
    one = np.array([0], dtype=np.int64)
    rx = hear(
        one,
        one + 1,
        np.array([3_900_000_000]),
        np.array([duration]),
        np.array([distance]),
        np.zeros(1),
        pair_key(key_seed, one, 0),
        np.zeros(2, dtype=np.int64),
        CONFIG,
    )
    return rx.rssi


def test_hear_rate_and_distance() -> None:
    near, far = _hear(0.5, 1200), _hear(4.0, 1200)
    expected = 1200 // CONFIG.hello_interval
    assert 0.7 * expected <= len(near) <= expected
    assert near.mean() > far.mean() + 10
    assert np.array_equal(near, _hear(0.5, 1200))  # same key, same HELLOs
