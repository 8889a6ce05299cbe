"""The radio between simulated phones: distance in, calibrated RSSI of each HELLO heard out.

Log-distance path loss from a reference RSSI at 1 m, extra attenuation when a body is in the way
(drawn per pair-interval), Gaussian noise per HELLO, and per-model TX/RX gains: the true gains
of a phone model differ a little from the app's calibration table, and the phone reports
``rssiCalibrated = raw - tx_gain - rx_gain`` with the table's values, as the StopCovid apps did
[robert.md: Bluetooth format of the StopCovid apps].

Random draws per HELLO come from a counter-based hash of (encounter key, HELLO index), not from
a stateful generator: the same HELLO gets the same RSSI whether the whole day is counted at once
or one reporter's receptions are rebuilt later, in any order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Keys = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class PhoneModel:
    """A phone model: the app's calibration gains and how far the true gains are from them."""

    name: str
    tx_gain: float
    """TX compensation of the app's table (dB), sent in the advertisement."""
    rx_gain: float
    """RX compensation of the app's table (dB)."""
    tx_error: float = 0.0
    """True TX gain minus the table's (dB): the calibration is never perfect."""
    rx_error: float = 0.0

    @property
    def true_tx(self) -> float:
        """The gain the radio really applies when sending."""
        return self.tx_gain + self.tx_error

    @property
    def true_rx(self) -> float:
        """The gain the radio really applies when receiving."""
        return self.rx_gain + self.rx_error


PHONE_MODELS: tuple[PhoneModel, ...] = (
    # Illustrative values around the app's defaults (TX -30 dB, RX -5 dB), not a real table.
    PhoneModel("default", -30.0, -5.0, 0.0, 0.0),
    PhoneModel("loud-tx", -22.0, -4.0, 1.5, -1.0),
    PhoneModel("quiet-rx", -31.0, -12.0, -2.0, 1.5),
    PhoneModel("mid-range", -27.0, -7.0, 2.5, -2.0),
)
MODEL_SHARES: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)


@dataclass(frozen=True, slots=True)
class RadioConfig:
    """Parameters of the radio model (dB, dBm, metres, seconds)."""

    rssi_1m: float = -55.0
    """Calibrated RSSI at 1 m with nothing in the way."""
    path_loss_exponent: float = 2.5
    """Indoor log-distance exponent (2 in free space, 2-3 indoors)."""
    noise_sd: float = 4.0
    """Standard deviation of the per-HELLO Gaussian noise."""
    shadow_probability: float = 0.5
    """Chance that a body is between sender and receiver for a pair-interval."""
    shadow_db: tuple[float, float] = (3.0, 15.0)
    """Range of the extra attenuation a body adds."""
    sensitivity: float = -110.0
    """Raw RSSI below which a HELLO is not received."""
    loss: float = 0.1
    """Share of HELLOs missed anyway (scan windows, collisions)."""
    hello_interval: int = 30
    """Seconds between two HELLOs a receiver keeps from one sender (the effective rate)."""
    min_distance: float = 0.05
    """Distances are clipped here so the log stays finite."""


def mean_calibrated_rssi(distance: Floats, config: RadioConfig) -> Floats:
    """Calibrated RSSI without noise or body: rssi_1m - 10 n log10(d)."""
    d = np.maximum(distance, config.min_distance)
    return config.rssi_1m - 10.0 * config.path_loss_exponent * np.log10(d)


def raw_rssi(
    distance: Floats,
    shadow: Floats,
    noise: Floats,
    true_tx: Floats,
    true_rx: Floats,
    config: RadioConfig,
) -> Floats:
    """What the receiving chip measures: path loss, body, noise and both phones' true gains."""
    return mean_calibrated_rssi(distance, config) - shadow + noise + true_tx + true_rx


def calibrate(raw: Floats, tx_gain: Floats, rx_gain: Floats) -> Ints:
    """The app's ``rssiCalibrated``: raw minus the table's TX and RX gains, rounded to dB."""
    return np.rint(raw - tx_gain - rx_gain).astype(np.int64)


