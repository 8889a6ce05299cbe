"""The live feed across two processes' services through Redis pub/sub: an entry posted on
one reaches the streams of the other, filtered by scope; without Redis, local pages still
get it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from kit.audit import Actor
from kit.db import Database
from samu.relay import RedisRelay, entry_message, entry_of
from samu.scopes import parse_scope
from samu.service import SamuService
from samu.store import SamuStore
from tests.samu.conftest import Clock
from tests.samu.test_store import CORRUSS, NATIONAL, PARIS

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")


@pytest.fixture
async def pair(tmp_path: Path, clock: Clock) -> AsyncIterator[tuple[SamuService, SamuService]]:
    """Two board services (as two processes) on one database, relayed through Redis on a
    channel of this test's own."""
    redis_or_skip()
    channel = f"samu:test:{uuid.uuid4()}"
    url = f"sqlite:///{tmp_path / 'samu.db'}"
    services = []
    for _ in range(2):
        service = SamuService(SamuStore(Database(url)), clock=clock)
        service.relay = RedisRelay(REDIS_URL, service.live, channel)
        await service.open()
        services.append(service)
    try:
        yield services[0], services[1]
    finally:
        for service in services:
            await service.close()


async def test_an_entry_reaches_the_other_process(pair: tuple[SamuService, SamuService]) -> None:
    a, b = pair
    event = await a.open_event(NATIONAL, CORRUSS, "Attentat", "attack", "75", 48.87, 2.36)
    paris_on_b = b.live.subscribe(event.id, parse_scope("samu:75"))
    lyon_on_b = b.live.subscribe(event.id, parse_scope("samu:69"))
    paris_on_a = a.live.subscribe(event.id, parse_scope("samu:75"))
    entry, _ = await a.post(PARIS, Actor("regul.75", "regulator"), event.id, "PMA", "samu:75")
    got = await asyncio.wait_for(paris_on_b.queue.get(), 5)
    assert got == entry
    assert await asyncio.wait_for(paris_on_a.queue.get(), 5) == entry  # itself, once
    national, _ = await b.post(NATIONAL, CORRUSS, event.id, "à tous", "national")
    assert await asyncio.wait_for(lyon_on_b.queue.get(), 5) == national  # not the Paris one
    assert await asyncio.wait_for(paris_on_a.queue.get(), 5) == national
    assert paris_on_a.queue.empty() and lyon_on_b.queue.empty()


async def test_without_redis_local_pages_still_get_it(tmp_path: Path, clock: Clock) -> None:
    service = SamuService(SamuStore(Database(f"sqlite:///{tmp_path / 's.db'}")), clock=clock)
    await service.open()
    try:
        service.relay = RedisRelay("redis://127.0.0.1:9/0", service.live)  # nothing listens
        event = await service.open_event(NATIONAL, CORRUSS, "x", "k", "75", 48.8, 2.3)
        page = service.live.subscribe(event.id, parse_scope("national"))
        entry, _ = await service.post(NATIONAL, CORRUSS, event.id, "still here")
        assert page.queue.get_nowait() == entry
    finally:
        await service.close()


def test_relay_messages_round_trip() -> None:
    from datetime import UTC, datetime

    from samu.model import Entry

    entry = Entry(7, 2, str(uuid.uuid4()), datetime(2026, 12, 3, 9, 30, tzinfo=UTC), "a",
                  "samu:75", "region:11", "texte é", 3)  # fmt: skip
    assert entry_of(entry_message(entry)) == entry
