"""The BlueZ advertiser against a stand-in bluetoothd on a private D-Bus daemon.

A session ``dbus-daemon`` on a temporary socket; a small fake owning ``org.bluez`` exports
``/org/bluez/hci0`` with ``Adapter1`` (Powered) and ``LEAdvertisingManager1``, and on
RegisterAdvertisement reads the advertisement's properties back over the bus, like BlueZ.
Skipped when ``dbus-daemon`` is not installed. No ``from __future__ import annotations``: dbus-fast
reads the D-Bus signatures from the annotations.
"""

import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_property, method

from ble.advertiser.bluez import INVALID_VALUE_LENGTH, BlueZAdvertiser
from ble.calibration import DEFAULT_RX_GAIN, calibrate_rssi
from ble.collector import HelloCollector, Sighting
from ble.errors import AdapterPoweredOff, PermissionDenied, describe, map_radio_error
from ble.payload import SERVICE_UUID, RobertPayload, WrittenPayload
from tests.ble.conftest import RecordingSink

pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="no dbus-daemon")

HELLO = bytes(range(16))


def plain(value: Any) -> Any:
    """Unwrap the Variants nested in a{sv} values, as BlueZ reads them."""
    if isinstance(value, dict):
        return {
            key: plain(item.value if isinstance(item, Variant) else item)
            for key, item in value.items()
        }
    return value


class FakeAdapter(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.bluez.Adapter1")
        self.powered = True

    @dbus_property(access=PropertyAccess.READ)
    def Powered(self) -> "b":  # noqa: F821 - D-Bus signature
        return self.powered


class FakeManager(ServiceInterface):
    def __init__(self, bus: MessageBus) -> None:
        super().__init__("org.bluez.LEAdvertisingManager1")
        self.bus = bus
        self.client = ""
        self.refuse: str | None = None
        self.registered: list[dict[str, Any]] = []
        self.unregistered = 0

    @method()
    async def RegisterAdvertisement(self, path: "o", options: "a{sv}") -> None:  # noqa: F821, F722
        if self.refuse:
            raise DBusError(self.refuse, "refused by the fake")
        introspection = await self.bus.introspect(self.client, path)
        proxy = self.bus.get_proxy_object(self.client, path, introspection)
        props = proxy.get_interface("org.freedesktop.DBus.Properties")
        values = await props.call_get_all("org.bluez.LEAdvertisement1")
        self.registered.append({key: plain(variant.value) for key, variant in values.items()})

    @method()
    def UnregisterAdvertisement(self, path: "o") -> None:  # noqa: F821
        self.unregistered += 1


class FakeGattManager(ServiceInterface):
    """org.bluez.GattManager1: reads the application's objects back, like bluetoothd."""

    def __init__(self, bus: MessageBus) -> None:
        super().__init__("org.bluez.GattManager1")
        self.bus = bus
        self.client = ""
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.unregistered = 0

    @method()
    async def RegisterApplication(self, path: "o", options: "a{sv}") -> None:  # noqa: F821, F722
        reply = await self.bus.call(  # what bluetoothd sends (it does not introspect)
            Message(
                destination=self.client,
                path=path,
                interface="org.freedesktop.DBus.ObjectManager",
                member="GetManagedObjects",
            )
        )
        assert reply is not None and reply.message_type == MessageType.METHOD_RETURN, reply
        self.objects = {
            obj: {iface: plain(props) for iface, props in ifaces.items()}
            for obj, ifaces in reply.body[0].items()
        }

    @method()
    def UnregisterApplication(self, path: "o") -> None:  # noqa: F821
        self.unregistered += 1
        self.objects = {}

    async def characteristic(self) -> Any:
        """The registered HELLO characteristic, as bluetoothd would call it on an ATT request."""
        [path] = [
            p for p, ifaces in self.objects.items() if "org.bluez.GattCharacteristic1" in ifaces
        ]
        introspection = await self.bus.introspect(self.client, path)
        proxy = self.bus.get_proxy_object(self.client, path, introspection)
        return proxy.get_interface("org.bluez.GattCharacteristic1")


@pytest.fixture
async def private_bus(tmp_path: Path) -> AsyncIterator[str]:
    socket = tmp_path / "bus"
    daemon = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--nopidfile",
            f"--address=unix:path={socket}",
            "--print-address",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().decode().strip()
    try:
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=5)
        daemon.stdout.close()


@pytest.fixture
async def fake_bluez(
    private_bus: str,
) -> AsyncIterator[tuple[FakeAdapter, FakeManager, MessageBus, FakeGattManager]]:
    server = await MessageBus(bus_address=private_bus).connect()
    client = await MessageBus(bus_address=private_bus).connect()
    adapter, manager, gatt = FakeAdapter(), FakeManager(server), FakeGattManager(server)
    manager.client = gatt.client = client.unique_name
    server.export("/org/bluez/hci0", adapter)
    server.export("/org/bluez/hci0", manager)
    server.export("/org/bluez/hci0", gatt)
    await server.request_name("org.bluez")
    try:
        yield adapter, manager, client, gatt
    finally:
        for bus in (client, server):
            bus.disconnect()
            await bus.wait_for_disconnect()


