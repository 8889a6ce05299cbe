"""End to end through real HTTP, on every store backend: register, meet, report, get warned."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from client_sim.clock import VirtualClock
from phone.client import Phone, PhoneError
from protocol.auth import RequestKind, build_request
from protocol.contacts import Contact, HelloRecord
from protocol.hello import Hello
from tests.server.conftest import Running, code_service


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_phone(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession, seed: int
) -> Phone:
    return Phone(running.url, clock, random.Random(seed).randbytes, session)


def meet(a: Phone, b: Phone, clock: VirtualClock, minutes: int, rssi: int, every: int = 10) -> None:
    """a and b near each other: each hears the other's HELLO every ``every`` seconds."""
    for _ in range(minutes * 60 // every):
        now = a.now_ntp()
        for sender, receiver in ((a, b), (b, a)):
            hello = sender.current_hello(now)
            assert hello is not None
            receiver.record_hello(hello, now, rssi)
        clock.advance(every)


async def test_contact_reported_then_warned(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    alice, bob, carol = (make_phone(running, clock, session, s) for s in (1, 2, 3))
    for phone in (alice, bob, carol):
        await phone.register()
    meet(alice, bob, clock, minutes=20, rssi=-50)  # close, long: a true contact
    meet(alice, carol, clock, minutes=5, rssi=-85)  # far and short: not a contact
    token = await running.code()
    await alice.report(token)
    assert await running.worker.drain() == 1
    bob_status = await bob.check_status()
    assert bob_status.at_risk and bob_status.risk_level == 4
    assert bob_status.last_contact_date is not None
    assert not (await carol.check_status()).at_risk
    # The reporter's code cannot be used twice.
    with pytest.raises(PhoneError) as used:
        await alice.report(token)
    assert (used.value.status, used.value.code) == (401, "code_used")


async def test_forged_and_stale_hellos_are_not_counted(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    victim, liar = make_phone(running, clock, session, 4), make_phone(running, clock, session, 5)
    await victim.register()
    await liar.register()
    records = []
    for i in range(120):  # 20 minutes of the victim's HELLOs, each spoiled
        now = victim.now_ntp()
        hello = Hello.parse(victim.current_hello(now) or b"")
        if i % 2:
            records.append((hello, HelloRecord(now, hello.time, bytes(5), -40)))  # bad MAC
        else:
            records.append((hello, HelloRecord(now + 600, hello.time, hello.mac, -40)))  # stale
        clock.advance(10)
    for hello, record in records:
        liar.heard.setdefault((hello.ebid, hello.ecc), []).append(record)
    await liar.report(await running.code())
    await running.worker.drain()
    assert not (await victim.check_status()).at_risk
    owner_exposures = []
    async for batch in running.service.store.iter_exposed():
        owner_exposures.extend(batch)
    assert owner_exposures == []


async def test_replayed_status_is_refused(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    phone = make_phone(running, clock, session, 6)
    await phone.register()
    body = phone.auth_fields(RequestKind.STATUS)
    url = f"{running.url}/api/v6/status"
    async with session.post(url, json=body) as first:
        assert first.status == 200
    async with session.post(url, json=body) as replay:
        assert replay.status == 409
        assert (await replay.json())["error"] == "replayed"


async def test_status_too_soon_is_429(
    make_settings,
    clock: VirtualClock,
    session: aiohttp.ClientSession,  # type: ignore[no-untyped-def]
) -> None:
    from aiohttp.test_utils import TestServer

    from server.app import create_app

    settings = make_settings(status_min_interval=1800)
    codes = code_service(Path(settings.data_dir), clock)
    server = TestServer(create_app(settings, codes, clock=clock))
    await server.start_server()
    try:
        phone = Phone(str(server.make_url("")), clock, random.Random(7).randbytes, session)
        await phone.register()
        await phone.check_status()
        clock.advance(60)
        with pytest.raises(PhoneError) as refused:
            await phone.check_status()
        assert refused.value.status == 429
        clock.advance(1800)
        await phone.check_status()
    finally:
        await server.close()


async def test_unregister_and_delete_history(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    alice, bob = make_phone(running, clock, session, 8), make_phone(running, clock, session, 9)
    await alice.register()
    await bob.register()
    meet(alice, bob, clock, minutes=20, rssi=-45)
    await alice.report(await running.code())
    await running.worker.drain()
    assert (await bob.check_status()).at_risk
    clock.advance(1)
    await bob.delete_history()
    clock.advance(1)
    assert not (await bob.check_status()).at_risk
    stale_alice = alice.auth_fields(RequestKind.STATUS)
    await alice.unregister()
    async with session.post(f"{running.url}/api/v6/status", json=stale_alice) as gone:
        assert gone.status == 430  # the apps' "register again"
        assert (await gone.json())["error"] == "unknown_registration"


async def test_every_status_answer_carries_fresh_tuples(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    """The apps discard a status answer without tuples: each one has a fresh bundle, from the
    current epoch to the end of the fourth day."""
    phone = make_phone(running, clock, session, 10)
    await phone.register()
    first = dict(phone.state.tuples)
    assert len(first) > 3 * 96
    clock.advance(60)
    await phone.check_status()
    assert phone.state.tuples == first  # same epochs, same EBIDs: deterministic per ID_A
    clock.advance(2 * 86400)
    await phone.check_status()
    now_epoch = running.service.now_epoch()
    assert min(phone.state.tuples) == now_epoch - 1  # the one before is kept a little
    assert max(phone.state.tuples) == now_epoch - now_epoch % 96 + 4 * 96 - 1
    assert phone.current_tuple() is not None


async def test_bad_mac_on_status_is_401(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    phone = make_phone(running, clock, session, 11)
    await phone.register()
    current = phone.current_tuple()
    assert current is not None and phone.k_a is not None
    request = build_request(
        phone.k_a, RequestKind.UNREGISTER, current.ebid, current.epoch_id, phone.now_ntp()
    )
    async with session.post(f"{running.url}/api/v6/status", json=request.to_fields()) as r:
        assert r.status == 401
        assert (await r.json())["error"] == "bad_mac"


async def test_report_with_malformed_contacts_keeps_the_code(
    running: Running, session: aiohttp.ClientSession
) -> None:
    token = await running.code()
    bad = {"token": token, "contacts": [{"ebid": "AAAA", "ecc": "AA==", "ids": []}]}
    async with session.post(f"{running.url}/api/v6/report", json=bad) as r:
        assert r.status == 400
    good = {
        "token": token,
        "contacts": [
            Contact(bytes(8), b"\x21", (HelloRecord(3_900_000_000, 1, bytes(5), -50),)).to_fields()
        ],
    }
    async with session.post(f"{running.url}/api/v6/report", json=good) as r:
        assert r.status == 200


async def test_forged_status_does_not_take_the_slot(
    make_settings,
    clock: VirtualClock,
    session: aiohttp.ClientSession,  # type: ignore[no-untyped-def]
) -> None:
    """Anyone can hear a phone's EBID over the air and send a status with a made-up MAC: the
    server must refuse it without using up the phone's one status per interval."""
    from aiohttp.test_utils import TestServer

    from server.app import create_app

    settings = make_settings(status_min_interval=1800)
    codes = code_service(Path(settings.data_dir), clock)
    server = TestServer(create_app(settings, codes, clock=clock))
    await server.start_server()
    try:
        phone = Phone(str(server.make_url("")), clock, random.Random(12).randbytes, session)
        await phone.register()
        forged = phone.auth_fields(RequestKind.STATUS) | {"mac": "A" * 43 + "="}
        async with session.post(str(server.make_url("/api/v6/status")), json=forged) as r:
            assert r.status == 401
        clock.advance(1)
        assert not (await phone.check_status()).at_risk  # 200, not 429
    finally:
        await server.close()


async def test_a_forged_mac_flood_never_touches_the_status_slot(
    make_settings,
    clock: VirtualClock,
    session: aiohttp.ClientSession,  # type: ignore[no-untyped-def]
) -> None:
    """50 forged requests (the phone's own EBID, epoch and time, a made-up MAC) sent at once
    with the phone's real one: every forgery is 401 and the real one is answered 200; the
    forgeries never wrote the registration's status fields."""
    import asyncio

    from aiohttp.test_utils import TestServer

    from server.app import SERVICE, create_app
    from server.store.base import NEVER

    settings = make_settings(status_min_interval=1800)
    codes = code_service(Path(settings.data_dir), clock)
    server = TestServer(create_app(settings, codes, clock=clock))
    await server.start_server()
    url = str(server.make_url("/api/v6/status"))
    try:
        phone = Phone(str(server.make_url("")), clock, random.Random(13).randbytes, session)
        await phone.register()
        store = server.app[SERVICE].store
        real = phone.auth_fields(RequestKind.STATUS)
        forged = real | {"mac": "A" * 43 + "="}

        async def post(body: dict[str, object]) -> int:
            async with session.post(url, json=body) as r:
                return r.status

        _, owner = server.app[SERVICE]._check_request(real)
        bodies = [forged] * 25 + [real] + [forged] * 25
        statuses = await asyncio.gather(*(post(body) for body in bodies))
        assert statuses[25] == 200
        assert sorted(statuses[:25] + statuses[26:]) == [401] * 50
        accepted = await store.get_registration(owner)
        assert accepted is not None and accepted.last_status_epoch != NEVER
        # A flood alone leaves the slot as it was.
        clock.advance(1)
        later = phone.auth_fields(RequestKind.STATUS) | {"mac": "A" * 43 + "="}
        assert await asyncio.gather(*(post(later) for _ in range(20))) == [401] * 20
        assert await store.get_registration(owner) == accepted
    finally:
        await server.close()
