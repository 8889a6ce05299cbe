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
from dbus_fast import PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusError
from dbus_fast.service import ServiceInterface, dbus_property, method

from ble.advertiser.bluez import BlueZAdvertiser
from ble.errors import AdapterPoweredOff, PermissionDenied, map_radio_error
from ble.payload import RobertPayload

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
) -> AsyncIterator[tuple[FakeAdapter, FakeManager, MessageBus]]:
    server = await MessageBus(bus_address=private_bus).connect()
    client = await MessageBus(bus_address=private_bus).connect()
    adapter, manager = FakeAdapter(), FakeManager(server)
    manager.client = client.unique_name
    server.export("/org/bluez/hci0", adapter)
    server.export("/org/bluez/hci0", manager)
    await server.request_name("org.bluez")
    try:
        yield adapter, manager, client
    finally:
        for bus in (client, server):
            bus.disconnect()
            await bus.wait_for_disconnect()


async def test_register_update_unregister(fake_bluez: Any) -> None:
    _adapter, manager, client = fake_bluez
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
    _adapter, manager, client = fake_bluez
    manager.refuse = "org.bluez.Error.NotPermitted"
    advertiser = BlueZAdvertiser(bus=client)
    with pytest.raises(DBusError) as caught:
        await advertiser.start(RobertPayload(HELLO))
    assert isinstance(map_radio_error(caught.value), PermissionDenied)
    manager.refuse = None
    await advertiser.start(RobertPayload(HELLO))  # the failed attempt left nothing behind
    await advertiser.stop()


async def test_powered_off_adapter(fake_bluez: Any) -> None:
    adapter, _manager, client = fake_bluez
    adapter.powered = False
    with pytest.raises(AdapterPoweredOff):
        await BlueZAdvertiser(bus=client).start(RobertPayload(HELLO))


async def test_missing_adapter(fake_bluez: Any) -> None:
    _adapter, _manager, client = fake_bluez
    with pytest.raises(Exception) as caught:
        await BlueZAdvertiser(adapter="hci7", bus=client).start(RobertPayload(HELLO))
    assert "no Bluetooth adapter" in str(map_radio_error(caught.value))
