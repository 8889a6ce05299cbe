"""Our characteristic as a central sees it, and reads of peers that fail, never answer or leave.

Writes go over a real (virtual) ATT connection from a bumble client to our ``BumbleAdvertiser``;
failures are a UUID-only advertiser without the service, and a connector that never returns.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bumble import gatt, hci
from bumble.core import UUID
from bumble.device import Device, Peer

from ble.advertiser.bumble import BumbleAdvertiser
from ble.calibration import DEFAULT_RX_GAIN, calibrate_rssi
from ble.collector import WRITE, HeardHello, RecordListener, Sighting
from ble.node import BleNode
from ble.payload import (
    CHARACTERISTIC_UUID,
    SERVICE_UUID,
    RobertPayload,
    WrittenPayload,
)
from ble.scanner.base import PeerReads
from ble.scanner.bleak import BleakHelloScanner
from ble.scanner.bumble import CONNECT_SHARE, BumbleHelloScanner, find_hello_characteristic
from ble.simulated import RssiController, SimulatedPhone
from tests.ble.conftest import (
    VIRTUAL_RSSI,
    FakePhone,
    RecordingSink,
    advertise_uuid_only,
    cancel_a_connect,
    virtual_devices,
    wait_for,
    wall_clock,
)

Properties = gatt.Characteristic.Properties


class Records(RecordListener):
    def __init__(self) -> None:
        self.records: list[HeardHello] = []

    def on_record(self, record: HeardHello) -> None:
        self.records.append(record)


async def write_and_read(
    central: Device, address: Any, values: list[bytes]
) -> tuple[bytes, list[str]]:
    """Connect as a phone would, check the characteristic says it is readable and writable,
    write each value (noting errors), read ours, disconnect."""
    async with asyncio.timeout(10.0):
        connection = await central.connect(address, timeout=5.0)
    outcomes: list[str] = []
    try:
        characteristic = await find_hello_characteristic(Peer(connection))
        properties = characteristic.properties
        # a phone writes only to a characteristic that advertises WRITE (iOS checks it)
        assert properties & Properties.READ and properties & Properties.WRITE, properties
        for value in values:
            try:
                await characteristic.write_value(value, with_response=True)
            except Exception as exc:  # bumble's ATT error response, as a phone would get it
                outcomes.append(type(exc).__name__)
            else:
                outcomes.append("ok")
        read = bytes(await characteristic.read_value())
    finally:
        await connection.disconnect()
    return read, outcomes


@pytest.mark.parametrize("read_rssi", [True, False])
async def test_writes_of_18_and_19_bytes_are_heard_others_refused(
    make_phone: Any, read_rssi: bool
) -> None:
    ours: FakePhone = make_phone()
    android = RobertPayload(bytes(range(16)), 1, -25)
    iphone = RobertPayload(bytes(range(16, 32)), 1, -12)
    async with virtual_devices(2, read_rssi=read_rssi) as (mine, phone):
        sink, seen = RecordingSink(), Records()
        advertiser = BumbleAdvertiser(mine, kind="peripheral")
        node = BleNode(
            ours, sink, wall_clock, advertiser=advertiser, scanner=None, listeners=(seen,)
        )
        async with node:
            while advertiser.current is None:
                await asyncio.sleep(0.01)
            read, outcomes = await write_and_read(
                phone,
                mine.random_address,
                [
                    WrittenPayload(android, -58).to_bytes(),  # an Android central: 19 bytes
                    WrittenPayload(android, -58).to_bytes(),  # written again: one record
                    WrittenPayload(iphone).to_bytes(),  # an iPhone: 18 bytes
                    bytes(17),
                    bytes(20),
                    bytes(16),
                ],
            )
            served = advertiser.current
        [served_characteristic] = [
            a
            for a in mine.gatt_server.attributes
            if isinstance(a, gatt.Characteristic) and a.uuid == UUID(CHARACTERISTIC_UUID)
        ]
    assert read == served.to_service_data()
    assert outcomes[:3] == ["ok", "ok", "ok"] and "ok" not in outcomes[3:]
    # bumble's server does not enforce these permissions, a real stack's may: checked here
    permissions = served_characteristic.permissions
    assert permissions & gatt.Characteristic.READABLE, permissions
    assert permissions & gatt.Characteristic.WRITEABLE, permissions
    assert advertiser.counters["write_refused"] == 3
    assert node.collector.counters["connected_duplicates"] == 1
    assert all(r.via == WRITE for r in seen.records)
    got = {r.raw: r.rssi_calibrated for r in seen.records}
    assert got[android.hello] == -58  # the writer's measurement, as it is
    if read_rssi:  # the connection's RSSI, calibrated with the writer's TX gain
        assert got[iphone.hello] == calibrate_rssi(VIRTUAL_RSSI, -12, DEFAULT_RX_GAIN)
    else:  # never heard advertising and no connection RSSI: not scored, counted
        assert iphone.hello not in got and advertiser.counters["write_no_rssi"] == 1
    assert len(sink.records) == len(seen.records)


def test_peer_reads_once_per_period_with_bounded_retries() -> None:
    now = [0.0]
    reads = PeerReads(hello_period=10.0, max_attempts=3, retry_delay=1.0, clock=lambda: now[0])
    assert reads.due("a") and not reads.due("a")  # attempt 1, in flight: no second one
    now[0] = 0.5
    assert not reads.failed("a") and not reads.due("a")  # the next waits 1 s after failing
    now[0] = 1.5
    assert reads.due("a")  # attempt 2
    assert not reads.failed("a")
    now[0] = 3.4
    assert not reads.due("a")  # waits 2 s
    now[0] = 3.5
    assert reads.due("a") and reads.failed("a")  # attempt 3 was the last
    now[0] = 9.9
    assert not reads.due("a")
    now[0] = 10.0
    assert reads.due("a")  # a new period
    now[0] = 10.5
    reads.succeeded("a")
    now[0] = 19.9
    assert not reads.due("a") and reads.due("b")
    now[0] = 20.0
    assert reads.due("a")


async def test_uuid_only_advertiser_without_the_service_is_tried_three_times(
    make_phone: Any,
) -> None:
    async with virtual_devices(2) as (mine, stranger):
        await advertise_uuid_only(stranger)
        scanner = BumbleHelloScanner(mine, hello_period=60.0, retry_delay=0.05)
        node = BleNode(None, RecordingSink(), wall_clock, advertiser=None, scanner=scanner)
        async with node:
            loop = asyncio.get_running_loop()
            end = loop.time() + 10.0
            while loop.time() < end and not scanner.counters["gatt_gave_up"]:
                await asyncio.sleep(0.02)
            sightings = node.collector.counters["uuid_only_sightings"]
            await asyncio.sleep(0.5)  # still scanning after giving up, and not reading
            assert node.collector.counters["uuid_only_sightings"] > sightings
    assert scanner.counters["gatt_failed"] == 3 and scanner.counters["gatt_gave_up"] == 1
    assert scanner.counters["gatt_read"] == 0


async def test_a_peer_that_never_answers_times_out_within_the_bound() -> None:
    calls: list[str] = []

    async def never(device: BLEDevice, timeout: float) -> bytes:
        calls.append(device.address)
        await asyncio.Event().wait()  # a connection that never completes
        raise AssertionError("unreachable")

    scanner = BleakHelloScanner(
        connector=never, hello_period=60.0, read_timeout=0.1, retry_delay=0.05
    )
    seen: list[object] = []
    scanner._on_sighting = seen.append  # as start() would, without a radio
    device = BLEDevice("5A:00:00:00:00:01", None, {"path": "/org/bluez/hci0/dev_5A"})
    adv = AdvertisementData(None, {}, {}, [SERVICE_UUID], None, -60, ())
    loop = asyncio.get_running_loop()
    started = loop.time()
    given_up_at: float | None = None
    while loop.time() < started + 20.0:
        scanner.handle(device, adv)  # the iPhone keeps advertising
        await asyncio.sleep(0.02)
        if given_up_at is None and scanner.counters["gatt_gave_up"]:
            given_up_at = loop.time()
        if given_up_at is not None and loop.time() > given_up_at + 0.5:
            break  # half a second more of advertisements: no fourth attempt
    await scanner.stop()
    assert calls == [device.address] * 3
    assert scanner.counters["gatt_timeouts"] == 3 and scanner.counters["gatt_gave_up"] == 1
    assert len(seen) > 10  # every advertisement was still delivered


async def test_after_a_vanished_peer_times_out_a_present_iphone_is_still_read(
    make_phone: Any,
) -> None:
    """A peer heard once and gone before we connect: the attempt times out, is cancelled in the
    controller, and the next peer is read (a pending attempt made every later connect fail)."""
    async with virtual_devices(3) as (mine, iphone_device, gone):
        scanner = BumbleHelloScanner(mine, read_timeout=1.0, retry_delay=0.2, hello_period=60.0)
        node = BleNode(None, RecordingSink(), wall_clock, advertiser=None, scanner=scanner)
        async with node:
            await wait_for(lambda: scanner.mode == "passive", 5.0, "not scanning")
            loop = asyncio.get_running_loop()
            started = loop.time()
            scanner.deliver(
                Sighting("F0:F1:F2:F3:F4:02/P", -60, None, uuid_only=True), gone.public_address
            )
            await wait_for(lambda: scanner.counters["gatt_timeouts"] == 1, 5.0, "no timeout")
            assert loop.time() - started < 1.0  # bumble's own connect timeout, within the bound
            assert not scanner._read_tasks
            iphone = SimulatedPhone("iphone-foreground", iphone_device, make_phone(), wall_clock)
            await iphone.start()
            try:
                await wait_for(lambda: scanner.counters["gatt_read"] >= 1, 10.0, "iPhone not read")
            finally:
                await iphone.stop()
    assert scanner.counters["gatt_failed"] == 0 and scanner.counters["gatt_timeouts"] == 1
    assert iphone.counters["read_by_peer"] >= 1


async def test_a_connect_cancelled_from_outside_is_cancelled_in_the_controller() -> None:
    """The read's bound or ``stop`` cancelling the connect (bumble then sends no Cancel): we
    send HCI LE Create Connection Cancel, and the next connect to a present peer works."""
    async with virtual_devices(2) as (mine, peer):
        await advertise_uuid_only(peer)
        scanner = BumbleHelloScanner(mine, read_timeout=30.0)
        nobody = "F0:F1:F2:F3:F4:09"  # no device at this address
        await cancel_a_connect(scanner, mine, nobody)
        assert scanner.counters["connect_cancelled"] == 1
        assert CONNECT_SHARE * scanner.read_timeout > 5.0  # bumble's timeout did not do it
        async with asyncio.timeout(5.0):
            connection = await scanner._connect(peer.random_address)
        await connection.disconnect()


async def test_a_connection_made_just_before_the_cancel_is_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The controller connected just before our Cancel reached it (it then answers Command
    Disallowed): bumble's connect still gets the connection, and we disconnect it."""

    def connect_then_refuse(
        controller: RssiController, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = controller.pending_le_connection
        if pending is not None:
            controller.create_le_connection(pending.peer_address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)

    monkeypatch.setattr(
        RssiController, "on_hci_le_create_connection_cancel_command", connect_then_refuse
    )
    async with virtual_devices(2) as (mine, peer):
        scanner = BumbleHelloScanner(mine, read_timeout=30.0)
        await cancel_a_connect(scanner, mine, peer.public_address)
        assert scanner.counters["connect_raced_cancel"] == 1
        await wait_for(lambda: not mine.host.connections, 5.0, "the connection was left open")
        assert not mine.connections
