"""Scanner over bleak: BlueZ on Linux, CoreBluetooth on macOS, WinRT on Windows.

Passive scanning is asked for first (no scan requests, so we do not reveal ourselves and save
power). BlueZ only scans passively through its AdvertisementMonitor API, which bleak drives when
given ``or_patterns``; it needs BlueZ >= 5.56 (older ones with ``bluetoothd --experimental``).
macOS cannot scan passively. Whenever passive fails we fall back to active scanning.

iPhones advertising 0xFD64 without a payload (the UUID in the foreground, Apple's overflow bit
in the background) are read with a ``BleakClient`` connection, scheduled and bounded by
``scanner.base``; ``connector`` replaces that client (the tests use a GATT client on a virtual
link, since no BlueZ runs here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ble.errors import AdapterMissing
from ble.payload import (
    APPLE_COMPANY_ID,
    APPLE_OVERFLOW_TYPE,
    CHARACTERISTIC_UUID,
    SERVICE_UUID,
    SERVICE_UUID16_LE,
)
from ble.scanner.base import HelloScanner, SightingCallback, sighting_from_fields

if TYPE_CHECKING:
    from bleak import BleakScanner
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

log = logging.getLogger(__name__)

NO_BLUEZ = (
    "is bluetoothd running (sudo systemctl start bluetooth)? Or use --scanner bumble with a "
    "--transport"
)

Connector = Callable[["BLEDevice", float], Awaitable[bytes]]
"""Connect to a device, read the HELLO characteristic, disconnect, within the given seconds."""


async def bleak_read(device: BLEDevice, timeout: float) -> bytes:
    """Read the HELLO characteristic with bleak's own client."""
    from bleak import BleakClient

    async with BleakClient(device, timeout=timeout) as client:
        return bytes(await client.read_gatt_char(CHARACTERISTIC_UUID))


def or_patterns() -> list[Any]:
    """BlueZ monitor patterns: our service data, our UUID in a list (a foreground iPhone may
    advertise it alone), or an Apple overflow area."""
    from bleak.args.bluez import OrPattern
    from bleak.assigned_numbers import AdvertisementDataType

    uuid = SERVICE_UUID16_LE
    apple = APPLE_COMPANY_ID.to_bytes(2, "little") + bytes([APPLE_OVERFLOW_TYPE])
    return [
        OrPattern(0, AdvertisementDataType.SERVICE_DATA_UUID16, uuid),
        OrPattern(0, AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID16, uuid),
        OrPattern(0, AdvertisementDataType.INCOMPLETE_LIST_SERVICE_UUID16, uuid),
        OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, apple),
    ]


class BleakHelloScanner(HelloScanner):
    """HELLOs from bleak's detection callback."""

    name = "bleak"

    def __init__(
        self,
        adapter: str | None = None,
        passive: bool = True,
        connector: Connector | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._adapter = adapter
        self._passive = passive
        self._connector: Connector = bleak_read if connector is None else connector
        self._scanner: BleakScanner | None = None

    def handle(self, device: BLEDevice, adv: AdvertisementData) -> None:
        """bleak's detection callback: the boundary the tests drive with recorded data."""
        sighting = sighting_from_fields(
            device.address,
            adv.rssi,
            adv.service_data.get(SERVICE_UUID),
            adv.manufacturer_data.get(APPLE_COMPANY_ID),
            self.counters,
            robert_uuid_listed=SERVICE_UUID in adv.service_uuids,
        )
        if sighting is None:
            self.counters["ignored"] += 1
            return
        self.deliver(sighting, device)

    async def read_characteristic(self, peer: Any) -> bytes:
        """Read through the connector (``BleakClient`` unless replaced)."""
        return await self._connector(peer, self.read_timeout)

    def _make(self, mode: str) -> BleakScanner:
        from bleak import BleakScanner

        bluez: dict[str, Any] = {}
        if self._adapter:
            bluez["adapter"] = self._adapter
        if mode == "passive":
            bluez["or_patterns"] = or_patterns()
        return BleakScanner(self.handle, None, mode, bluez=bluez)  # type: ignore[arg-type]

    async def start(self, on_sighting: SightingCallback) -> None:
        """Start passive if asked and possible, else active."""
        from bleak.exc import BleakBluetoothNotAvailableError, BleakError

        self._on_sighting = on_sighting
        modes = ["passive", "active"] if self._passive else ["active"]
        for mode in modes:
            try:
                scanner = self._make(mode)  # macOS refuses passive already here
                await scanner.start()
            except BleakBluetoothNotAvailableError:
                raise  # no radio at all: active would fail the same way
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                # BlueZ is reached over the D-Bus system bus: no bus socket, no bluetoothd
                raise AdapterMissing(
                    f"no D-Bus system bus to reach BlueZ: {exc.strerror or exc}", NO_BLUEZ
                ) from exc
            except BleakError as exc:
                if mode == "active":
                    raise
                log.info("passive scanning unavailable (%s); falling back to active", exc)
                continue
            self._scanner = scanner
            self.mode = mode
            return

    async def stop(self) -> None:
        """Stop bleak's scanner if it runs, and the reads in flight."""
        self._on_sighting = None
        await self.cancel_reads()
        scanner, self._scanner = self._scanner, None
        self.mode = "stopped"
        if scanner is not None:
            await scanner.stop()