# --- counter-based random numbers ------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: Keys) -> Keys:
    """SplitMix64 finaliser: a well-mixed 64-bit hash of each element (wraps on overflow)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def uniform(keys: Keys, stream: int) -> Floats:
    """A uniform in [0, 1) per key, independent across ``stream`` values."""
    with np.errstate(over="ignore"):
        mixed = splitmix64(keys ^ splitmix64(np.full(1, stream, dtype=np.uint64)))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def normal(keys: Keys, stream: int) -> Floats:
    """A standard normal per key (Box-Muller on two hashed uniforms)."""
    u1 = 1.0 - uniform(keys, stream)  # (0, 1], so the log is finite
    u2 = uniform(keys, stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def pair_key(seed: int, encounter_id: Ints, direction: int) -> Keys:
    """The hash key of one direction of one encounter."""
    base = splitmix64(np.full(1, seed, dtype=np.uint64))
    with np.errstate(over="ignore"):
        return splitmix64(base ^ (encounter_id.astype(np.uint64) * np.uint64(2) + direction))


@dataclass(frozen=True, slots=True)
class Receptions:
    """HELLOs heard, one row each: who sent, who heard, when sent and heard, calibrated RSSI."""

    sender: Ints
    receiver: Ints
    time_sent: Ints
    """NTP seconds of the HELLO's time field: senders broadcast one HELLO per interval step."""
    time_collected: Ints
    rssi: Ints

    def __len__(self) -> int:
        return len(self.sender)


def hear(
    sender: Ints,
    receiver: Ints,
    start: Ints,
    duration: Ints,
    distance: Floats,
    shadow: Floats,
    key: Keys,
    model: Ints,
    config: RadioConfig,
) -> Receptions:
    """The HELLOs one direction of each encounter delivers.

    A sender builds one HELLO per ``hello_interval`` step (time field = the step's start); the
    receiver keeps each step's HELLO it hears, 0-2 s later. ``model`` maps a phone to its index
    in ``PHONE_MODELS``.
    """
    step = config.hello_interval
    first = -(-start // step)
    count = np.maximum(-(-(start + duration) // step) - first, 0)
    total = int(count.sum())
    row = np.repeat(np.arange(len(count)), count)
    offsets = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    with np.errstate(over="ignore"):
        hello_keys = splitmix64(key[row] ^ offsets.astype(np.uint64))
    time_sent = (first[row] + offsets) * step
    delay = (uniform(hello_keys, 1) * 3).astype(np.int64)
    noise = normal(hello_keys, 2) * config.noise_sd
    lost = uniform(hello_keys, 4) < config.loss
    tx_true, rx_true, tx_table, rx_table = _gains()
    s_model, r_model = model[sender[row]], model[receiver[row]]
    raw = raw_rssi(distance[row], shadow[row], noise, tx_true[s_model], rx_true[r_model], config)
    kept = ~lost & (raw >= config.sensitivity)
    rssi = calibrate(raw[kept], tx_table[s_model[kept]], rx_table[r_model[kept]])
    return Receptions(
        sender[row][kept],
        receiver[row][kept],
        time_sent[kept],
        time_sent[kept] + delay[kept],
        rssi,
    )


def _gains() -> tuple[Floats, Floats, Floats, Floats]:
    return (
        np.array([m.true_tx for m in PHONE_MODELS]),
        np.array([m.true_rx for m in PHONE_MODELS]),
        np.array([m.tx_gain for m in PHONE_MODELS]),
        np.array([m.rx_gain for m in PHONE_MODELS]),
    )


def draw_shadow(rng: np.random.Generator, size: int, config: RadioConfig) -> Floats:
    """Extra attenuation of a body for each pair-interval direction (0 when none is in the way)."""
    low, high = config.shadow_db
    body = rng.random(size) < config.shadow_probability
    return np.where(body, rng.uniform(low, high, size), 0.0)
