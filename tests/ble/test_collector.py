"""RSSI calibration and merging of duplicate HELLOs within one second."""

from __future__ import annotations

from ble.calibration import DEFAULT_RX_GAIN, DEFAULT_TX_GAIN, calibrate_rssi, gains_for
from ble.collector import HeardHello, HelloCollector, RecordListener, Sighting
from ble.payload import RobertPayload
from tests.ble.conftest import RecordingSink

HELLO_A = bytes(16)
HELLO_B = bytes(15) + b"\x01"


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Seen(RecordListener):
    def __init__(self) -> None:
        self.records: list[HeardHello] = []

    def on_record(self, record: HeardHello) -> None:
        self.records.append(record)


def test_calibration_formula_and_defaults() -> None:
    assert (DEFAULT_TX_GAIN, DEFAULT_RX_GAIN) == (-30, -5)
    assert calibrate_rssi(-70, -30, -5) == -35
    assert gains_for(None) == gains_for("unknown-model") == gains_for("Raspberry-Pi-4")


def test_record_is_calibrated_with_sender_tx_and_our_rx() -> None:
    sink, clock, seen = RecordingSink(), Clock(1000), Seen()
    collector = HelloCollector(sink, clock, rx_gain=-7, listeners=(seen,))
    collector.feed(Sighting("aa", -80, RobertPayload(HELLO_A, 3, -12)))
    collector.flush(1001)
    assert sink.records == [(HELLO_A, 1000, -80 + 12 + 7)]
    record = seen.records[0]
    assert (record.rssi_raw, record.tx_gain, record.version, record.samples) == (-80, -12, 3, 1)
    assert record.hello.ebid == HELLO_A[1:9] and record.hello.ecc == HELLO_A[:1]


def test_duplicates_in_one_second_merge_to_max_rssi() -> None:
    sink, clock = RecordingSink(), Clock(1000)
    collector = HelloCollector(sink, clock)
    for rssi in (-80, -62, -75):
        collector.feed(Sighting("aa", rssi, RobertPayload(HELLO_A)))
    assert sink.records == []  # the second is not over yet
    clock.now = 1001
    collector.feed(Sighting("aa", -90, RobertPayload(HELLO_A)))  # a new second: new record
    assert sink.records == [(HELLO_A, 1000, calibrate_rssi(-62, -30, -5))]
    assert collector.counters["duplicates_merged"] == 2
    collector.flush()
    assert [r[1] for r in sink.records] == [1000, 1001]


def test_different_hellos_are_not_merged() -> None:
    sink = RecordingSink()
    collector = HelloCollector(sink, Clock(1000))
    collector.feed(Sighting("aa", -60, RobertPayload(HELLO_A)))
    collector.feed(Sighting("aa", -60, RobertPayload(HELLO_B)))
    collector.flush()
    assert sorted(r[0] for r in sink.records) == [HELLO_A, HELLO_B]


def test_overflow_iphones_are_counted_not_recorded() -> None:
    sink = RecordingSink()
    collector = HelloCollector(sink, Clock(1000))
    collector.feed(Sighting("iphone", -60, None, apple_overflow=True))
    collector.flush()
    assert sink.records == []
    assert collector.counters["overflow_sightings"] == 1
    assert collector.overflow_addresses == {"iphone"}


def test_a_failing_sink_is_counted_and_does_not_raise() -> None:
    class Broken:
        def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
            raise RuntimeError("disk full")

    collector = HelloCollector(Broken(), Clock(1000))
    collector.feed(Sighting("aa", -60, RobertPayload(HELLO_A)))
    collector.flush()
    assert collector.counters["sink_errors"] == 1
