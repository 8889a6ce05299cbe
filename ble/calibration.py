"""Per-model RSSI compensation gains [robert.md: Bluetooth format].

Calibrated RSSI = raw RSSI - sender's TX gain (carried in its payload) - our RX gain. The apps
shipped a table of gains per phone model, with TX -30 dB and RX -5 dB for unknown models; the
same defaults apply to laptops and Raspberry Pis unless measured and added here.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TX_GAIN = -30
DEFAULT_RX_GAIN = -5


@dataclass(frozen=True, slots=True)
class Gains:
    """Compensation gains of one device model, in dB."""

    tx: int = DEFAULT_TX_GAIN
    rx: int = DEFAULT_RX_GAIN


DEFAULT_GAINS = Gains()

MODEL_GAINS: dict[str, Gains] = {
    "default": DEFAULT_GAINS,
    # Unmeasured: these use the defaults until someone calibrates them against a phone.
    "raspberry-pi-4": DEFAULT_GAINS,
    "raspberry-pi-zero-2w": DEFAULT_GAINS,
    "laptop": DEFAULT_GAINS,
}
"""Known models; add a measured entry rather than passing gains on every command line."""


def gains_for(model: str | None) -> Gains:
    """Gains of a model name (case-insensitive); unknown or missing models get the defaults."""
    if model is None:
        return DEFAULT_GAINS
    return MODEL_GAINS.get(model.lower(), DEFAULT_GAINS)


def calibrate_rssi(raw_rssi: int, sender_tx_gain: int, receiver_rx_gain: int) -> int:
    """Calibrated RSSI as the apps computed it: raw - TX gain of sender - RX gain of receiver."""
    return raw_rssi - sender_tx_gain - receiver_rx_gain
