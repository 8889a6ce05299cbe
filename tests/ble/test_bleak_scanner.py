"""The bleak scanner at its callback boundary, fed recorded advertisement data.

No mocked BlueZ here (python-dbusmock needs dbus-python, which needs libdbus headers to build):
we build bleak's own BLEDevice and AdvertisementData as BlueZ would report them and call the
detection callback, as bleak does.
"""

from __future__ import annotations

from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from ble.collector import HelloCollector, Sighting
from ble.payload import ROBERT_OVERFLOW, SERVICE_UUID, RobertPayload
from ble.scanner.bleak import BleakHelloScanner, or_patterns
from tests.ble.conftest import NOW, RecordingSink

HELLO = bytes.fromhex("210102030405060708abcd1122334455")


def advertisement(
    rssi: int,
    service_data: dict[str, bytes] | None = None,
    manufacturer_data: dict[int, bytes] | None = None,
) -> tuple[BLEDevice, AdvertisementData]:
    """What bleak's BlueZ backend hands the detection callback."""
    device = BLEDevice("C0:11:22:33:44:55", None, {"path": "/org/bluez/hci0/dev_C0_11"})
    data = AdvertisementData(
        local_name=None,
        manufacturer_data=manufacturer_data or {},
        service_data=service_data or {},
        service_uuids=[SERVICE_UUID] if service_data else [],
        tx_power=None,
        rssi=rssi,
        platform_data=(),
    )
    return device, data


def test_service_data_becomes_a_sighting() -> None:
    seen: list[Sighting] = []
    scanner = BleakHelloScanner()
    scanner._on_sighting = seen.append  # as start() would, without a radio
    payload = RobertPayload(HELLO, 1, -17)
    scanner.handle(*advertisement(-71, {SERVICE_UUID: payload.to_service_data()}))
    assert seen == [Sighting("C0:11:22:33:44:55", -71, payload)]


def test_recorded_stream_through_collector() -> None:
    sink = RecordingSink()
    collector = HelloCollector(sink, lambda: NOW)
    scanner = BleakHelloScanner(read_gatt=False)  # reads: tests/ble/test_phone_kinds.py
    scanner._on_sighting = collector.feed
    data = {SERVICE_UUID: RobertPayload(HELLO, 1, -30).to_service_data()}
    for rssi in (-80, -66, -70):  # BlueZ reports the same advertisement several times
        scanner.handle(*advertisement(rssi, data))
    scanner.handle(*advertisement(-50, {SERVICE_UUID: b"\x00" * 5}))  # malformed
    scanner.handle(*advertisement(-50, manufacturer_data={0x0006: b"\x01\x09"}))  # not ours
    scanner.handle(*advertisement(-64, manufacturer_data={0x004C: ROBERT_OVERFLOW}))
    collector.flush()
    assert sink.records == [(HELLO, NOW, -66 + 30 + 5)]
    assert scanner.counters["malformed"] == 1
    assert scanner.counters["ignored"] == 2  # the malformed one and the foreign one
    assert collector.counters["overflow_sightings"] == 1


def test_passive_patterns_match_our_advertisements() -> None:
    patterns = {(p.ad_data_type, p.content_of_pattern) for p in or_patterns()}
    assert (AdvertisementDataType.SERVICE_DATA_UUID16, b"\x64\xfd") in patterns
    assert (AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\x4c\x00\x01") in patterns
    for uuid_list in (
        AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID16,
        AdvertisementDataType.INCOMPLETE_LIST_SERVICE_UUID16,
    ):  # a foreground iPhone: the UUID alone
        assert (uuid_list, b"\x64\xfd") in patterns
