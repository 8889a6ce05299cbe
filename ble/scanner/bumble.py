"""Scanner on a bumble Device: real controllers, or virtual ones on a bumble LocalLink in tests.

Unlike bleak, bumble owns the controller, so when an Apple overflow advertisement says "a
background iPhone runs the app" we connect, read the 0xFD64 characteristic and report its HELLO
with the RSSI of that advertisement, as the apps did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bumble.core import UUID
from bumble.device import Advertisement, Device, Peer

from ble.calibration import DEFAULT_TX_GAIN
from ble.collector import Sighting
from ble.payload import (
    APPLE_COMPANY_ID,
    CHARACTERISTIC_UUID,
    SERVICE_UUID16,
    PayloadError,
    decode_gatt_value,
    parse_advertising_data,
)
from ble.scanner.base import HelloScanner, SightingCallback, sighting_from_fields

log = logging.getLogger(__name__)


class BumbleHelloScanner(HelloScanner):
    """HELLOs from bumble advertisement events, plus GATT reads of background iPhones."""

    name = "bumble"

    def __init__(
        self,
        device: Device,
        passive: bool = True,
        read_gatt: bool = True,
        default_tx_gain: int = DEFAULT_TX_GAIN,
        gatt_interval: float = 10.0,
        gatt_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self._device = device
        self._passive = passive
        self._read_gatt = read_gatt
        self._default_tx_gain = default_tx_gain
        self._gatt_interval = gatt_interval
        self._gatt_timeout = gatt_timeout
        self._on_sighting: SightingCallback | None = None
        self._last_read: dict[str, float] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self._one_connection = asyncio.Lock()  # one GATT read at a time: scanning pauses for it

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        try:
            fields = parse_advertising_data(advertisement.data_bytes)
        except PayloadError:
            self.counters["malformed"] += 1
            return
        address = str(advertisement.address)
        sighting = sighting_from_fields(
            address,
            advertisement.rssi,
            fields.service_data16.get(SERVICE_UUID16),
            fields.manufacturer_data.get(APPLE_COMPANY_ID),
            self.counters,
        )
        if sighting is None:
            self.counters["ignored"] += 1
            return
        if self._on_sighting is not None:
            self._on_sighting(sighting)
        if sighting.apple_overflow and advertisement.is_connectable:
            self._maybe_read(advertisement.address, advertisement.rssi)

    def _maybe_read(self, address: Any, rssi: int) -> None:
        """Read a background iPhone's HELLO, at most once per ``gatt_interval`` per address."""
        if not self._read_gatt:
            return
        key = str(address)
        now = time.monotonic()
        if now - self._last_read.get(key, -1e9) < self._gatt_interval:
            return
        self._last_read[key] = now
        task = asyncio.get_running_loop().create_task(self._read_over_gatt(address, rssi))
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    async def _read_over_gatt(self, address: Any, rssi: int) -> None:
        try:
            async with self._one_connection, asyncio.timeout(self._gatt_timeout):
                value = await self._read_characteristic(address)
            payload = decode_gatt_value(value, self._default_tx_gain)
        except (TimeoutError, PayloadError) as exc:
            self.counters["gatt_failed"] += 1
            log.info("GATT read from %s failed: %s", address, exc)
            return
        except Exception as exc:  # any bumble/HCI failure of one peer must not stop scanning
            self.counters["gatt_failed"] += 1
            log.info("GATT read from %s failed: %s: %s", address, type(exc).__name__, exc)
            return
        self.counters["gatt_read"] += 1
        if self._on_sighting is not None:
            self._on_sighting(Sighting(str(address), rssi, payload))

    async def _read_characteristic(self, address: Any) -> bytes:
        """Connect, read the 0xFD64 characteristic, disconnect; scanning pauses meanwhile."""
        was_scanning = self._device.is_scanning
        if was_scanning:
            await self._device.stop_scanning()
        try:
            connection = await self._device.connect(address, timeout=self._gatt_timeout)
            try:
                peer = Peer(connection)
                await peer.discover_services([UUID(f"{SERVICE_UUID16:04X}")])
                for service in peer.get_services_by_uuid(UUID(f"{SERVICE_UUID16:04X}")):
                    await service.discover_characteristics()
                    found = service.get_characteristics_by_uuid(UUID(CHARACTERISTIC_UUID))
                    if found:
                        return bytes(await found[0].read_value())
                raise PayloadError("peer has no 0xFD64 HELLO characteristic")
            finally:
                await connection.disconnect()
        finally:
            if was_scanning and self._on_sighting is not None:
                await self._device.start_scanning(active=not self._passive, filter_duplicates=False)

    async def start(self, on_sighting: SightingCallback) -> None:
        """Listen to advertisements; passive unless told otherwise (bumble can always do both)."""
        self._on_sighting = on_sighting
        self._device.on("advertisement", self._on_advertisement)
        await self._device.start_scanning(active=not self._passive, filter_duplicates=False)
        self.mode = "passive" if self._passive else "active"

    async def stop(self) -> None:
        """Stop scanning and cancel GATT reads in flight."""
        if self._on_sighting is None:
            return
        self._on_sighting = None
        for task in list(self._reads):
            task.cancel()
        if self._reads:
            await asyncio.gather(*self._reads, return_exceptions=True)
        self._device.remove_listener("advertisement", self._on_advertisement)
        if self._device.is_scanning:
            await self._device.stop_scanning()
        self.mode = "stopped"
