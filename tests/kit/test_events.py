"""kit.events on both backends: a producer and a consumer on two databases; each event's effect
exactly once across crashes, redeliveries and racing consumers; ids seen in order; the feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.audit import AuditFilter, AuditLog
from kit.auth import ApiKeyStore, setup_api_keys
from kit.db import Database
from kit.events import (
    Batch,
    Event,
    EventHandler,
    FeedConsumer,
    FeedMetrics,
    append,
    append_many,
    http_fetcher,
    local_fetcher,
    mount_event_feed,
    purge,
    read,
)

CASES = sa.Table(
    "cases",
    sa.MetaData(),
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("pseudonym", sa.String(64), nullable=False),
)


@pytest.fixture
async def producer(db: Database) -> Database:
    return db


@pytest.fixture
async def consumer(another_database_url: str) -> AsyncIterator[Database]:
    database = Database(another_database_url)
    await database.migrate()
    async with database.begin() as conn:
        await conn.run_sync(CASES.metadata.create_all)
    try:
        yield database
    finally:
        await database.close()


async def publish(producer: Database, count: int, topic: str = "sidep.positive") -> list[int]:
    ids = []
    for n in range(count):
        async with producer.begin() as conn:
            ids.append(await append(conn, topic, {"pseudonym": f"{n:064x}"}, key=f"R{n}"))
    return ids


async def effects(consumer: Database) -> list[int]:
    async with consumer.connect() as conn:
        return list(
            (await conn.execute(sa.select(CASES.c.event_id).order_by("event_id"))).scalars()
        )


async def open_case(conn: AsyncConnection, event: Event) -> None:
    await conn.execute(
        sa.insert(CASES).values(event_id=event.id, pseudonym=event.payload["pseudonym"])
    )


# --- the outbox -----------------------------------------------------------------------------------
async def test_an_event_commits_with_its_change_or_not_at_all(producer: Database) -> None:
    with pytest.raises(RuntimeError):
        async with producer.begin() as conn:
            await append(conn, "sidep.positive", {"pseudonym": "ab"})
            raise RuntimeError("the business change failed")
    assert (await read(producer)).events == []
    [first, second, third] = await publish(producer, 3)
    await publish(producer, 1, topic="sidep.negative")
    batch = await read(producer, after_id=first, limit=1)
    assert [e.id for e in batch.events] == [second] and batch.head == third + 1
    negatives = await read(producer, topics={"sidep.negative"})
    assert [e.topic for e in negatives.events] == ["sidep.negative"]
    [event] = (await read(producer, limit=1)).events
    assert (event.key, event.payload, event.created_at.tzinfo) == (
        "R0",
        {"pseudonym": "0" * 64},
        UTC,
    )


@pytest.mark.parametrize(
    ("topic", "payload", "error"),
    [("", {}, ValueError), ("sidep positive", {}, ValueError), ("t", {"x": object()}, TypeError)],
)
async def test_malformed_events_are_refused(
    sqlite_db: Database, topic: str, payload: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        async with sqlite_db.begin() as conn:
            await append(conn, topic, payload)


async def test_many_events_append_in_one_statement_and_in_order(producer: Database) -> None:
    [before] = await publish(producer, 1)
    async with producer.begin() as conn:
        assert await append_many(conn, []) == []
        ids = await append_many(conn, [("sidep.positive", {"n": n}, f"K{n}") for n in range(5)])
    assert ids == sorted(ids) and ids[0] > before and len(set(ids)) == 5
    events = (await read(producer, after_id=before)).events
    assert [(e.id, e.key, e.payload) for e in events] == [
        (i, f"K{n}", {"n": n}) for n, i in enumerate(ids)
    ]
    with pytest.raises(ValueError):
        async with producer.begin() as conn:
            await append_many(conn, [("t", {}, ""), ("bad topic", {}, "")])
    assert (await read(producer, after_id=ids[-1])).events == []


async def test_purged_ids_are_never_reused(producer: Database) -> None:
    old = datetime.now(UTC) - timedelta(days=30)
    async with producer.begin() as conn:
        for _ in range(3):
            await append(conn, "t", {}, now=old)
    last_old = (await read(producer)).head
    assert await purge(producer, timedelta(days=7)) == 3
    assert (await read(producer)).events == []
    [new] = await publish(producer, 1)
    assert new > last_old


async def test_appends_commit_in_id_order(producer: Database) -> None:
    """A second producer transaction waits for the first's commit: a reader never sees id
    N+1 while N may still commit."""
    async with producer.begin() as first:
        first_id = await append(first, "t", {"n": 1})

        async def second_producer() -> int:
            async with producer.begin() as conn:
                return await append(conn, "t", {"n": 2})

        second = asyncio.create_task(second_producer())
        await asyncio.sleep(0.3)
        assert not second.done()
        assert (await read(producer)).events == []
    second_id = await second
    assert second_id > first_id
    assert [e.id for e in (await read(producer)).events] == [first_id, second_id]


# --- consuming exactly once -----------------------------------------------------------------------
async def test_a_crash_mid_batch_leaves_no_double_effect(
    producer: Database, consumer: Database
) -> None:
    ids = await publish(producer, 5)
    crash_on = {ids[2]}

    async def flaky(conn: AsyncConnection, event: Event) -> None:
        await open_case(conn, event)  # the effect is written...
        if event.id in crash_on:
            crash_on.clear()
            raise RuntimeError("the process dies here")  # ...and rolled back with the cursor

    first = FeedConsumer("contact-covid", "sidep", consumer, local_fetcher(producer), flaky)
    with pytest.raises(RuntimeError):
        await first.poll_once()
    assert await effects(consumer) == ids[:2] and await first.cursor() == ids[1]
    restarted = FeedConsumer("contact-covid", "sidep", consumer, local_fetcher(producer), flaky)
    assert await restarted.poll_once() == 3
    assert await effects(consumer) == ids and await restarted.cursor() == ids[-1]
    assert await restarted.poll_once() == 0 and restarted.lag == 0


async def test_redelivered_events_are_skipped(producer: Database, consumer: Database) -> None:
    ids = await publish(producer, 3)
    seen: list[int] = []

    async def everything_again(after_id: int, limit: int) -> Batch:
        return await read(producer, 0, limit)  # a feed that ignores the cursor

    async def handler(conn: AsyncConnection, event: Event) -> None:
        seen.append(event.id)
        await open_case(conn, event)

    feed = FeedConsumer("cc", "sidep", consumer, everything_again, handler)
    await feed.poll_once()
    await publish(producer, 1)
    await feed.poll_once()
    assert seen == [*ids, ids[-1] + 1] and len(await effects(consumer)) == 4


async def test_two_racing_consumers_of_one_name_apply_each_event_once(
    producer: Database, consumer: Database
) -> None:
    ids = await publish(producer, 6)

    async def slow(conn: AsyncConnection, event: Event) -> None:
        await open_case(conn, event)
        await asyncio.sleep(0.01)

    a = FeedConsumer("cc", "sidep", consumer, local_fetcher(producer), slow, batch_size=2)
    b = FeedConsumer("cc", "sidep", consumer, local_fetcher(producer), slow, batch_size=2)
    for _ in range(6):
        await asyncio.gather(a.poll_once(), b.poll_once(), return_exceptions=True)
    assert await effects(consumer) == ids


async def test_consumers_of_other_names_or_sources_have_their_own_cursors(
    producer: Database, consumer: Database
) -> None:
    await publish(producer, 2)
    counts: dict[str, int] = {}

    def counting(name: str) -> EventHandler:
        async def handler(conn: AsyncConnection, event: Event) -> None:
            counts[name] = counts.get(name, 0) + 1

        return handler

    for name, source in (("cc", "sidep"), ("sivic", "sidep"), ("cc", "sidep-bis")):
        feed = FeedConsumer(
            name, source, consumer, local_fetcher(producer), counting(name + source)
        )  # type: ignore[arg-type]
        await feed.poll_once()
    assert counts == {"ccsidep": 2, "sivicsidep": 2, "ccsidep-bis": 2}


async def test_the_loop_backs_off_and_recovers(producer: Database, consumer: Database) -> None:
    ids = await publish(producer, 3)
    failures = [RuntimeError("database down"), OSError("network down")]

    async def handler(conn: AsyncConnection, event: Event) -> None:
        if failures:
            raise failures.pop(0)
        await open_case(conn, event)

    registry = CollectorRegistry()
    feed = FeedConsumer(
        "cc", "sidep", consumer, local_fetcher(producer), handler, idle_delay=0.01,
        backoff_base=0.01, backoff_max=0.05, metrics=FeedMetrics(registry),
    )  # fmt: skip
    task = asyncio.create_task(feed.run())
    for _ in range(500):
        if len(await effects(consumer)) == 3:
            break
        await asyncio.sleep(0.01)
    feed.stop.set()
    await asyncio.wait_for(task, 5)
    assert await effects(consumer) == ids and feed.errors == 2
    labels = {"consumer": "cc", "source": "sidep"}
    assert registry.get_sample_value("kit_events_errors_total", labels) == 2
    assert registry.get_sample_value("kit_events_handled_total", labels) == 3
    assert registry.get_sample_value("kit_events_lag", labels) == 0
    assert 0.005 <= feed.backoff(1) <= 0.01 and feed.backoff(40) <= 0.05


# --- over HTTP ------------------------------------------------------------------------------------
async def test_the_http_feed_with_an_api_key(producer: Database, consumer: Database) -> None:
    keys = ApiKeyStore(producer, "sidep")
    reader, reader_key = await keys.create("contact-covid", "event-reader")
    _, lab_key = await keys.create("lab", "lab")
    app = web.Application()
    setup_api_keys(app, keys)
    mount_event_feed(app, producer, prefix="/api/v1")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    ids = await publish(producer, 3) + await publish(producer, 1, "sidep.negative")
    url = str(server.make_url("/api/v1/events"))
    try:
        async with aiohttp.ClientSession() as session:
            for key, status in (("", 401), (lab_key, 403), ("sidep_1_bad", 401)):
                with pytest.raises(Exception, match=f"answered {status}"):
                    await http_fetcher(session, url, key)(0, 10)
            async with session.get(
                url, params={"after": "-1"}, headers={"Authorization": f"Bearer {reader_key}"}
            ) as r:
                assert r.status == 400
            fetch = http_fetcher(session, url, reader_key, topics=["sidep.positive"])
            feed = FeedConsumer("cc", "sidep", consumer, fetch, open_case, batch_size=2)
            assert await feed.poll_once() == 2
            assert await feed.poll_once() == 1
            assert await feed.poll_once() == 0
    finally:
        await server.close()
    assert await effects(consumer) == ids[:3]
    reads = await AuditLog().query(producer, AuditFilter(actor=f"apikey:{reader.id}"))
    assert [(e.action, e.object_id) for e in reversed(reads)] == [
        ("read", f"{ids[0]}-{ids[1]}"),
        ("read", f"{ids[2]}-{ids[2]}"),
    ]
