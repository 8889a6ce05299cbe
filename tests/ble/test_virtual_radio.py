"""End to end over a virtual radio: bumble controllers on one LocalLink, no hardware.

Each virtual phone is a real ``BleNode`` with the bumble advertiser and scanner, a HelloSource
built from real keys and a recording sink. The HELLOs travel as legacy advertising PDUs between
the virtual controllers; we check every phone hears every other with an RSSI, parses, calibrates
and de-duplicates, and that the HELLOs verify under the sender's K_A.
"""

from __future__ import annotations

import asyncio

from bumble.device import AdvertisingType

from ble.advertiser.bumble import BumbleAdvertiser
from ble.calibration import DEFAULT_RX_GAIN, calibrate_rssi
from ble.collector import HeardHello, RecordListener
from ble.node import BleNode
from ble.payload import AD_MANUFACTURER_DATA, APPLE_COMPANY_ID, ROBERT_OVERFLOW, RobertPayload
from ble.scanner.base import SightingCallback
from ble.scanner.bumble import BumbleHelloScanner
from protocol.hello import Hello, verify_hello
from tests.ble.conftest import FakePhone, RecordingSink, virtual_devices, wall_clock


class TimedScanner(BumbleHelloScanner):
    """Notes when the first sighting arrives, to measure time to first receipt."""

    first_sighting: float | None = None

    async def start(self, on_sighting: SightingCallback) -> None:
        loop = asyncio.get_running_loop()

        def timed(sighting: object) -> None:
            if self.first_sighting is None:
                self.first_sighting = loop.time()
            on_sighting(sighting)  # type: ignore[arg-type]

        await super().start(timed)


class Records(RecordListener):
    def __init__(self) -> None:
        self.records: list[HeardHello] = []

    def on_record(self, record: HeardHello) -> None:
        self.records.append(record)


async def test_three_phones_hear_each_other(make_phone: object) -> None:
    tx_gains = [-30, -20, -10]
    phones: list[FakePhone] = [make_phone() for _ in tx_gains]  # type: ignore[operator]
    async with virtual_devices(3) as devices:
        sinks = [RecordingSink() for _ in devices]
        listeners = [Records() for _ in devices]
        scanners = [TimedScanner(device) for device in devices]
        nodes = [
            BleNode(
                phone,
                sink,
                wall_clock,
                advertiser=BumbleAdvertiser(device, kind="broadcast"),
                scanner=scanner,
                tx_gain=tx,
                refresh_interval=0.5,
                listeners=(listener,),
                report=lambda _line: None,
            )
            for phone, sink, device, scanner, tx, listener in zip(
                phones, sinks, devices, scanners, tx_gains, listeners, strict=True
            )
        ]
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_record: float | None = None
        for node in nodes:
            await node.start()

        def everyone_heard_everyone() -> bool:
            """Each phone has a record of some EBID of each other phone."""
            for i, records in enumerate(listeners):
                heard = {r.hello.ebid for r in records.records}
                for j, other in enumerate(phones):
                    if j != i and not heard & {other.ebid_at(t) for t in other.asked}:
                        return False
            return True

        deadline = started + 6.0
        while loop.time() < deadline and not everyone_heard_everyone():
            if first_record is None and any(r.records for r in listeners):
                first_record = loop.time()
            await asyncio.sleep(0.05)
        if first_record is None and any(r.records for r in listeners):
            first_record = loop.time()
        await asyncio.sleep(1.2)  # a couple of seconds of duplicates to merge
        for node in nodes:
            await node.stop()

    assert everyone_heard_everyone()
    first_sighting = min(s.first_sighting for s in scanners if s.first_sighting is not None)
    advertising_start = min(n.advertising_since for n in nodes if n.advertising_since is not None)
    print(
        f"\ntime to first receipt over the virtual radio: "
        f"{(first_sighting - advertising_start) * 1000:.1f} ms to the scanner, "
        f"{(first_record - started) * 1000:.0f} ms to the sink (after the one-second merge)"  # type: ignore[operator]
    )
    for i, (sink, records) in enumerate(zip(sinks, listeners, strict=True)):
        assert sink.records, f"phone {i} heard nothing"
        # every EBID each phone advertised (a test may straddle an epoch change)
        by_sender = {
            p.ebid_at(t): (p, tx) for p, tx in zip(phones, tx_gains, strict=True) for t in p.asked
        }
        own_ebids = {phones[i].ebid_at(t) for t in phones[i].asked}
        seconds_per_hello: dict[tuple[bytes, int], int] = {}
        for record in records.records:
            assert record.hello.ebid not in own_ebids  # a controller does not hear itself
            sender, tx = by_sender[record.hello.ebid]
            assert record.tx_gain == tx
            assert record.rssi_raw < 0
            assert record.rssi_calibrated == calibrate_rssi(record.rssi_raw, tx, DEFAULT_RX_GAIN)
            verify_hello(sender.k_a, record.hello, record.received_ntp)
            key = (record.raw, record.received_ntp)
            seconds_per_hello[key] = seconds_per_hello.get(key, 0) + 1
        assert set(seconds_per_hello.values()) == {1}  # one record per HELLO per second
        assert sum(r.samples for r in records.records) > len(records.records)  # merges happened
        assert [(r.raw, r.received_ntp, r.rssi_calibrated) for r in records.records] == sink.records


async def test_background_iphone_is_read_over_gatt(make_phone: object) -> None:
    iphone_phone: FakePhone = make_phone()  # type: ignore[operator]
    async with virtual_devices(2) as (iphone, laptop):
        # The "iPhone" serves its payload on the GATT characteristic but advertises only
        # Apple's overflow area, as iOS does for an app in the background.
        served = BumbleAdvertiser(iphone, kind="peripheral")
        hello = iphone_phone.current_hello(wall_clock())
        assert hello is not None
        await served.start(RobertPayload(hello, 1, -25))
        await iphone.stop_advertising()
        overflow = bytes([3 + len(ROBERT_OVERFLOW), AD_MANUFACTURER_DATA])
        overflow += APPLE_COMPANY_ID.to_bytes(2, "little") + ROBERT_OVERFLOW
        await iphone.start_advertising(
            advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
            advertising_data=bytes.fromhex("02011a") + overflow,
            auto_restart=True,
        )
        sink, seen = RecordingSink(), Records()
        scanner = BumbleHelloScanner(laptop, hello_period=60.0)
        node = BleNode(None, sink, wall_clock, advertiser=None, scanner=scanner, listeners=(seen,))
        async with node:
            for _ in range(80):
                await asyncio.sleep(0.1)
                if sink.records:
                    break
        await served.stop()

    assert scanner.counters["gatt_read"] == 1
    assert served.gatt_reads == 1
    assert node.collector.counters["overflow_sightings"] >= 1
    received, when, rssi = sink.records[0]
    assert received == hello
    verify_hello(iphone_phone.k_a, Hello.parse(received), when)
    record = seen.records[0]
    assert record.tx_gain == -25 and record.rssi_raw < 0
    assert rssi == calibrate_rssi(record.rssi_raw, -25, DEFAULT_RX_GAIN)
