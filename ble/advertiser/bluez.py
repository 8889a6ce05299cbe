"""Advertise through BlueZ's LE advertising manager over D-Bus (dbus-fast).

We export an ``org.bluez.LEAdvertisement1`` object carrying ServiceUUIDs ['fd64'] and
ServiceData {'fd64': 18 bytes} and register it with ``org.bluez.LEAdvertisingManager1`` on the
adapter. BlueZ builds the AD structures itself (flags, UUID list, service data) - the same bytes
as ``payload.encode_advertising_data``. BlueZ does not reliably re-read a registered
advertisement's properties, so ``update`` unregisters and registers again (a few ms off air).

In 'peripheral' mode we also export a GATT application (``org.freedesktop.DBus.ObjectManager``
at ``APP_PATH``, dbus-fast answering GetManagedObjects): service 0xFD64 with the HELLO
characteristic, flags read and write, and register it with ``org.bluez.GattManager1``. ReadValue
returns the payload on the air; WriteValue hands 18- or 19-byte values to
``HelloAdvertiser.accept_write`` with the writer's address taken from the ``device`` option
(BlueZ gives no connection RSSI, so an 18-byte write uses the last advertisement RSSI our scanner
heard from that address) and refuses other sizes with ``org.bluez.Error.InvalidValueLength``,
which bluetoothd answers as the ATT error "invalid attribute value length".

No ``from __future__ import annotations`` here: dbus-fast reads the D-Bus signatures from the
return annotations at class creation.
"""

import logging
from typing import Any

from dbus_fast import BusType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_property, method

from ble.advertiser.base import HelloAdvertiser
from ble.errors import AdapterMissing, AdapterPoweredOff
from ble.payload import CHARACTERISTIC_UUID, SERVICE_UUID, PayloadError, RobertPayload

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
ADVERTISING_MANAGER = "org.bluez.LEAdvertisingManager1"
ADAPTER = "org.bluez.Adapter1"
PROPERTIES = "org.freedesktop.DBus.Properties"
GATT_MANAGER = "org.bluez.GattManager1"
OBJECT_PATH = "/org/robert/advertisement0"
APP_PATH = "/org/robert/gatt"
SERVICE_PATH = f"{APP_PATH}/service0"
CHARACTERISTIC_PATH = f"{SERVICE_PATH}/char0"
UUID_FD64 = "fd64"
INVALID_VALUE_LENGTH = "org.bluez.Error.InvalidValueLength"


def address_of_device_path(path: str) -> str:
    """'/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF' -> 'AA:BB:CC:DD:EE:FF' (bleak's address form)."""
    last = path.rsplit("/", 1)[-1]
    return last[4:].replace("_", ":") if last.startswith("dev_") else path


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


class _GattService(ServiceInterface):
    """org.bluez.GattService1: the primary 0xFD64 service."""

    def __init__(self) -> None:
        super().__init__("org.bluez.GattService1")

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # type: ignore[name-defined]  # noqa: F821
        return SERVICE_UUID

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> "b":  # type: ignore[name-defined]  # noqa: F821
        return True


class _GattCharacteristic(ServiceInterface):
    """org.bluez.GattCharacteristic1: the HELLO characteristic, read and write."""

    def __init__(self, owner: "BlueZAdvertiser") -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._owner = owner

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> "s":  # type: ignore[name-defined]  # noqa: F821
        return CHARACTERISTIC_UUID

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> "o":  # type: ignore[name-defined]  # noqa: F821
        return SERVICE_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> "as":  # type: ignore[valid-type]  # noqa: F722
        return ["read", "write"]

    @method()
    def ReadValue(self, options: "a{sv}") -> "ay":  # type: ignore[valid-type, name-defined]  # noqa: F722, F821
        return self._owner.read_value()

    @method()
    def WriteValue(self, value: "ay", options: "a{sv}") -> None:  # type: ignore[valid-type, name-defined]  # noqa: F722, F821
        device = options.get("device")
        address = address_of_device_path(str(device.value)) if device is not None else "?"
        try:
            self._owner.accept_write(address, bytes(value))
        except PayloadError as exc:
            raise DBusError(INVALID_VALUE_LENGTH, str(exc)) from exc


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
        self._gatt: tuple[_GattService, _GattCharacteristic] | None = None

    async def _manager(self, interface: str = ADVERTISING_MANAGER) -> Any:
        """A manager proxy of the adapter, after checking adapter presence and power."""
        if self._bus is None:
            self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        introspection = await self._bus.introspect(BLUEZ, self._adapter_path)
        names = {interface.name for interface in introspection.interfaces}
        if ADAPTER not in names:
            raise AdapterMissing(f"{self._adapter_path} is not a BlueZ adapter")
        if interface not in names:
            raise AdapterPoweredOff(f"{self._adapter_path} offers no {interface}")
        proxy = self._bus.get_proxy_object(BLUEZ, self._adapter_path, introspection)
        properties: Any = proxy.get_interface(PROPERTIES)  # methods are made at run time
        powered = await properties.call_get(ADAPTER, "Powered")
        if not powered.value:
            raise AdapterPoweredOff(self._adapter_path)
        return proxy.get_interface(interface)

    async def _register_gatt(self) -> None:
        """Export the GATT application and register it with BlueZ (once per start)."""
        if self._gatt is not None:
            return
        manager = await self._manager(GATT_MANAGER)
        assert self._bus is not None
        service, characteristic = _GattService(), _GattCharacteristic(self)
        self._bus.export(SERVICE_PATH, service)
        self._bus.export(CHARACTERISTIC_PATH, characteristic)
        try:
            await manager.call_register_application(APP_PATH, {})
        except BaseException:
            self._bus.unexport(CHARACTERISTIC_PATH, characteristic)
            self._bus.unexport(SERVICE_PATH, service)
            raise
        self._gatt = (service, characteristic)

    async def _unregister_gatt(self) -> None:
        gatt, self._gatt = self._gatt, None
        if gatt is None or self._bus is None:
            return
        service, characteristic = gatt
        try:
            manager = await self._manager(GATT_MANAGER)
            await manager.call_unregister_application(APP_PATH)
        finally:
            self._bus.unexport(CHARACTERISTIC_PATH, characteristic)
            self._bus.unexport(SERVICE_PATH, service)

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
        """Register the GATT application (peripheral mode), then the advertisement."""
        if self._kind == "peripheral":
            await self._register_gatt()
        try:
            await self._register(payload)
        except BaseException:
            await self._unregister_gatt()
            raise

    async def update(self, payload: RobertPayload) -> None:
        """Re-register with the new service data."""
        await self._unregister()
        await self._register(payload)

    async def stop(self) -> None:
        """Unregister and, if we opened it, close the system bus connection."""
        try:
            try:
                await self._unregister()
            finally:
                await self._unregister_gatt()
        finally:
            if self._own_bus and self._bus is not None:
                bus: Any = self._bus  # wait_for_disconnect is untyped in dbus-fast
                bus.disconnect()
                await bus.wait_for_disconnect()
                self._bus = None