async def test_register_update_unregister(fake_bluez: Any) -> None:
    _adapter, manager, client, _gatt = fake_bluez
    advertiser = BlueZAdvertiser(bus=client, kind="broadcast")
    first = RobertPayload(HELLO, 1, -30)
    await advertiser.start(first)
    assert manager.registered == [
        {
            "Type": "broadcast",
            "ServiceUUIDs": ["fd64"],
            "ServiceData": {"fd64": first.to_service_data()},
        }
    ]
    second = RobertPayload(HELLO[:-1] + b"\xff", 1, -30)
    await advertiser.update(second)
    assert manager.registered[-1]["ServiceData"]["fd64"] == second.to_service_data()
    await advertiser.stop()
    assert manager.unregistered == 2
    assert advertiser.current is None
    assert client.connected  # the bus we were given stays open: the caller owns it
    await advertiser.start(first)  # nothing was left exported at OBJECT_PATH
    assert manager.registered[-1]["ServiceData"]["fd64"] == first.to_service_data()
    await advertiser.stop()


async def test_not_permitted_is_mapped(fake_bluez: Any) -> None:
    _adapter, manager, client, _gatt = fake_bluez
    manager.refuse = "org.bluez.Error.NotPermitted"
    advertiser = BlueZAdvertiser(bus=client)
    with pytest.raises(DBusError) as caught:
        await advertiser.start(RobertPayload(HELLO))
    assert isinstance(map_radio_error(caught.value), PermissionDenied)
    manager.refuse = None
    await advertiser.start(RobertPayload(HELLO))  # the failed attempt left nothing behind
    await advertiser.stop()


async def test_powered_off_adapter(fake_bluez: Any) -> None:
    adapter, _manager, client, _gatt = fake_bluez
    adapter.powered = False
    with pytest.raises(AdapterPoweredOff):
        await BlueZAdvertiser(bus=client).start(RobertPayload(HELLO))


async def test_missing_adapter(fake_bluez: Any) -> None:
    _adapter, _manager, client, _gatt = fake_bluez
    with pytest.raises(Exception) as caught:
        await BlueZAdvertiser(adapter="hci7", bus=client).start(RobertPayload(HELLO))
    assert "no Bluetooth adapter" in str(map_radio_error(caught.value))


async def test_a_bus_without_bluez_says_to_start_bluetoothd(private_bus: str) -> None:
    """A system bus that answers but where nobody owns org.bluez (bluetoothd stopped)."""
    client = await MessageBus(bus_address=private_bus).connect()
    try:
        with pytest.raises(DBusError) as caught:
            await BlueZAdvertiser(bus=client).start(RobertPayload(HELLO))
    finally:
        client.disconnect()
        await client.wait_for_disconnect()
    assert caught.value.type == "org.freedesktop.DBus.Error.ServiceUnknown"
    line = describe(caught.value)
    assert "bluetoothd is not running" in line and "systemctl start bluetooth" in line
    assert "bluetoothctl list" not in line


async def test_gatt_characteristic_is_read_and_written_through_bluez(fake_bluez: Any) -> None:
    """Peripheral mode registers the 0xFD64 application; bluetoothd's ReadValue and WriteValue
    calls (one per ATT request from a phone) read our payload and record 18/19-byte writes."""
    _adapter, manager, client, gatt = fake_bluez
    sink, now = RecordingSink(), 3_900_000_000
    collector = HelloCollector(sink, lambda: now)
    advertiser = BlueZAdvertiser(bus=client, kind="peripheral")
    advertiser.on_sighting, advertiser.rssi_of = collector.feed, collector.rssi_of
    ours = RobertPayload(HELLO, 1, -30)
    await advertiser.start(ours)
    assert manager.registered[-1]["Type"] == "peripheral"
    services = [
        i["org.bluez.GattService1"] for i in gatt.objects.values() if "org.bluez.GattService1" in i
    ]
    assert services == [{"UUID": SERVICE_UUID, "Primary": True}]
    characteristic = await gatt.characteristic()
    assert await characteristic.get_flags() == ["read", "write"]
    assert await characteristic.call_read_value({}) == ours.to_service_data()

    iphone, android = (
        "/org/bluez/hci0/dev_5A_11_22_33_44_55",
        "/org/bluez/hci0/dev_C0_11_22_33_44_66",
    )
    # The bleak scanner heard the iPhone advertise (UUID only) at -61 dBm a moment ago.
    collector.feed(Sighting("5A:11:22:33:44:55", -61, None, uuid_only=True))
    iphone_hello, android_hello = bytes(range(16, 32)), bytes(range(32, 48))
    written = WrittenPayload(RobertPayload(iphone_hello, 1, -12))
    device = {"device": Variant("o", iphone)}
    await characteristic.call_write_value(written.to_bytes(), device)
    await characteristic.call_write_value(written.to_bytes(), device)  # a retry: one record
    android_write = WrittenPayload(RobertPayload(android_hello, 1, -25), -58)
    await characteristic.call_write_value(
        android_write.to_bytes(), {"device": Variant("o", android)}
    )
    for size in (16, 17, 20):
        with pytest.raises(DBusError) as refused:
            await characteristic.call_write_value(bytes(size), device)
        assert refused.value.type == INVALID_VALUE_LENGTH
    collector.flush()
    assert sink.records == [
        (iphone_hello, now, calibrate_rssi(-61, -12, DEFAULT_RX_GAIN)),
        (android_hello, now, -58),
    ]
    assert advertiser.counters["writes"] == 3 and advertiser.counters["write_refused"] == 3
    assert collector.counters["connected_duplicates"] == 1
    # A writer we never heard advertise, writing 18 bytes: no RSSI to score it, counted.
    unknown = WrittenPayload(RobertPayload(bytes(range(48, 64)), 1, -30)).to_bytes()
    await characteristic.call_write_value(
        unknown, {"device": Variant("o", "/org/bluez/hci0/dev_00_00_00_00_00_01")}
    )
    assert advertiser.counters["write_no_rssi"] == 1 and len(sink.records) == 2
    await advertiser.stop()
    assert gatt.unregistered == 1 and manager.unregistered == 1
