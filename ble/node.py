"""A ROBERT phone on a radio: advertise the source's HELLO, feed what we hear to the sink.

The CLI and the tests share this. The HELLO's time field is the low 16 bits of the sender's NTP
seconds, so the advertised payload goes stale by the second: the node asks the source for a
fresh HELLO every ``refresh_interval`` seconds (default 2 s) and at each epoch boundary (when
the EBID changes), and re-advertises only if the bytes changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ble.advertiser.base import HelloAdvertiser
from ble.calibration import DEFAULT_RX_GAIN, DEFAULT_TX_GAIN
from ble.collector import HelloCollector, RecordListener
from ble.errors import describe, map_radio_error, raise_if_cancelling, retry
from ble.interfaces import Clock, HelloSink, HelloSource
from ble.payload import PAYLOAD_VERSION, RobertPayload
from ble.scanner.base import HelloScanner
from protocol.epochs import EPOCH_DURATION, REFERENCE_TIME_START, epoch_of, epoch_start
from protocol.hello import HELLO_SIZE

log = logging.getLogger(__name__)

DEFAULT_REFRESH = 2.0
FLUSH_INTERVAL = 0.25
"""How often records of finished seconds are handed to the sink (see ``collector``)."""


def seconds_to_next_refresh(now_ntp: int, refresh_interval: float, time_start: int) -> float:
    """Wait until the next refresh: the interval, or sooner if an epoch starts before it."""
    next_epoch = epoch_start(epoch_of(now_ntp, time_start) + 1, time_start)
    return max(0.0, min(refresh_interval, float(next_epoch - now_ntp)))


class BleNode:
    """Advertiser + scanner + collector, with an injected clock (NTP seconds)."""

    def __init__(
        self,
        source: HelloSource | None,
        sink: HelloSink,
        clock: Clock,
        *,
        advertiser: HelloAdvertiser | None,
        scanner: HelloScanner | None,
        tx_gain: int = DEFAULT_TX_GAIN,
        rx_gain: int = DEFAULT_RX_GAIN,
        version: int = PAYLOAD_VERSION,
        refresh_interval: float = DEFAULT_REFRESH,
        time_start: int = REFERENCE_TIME_START,
        listeners: tuple[RecordListener, ...] = (),
        report: Callable[[str], None] = log.info,
        retry_initial: float = 1.0,
        start_attempts: int | None = None,
    ) -> None:
        if refresh_interval <= 0 or refresh_interval > EPOCH_DURATION:
            raise ValueError("refresh_interval must be in (0, 900] seconds")
        self.source = source
        self.clock = clock
        self.advertiser = advertiser
        self.scanner = scanner
        self.collector = HelloCollector(sink, clock, rx_gain, listeners)
        if advertiser is not None:  # HELLOs written to our characteristic are heard HELLOs
            advertiser.on_sighting = self.collector.feed
            advertiser.rssi_of = self.collector.rssi_of
        self.tx_gain = tx_gain
        self.version = version
        self.refresh_interval = refresh_interval
        self.time_start = time_start
        self.report = report
        self.retry_initial = retry_initial
        self.start_attempts = start_attempts
        """None: start the radio in the background, retrying radio errors for ever (a service
        waiting for its adapter). A number: ``start`` tries that many times and raises the last
        radio error (the CLI: no radio means a one-line message and a non-zero exit)."""
        self.advertising_since: float | None = None
        """Loop time at which our first advertisement went on the air (for measurements)."""
        self._tasks: list[asyncio.Task[None]] = []

    def payload_for(self, now_ntp: int) -> RobertPayload | None:
        """The payload to advertise at ``now_ntp``, or None if the source has no HELLO."""
        if self.source is None:
            return None
        hello = self.source.current_hello(now_ntp)
        if hello is None:
            return None
        if len(hello) != HELLO_SIZE:
            raise ValueError(f"HelloSource gave {len(hello)} bytes, not {HELLO_SIZE}")
        return RobertPayload(bytes(hello), self.version, self.tx_gain)

    async def refresh(self) -> None:
        """Put the source's current HELLO on the air (start, update or stop as needed)."""
        if self.advertiser is None:
            return
        advertiser = self.advertiser
        payload = self.payload_for(self.clock())
        if payload is None:
            if advertiser.current is not None:
                await advertiser.stop()
            return
        if advertiser.current is None:
            asked_at = asyncio.get_running_loop().time()
            await advertiser.start(payload)
            if self.advertising_since is None:
                self.advertising_since = asked_at
        elif advertiser.current != payload:
            await advertiser.update(payload)

    async def _advertise_loop(self) -> None:
        while True:
            await retry(
                self.refresh,
                what=f"advertiser {self.advertiser.name if self.advertiser else ''}",
                report=self.report,
                initial_delay=self.retry_initial,
            )
            raise_if_cancelling()  # in case the radio library swallowed our cancellation
            now = self.clock()
            await asyncio.sleep(
                seconds_to_next_refresh(now, self.refresh_interval, self.time_start)
            )

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.collector.flush(self.clock())

    async def _start_scanner(self) -> None:
        assert self.scanner is not None
        scanner = self.scanner
        await retry(
            lambda: scanner.start(self.collector.feed),
            what=f"scanner {scanner.name}",
            report=self.report,
            initial_delay=self.retry_initial,
        )
        self.report(f"scanner {scanner.name} running ({scanner.mode} scanning)")

    async def _start_now(self, attempts: int) -> None:
        """Start the scanner and put the first HELLO on the air, or raise the radio error."""
        if self.scanner is not None:
            scanner = self.scanner
            await retry(
                lambda: scanner.start(self.collector.feed),
                what=f"scanner {scanner.name}",
                report=self.report,
                initial_delay=self.retry_initial,
                max_attempts=attempts,
            )
            self.report(f"scanner {scanner.name} running ({scanner.mode} scanning)")
        if self.advertiser is not None:
            await retry(
                self.refresh,
                what=f"advertiser {self.advertiser.name}",
                report=self.report,
                initial_delay=self.retry_initial,
                max_attempts=attempts,
            )

    async def start(self) -> None:
        """Start advertising and scanning: in the background with retries for ever, or, with
        ``start_attempts``, here, raising the radio error once the attempts are spent."""
        loop = asyncio.get_running_loop()
        if self.start_attempts is not None:
            try:
                await self._start_now(self.start_attempts)
            except BaseException:
                await self.stop()
                raise
        elif self.scanner is not None:
            self._tasks.append(loop.create_task(self._start_scanner()))
        if self.scanner is not None:
            self._tasks.append(loop.create_task(self._flush_loop()))
        if self.advertiser is not None:
            self._tasks.append(loop.create_task(self._advertise_loop()))

    async def stop(self) -> None:
        """Cancel the loops, stop the radio, and hand the last pending records to the sink."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for part in (self.scanner, self.advertiser):
            if part is None:
                continue
            try:
                await part.stop()
            except Exception as exc:  # the radio may already be gone; say so, do not crash
                if map_radio_error(exc) is None:
                    raise
                self.report(f"stopping {part.name}: {describe(exc)}")
        self.collector.flush()

    async def __aenter__(self) -> BleNode:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
