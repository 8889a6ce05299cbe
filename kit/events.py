"""Events between services that do not import each other: a transactional outbox and a feed.

The producer appends an event to its ``kit_outbox`` *in the transaction of the business change*
(``append(conn, ...)``): both commit or neither does, so there is never an event without its
change nor a change without its event. Consumers read the outbox after the last id they handled,
either over HTTP (``GET <prefix>/events?after=&limit=&topic=``, an API key of role
``event-reader``, each read audited) or in-process when one process runs both services.

A ``FeedConsumer`` handles each event in *one transaction of its own database* that also
advances its cursor (``kit_event_cursors``): the event's effect and "handled up to N" commit
together, so a crash anywhere re-delivers at most the event in progress, whose first attempt
left nothing behind. The effect happens exactly once; handlers need not be idempotent (a
redelivered id at or below the cursor is skipped). A failing handler is retried, with a
bounded exponential backoff, and blocks the events after it: events are handled in order.

Ids must be seen in order: a reader that saw id 12 before id 11 committed would skip 11 forever.
SQLite has one writer at a time; on PostgreSQL, ``append`` takes a transaction-scoped advisory
lock, so appending transactions commit one after another in id order. Keep ``append`` the last
statement of the business transaction: the lock is held from there to the commit.

Payloads are JSON objects; they carry record numbers and pseudonyms where they can. Where
identity must travel (a positive result opening a case), retention is the outbox purge's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.audit import Action, AuditLog
from kit.auth.apikeys import require_api_key
from kit.db import Database, utcnow
from kit.http import BadRequest, add_route, json_response
from kit.jobs import describe_failure
from kit.schema import event_cursors, outbox

log = logging.getLogger("kit.events")

READER_ROLE = "event-reader"
MAX_BATCH = 1000
_OUTBOX_LOCK = 0x6B69745F6F7574  # "kit_out": the advisory lock serialising appends (PostgreSQL)


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a producer's outbox."""

    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The event as the feed serves it."""
        return {
            "id": self.id,
            "topic": self.topic,
            "key": self.key,
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        """An event as the feed served it."""
        return cls(
            int(data["id"]),
            str(data["topic"]),
            str(data["key"]),
            dict(data["payload"]),
            datetime.fromisoformat(data["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """Events after a cursor, and the outbox's last id then (to measure the lag)."""

    events: list[Event]
    head: int


# --- the producer's side --------------------------------------------------------------------------
async def append(
    conn: AsyncConnection,
    topic: str,
    payload: dict[str, Any],
    key: str = "",
    *,
    now: datetime | None = None,
) -> int:
    """Append an event inside the caller's transaction; its id."""
    if not topic or len(topic) > 100 or not topic.replace(".", "").replace("_", "").isalnum():
        raise ValueError("a topic is a dotted name of letters, digits and '_': sidep.result")
    if len(key) > 200:
        raise ValueError("an event key is at most 200 characters")
    json.dumps(payload)  # refuse what is not JSON now, not at commit
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_OUTBOX_LOCK)))
    result = await conn.execute(
        sa.insert(outbox)
        .values(topic=topic, key=key, payload=payload, created_at=now or utcnow())
        .returning(outbox.c.id)
    )
    return int(result.scalar_one())


async def append_many(
    conn: AsyncConnection,
    items: Sequence[tuple[str, dict[str, Any], str]],
    *,
    now: datetime | None = None,
) -> list[int]:
    """Append several events (``(topic, payload, key)`` each) inside the caller's
    transaction, in one statement and under one lock (a batch of a thousand lab results
    writes its events in one round trip); their ids, in order."""
    if not items:
        return []
    for topic, payload, key in items:
        if not topic or len(topic) > 100 or not topic.replace(".", "").replace("_", "").isalnum():
            raise ValueError("a topic is a dotted name of letters, digits and '_': sidep.result")
        if len(key) > 200:
            raise ValueError("an event key is at most 200 characters")
        json.dumps(payload)
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_OUTBOX_LOCK)))
    at = now or utcnow()
    rows = [{"topic": t, "key": k, "payload": p, "created_at": at} for t, p, k in items]
    result = await conn.execute(
        sa.insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True), rows
    )
    return [int(i) for i in result.scalars().all()]


