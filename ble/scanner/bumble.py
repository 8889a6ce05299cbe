"""Scanner on a bumble Device: real controllers, or virtual ones on a bumble LocalLink in tests.

Bumble owns the controller, so when an advertisement says "0xFD64 without a payload" (a
foreground iPhone's UUID, or a background iPhone's overflow bit) we connect, read the 0xFD64
characteristic and report its HELLO with the RSSI of that advertisement, as the apps did. The
schedule, bound and counters of those reads live in ``scanner.base``.

A connection attempt is given ``CONNECT_SHARE`` of the read's bound, so that bumble's own
timeout fires first and cancels the attempt in the controller (HCI LE Create Connection
Cancel). If the attempt is cancelled from outside (the read's bound, ``stop``), we send that
Cancel ourselves (``ble.connecting``): a controller keeps an attempt pending until told otherwise
and refuses every later connection (Command Disallowed), so one peer that walked away would end
all reads. bumble's connect runs shielded meanwhile and sees the outcome, so a connection the
controller made just before our Cancel is not left open.
"""

from __future__ import annotations

import logging
from typing import Any

from bumble.core import UUID
from bumble.device import Advertisement, Connection, Device, Peer

from ble.connecting import connect_or_cancel
from ble.payload import (
    APPLE_COMPANY_ID,
    CHARACTERISTIC_UUID,
    SERVICE_UUID16,
    PayloadError,
    parse_advertising_data,
)
from ble.scanner.base import HelloScanner, SightingCallback, sighting_from_fields

log = logging.getLogger(__name__)

CONNECT_SHARE = 0.6
"""Share of ``read_timeout`` a connection attempt may take (*choice*): the rest is for bumble's
cancel of the attempt, then discovery, the read and the disconnection."""


class BumbleHelloScanner(HelloScanner):
    """HELLOs from bumble advertisement events, plus GATT reads of iPhones.

    Counters beyond the base ones (kept by ``ble.connecting``): ``connect_cancelled`` (LE
    Create Connection Cancels we sent because a connect was cancelled from outside),
    ``connect_raced_cancel`` (connections made just before such a Cancel, disconnected at once),
    ``connect_abandoned`` (attempts the controller reported nothing on after the Cancel; the
    next connect cancels again first), ``connect_late`` (connections such an attempt made later,
    disconnected).
    """

    name = "bumble"

    def __init__(self, device: Device, passive: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self._device = device
        self._passive = passive

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        try:
            fields = parse_advertising_data(advertisement.data_bytes)
        except PayloadError:
            self.counters["malformed"] += 1
            return
        sighting = sighting_from_fields(
            str(advertisement.address),
            advertisement.rssi,
            fields.service_data16.get(SERVICE_UUID16),
            fields.manufacturer_data.get(APPLE_COMPANY_ID),
            self.counters,
            robert_uuid_listed=SERVICE_UUID16 in fields.service_uuids16,
        )
        if sighting is None:
            self.counters["ignored"] += 1
            return
        self.deliver(sighting, advertisement.address, advertisement.is_connectable)

    async def read_characteristic(self, peer: Any) -> bytes:
        """Connect, read the 0xFD64 characteristic, disconnect; scanning pauses meanwhile."""
        was_scanning = self._device.is_scanning
        if was_scanning:
            await self._device.stop_scanning()
        try:
            connection = await self._connect(peer)
            try:
                return await read_hello_characteristic(Peer(connection))
            finally:
                await connection.disconnect()
        finally:
            if was_scanning and self._on_sighting is not None:
                await self._device.start_scanning(active=not self._passive, filter_duplicates=False)

    async def _connect(self, peer: Any) -> Connection:
        """Connect within ``CONNECT_SHARE`` of the read's bound; never leave an attempt pending
        (``ble.connecting.connect_or_cancel``)."""
        return await connect_or_cancel(
            self._device, peer, CONNECT_SHARE * self.read_timeout, self.counters
        )

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
        await self.cancel_reads()
        self._device.remove_listener("advertisement", self._on_advertisement)
        if self._device.is_scanning:
            await self._device.stop_scanning()
        self.mode = "stopped"


async def find_hello_characteristic(peer: Peer) -> Any:
    """The 0xFD64 service's HELLO characteristic of a connected peer (bumble client side)."""
    uuid16 = UUID(f"{SERVICE_UUID16:04X}")
    await peer.discover_services([uuid16])
    for service in peer.get_services_by_uuid(uuid16):
        await service.discover_characteristics()
        found = service.get_characteristics_by_uuid(UUID(CHARACTERISTIC_UUID))
        if found:
            return found[0]
    raise PayloadError("peer has no 0xFD64 HELLO characteristic")


async def read_hello_characteristic(peer: Peer) -> bytes:
    """Read the HELLO characteristic's value from a connected peer."""
    characteristic = await find_hello_characteristic(peer)
    return bytes(await characteristic.read_value())
