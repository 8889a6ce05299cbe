"""Advertise through BlueZ's LE advertising manager over D-Bus (dbus-fast).

We export an ``org.bluez.LEAdvertisement1`` object carrying ServiceUUIDs ['fd64'] and
ServiceData {'fd64': 18 bytes} and register it with ``org.bluez.LEAdvertisingManager1`` on the
adapter. BlueZ builds the AD structures itself (flags, UUID list, service data) - the same bytes
as ``payload.encode_advertising_data``. BlueZ does not reliably re-read a registered
advertisement's properties, so ``update`` unregisters and registers again (a few ms off air).

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the
return annotations at class creation.
"""

import logging
from typing import Any

from dbus_fast import BusType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, dbus_property, method

from ble.advertiser.base import HelloAdvertiser
from ble.errors import AdapterMissing, AdapterPoweredOff
from ble.payload import RobertPayload

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADVERTISING_MANAGER = "org.bluez.LEAdvertisingManager1"
ADAPTER = "org.bluez.Adapter1"
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_PATH = "/org/robert/advertisement0"
UUID_FD64 = "fd64"


class _Advertisement(ServiceInterface):
    """The exported org.bluez.LEAdvertisement1 object; BlueZ reads its properties once."""

    def __init__(self, service_data: bytes, kind: str) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self._service_data = service_data
        self._kind = kind
        self.released = False

    @dbus_property(access=PropertyAccess.READ)
    def Type(self) -> "s":  # type: ignore[name-defined]  # noqa: F821 - D-Bus signature
        return self._kind

    @dbus_property(access=PropertyAccess.READ)
    def ServiceUUIDs(self) -> "as":  # type: ignore[valid-type]  # noqa: F722
        return [UUID_FD64]

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> "a{sv}":  # type: ignore[valid-type]  # noqa: F722
        return {UUID_FD64: Variant("ay", self._service_data)}

    @method()
    def Release(self) -> None:
        # BlueZ calls this when it drops the advertisement (adapter reset, power off).
        self.released = True


class BlueZAdvertiser(HelloAdvertiser):
    """LE advertising through bluetoothd; needs BlueZ >= 5.50 and D-Bus access to org.bluez."""

    name = "bluez"

    def __init__(
        self,
        adapter: str = "hci0",
        kind: str = "broadcast",
        bus: MessageBus | None = None,
    ) -> None:
        super().__init__()
        if kind not in ("broadcast", "peripheral"):
            raise ValueError("kind is 'broadcast' or 'peripheral'")
        self._adapter_path = f"/org/bluez/{adapter}"
        self._kind = kind
        self._bus = bus
        self._own_bus = bus is None
        self._exported: _Advertisement | None = None

    async def _manager(self) -> Any:
        """The adapter's advertising manager proxy, after checking adapter presence and power."""
        if self._bus is None:
            self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        introspection = await self._bus.introspect(BLUEZ, self._adapter_path)
        names = {interface.name for interface in introspection.interfaces}
        if ADAPTER not in names:
            raise AdapterMissing(f"{self._adapter_path} is not a BlueZ adapter")
        if ADVERTISING_MANAGER not in names:
            raise AdapterPoweredOff(f"{self._adapter_path} offers no LE advertising manager")
        proxy = self._bus.get_proxy_object(BLUEZ, self._adapter_path, introspection)
        properties: Any = proxy.get_interface(PROPERTIES)  # methods are made at run time
        powered = await properties.call_get(ADAPTER, "Powered")
        if not powered.value:
            raise AdapterPoweredOff(self._adapter_path)
        return proxy.get_interface(ADVERTISING_MANAGER)

    async def _register(self, payload: RobertPayload) -> None:
        manager = await self._manager()
        advertisement = _Advertisement(payload.to_service_data(), self._kind)
        assert self._bus is not None
        self._bus.export(OBJECT_PATH, advertisement)
        try:
            await manager.call_register_advertisement(OBJECT_PATH, {})
        except BaseException:
            self._bus.unexport(OBJECT_PATH, advertisement)
            raise
        self._exported = advertisement
        self.current = payload

    async def _unregister(self) -> None:
        advertisement, self._exported = self._exported, None
        self.current = None
        if advertisement is None or self._bus is None:
            return
        try:
            if not advertisement.released:
                manager = await self._manager()
                await manager.call_unregister_advertisement(OBJECT_PATH)
        finally:
            self._bus.unexport(OBJECT_PATH, advertisement)

    async def start(self, payload: RobertPayload) -> None:
        """Register the advertisement with BlueZ."""
        await self._register(payload)

    async def update(self, payload: RobertPayload) -> None:
        """Re-register with the new service data."""
        await self._unregister()
        await self._register(payload)

    async def stop(self) -> None:
        """Unregister and, if we opened it, close the system bus connection."""
        try:
            await self._unregister()
        finally:
            if self._own_bus and self._bus is not None:
                bus: Any = self._bus  # wait_for_disconnect is untyped in dbus-fast
                bus.disconnect()
                await bus.wait_for_disconnect()
                self._bus = None
