"""The whole chain on a virtual radio: real phones, real HELLOs over bumble, the real server.

Three ``phone.client.Phone`` objects register with an in-process server over loopback HTTP,
each drives a ``BleNode`` on its own virtual controller, so the HELLOs they keep are the ones
that crossed the (virtual) air. Alice and Bob stay together for twenty simulated minutes; Carol
passes by for two. Alice reports with a submission code: Bob is warned, Carol is not.

Time runs 120 times faster than the wall clock (one real second is two simulated minutes) for
the phones, the radio nodes and the server alike, so the test takes seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from ble.advertiser.bumble import BumbleAdvertiser
from ble.node import BleNode
from ble.scanner.bumble import BumbleHelloScanner
from phone.client import Phone
from protocol.codes import CodeKind
from protocol.epochs import ntp_from_unix
from server.app import WORKER, create_app
from server.settings import Settings
from tests.ble.conftest import virtual_devices
from tests.server.conftest import code_service, issue

SPEED = 120.0


class FastClock:
    """Unix seconds running SPEED times faster than the wall clock."""

    def __init__(self) -> None:
        self.origin = time.time()

    def __call__(self) -> float:
        return self.origin + (time.time() - self.origin) * SPEED


async def test_reported_contact_over_the_virtual_radio_warns_the_right_phone(
    tmp_path: Path,
) -> None:
    clock = FastClock()
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

        def node(phone: Phone, device: object) -> BleNode:
            return BleNode(
                phone,
                phone,
                lambda: ntp_from_unix(clock()),
                advertiser=BumbleAdvertiser(device, kind="broadcast"),  # type: ignore[arg-type]
                scanner=BumbleHelloScanner(device),  # type: ignore[arg-type]
                refresh_interval=0.25,
                report=lambda _line: None,
            )

        nodes = [node(p, d) for p, d in zip(phones, devices, strict=True)]
        await nodes[0].start()
        await nodes[1].start()
        await asyncio.sleep(9.0)  # 18 simulated minutes together
        await nodes[2].start()
        await asyncio.sleep(1.0)  # Carol passes by for two minutes
        await nodes[2].stop()
        await asyncio.sleep(1.0)
        await nodes[0].stop()
        await nodes[1].stop()

        assert bob.heard and alice.heard and carol.heard
        [code] = await issue(codes, CodeKind.SHORT)
        await alice.report(code)
        assert await server.app[WORKER].drain() == 1
        assert (await bob.check_status()).at_risk
        assert not (await carol.check_status()).at_risk
    await server.close()
