"""Our client and each kind of phone of 2020, both ways, on bumble's virtual link.

For each kind (``ble.simulated``): an Android phone (service data), an iPhone in the foreground
(the 0xFD64 UUID only: we connect and read), an iPhone in the background (Apple's overflow area
only: we connect and read), an iPhone that writes its payload to our characteristic. Our client is
a real ``BleNode`` with the bumble advertiser (peripheral) and, in turn, the bumble scanner and the
bleak scanner. The bleak scanner runs its own code from the detection callback on (sightings,
scheduling, bounds, decoding); only ``BleakScanner``/``BleakClient``, which need a running BlueZ,
are replaced by a bumble device on the same link: it reports advertisements as bleak's BlueZ
backend does and performs the GATT read over a real virtual connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bumble.device import Advertisement, Device, Peer

from ble.advertiser.bumble import BumbleAdvertiser
from ble.calibration import DEFAULT_RX_GAIN, calibrate_rssi
from ble.collector import ADVERTISEMENT, READ, WRITE, HeardHello, RecordListener
from ble.node import BleNode
from ble.payload import parse_advertising_data
from ble.scanner.base import HelloScanner, SightingCallback
from ble.scanner.bleak import BleakHelloScanner
from ble.scanner.bumble import BumbleHelloScanner, read_hello_characteristic
from ble.simulated import KINDS, SimulatedPhone
from protocol.hello import Hello, verify_hello
from tests.ble.conftest import VIRTUAL_RSSI, FakePhone, RecordingSink, virtual_devices, wall_clock

PEER_TX = -20
HOW_WE_HEAR = {
    "android": ADVERTISEMENT,
    "iphone-foreground": READ,
    "iphone-background": READ,
    "iphone-writer": WRITE,
}


class Records(RecordListener):
    def __init__(self) -> None:
        self.records: list[HeardHello] = []
        self.first_at: float | None = None

    def on_record(self, record: HeardHello) -> None:
        if self.first_at is None:
            self.first_at = asyncio.get_running_loop().time()
        self.records.append(record)


def uuid128(uuid16: int) -> str:
    return f"0000{uuid16:04x}-0000-1000-8000-00805f9b34fb"


def as_bleak_reports(advertisement: Advertisement) -> tuple[BLEDevice, AdvertisementData]:
    """An advertisement as bleak's BlueZ backend hands it to the detection callback."""
    fields = parse_advertising_data(advertisement.data_bytes)
    address = str(advertisement.address)
    device = BLEDevice(address, None, {"path": f"/org/bluez/hci0/dev_{address.replace(':', '_')}"})
    data = AdvertisementData(
        local_name=None,
        manufacturer_data=dict(fields.manufacturer_data),
        service_data={uuid128(u): v for u, v in fields.service_data16.items()},
        service_uuids=[uuid128(u) for u in fields.service_uuids16],
        tx_power=None,
        rssi=advertisement.rssi,
        platform_data=(),
    )
    return device, data


class BleakOnVirtualLink(BleakHelloScanner):
    """The bleak scanner with BleakScanner and BleakClient replaced by a bumble device."""

    def __init__(self, device: Device, **options: Any) -> None:
        super().__init__(connector=self._read_over_bumble, **options)
        self._device = device

    def _on_bumble(self, advertisement: Advertisement) -> None:
        self.handle(*as_bleak_reports(advertisement))

    async def _read_over_bumble(self, device: BLEDevice, timeout: float) -> bytes:
        await self._device.stop_scanning()
        try:
            connection = await self._device.connect(device.address, timeout=timeout)
            try:
                return await read_hello_characteristic(Peer(connection))
            finally:
                await connection.disconnect()
        finally:
            if self._on_sighting is not None:
                await self._device.start_scanning(active=False, filter_duplicates=False)

    async def start(self, on_sighting: SightingCallback) -> None:
        self._on_sighting = on_sighting
        self._device.on("advertisement", self._on_bumble)
        await self._device.start_scanning(active=False, filter_duplicates=False)
        self.mode = "passive"

    async def stop(self) -> None:
        await super().stop()
        self._device.remove_listener("advertisement", self._on_bumble)
        if self._device.is_scanning:
            await self._device.stop_scanning()


SCANNERS: dict[str, Callable[[Device], HelloScanner]] = {
    "bumble": lambda device: BumbleHelloScanner(device, hello_period=2.0),
    "bleak": lambda device: BleakOnVirtualLink(device, hello_period=2.0),
}


