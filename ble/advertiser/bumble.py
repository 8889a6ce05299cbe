"""Advertise by driving a controller directly with bumble (no bluetoothd involved).

We build the exact legacy advertising data with ``payload.encode_advertising_data`` and, in
'peripheral' mode, serve the 0xFD64 service with its characteristic (a8f12d00-...): readable (the
same 18 bytes as the service data) and writable (18 or 19 bytes, judged by
``HelloAdvertiser.accept_write``; other sizes get the ATT error "invalid attribute value
length"). An 18-byte write takes the connection's RSSI from the controller when it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bumble import gatt
from bumble.att import ATT_Error, ErrorCode
from bumble.device import AdvertisingType, Device

from ble.advertiser.base import HelloAdvertiser
from ble.payload import (
    CHARACTERISTIC_UUID,
    SERVICE_UUID16,
    PayloadError,
    RobertPayload,
    encode_advertising_data,
)

DEFAULT_INTERVAL_MS = 250.0
"""Android's "balanced" advertising mode (*choice*); bumble's own default is 1 s, which would
leave a passive scanner with one chance a second to hear us."""
RSSI_READ_TIMEOUT = 1.0


async def connection_rssi(connection: Any) -> int | None:
    """The controller's RSSI of a connection, or None if it cannot tell (quickly)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(RSSI_READ_TIMEOUT):
            rssi = int(await connection.get_rssi())
            return None if rssi == 127 else rssi
    return None


def hello_characteristic(
    read: Any, write: Any, properties: gatt.Characteristic.Properties | None = None
) -> gatt.Characteristic[bytes]:
    """The 0xFD64 HELLO characteristic, readable and writable, on bumble callbacks."""
    return gatt.Characteristic(
        CHARACTERISTIC_UUID,
        properties
        if properties is not None
        else gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.WRITE,
        gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
        gatt.CharacteristicValue(read=read, write=write),
    )


class BumbleAdvertiser(HelloAdvertiser):
    """Legacy advertising on a bumble Device the caller opened and powered on."""

    name = "bumble"

    def __init__(
        self, device: Device, kind: str = "peripheral", interval_ms: float = DEFAULT_INTERVAL_MS
    ) -> None:
        super().__init__()
        if kind not in ("broadcast", "peripheral"):
            raise ValueError("kind is 'broadcast' or 'peripheral'")
        self._device = device
        self._kind = kind
        self._interval_ms = interval_ms
        self._gatt_added = False

    @property
    def gatt_reads(self) -> int:
        """How many times a central read our characteristic."""
        return self.counters["gatt_reads"]

    def _read_characteristic(self, _connection: Any) -> bytes:
        return self.read_value()

    async def _write_characteristic(self, connection: Any, value: bytes) -> None:
        try:
            self.check_write(bytes(value))
        except PayloadError as exc:
            raise ATT_Error(ErrorCode.INVALID_ATTRIBUTE_LENGTH) from exc
        rssi = await connection_rssi(connection)
        self.accept_write(str(connection.peer_address), bytes(value), rssi)

    def _add_gatt_service(self) -> None:
        if self._gatt_added:
            return
        characteristic = hello_characteristic(self._read_characteristic, self._write_characteristic)
        self._device.add_service(gatt.Service(f"{SERVICE_UUID16:04X}", [characteristic]))
        self._gatt_added = True

    async def _advertise(self, payload: RobertPayload) -> None:
        connectable = self._kind == "peripheral"
        await self._device.start_advertising(
            advertising_type=(
                AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE
                if connectable
                else AdvertisingType.UNDIRECTED
            ),
            advertising_data=encode_advertising_data(payload),
            auto_restart=connectable,  # resume after a central disconnects
            advertising_interval_min=self._interval_ms,
            advertising_interval_max=self._interval_ms,
        )
        self.current = payload

    async def start(self, payload: RobertPayload) -> None:
        """Add the GATT service (peripheral mode) and start advertising."""
        if self._kind == "peripheral":
            self._add_gatt_service()
        await self._advertise(payload)

    async def update(self, payload: RobertPayload) -> None:
        """Stop and restart with the new data: legacy advertising data is set while stopped."""
        if self._device.is_advertising:
            await self._device.stop_advertising()
        await self._advertise(payload)

    async def stop(self) -> None:
        """Stop advertising if we are."""
        self.current = None
        if self._device.is_advertising:
            await self._device.stop_advertising()
