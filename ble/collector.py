"""From heard advertisements to HELLO records: parse, calibrate, merge duplicates, hand to a sink.

Every scanner backend reduces what it hears to a ``Sighting`` (address, raw RSSI and the
payload under 0xFD64 or the Apple overflow flag) and gives it to one ``HelloCollector``, so
calibration and de-duplication are written once.

De-duplication: a scanner with duplicate filtering off (which we want, for RSSI samples) hears
the same advertisement many times a second, and BlueZ may report it twice (advertising and
scan-response events). Sightings of the same HELLO bytes received within the same NTP second are
merged into one record carrying the **maximum** raw RSSI of the second. Max rather than mean:
obstacles and the body only ever weaken a signal, so the strongest sample is the best estimate
of the path loss; mean of dB values would also be biased by the occasional deep fade.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from ble.calibration import DEFAULT_RX_GAIN, calibrate_rssi
from ble.interfaces import Clock, HelloSink
from ble.payload import RobertPayload
from protocol.hello import Hello

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One advertisement heard: who, how loud, and what it carried."""

    address: str
    rssi: int
    payload: RobertPayload | None = None
    apple_overflow: bool = False
    """An iPhone advertising 0xFD64 only in its overflow area (app in the background)."""


@dataclass(frozen=True, slots=True)
class HeardHello:
    """One HELLO as handed to the sink, plus what the live view and ``ble scan`` show.

    ``hello`` is the message parsed by ``protocol.hello.Hello`` (its byte layout lives there
    only); ``raw`` the 16 bytes heard."""

    raw: bytes
    hello: Hello
    received_ntp: int
    rssi_raw: int
    rssi_calibrated: int
    tx_gain: int
    version: int
    address: str
    samples: int


class RecordListener:
    """Optional observer of records (the CLI's printer and live table)."""

    def on_record(self, record: HeardHello) -> None:
        """Called once per record given to the sink."""


class HelloCollector:
    """Turns sightings into calibrated, de-duplicated records for a ``HelloSink``."""

    def __init__(
        self,
        sink: HelloSink,
        clock: Clock,
        rx_gain: int = DEFAULT_RX_GAIN,
        listeners: tuple[RecordListener, ...] = (),
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._rx_gain = rx_gain
        self._listeners = listeners
        self._pending: dict[tuple[bytes, int], tuple[Sighting, int]] = {}
        self.counters: Counter[str] = Counter()
        """sightings, records, duplicates_merged, overflow_sightings, sink_errors."""
        self.overflow_addresses: set[str] = set()

    def feed(self, sighting: Sighting) -> None:
        """Take one sighting (from a scanner callback); records are emitted by ``flush``."""
        now = self._clock()
        self.counters["sightings"] += 1
        if sighting.payload is None:
            if sighting.apple_overflow:
                self.counters["overflow_sightings"] += 1
                self.overflow_addresses.add(sighting.address)
            return
        key = (sighting.payload.hello, now)
        previous = self._pending.get(key)
        if previous is None:
            self._pending[key] = (sighting, 1)
        else:
            best, count = previous
            self.counters["duplicates_merged"] += 1
            self._pending[key] = (sighting if sighting.rssi > best.rssi else best, count + 1)
        self.flush(now)

    def flush(self, now: int | None = None) -> int:
        """Emit the records of every second before ``now`` (all of them if ``now`` is None)."""
        done = [key for key in self._pending if now is None or key[1] < now]
        for key in done:
            sighting, count = self._pending.pop(key)
            self._emit(sighting, key[1], count)
        return len(done)

    def _emit(self, sighting: Sighting, received_ntp: int, samples: int) -> None:
        payload = sighting.payload
        assert payload is not None  # only payload sightings are pending
        calibrated = calibrate_rssi(sighting.rssi, payload.tx_gain, self._rx_gain)
        record = HeardHello(
            payload.hello,
            Hello.parse(payload.hello),
            received_ntp,
            sighting.rssi,
            calibrated,
            payload.tx_gain,
            payload.version,
            sighting.address,
            samples,
        )
        try:
            self._sink.record_hello(payload.hello, received_ntp, calibrated)
        except Exception:  # a sink bug must not stop the radio; counted and logged
            self.counters["sink_errors"] += 1
            log.exception("sink refused a HELLO")
            return
        self.counters["records"] += 1
        for listener in self._listeners:
            listener.on_record(record)
