"""Dummy reports: recognised by their token only, changing nothing, answered as real ones.

The timing half of "answered alike" is measured by ``python -m loadtest.dummies`` (a
two-sample test over hundreds of reports; figures in docs/performance.md), not here: a
statistical test on a shared machine would fail at random."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from client_sim.clock import VirtualClock
from phone.client import Phone
from protocol.codes import DUMMY_CODES, CodeKind, dummy_code, is_dummy_code, parse_code
from protocol.errors import BadFormat
from server.app import create_app
from server.settings import Settings
from tests.server.conftest import Running, code_service


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def test_dummy_tokens_are_no_codes_and_have_their_lengths() -> None:
    for token in DUMMY_CODES.values():
        assert is_dummy_code(token)
        with pytest.raises(BadFormat):
            parse_code(token)
    assert len(DUMMY_CODES[CodeKind.SHORT]) == 6 and len(DUMMY_CODES[CodeKind.LONG]) == 36
    draws = {dummy_code(random.Random(i).randbytes) for i in range(40)}
    assert draws == set(DUMMY_CODES.values())
    assert not is_dummy_code("000000 ") and not is_dummy_code(None)


async def test_a_dummy_is_answered_as_a_real_report_and_changes_nothing(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    phones = [Phone(running.url, clock, random.Random(s).randbytes, session) for s in (1, 2)]
    for phone in phones:
        await phone.register()
    alice, bob = phones
    for _ in range(30):  # alice hears bob for five minutes
        now = alice.now_ntp()
        alice.record_hello(bob.current_hello(now) or b"", now, -55)
        clock.advance(10)
    code = await running.code()
    store = running.service.store
    before = await store.pending_reports()

    async def post(body: bytes) -> tuple[int, bytes]:
        url = f"{running.url}/api/v6/report"
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=body, headers=headers) as r:
            return r.status, await r.read()

    contacts = [c.to_fields() for c in alice.state.contacts(alice.now_ntp())]
    real_body = orjson.dumps({"token": code, "contacts": contacts})
    from phone.dummies import dummy_contacts

    shaped = dummy_contacts(alice.state.contacts(alice.now_ntp()), random.Random(3).randbytes)
    dummy_body = orjson.dumps(
        {"token": DUMMY_CODES[CodeKind.LONG], "contacts": [c.to_fields() for c in shaped]}
    )
    assert len(dummy_body) == len(real_body)  # the request does not tell either
    dummy_status, dummy_answer = await post(dummy_body)
    assert await store.pending_reports() == before  # nothing queued
    assert await running.codes.consume(code) == "accepted"  # no code consumed: a real one
    await running.codes.release(code)  # ...works, once given back
    real_status, real_answer = await post(real_body)
    assert await store.pending_reports() == before + 1
    assert (
        (dummy_status, len(dummy_answer))
        == (real_status, len(real_answer))
        == (200, len(real_answer))
    )
    dummy, real = orjson.loads(dummy_answer), orjson.loads(real_answer)
    assert dummy.keys() == real.keys() and dummy["success"] is real["success"] is True
    keys = running.service.keys.jwks()["keys"]
    assert (
        real["reportValidationToken"].count(".") == dummy["reportValidationToken"].count(".") == 2
    )
    from joserfc import jwt
    from joserfc.errors import BadSignatureError, InvalidKeyIdError
    from joserfc.jwk import KeySet

    key_set = KeySet.import_key_set({"keys": keys})
    jwt.decode(real["reportValidationToken"], key_set, algorithms=["ES256"])
    with pytest.raises((BadSignatureError, InvalidKeyIdError)):  # nobody trusts its key
        jwt.decode(dummy["reportValidationToken"], key_set, algorithms=["ES256"])
    # The phone's own dummy goes the same way, many times over: no code, nothing queued.
    for _ in range(3):
        token = await alice.dummy_report()
        assert len(token) == len(real["reportValidationToken"])
    assert await store.pending_reports() == before + 1


async def test_a_dummy_gives_back_what_it_takes_from_its_own_buckets(
    make_settings: Callable[..., Settings], clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    """A dummy does a real report's limit round trips on buckets of its own, each token
    taken given back: with buckets of two, after three dummies two tokens are still there."""
    settings = make_settings(code_failures_overall=2)
    codes = code_service(Path(settings.data_dir), clock)
    server = TestServer(create_app(settings, codes, clock=clock), host="127.0.0.1")
    await server.start_server()
    try:
        running = Running(server, codes)
        body = orjson.dumps({"token": DUMMY_CODES[CodeKind.SHORT], "contacts": []})
        for _ in range(3):
            async with session.post(
                f"{running.url}/api/v6/report",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as r:
                assert r.status == 200, await r.text()
        service = running.service
        mine = service.dummy_budgets
        assert all(b.burst == 2 for b in mine)
        assert all(b.key not in {c.key for c in service.attempts.budgets("?", "ab")} for b in mine)
        now = clock()
        assert await service.store.take_budget(mine, now) == 0
        assert await service.store.take_budget(mine, now) == 0
        assert await service.store.take_budget(mine, now) > 0  # two, and no more
    finally:
        await server.close()
