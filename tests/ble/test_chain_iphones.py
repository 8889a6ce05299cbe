"""The whole chain with iPhones: radio, phone, real server over HTTP, report, status.

Like ``test_real_server``, with real ``phone.client.Phone`` objects registered with an in-process
server over loopback HTTP, time 120 times faster than the wall clock, but the other phones are
iPhones that our client can hear *only* over a connection: in the foreground (UUID only: our
scanner connects and reads their characteristic) or as writers (they write their 18-byte payload
to our characteristic). Alice (our client) stays with Bob (an iPhone) for about twenty simulated
minutes; Carol (an iPhone of the same kind) passes by for two. Alice reports with a submission
code the HELLOs she got over those connections: Bob is warned, Carol is not.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from bumble.device import Device

from ble.advertiser.bumble import BumbleAdvertiser
from ble.node import BleNode
from ble.scanner.bumble import BumbleHelloScanner
from ble.simulated import SimulatedPhone
from phone.client import Phone
from protocol.codes import CodeKind
from protocol.epochs import ntp_from_unix
from protocol.hello import Hello
from server.app import WORKER, create_app
from server.settings import Settings
from tests.ble.conftest import virtual_devices
from tests.server.conftest import code_service, issue

SPEED = 120.0
"""One real second is two simulated minutes; reads and writes every 0.4 s are 48 s apart."""


class FastClock:
    """Unix seconds running SPEED times faster than the wall clock."""

    def __init__(self) -> None:
        self.origin = time.time()

    def __call__(self) -> float:
        return self.origin + (time.time() - self.origin) * SPEED


@pytest.mark.parametrize("kind", ["iphone-foreground", "iphone-writer"])
async def test_iphones_heard_only_over_connections_are_warned_when_we_report(
    tmp_path: Path, kind: str
) -> None:
    clock = FastClock()

    def ntp() -> int:
        return ntp_from_unix(clock())

    settings = Settings(
        data_dir=str(tmp_path), captcha="off", status_min_interval=0, embedded_worker=False
    )
    codes = code_service(tmp_path, clock)  # type: ignore[arg-type]
    server = TestServer(create_app(settings, codes, clock=clock), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as session, virtual_devices(3) as devices:
        phones = [Phone(url, clock, random.Random(i).randbytes, session) for i in range(3)]
        for phone in phones:
            await phone.register()
        alice, bob, carol = phones

        alice_node = BleNode(
            alice,
            alice,
            ntp,
            advertiser=BumbleAdvertiser(devices[0], kind="peripheral", interval_ms=100.0),
            scanner=BumbleHelloScanner(devices[0], hello_period=0.4),
            refresh_interval=0.25,
            report=lambda _line: None,
        )

        def iphone(phone: Phone, device: Device) -> SimulatedPhone:
            return SimulatedPhone(kind, device, phone, ntp, sink=phone, write_period=0.4)

        bob_iphone, carol_iphone = iphone(bob, devices[1]), iphone(carol, devices[2])
        await bob_iphone.start()
        await alice_node.start()
        await asyncio.sleep(9.0)  # 18 simulated minutes together
        await carol_iphone.start()
        await asyncio.sleep(1.0)  # Carol passes by for two minutes
        await carol_iphone.stop()
        await asyncio.sleep(1.0)
        await alice_node.stop()
        await bob_iphone.stop()

        assert alice_node.advertiser is not None and alice_node.scanner is not None
        if kind == "iphone-writer":  # Alice heard the iPhones only through their writes
            assert alice_node.advertiser.counters["writes"] >= 10
            assert alice_node.scanner.counters["gatt_read"] == 0
        else:  # only by reading their characteristic
            assert alice_node.scanner.counters["gatt_read"] >= 10
            assert alice_node.advertiser.counters["writes"] == 0
        heard = {ebid for ebid, _ecc in alice.heard}
        bob_ebids = {Hello.parse(h).ebid for h in bob_iphone.sent}
        carol_ebids = {Hello.parse(h).ebid for h in carol_iphone.sent}
        assert heard & bob_ebids and heard & carol_ebids

        [code] = await issue(codes, CodeKind.SHORT)
        await alice.report(code)
        assert await server.app[WORKER].drain() == 1
        assert (await bob.check_status()).at_risk
        assert not (await carol.check_status()).at_risk
    await server.close()
