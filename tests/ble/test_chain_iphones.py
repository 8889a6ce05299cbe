"""The whole chain with iPhones: radio, phone, real server over HTTP, report, status.

Like ``test_real_server``, with real ``phone.client.Phone`` objects registered with an in-process
server over loopback HTTP, but time moves in steps of 30 s, one per round of the radio (each
iPhone got through to Alice once more), so the exposure does not depend on this machine's speed.
The other phones are iPhones that our client can hear *only* over a connection: in the
foreground (UUID only: our scanner connects and reads their characteristic), in the background
(Apple's overflow area only: read likewise) or as writers (they write their 18-byte payload to
our characteristic). Alice (our client) stays with Bob (an iPhone) for eighteen simulated
minutes; later Carol (an iPhone of the same kind) passes by for three.
Alice reports with a submission code the HELLOs she got over those connections: Bob is warned,
Carol is not. The other way round, Bob reports the HELLOs his iPhone heard from Alice's
advertisements: Alice is warned, Carol (who never met Bob) is not.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

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

STEP = 30.0
"""Simulated seconds the clock moves at the end of each round."""


class SteppedClock:
    """Unix seconds that move only when the test says: a round of the radio is one step, so the
    simulated exposure does not depend on how fast this machine runs the virtual radio."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def step(self) -> None:
        self.now += STEP


async def rounds(
    clock: SteppedClock,
    count: int,
    iphones: list[SimulatedPhone],
    what: str,
    limit: float = 30.0,
    hear_alice: bool = False,
) -> None:
    """``count`` rounds: each ends once every iPhone got through to Alice again (read or
    write), and with ``hear_alice`` also recorded a new HELLO of hers, then the clock steps on.
    Without waiting for Alice's HELLO, a round could end before Alice refreshed hers (every
    0.25 s; a writer's round takes about 0.1 s), so Bob heard her in 24 to 31 of 36 rounds on a
    quiet machine and fewer on a loaded one: the exposure Bob reported depended on speed."""
    loop = asyncio.get_running_loop()

    def exchanges() -> list[int]:
        counts = [p.counters["read_by_peer"] + p.counters["wrote"] for p in iphones]
        return counts + [len(p.heard) for p in iphones] if hear_alice else counts

    for _ in range(count):
        before = exchanges()
        end = loop.time() + limit
        while not all(now > then for now, then in zip(exchanges(), before, strict=True)):
            assert loop.time() < end, f"no exchange within {limit} s in the {what} rounds"
            await asyncio.sleep(0.01)
        clock.step()


KINDS = ["iphone-foreground", "iphone-background", "iphone-writer"]


@pytest.mark.parametrize("kind", KINDS)
async def test_iphones_heard_only_over_connections_are_warned_when_we_report(
    tmp_path: Path, kind: str
) -> None:
    await run_chain(tmp_path, kind, reporter="alice")


@pytest.mark.parametrize("kind", KINDS)
async def test_we_are_warned_when_an_iphone_reports(tmp_path: Path, kind: str) -> None:
    await run_chain(tmp_path, kind, reporter="bob")


async def run_chain(tmp_path: Path, kind: str, reporter: str) -> None:
    clock = SteppedClock()
    settings = Settings(
        data_dir=str(tmp_path), captcha="off", status_min_interval=0, embedded_worker=False
    )
    codes = code_service(tmp_path, clock)  # type: ignore[arg-type]
    server = TestServer(create_app(settings, codes, clock=clock), host="127.0.0.1")
    await server.start_server()
    try:
        await exchange_report_and_check(kind, server, codes, clock, reporter)
    finally:
        await server.close()


async def exchange_report_and_check(
    kind: str, server: TestServer, codes: Any, clock: SteppedClock, reporter: str
) -> None:
    def ntp() -> int:
        return ntp_from_unix(clock())

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
            scanner=BumbleHelloScanner(devices[0], hello_period=0.02),
            refresh_interval=0.25,
            report=lambda _line: None,
        )

        def iphone(phone: Phone, device: Device) -> SimulatedPhone:
            return SimulatedPhone(kind, device, phone, ntp, sink=phone, write_period=0.02)

        bob_iphone, carol_iphone = iphone(bob, devices[1]), iphone(carol, devices[2])
        try:
            await bob_iphone.start()
            await alice_node.start()
            # 18 simulated minutes
            await rounds(clock, 36, [bob_iphone], "together", hear_alice=reporter == "bob")
            await bob_iphone.stop()
            # Carol comes by later, alone: two centrals connecting to one peripheral at the same
            # instant upset bumble's virtual link (connections lost in its controller).
            await carol_iphone.start()
            await rounds(clock, 6, [carol_iphone], "passing")  # 3 minutes
        finally:
            await alice_node.stop()
            await bob_iphone.stop()
            await carol_iphone.stop()

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
        if reporter == "alice":
            await alice.report(code)
            assert await server.app[WORKER].drain() == 1
            assert (await bob.check_status()).at_risk
            assert not (await carol.check_status()).at_risk
        else:  # Bob's iPhone heard Alice's service data, as every kind of phone does
            assert len(bob_iphone.heard) >= 36 and bob.heard  # one new HELLO of hers a round
            assert all(h.how == "advertisement" for h in bob_iphone.heard)
            await bob.report(code)
            assert await server.app[WORKER].drain() == 1
            assert (await alice.check_status()).at_risk
            assert not (await carol.check_status()).at_risk