def our_node(device: Device, phone: FakePhone, scanner: HelloScanner) -> tuple[BleNode, Records]:
    seen = Records()
    node = BleNode(
        phone,
        RecordingSink(),
        wall_clock,
        advertiser=BumbleAdvertiser(device, kind="peripheral", interval_ms=100.0),
        scanner=scanner,
        refresh_interval=0.5,
        listeners=(seen,),
        report=lambda _line: None,
    )
    return node, seen


async def exchange(
    kind: str, scanner_name: str, ours: FakePhone, theirs: FakePhone, limit: float = 20.0
) -> tuple[BleNode, Records, SimulatedPhone, float]:
    """Run our node and one simulated phone until each heard the other; the start time."""
    async with virtual_devices(2) as (mine, other):
        node, seen = our_node(mine, ours, SCANNERS[scanner_name](mine))
        peer = SimulatedPhone(kind, other, theirs, wall_clock, tx_gain=PEER_TX)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await peer.start()
        await node.start()
        while loop.time() < started + limit and not (seen.records and peer.heard):
            await asyncio.sleep(0.02)
        await node.stop()
        await peer.stop()
    return node, seen, peer, started


def check_we_heard(kind: str, seen: Records, theirs: FakePhone) -> HeardHello:
    assert seen.records, f"our client did not hear the {kind}"
    record = seen.records[0]
    assert record.via == HOW_WE_HEAR[kind]
    assert record.hello.ebid in {theirs.ebid_at(t) for t in theirs.asked}
    verify_hello(theirs.k_a, record.hello, record.received_ntp)
    assert record.tx_gain == PEER_TX
    assert record.rssi_raw == VIRTUAL_RSSI  # the advertisement's, or the connection's
    assert record.rssi_calibrated == calibrate_rssi(VIRTUAL_RSSI, PEER_TX, DEFAULT_RX_GAIN)
    return record


def check_they_heard(kind: str, peer: SimulatedPhone, ours: FakePhone) -> None:
    assert peer.heard, f"the {kind} did not hear us"
    heard = peer.heard[0]
    assert heard.how == "advertisement"
    hello = Hello.parse(heard.hello)
    assert hello.ebid in {ours.ebid_at(t) for t in ours.asked}
    verify_hello(ours.k_a, hello, heard.received_ntp)
    assert heard.rssi_calibrated == calibrate_rssi(VIRTUAL_RSSI, -30, DEFAULT_RX_GAIN)


@pytest.mark.parametrize("kind", KINDS)
async def test_bumble_client_and_each_phone_kind_hear_each_other(
    kind: str, make_phone: Any
) -> None:
    ours, theirs = make_phone(), make_phone()
    node, seen, peer, _ = await exchange(kind, "bumble", ours, theirs)
    check_we_heard(kind, seen, theirs)
    check_they_heard(kind, peer, ours)
    assert node.advertiser is not None and node.scanner is not None
    if kind == "iphone-writer":
        assert peer.counters["wrote"] >= 1 and node.advertiser.counters["writes"] >= 1
    if kind.startswith("iphone-") and kind != "iphone-writer":
        assert peer.counters["read_by_peer"] >= 1 and node.scanner.counters["gatt_read"] >= 1
    assert node.scanner.counters["gatt_failed"] == node.scanner.counters["gatt_timeouts"] == 0


@pytest.mark.parametrize("kind", ["android", "iphone-foreground", "iphone-background"])
async def test_bleak_client_hears_each_advertising_phone_kind(kind: str, make_phone: Any) -> None:
    ours, theirs = make_phone(), make_phone()
    node, seen, peer, _ = await exchange(kind, "bleak", ours, theirs)
    check_we_heard(kind, seen, theirs)
    check_they_heard(kind, peer, ours)
    assert node.scanner is not None
    if kind != "android":
        assert node.scanner.counters["gatt_read"] >= 1


async def test_bleak_client_hears_a_bumble_client(make_phone: Any) -> None:
    """Our two clients: the bleak scanner hears the bumble advertiser's service data."""
    listener, speaker = make_phone(), make_phone()
    async with virtual_devices(2) as (mine, other):
        node, seen = our_node(mine, listener, SCANNERS["bleak"](mine))
        other_node, _ = our_node(other, speaker, SCANNERS["bumble"](other))
        async with other_node, node:
            loop = asyncio.get_running_loop()
            end = loop.time() + 20.0
            while loop.time() < end and not seen.records:
                await asyncio.sleep(0.02)
    assert seen.records and seen.records[0].via == ADVERTISEMENT
    record = seen.records[0]
    assert record.hello.ebid in {speaker.ebid_at(t) for t in speaker.asked}
    verify_hello(speaker.k_a, record.hello, record.received_ntp)