async def read(
    source: Database | AsyncConnection,
    after_id: int = 0,
    limit: int = 100,
    topics: Collection[str] | None = None,
) -> Batch:
    """Events after ``after_id``, oldest first, at most ``limit``, of ``topics`` if given."""
    query = (
        sa.select(outbox)
        .where(outbox.c.id > after_id)
        .order_by(outbox.c.id)
        .limit(max(1, min(limit, MAX_BATCH)))
    )
    if topics:
        query = query.where(outbox.c.topic.in_(sorted(topics)))
    head_query = sa.select(sa.func.coalesce(sa.func.max(outbox.c.id), 0))

    async def run(conn: AsyncConnection) -> Batch:
        head = int((await conn.execute(head_query)).scalar_one())
        rows = (await conn.execute(query)).all()
        events = [Event(r.id, r.topic, r.key, dict(r.payload), r.created_at) for r in rows]
        return Batch(events, max(head, events[-1].id if events else 0))

    if isinstance(source, Database):
        async with source.connect() as conn:
            return await run(conn)
    return await run(source)


async def purge(db: Database, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete events created more than ``older_than`` ago; how many. (Ids are never reused:
    the outbox autoincrements, so consumers' cursors stay right.)"""
    cutoff = (now or utcnow()) - older_than
    async with db.begin() as conn:
        result = await conn.execute(sa.delete(outbox).where(outbox.c.created_at < cutoff))
        return int(result.rowcount)


def mount_event_feed(
    app: web.Application, db: Database, prefix: str = "", audit: AuditLog | None = None
) -> None:
    """``GET <prefix>/events?after=N&limit=M&topic=T``: the outbox for API keys of role
    ``event-reader`` (``kit.auth.apikeys.setup_api_keys`` must have run); each non-empty read
    is audited."""
    audit = audit or AuditLog()

    async def feed(request: web.Request) -> web.StreamResponse:
        principal = await require_api_key(request, roles={READER_ROLE})
        try:
            after = int(request.query.get("after", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise BadRequest("after and limit are integers") from None
        if after < 0 or not 1 <= limit <= MAX_BATCH:
            raise BadRequest(f"after >= 0 and 1 <= limit <= {MAX_BATCH}")
        topics = [t for value in request.query.getall("topic", []) for t in value.split(",") if t]
        batch = await read(db, after, limit, topics or None)
        if batch.events:
            await audit.append(
                db, actor=principal.actor, role=principal.role, action=Action.READ,
                object_type="outbox", object_id=f"{batch.events[0].id}-{batch.events[-1].id}",
                detail=f"{len(batch.events)} events",
            )  # fmt: skip
        return json_response({"events": [e.as_json() for e in batch.events], "head": batch.head})

    add_route(app, "GET", f"{prefix}/events", feed)


# --- the consumer's side --------------------------------------------------------------------------
Fetch = Callable[[int, int], Awaitable[Batch]]
"""Where a consumer's events come from: ``fetch(after_id, limit)``."""

EventHandler = Callable[[AsyncConnection, Event], Awaitable[None]]
"""Applies one event inside the consumer's transaction (the connection)."""


def local_fetcher(db: Database, topics: Collection[str] | None = None) -> Fetch:
    """Read a producer's outbox directly (both services in one process, or tests)."""

    async def fetch(after_id: int, limit: int) -> Batch:
        return await read(db, after_id, limit, topics)

    return fetch


def http_fetcher(
    session: aiohttp.ClientSession,
    url: str,
    api_key: str,
    topics: Sequence[str] = (),
    timeout: float = 10.0,
) -> Fetch:
    """Read a producer's feed (``https://producer/events``) with an API key."""

    async def fetch(after_id: int, limit: int) -> Batch:
        params: list[tuple[str, str]] = [("after", str(after_id)), ("limit", str(limit))]
        params += [("topic", topic) for topic in topics]
        async with session.get(
            url,
            params=params,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if response.status != 200:
                raise FeedError(f"the feed answered {response.status}")
            body = await response.json()
        return Batch([Event.from_json(e) for e in body["events"]], int(body["head"]))

    return fetch


class FeedError(Exception):
    """The producer's feed could not be read (the consumer retries)."""


class CursorMoved(Exception):
    """Another consumer of the same name advanced the cursor first; this one's work is undone."""


class FeedMetrics:
    """Lag, handled events and errors of every consumer, by consumer and source."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        labels = ["consumer", "source"]
        self.lag = Gauge("kit_events_lag", "Events not yet handled", labels, registry=registry)
        self.handled = Counter("kit_events_handled", "Events handled", labels, registry=registry)
        self.errors = Counter(
            "kit_events_errors", "Failed reads or handlings", labels, registry=registry
        )


class FeedConsumer:
    """Handles a producer's events, each exactly once, in order, in its own database."""

    def __init__(
        self,
        name: str,
        source: str,
        db: Database,
        fetch: Fetch,
        handler: EventHandler,
        *,
        batch_size: int = 100,
        idle_delay: float = 1.0,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        metrics: FeedMetrics | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.db = db
        self.fetch = fetch
        self.handler = handler
        self.batch_size = batch_size
        self.idle_delay = idle_delay
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.metrics = metrics
        self.stop = asyncio.Event()
        self.errors = 0
        self.lag = 0
        self.handled = 0

    async def cursor(self) -> int:
        """The last id handled (0 before the first)."""
        async with self.db.connect() as conn:
            return await self._cursor(conn)

    async def _cursor(self, conn: AsyncConnection) -> int:
        query = sa.select(event_cursors.c.last_id).where(
            event_cursors.c.consumer == self.name, event_cursors.c.source == self.source
        )
        value = (await conn.execute(query)).scalar()
        return int(value) if value is not None else 0

    async def poll_once(self) -> int:
        """Fetch one batch and handle it; how many events were handled. Raises what the
        fetch or a handler raised (the events before it stay handled)."""
        after = await self.cursor()
        batch = await self.fetch(after, self.batch_size)
        self._set_lag(batch.head - after)
        for event in batch.events:
            if await self._handle(event):
                self.handled += 1
                if self.metrics:
                    self.metrics.handled.labels(self.name, self.source).inc()
            self._set_lag(batch.head - event.id)
        return len(batch.events)

    async def _handle(self, event: Event) -> bool:
        t = event_cursors
        async with self.db.begin() as conn:
            current = await self._cursor(conn)
            if event.id <= current:
                return False  # handled already (redelivered)
            await self.handler(conn, event)
            values = {"last_id": event.id, "updated_at": utcnow()}
            if current == 0 and not await self._has_cursor(conn):
                await conn.execute(
                    sa.insert(t).values(consumer=self.name, source=self.source, **values)
                )
            else:
                moved = await conn.execute(
                    sa.update(t)
                    .where(t.c.consumer == self.name, t.c.source == self.source)
                    .where(t.c.last_id == current)
                    .values(**values)
                )
                if moved.rowcount != 1:
                    raise CursorMoved(f"{self.name} <- {self.source}")
        return True

    async def _has_cursor(self, conn: AsyncConnection) -> bool:
        query = sa.select(sa.func.count()).where(
            event_cursors.c.consumer == self.name, event_cursors.c.source == self.source
        )
        return bool((await conn.execute(query)).scalar_one())

    def _set_lag(self, lag: int) -> None:
        self.lag = max(0, lag)
        if self.metrics:
            self.metrics.lag.labels(self.name, self.source).set(self.lag)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row: doubling, bounded, jittered."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(failures - 1, 30))
        return ceiling * random.uniform(0.5, 1.0)

    async def run(self) -> None:
        """Poll until ``stop`` is set: at once while there is more, after ``idle_delay``
        when there was nothing, after a backoff when it failed."""
        failures = 0
        while not self.stop.is_set():
            try:
                handled = await self.poll_once()
                failures = 0
                delay = 0.0 if handled >= self.batch_size else self.idle_delay
            except Exception as exc:
                failures += 1
                self.errors += 1
                if self.metrics:
                    self.metrics.errors.labels(self.name, self.source).inc()
                log.error(
                    "consumer %s of %s failed (%d in a row): %s",
                    self.name, self.source, failures, describe_failure(exc),
                )  # fmt: skip
                delay = self.backoff(failures)
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
            else:
                await asyncio.sleep(0)

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: consume while the application runs."""
        self.stop.clear()
        task = asyncio.create_task(self.run(), name=f"consumer {self.name}")
        yield
        self.stop.set()
        await task
