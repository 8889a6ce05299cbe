"""Advertise by driving a controller directly with bumble (no bluetoothd involved).

We build the exact legacy advertising data with ``payload.encode_advertising_data`` and, in
'peripheral' mode, serve the same 18 bytes on the GATT characteristic the apps read from
background iPhones (service 0xFD64, characteristic a8f12d00-...), so a background iPhone or
another node can read our HELLO over a connection.
"""

from __future__ import annotations

from typing import Any

from bumble import gatt
from bumble.device import AdvertisingType, Device

from ble.advertiser.base import HelloAdvertiser
from ble.payload import CHARACTERISTIC_UUID, SERVICE_UUID16, RobertPayload, encode_advertising_data

DEFAULT_INTERVAL_MS = 250.0
"""Android's "balanced" advertising mode (*choice*); bumble's own default is 1 s, which would
leave a passive scanner with one chance a second to hear us."""


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
        self.gatt_reads = 0

    def _read_characteristic(self, _connection: Any) -> bytes:
        """GATT read: the payload on the air now (empty when not advertising)."""
        self.gatt_reads += 1
        return b"" if self.current is None else self.current.to_service_data()

    def _add_gatt_service(self) -> None:
        if self._gatt_added:
            return
        characteristic: gatt.Characteristic[bytes] = gatt.Characteristic(
            CHARACTERISTIC_UUID,
            gatt.Characteristic.Properties.READ,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue(read=self._read_characteristic),
        )
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
            auto_restart=connectable,  # resume after a reader disconnects
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
