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

HELLOs that come over a connection (read from a peer's characteristic, or written to ours) are
one message each, not a stream: the same 16 bytes delivered again within
``CONNECTED_MEMORY`` seconds (a writer retrying, a read racing a write) are dropped and counted.
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

CONNECTED_MEMORY = 300
"""Seconds a HELLO received over a connection is remembered to drop its repeats (longer than
the HELLO time tolerance, so a repeat is either dropped here or refused as stale later)."""
RSSI_MEMORY = 60
"""Seconds the last advertisement RSSI of an address is kept, for writes that carry none."""

ADVERTISEMENT, READ, WRITE = "advertisement", "read", "write"


@dataclass(frozen=True, slots=True)
class Sighting:
    """One advertisement heard: who, how loud, and what it carried."""

    address: str
    rssi: int
    payload: RobertPayload | None = None
    apple_overflow: bool = False
    """An iPhone advertising 0xFD64 only in its overflow area (app in the background)."""
    uuid_only: bool = False
    """An iPhone advertising the 0xFD64 UUID without service data (app in the foreground)."""
    via: str = ADVERTISEMENT
    """How the payload came: 'advertisement', 'read' (we read the peer's characteristic) or
    'write' (the peer wrote to ours)."""
    rssi_calibrated: int | None = None
    """Set when the peer measured it for us (an Android central's 19th written byte)."""

    @property
    def wants_read(self) -> bool:
        """An advertiser of 0xFD64 whose HELLO must be read over a connection."""
        return self.payload is None and (self.apple_overflow or self.uuid_only)


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
    via: str = ADVERTISEMENT


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
        """sightings, records, duplicates_merged, overflow_sightings, uuid_only_sightings,
        connected_duplicates, sink_errors."""
        self.overflow_addresses: set[str] = set()
        self._connected: dict[bytes, int] = {}
        self._last_rssi: dict[str, tuple[int, int]] = {}

    def rssi_of(self, address: str) -> int | None:
        """The raw RSSI of the last advertisement heard from ``address`` within RSSI_MEMORY s."""
        known = self._last_rssi.get(address)
        if known is None or self._clock() - known[1] > RSSI_MEMORY:
            return None
        return known[0]

    def feed(self, sighting: Sighting) -> None:
        """Take one sighting (from a scanner callback); records are emitted by ``flush``."""
        now = self._clock()
        self.counters["sightings"] += 1
        if sighting.via == ADVERTISEMENT:
            if len(self._last_rssi) > 4096:  # rotating addresses: forget the old ones
                self._last_rssi = {
                    a: v for a, v in self._last_rssi.items() if now - v[1] <= RSSI_MEMORY
                }
            self._last_rssi[sighting.address] = (sighting.rssi, now)
        if sighting.payload is None:
            if sighting.apple_overflow:
                self.counters["overflow_sightings"] += 1
                self.overflow_addresses.add(sighting.address)
            if sighting.uuid_only:
                self.counters["uuid_only_sightings"] += 1
            return
        if sighting.via != ADVERTISEMENT and self._seen_over_connection(
            sighting.payload.hello, now
        ):
            self.counters["connected_duplicates"] += 1
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

    def _seen_over_connection(self, hello: bytes, now: int) -> bool:
        """True if these bytes already came over a connection lately; remembers them if not."""
        if len(self._connected) > 1024:  # prune now and then, not on every feed
            self._connected = {
                h: t for h, t in self._connected.items() if now - t <= CONNECTED_MEMORY
            }
        seen = self._connected.get(hello)
        if seen is not None and now - seen <= CONNECTED_MEMORY:
            return True
        self._connected[hello] = now
        return False

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
        calibrated = (
            calibrate_rssi(sighting.rssi, payload.tx_gain, self._rx_gain)
            if sighting.rssi_calibrated is None
            else sighting.rssi_calibrated
        )
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
            sighting.via,
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
