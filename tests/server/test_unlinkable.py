"""What the store holds once a report is processed (on both backends): no queue entry, and
exposure records that tell neither when the report came nor which records came together;
replays of unregister and delete-history refused; a dead worker's report reclaimed within
seconds and counted once."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from client_sim.clock import VirtualClock
from phone.client import Phone, PhoneError
from protocol.auth import RequestKind
from protocol.types import IdA
from server.store.base import Store
from server.store.redis import RedisStore
from server.store.sqlite import SqliteStore
from server.worker import ReportWorker
from tests.server.conftest import Running
from tests.server.test_e2e import meet

TAG = re.compile(r"^-?\d+:[0-9a-f]{16}$")

REDIS_KEY_KINDS = {
    "r": "registration (89 bytes: K_A, K_EA, last status, risk state)",
    "x": "exposures: hash '<epoch>:<tag>' -> score",
    "p": "push information",
    "q": "authenticated requests seen lately (replay refusal), expiring",
    "c": "captchas, expiring",
    "b": "failed-code buckets (keyed hash of the client, code prefix, global), expiring",
}
"""What docs/server.md says each Redis key kind holds (besides the report stream)."""

SQLITE_TABLES = {
    "registrations",
    "exposures",
    "push_infos",
    "captchas",
    "budgets",
    "seen_requests",
    "reports",
    "sqlite_sequence",
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the store holds, by kind of record."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    if isinstance(store, RedisStore):
        client = store.client
        async for key in client.scan_iter(match="*"):
            name = key.decode()
            kind = await client.type(key)
            if kind == b"stream":
                entries = await client.xrange(key)
                out.setdefault("stream", []).extend((name, e) for e in entries)
                continue
            assert name[0] in REDIS_KEY_KINDS and name[1] == "{", name
            if kind == b"hash":
                fields = await client.hgetall(key)
                out.setdefault(name[0], []).extend((name, f.decode(), v) for f, v in fields.items())
            else:
                out.setdefault(name[0], []).append((name, await client.get(key)))
        return out
    assert isinstance(store, SqliteStore)
    sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    tables = [row[0] for row in await store._query(sql)]
    assert set(tables) <= SQLITE_TABLES, tables
    for table in tables:
        out[table] = [tuple(row) for row in await store._query(f"SELECT * FROM {table}")]
    return out


async def test_a_processed_report_leaves_no_link_nor_time(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    phones = [Phone(running.url, clock, random.Random(s).randbytes, session) for s in (1, 2, 3)]
    alice, bob, carol = phones
    for phone in phones:
        await phone.register()
    meet(alice, bob, clock, minutes=20, rssi=-50)
    meet(alice, carol, clock, minutes=20, rssi=-50)
    store = running.service.store
    queued: list[str] = []
    enqueue = store.enqueue_report

    async def spy(payload: bytes) -> str:
        report_id = await enqueue(payload)
        queued.append(report_id)
        return report_id

    store.enqueue_report = spy  # type: ignore[method-assign]
    uploaded = int(clock())
    await alice.report(await running.code())
    assert await running.worker.drain() == 1
    assert (await bob.check_status()).at_risk and (await carol.check_status()).at_risk
    held = await dump(store)
    # No queue entry is left.
    assert not held.get("stream") and not held.get("reports")
    # Exposure records: '<epoch>:<16 hex digits>' each, none shared by two of them, and none
    # holding the queue id or the upload time.
    if isinstance(store, RedisStore):
        records = [field for _, field, _ in held["x"]]
        owners = {name for name, _, _ in held["x"]}
    else:
        records = [f"{epoch}:{tag}" for _, epoch, tag, _ in held["exposures"]]
        owners = {bytes(row[0]) for row in held["exposures"]}
        assert [len(row) for row in held["exposures"]] == [4] * len(records)
    assert len(owners) == 2 and len(records) >= 2
    assert all(TAG.match(record) for record in records), records
    tags = [record.split(":", 1)[1] for record in records]
    assert len(set(tags)) == len(tags)
    text = repr(held)
    assert queued and not set(queued) & set(tags)
    assert all(report_id not in text for report_id in queued if len(report_id) > 4)  # Redis
    for moment in (uploaded, uploaded * 1000):
        assert str(moment)[:8] not in " ".join(records)


async def test_replayed_unregister_and_delete_history_are_refused(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    phone = Phone(running.url, clock, random.Random(4).randbytes, session)
    await phone.register()
    url = f"{running.url}/api/v6"
    body = phone.auth_fields(RequestKind.DELETE_HISTORY)

    async def post(path: str, fields: dict[str, Any]) -> int:
        async with session.post(f"{url}/{path}", json=fields) as response:
            return response.status

    statuses = await asyncio.gather(*(post("deleteExposureHistory", body) for _ in range(5)))
    assert sorted(statuses) == [200, 409, 409, 409, 409]
    clock.advance(1)
    assert await post("deleteExposureHistory", phone.auth_fields(RequestKind.DELETE_HISTORY)) == 200
    clock.advance(1)
    body = phone.auth_fields(RequestKind.UNREGISTER)
    statuses = await asyncio.gather(*(post("unregister", body) for _ in range(5)))
    assert sorted(statuses) == [200, 409, 409, 409, 409]
    with pytest.raises(PhoneError) as gone:
        await phone.check_status()
    assert gone.value.status == 430


async def test_a_dead_workers_report_is_reclaimed_within_seconds_and_counted_once(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    alice, bob = (Phone(running.url, clock, random.Random(s).randbytes, session) for s in (7, 8))
    for phone in (alice, bob):
        await phone.register()
    meet(alice, bob, clock, minutes=20, rssi=-50)
    await alice.report(await running.code())
    store = running.service.store
    # A worker claims the report, writes its exposures, and dies before acknowledging.
    dead = ReportWorker(running.service, name="dead")
    (claimed,) = await store.claim_reports("dead", 16, 0, 60_000)
    await dead.process(claimed)
    _, owner = running.service._check_request(bob.auth_fields(RequestKind.STATUS))
    once = await store.get_exposures(IdA(owner))
    assert once
    # Another worker takes it over after the default 5 s (here 0.2 s), processes it again:
    # the same records, not twice the score.
    alive = ReportWorker(running.service, name="alive")
    assert running.service.settings.reclaim_after_ms == 5_000
    alive.reclaim_after_ms = 200
    assert await alive.run_once() == 0
    await asyncio.sleep(0.3)
    assert await alive.run_once() == 1
    assert await store.get_exposures(IdA(owner)) == once
    assert await store.pending_reports() == 0


async def test_a_report_does_not_wake_the_worker(
    running: Running, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    """The worker looks at the queue on its own schedule (``ROBERT_WORKER_PAUSE``), so its work
    does not follow a real report's answer (which a dummy's would not): a report queued while
    it waits stays queued until its next look, then is processed."""
    alice, bob = (Phone(running.url, clock, random.Random(s).randbytes, session) for s in (9, 10))
    for phone in (alice, bob):
        await phone.register()
    meet(alice, bob, clock, minutes=20, rssi=-50)
    assert running.service.settings.worker_pause == 2.0
    running.service.settings = replace(running.service.settings, worker_pause=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(ReportWorker(running.service, name="paused").run(stop))
    try:
        await asyncio.sleep(0.05)  # its first look: nothing queued; it now waits 0.5-1.5 s
        await alice.report(await running.code())
        await asyncio.sleep(0.2)
        store = running.service.store
        assert await store.pending_reports() == 1  # a blocking read would have taken it
        for _ in range(40):
            if await store.pending_reports() == 0:
                break
            await asyncio.sleep(0.05)
        assert await store.pending_reports() == 0
    finally:
        stop.set()
        await task
