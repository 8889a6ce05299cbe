"""The scanner interface every backend implements, the one place raw fields become Sightings, and
the one place reads over a connection are scheduled, bounded and counted.

Two kinds of 0xFD64 advertisers carry no HELLO in their advertisement: an iPhone with the app in
the foreground (the UUID only) and one in the background (Apple's overflow area only). Their HELLO
is read from their characteristic over a connection, with the RSSI of the advertisement, as the
apps did. ``PeerReads`` decides when: at most once per peer per ``hello_period``; a failed or timed
out attempt is retried at most ``max_attempts`` times in that period, with growing delays; then
the peer waits for the next period. Each attempt is bounded by ``read_timeout`` (connect,
discovery, read and disconnect together), and one connection runs at a time, so a peer that does
not answer costs at most ``read_timeout`` and never stops the scanner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ble.calibration import DEFAULT_TX_GAIN
from ble.collector import READ, Sighting
from ble.payload import PayloadError, decode_gatt_value, decode_service_data, overflow_has_robert

log = logging.getLogger(__name__)

SightingCallback = Callable[[Sighting], None]

DEFAULT_HELLO_PERIOD = 10.0
"""Seconds between two reads of the same peer (*choice*: the apps' scan window was of this order;
a HELLO read is valid for the whole tolerance window, so reading more often adds nothing)."""
DEFAULT_READ_TIMEOUT = 5.0
DEFAULT_READ_ATTEMPTS = 3
DEFAULT_RETRY_DELAY = 1.0


def sighting_from_fields(
    address: str,
    rssi: int,
    robert_service_data: bytes | None,
    apple_data: bytes | None,
    counters: Counter[str] | None = None,
    robert_uuid_listed: bool = False,
) -> Sighting | None:
    """A Sighting for an advertisement, or None if it is not a 0xFD64 advertiser.

    Service data wins; else the UUID in the list (a foreground iPhone) or our bit in Apple's
    overflow area (a background iPhone) make a sighting without payload, to be read.
    Malformed service data under 0xFD64 is counted (``malformed``) and dropped, never raised:
    one broken sender must not stop the scanner.
    """
    if robert_service_data is not None:
        try:
            payload = decode_service_data(robert_service_data)
        except PayloadError as exc:
            if counters is not None:
                counters["malformed"] += 1
            log.debug("malformed 0xFD64 payload from %s: %s", address, exc)
            return None
        return Sighting(address, rssi, payload)
    if robert_uuid_listed:
        return Sighting(address, rssi, None, uuid_only=True)
    if overflow_has_robert(apple_data):
        return Sighting(address, rssi, None, apple_overflow=True)
    return None


@dataclass(slots=True)
class _PeerState:
    period_start: float
    attempts: int = 0
    next_try: float = 0.0
    in_flight: bool = False
    done: bool = False


class PeerReads:
    """When to connect to a peer: at most once per period, one attempt at a time, failures
    retried after growing delays (``retry_delay``, doubled each time), at most ``max_attempts``
    attempts per period."""

    def __init__(
        self,
        hello_period: float = DEFAULT_HELLO_PERIOD,
        max_attempts: int = DEFAULT_READ_ATTEMPTS,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if hello_period <= 0 or max_attempts < 1 or retry_delay < 0:
            raise ValueError("hello_period > 0, max_attempts >= 1, retry_delay >= 0")
        self.hello_period = hello_period
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self._clock = clock
        self._peers: dict[str, _PeerState] = {}

    def due(self, peer: str) -> bool:
        """True if a read of ``peer`` should start now (it is then in flight until settled)."""
        now = self._clock()
        state = self._peers.get(peer)
        if state is None or (now - state.period_start >= self.hello_period and not state.in_flight):
            if len(self._peers) > 4096:  # rotating addresses: forget finished periods
                self._peers = {
                    p: s for p, s in self._peers.items() if now - s.period_start < self.hello_period
                }
            state = self._peers[peer] = _PeerState(now, next_try=now)
        if (
            state.done
            or state.in_flight
            or state.attempts >= self.max_attempts
            or now < state.next_try
        ):
            return False
        state.attempts += 1
        state.in_flight = True
        return True

    def succeeded(self, peer: str) -> None:
        """The read worked: nothing more for this peer until its next period."""
        state = self._peers.get(peer)
        if state is not None:
            state.in_flight = False
            state.done = True

    def failed(self, peer: str) -> bool:
        """The read failed: wait before the next attempt; True if that was the last one."""
        state = self._peers.get(peer)
        if state is None:
            return False
        state.in_flight = False
        state.next_try = self._clock() + self.retry_delay * 2 ** (state.attempts - 1)
        return state.attempts >= self.max_attempts


class HelloScanner(ABC):
    """Listens for StopCovid advertisements, reports each as a Sighting, reads iPhones."""

    name: str = "abstract"

    def __init__(
        self,
        *,
        read_gatt: bool = True,
        default_tx_gain: int = DEFAULT_TX_GAIN,
        hello_period: float = DEFAULT_HELLO_PERIOD,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        read_attempts: int = DEFAULT_READ_ATTEMPTS,
        retry_delay: float = DEFAULT_RETRY_DELAY,
    ) -> None:
        self.counters: Counter[str] = Counter()
        """ignored, malformed, gatt_read, gatt_failed, gatt_timeouts, gatt_gave_up."""
        self.mode = "stopped"
        """How the scanner actually runs: 'passive', 'active' or 'stopped' (for messages)."""
        self.read_gatt = read_gatt
        self.default_tx_gain = default_tx_gain
        self.read_timeout = read_timeout
        self.reads = PeerReads(hello_period, read_attempts, retry_delay)
        self._on_sighting: SightingCallback | None = None
        self._read_tasks: set[asyncio.Task[None]] = set()
        self._one_connection = asyncio.Lock()  # one connection at a time

    @abstractmethod
    async def start(self, on_sighting: SightingCallback) -> None:
        """Begin scanning; raises the backend's errors (mapped by ``ble.errors``)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop scanning and release what ``start`` took; safe to call twice."""

    async def read_characteristic(self, peer: Any) -> bytes:
        """Connect to ``peer`` (the backend's handle), read the 0xFD64 characteristic, disconnect.

        Raises whatever the library raises; the caller bounds the time and counts failures.
        """
        raise NotImplementedError(f"the {self.name} scanner does not read over GATT")

    def deliver(self, sighting: Sighting, peer: Any = None, connectable: bool = True) -> None:
        """Hand a sighting on, and read the peer if it advertises 0xFD64 without a payload."""
        if self._on_sighting is None:
            return
        self._on_sighting(sighting)
        if sighting.wants_read and connectable and self.read_gatt:
            self._maybe_read(sighting, sighting.address if peer is None else peer)

    def _maybe_read(self, sighting: Sighting, peer: Any) -> None:
        if not self.reads.due(sighting.address):
            return
        task = asyncio.get_running_loop().create_task(self._read(sighting, peer))
        self._read_tasks.add(task)
        task.add_done_callback(self._read_tasks.discard)

    async def _read(self, sighting: Sighting, peer: Any) -> None:
        address = sighting.address
        try:
            async with self._one_connection:
                if self._on_sighting is None:
                    self.reads.failed(address)
                    return  # stopped while waiting for the connection slot
                async with asyncio.timeout(self.read_timeout):
                    value = await self.read_characteristic(peer)
            payload = decode_gatt_value(value, self.default_tx_gain)
        except TimeoutError:
            self.counters["gatt_timeouts"] += 1
            self._failed(address, "timed out")
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any library failure of one peer must not stop scanning
            self.counters["gatt_failed"] += 1
            self._failed(address, f"{type(exc).__name__}: {exc}")
            return
        self.reads.succeeded(address)
        self.counters["gatt_read"] += 1
        if self._on_sighting is not None:
            self._on_sighting(Sighting(address, sighting.rssi, payload, via=READ))

    def _failed(self, address: str, why: str) -> None:
        if self.reads.failed(address):
            self.counters["gatt_gave_up"] += 1
            log.info("reading %s: %s; giving up until its next HELLO period", address, why)
        else:
            log.info("reading %s: %s; will retry", address, why)

    async def cancel_reads(self) -> None:
        """Cancel the reads in flight (``stop`` calls it)."""
        tasks = list(self._read_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
