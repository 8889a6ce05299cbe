"""One contract for every store backend: the same tests run on SQLite and on Redis."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from protocol.types import IdA, MacKey, TupleKey
from server.store import open_store
from server.store.base import (
    NEVER,
    Captcha,
    PushInfo,
    Registration,
    RiskState,
    StatusOutcome,
    Store,
)
from server.store.redis import RedisStore

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CONTRACT_REDIS_DB = 11
MAX_BYTES_PER_REGISTRATION = 250


def contract_redis_url() -> str:
    """REDIS_URL with its database number replaced by 11, so the tests never touch db 0."""
    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
    return f"{base}/{CONTRACT_REDIS_DB}"


def flush_redis() -> str | None:
    """FLUSHDB the test database; the reason it is unreachable, or None."""
    try:
        client = redis.Redis.from_url(contract_redis_url(), socket_timeout=1)
        try:
            client.flushdb()
        finally:
            client.close()
    except (redis.exceptions.RedisError, OSError) as exc:
        return f"Redis unreachable at {contract_redis_url()} ({type(exc).__name__})"
    return None


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened store of each backend, empty; Redis db 11 is flushed before and after."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'contract.db'}"
    else:
        reason = flush_redis()
        if reason:
            pytest.skip(reason)
        url = contract_redis_url()
    backend = open_store(url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        if request.param == "redis":
            flush_redis()


def ident(n: int) -> IdA:
    """The n-th test ID_A."""
    return IdA(n.to_bytes(5, "big"))


def registration(n: int, last_status_epoch: int = NEVER, last_status_time: int = 0) -> Registration:
    """A registration with distinct keys per ``n``."""
    return Registration(
        ident(n),
        MacKey(bytes([n % 256]) * 32),
        TupleKey(bytes([(n + 1) % 256]) * 32),
        last_status_epoch,
        last_status_time,
    )


@pytest.mark.parametrize("url", ["", "postgres://x/y", "/tmp/a.db", "sqlite://"])
def test_open_store_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="store URL"):
        open_store(url)


# --- lifecycle ---------------------------------------------------------------------------
async def test_open_is_idempotent_and_ping(store: Store) -> None:
    await store.open()
    assert await store.ping()


# --- registrations -----------------------------------------------------------------------
async def test_create_and_get_round_trip(store: Store) -> None:
    reg = registration(1, last_status_epoch=5, last_status_time=3_900_000_000)
    assert await store.create_registration(reg)
    assert await store.get_registration(reg.id_a) == reg
    assert await store.get_registration(ident(2)) is None


async def test_create_duplicate_id_a_is_refused(store: Store) -> None:
    assert await store.create_registration(registration(1))
    other = Registration(ident(1), MacKey(b"\xee" * 32), TupleKey(b"\xdd" * 32))
    assert not await store.create_registration(other)
    assert await store.get_registration(ident(1)) == registration(1)


async def test_create_many_keeps_existing_ones(store: Store) -> None:
    assert await store.create_registration(registration(3))
    other = Registration(ident(3), MacKey(b"\xee" * 32), TupleKey(b"\xdd" * 32))
    many = [registration(n) for n in range(1, 3)] + [other, registration(4)]
    assert await store.create_registrations(many) == [True, True, False, True]
    assert await store.get_registration(ident(3)) == registration(3)  # left as it was
    assert await store.get_registration(ident(4)) == registration(4)
    assert await store.create_registrations([]) == []
    assert await store.count_registrations() == 4


async def test_count_registrations(store: Store) -> None:
    assert await store.count_registrations() == 0
    for n in range(3):
        await store.create_registration(registration(n))
    await store.add_exposures(ident(0), "r", [(1, 1.0)])
    assert await store.count_registrations() == 3
    await store.delete_registration(ident(1))
    assert await store.count_registrations() == 2


async def record(store: Store, n: int, epoch: int, time: int, gap: int) -> StatusOutcome:
    return (await store.record_status(ident(n), epoch, time, gap)).outcome


async def test_record_status_outcomes(store: Store) -> None:
    await store.create_registration(registration(1))
    assert await record(store, 1, 10, 5000, 4) is StatusOutcome.ACCEPTED
    reg = await store.get_registration(ident(1))
    assert reg is not None
    assert (reg.last_status_epoch, reg.last_status_time) == (10, 5000)
    assert await record(store, 1, 10, 5000, 4) is StatusOutcome.REPLAYED
    assert await record(store, 1, 20, 5000, 4) is StatusOutcome.REPLAYED  # same time, later
    assert await record(store, 1, 13, 5900, 4) is StatusOutcome.TOO_SOON
    assert await record(store, 1, 14, 6000, 4) is StatusOutcome.ACCEPTED
    assert await record(store, 9, 14, 6000, 4) is StatusOutcome.UNKNOWN
    reg = await store.get_registration(ident(1))
    assert reg is not None
    assert (reg.last_status_epoch, reg.last_status_time) == (14, 6000)


async def test_record_status_returns_the_registration_as_it_was(store: Store) -> None:
    await store.create_registration(registration(1))
    first = await store.record_status(ident(1), 10, 5000, 0)
    assert first.before == registration(1)
    assert first.push is None
    second = await store.record_status(ident(1), 11, 5100, 0)
    assert second.before is not None
    assert (second.before.last_status_epoch, second.before.last_status_time) == (10, 5000)
    assert (await store.record_status(ident(9), 1, 1, 0)) == (
        await store.record_status(ident(9), 1, 1, 0)
    )
    assert (await store.record_status(ident(9), 1, 1, 0)).before is None


async def test_record_status_refusals_change_nothing(store: Store) -> None:
    await store.create_registration(registration(1))
    await record(store, 1, 10, 5000, 4)
    before = await store.get_registration(ident(1))
    await record(store, 1, 11, 5100, 4)
    await record(store, 1, 12, 5000, 0)
    assert await store.get_registration(ident(1)) == before


async def test_first_status_is_never_too_soon_nor_a_replay(store: Store) -> None:
    """Epoch 0 at time 0 right after registration: the NEVER sentinel is not a previous
    request."""
    await store.create_registration(registration(1))
    assert await record(store, 1, 0, 0, 96) is StatusOutcome.ACCEPTED


async def test_min_gap_zero_disables_rate_limit(store: Store) -> None:
    await store.create_registration(registration(1))
    assert await record(store, 1, 10, 5000, 0) is StatusOutcome.ACCEPTED
    assert await record(store, 1, 10, 5001, 0) is StatusOutcome.ACCEPTED
    assert await record(store, 1, 10, 5001, 0) is StatusOutcome.REPLAYED


# --- push information --------------------------------------------------------------------
PUSH = PushInfo("a" * 64, "fr_FR", "Europe/Paris")


async def test_push_info_stored_with_the_registration_and_deleted_with_it(store: Store) -> None:
    assert await store.create_registration(registration(1), PUSH)
    assert await store.get_push_info(ident(1)) == PUSH
    assert (await store.record_status(ident(1), 3, 7, 0, with_push=True)).push == PUSH
    assert (await store.record_status(ident(1), 4, 8, 0)).push is None  # not asked for
    newer = PushInfo("b" * 64, "en_GB", "Europe/London")
    assert await store.set_push_info(ident(1), newer)
    assert await store.get_push_info(ident(1)) == newer
    assert await store.delete_registration(ident(1))
    assert await store.get_push_info(ident(1)) is None
    assert not await store.set_push_info(ident(1), PUSH)  # no registration, nothing kept
    assert await store.get_push_info(ident(1)) is None


async def test_a_refused_registration_keeps_its_push_info(store: Store) -> None:
    assert await store.create_registration(registration(1))
    assert not await store.create_registration(registration(1), PUSH)
    assert await store.get_push_info(ident(1)) is None
    assert await store.create_registration(registration(2), PushInfo("", "", ""))
    assert await store.get_push_info(ident(2)) == PushInfo("", "", "")


# --- captchas ----------------------------------------------------------------------------
def captcha(captcha_id: str = "c1", expires: int = 1000) -> Captcha:
    return Captcha(captcha_id, "image", "ABC234", "fr", expires)


async def test_captcha_is_used_once_and_only_before_it_expires(store: Store) -> None:
    assert await store.create_captcha(captcha(), 300)
    assert not await store.create_captcha(Captcha("c1", "audio", "999999", "en", 5), 300)
    assert await store.get_captcha("c1", 1000) == captcha()
    assert await store.get_captcha("c1", 1001) is None  # expired
    assert not await store.use_captcha("c1", 1001)
    assert await store.use_captcha("c1", 999)
    assert not await store.use_captcha("c1", 999)  # one use
    assert await store.get_captcha("c1", 0) is None
    assert await store.get_captcha("nope", 0) is None


async def test_concurrent_uses_of_a_captcha_let_one_through(store: Store) -> None:
    await store.create_captcha(captcha(), 300)
    results = await asyncio.gather(*(store.use_captcha("c1", 10) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]


async def test_wrong_answers_are_counted_and_end_the_captcha(store: Store) -> None:
    await store.create_captcha(captcha(), 300)
    assert await store.fail_captcha("c1", 3) == 1
    assert await store.fail_captcha("c1", 3) == 2
    got = await store.get_captcha("c1", 0)
    assert got is not None and got.attempts == 2
    assert await store.fail_captcha("c1", 3) == 3
    assert await store.get_captcha("c1", 0) is None  # spent
    assert not await store.use_captcha("c1", 0)
    assert await store.fail_captcha("c1", 3) == 0
    assert await store.fail_captcha("nope", 3) == 0


async def test_purge_removes_expired_captchas_only(store: Store) -> None:
    await store.create_captcha(captcha("old", 100), 300)
    await store.create_captcha(captcha("new", 900), 300)
    assert await store.purge_captchas(500) in (0, 1)  # Redis expires keys by itself: 0
    assert await store.get_captcha("new", 500) is not None
    assert await store.get_captcha("old", 50) in (None, captcha("old", 100))


async def test_delete_registration_removes_exposures(store: Store) -> None:
    await store.create_registration(registration(1))
    await store.add_exposures(ident(1), "r1", [(10, 1.5)])
    assert await store.delete_registration(ident(1))
    assert await store.get_registration(ident(1)) is None
    assert await store.get_exposures(ident(1)) == {}
    assert [batch async for batch in store.iter_exposed()] == []
    assert not await store.delete_registration(ident(1))
    # A new registration reusing the ID_A starts clean.
    assert await store.create_registration(registration(1))
    assert await store.get_exposures(ident(1)) == {}


async def test_delete_exposures_resets_risk(store: Store) -> None:
    await store.create_registration(registration(1, last_status_epoch=3, last_status_time=9))
    await store.add_exposures(ident(1), "r1", [(10, 1.5), (11, 2.0)])
    await store.set_risk(ident(1), RiskState(True, 4, 10, 12))
    assert await store.delete_exposures(ident(1))
    assert await store.get_exposures(ident(1)) == {}
    reg = await store.get_registration(ident(1))
    assert reg == registration(1, last_status_epoch=3, last_status_time=9)
    assert not await store.delete_exposures(ident(2))


# --- exposures and risk ------------------------------------------------------------------
async def test_add_exposures_idempotent_and_summed(store: Store) -> None:
    await store.create_registration(registration(1))
    assert await store.add_exposures(ident(1), "r1", [(10, 1.5), (11, 0.25)])
    assert await store.add_exposures(ident(1), "r1", [(10, 1.5), (11, 0.25)])
    assert await store.get_exposures(ident(1)) == {10: 1.5, 11: 0.25}
    assert await store.add_exposures(ident(1), "r2", [(10, 2.0)])
    assert await store.get_exposures(ident(1)) == {10: 3.5, 11: 0.25}
    assert await store.add_exposures(ident(1), "r3", [])
    assert await store.get_exposures(ident(2)) == {}


async def test_add_exposures_unknown_registration(store: Store) -> None:
    assert not await store.add_exposures(ident(7), "r1", [(10, 1.0)])
    assert await store.get_exposures(ident(7)) == {}
    assert [batch async for batch in store.iter_exposed()] == []


async def test_purge_exposures(store: Store) -> None:
    await store.create_registration(registration(1))
    await store.add_exposures(ident(1), "r1", [(8, 1.0), (9, 1.0), (10, 1.0)])
    await store.add_exposures(ident(1), "r2", [(9, 2.0)])
    assert await store.purge_exposures(ident(1), 10) == 3
    assert await store.get_exposures(ident(1)) == {10: 1.0}
    assert await store.purge_exposures(ident(1), 10) == 0
    assert await store.purge_exposures(ident(2), 10) == 0
    assert await store.purge_exposures(ident(1), 11) == 1
    assert [batch async for batch in store.iter_exposed()] == []


async def test_iter_exposed_batches(store: Store) -> None:
    for n in range(7):
        await store.create_registration(registration(n))
        if n % 2 == 0:
            await store.add_exposures(ident(n), "r", [(1, 1.0)])
    batches = [batch async for batch in store.iter_exposed(batch=2)]
    assert all(1 <= len(batch) <= 2 for batch in batches)
    assert sorted(i for batch in batches for i in batch) == [ident(n) for n in (0, 2, 4, 6)]


async def test_set_risk_round_trip(store: Store) -> None:
    await store.create_registration(registration(1, last_status_epoch=77, last_status_time=9))
    risk = RiskState(at_risk=True, risk_level=4, last_contact_epoch=1234, last_scoring_epoch=1300)
    assert await store.set_risk(ident(1), risk)
    reg = await store.get_registration(ident(1))
    assert reg == replace(registration(1, last_status_epoch=77, last_status_time=9), risk=risk)
    assert await store.set_risk(ident(1), RiskState())
    reg = await store.get_registration(ident(1))
    assert reg is not None and reg.risk == RiskState()
    assert not await store.set_risk(ident(2), risk)
    assert await store.get_registration(ident(2)) is None


# --- report queue ------------------------------------------------------------------------
async def test_queue_enqueue_claim_ack(store: Store) -> None:
    assert await store.pending_reports() == 0
    ids = [await store.enqueue_report(bytes([n]) * 3) for n in range(3)]
    assert len(set(ids)) == 3
    assert await store.pending_reports() == 3
    first = await store.claim_reports("a", 2, 0, 60_000)
    assert [r.payload for r in first] == [b"\x00" * 3, b"\x01" * 3]
    assert [r.report_id for r in first] == ids[:2]
    rest = await store.claim_reports("b", 10, 0, 60_000)
    assert [r.report_id for r in rest] == ids[2:]
    assert await store.claim_reports("c", 10, 0, 60_000) == []
    assert await store.pending_reports() == 3
    for report in first + rest:
        await store.ack_report(report.report_id)
    assert await store.pending_reports() == 0
    assert await store.claim_reports("c", 10, 0, 0) == []


async def test_unacked_report_is_reclaimed_after_delay(store: Store) -> None:
    report_id = await store.enqueue_report(b"payload")
    assert [r.report_id for r in await store.claim_reports("a", 5, 0, 150)] == [report_id]
    assert await store.claim_reports("b", 5, 0, 150) == []
    await asyncio.sleep(0.25)
    reclaimed = await store.claim_reports("b", 5, 0, 150)
    assert [(r.report_id, r.payload) for r in reclaimed] == [(report_id, b"payload")]
    # b's claim restarts the clock: a cannot take it straight back.
    assert await store.claim_reports("a", 5, 0, 150) == []
    await store.ack_report(report_id)
    await asyncio.sleep(0.2)
    assert await store.claim_reports("c", 5, 0, 150) == []
    assert await store.pending_reports() == 0


async def test_claim_blocks_until_report_arrives(store: Store) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await store.claim_reports("a", 5, 120, 60_000) == []
    assert loop.time() - started >= 0.1

    async def later() -> str:
        await asyncio.sleep(0.1)
        return await store.enqueue_report(b"late")

    enqueue = asyncio.create_task(later())
    claimed = await store.claim_reports("a", 5, 3_000, 60_000)
    assert [r.report_id for r in claimed] == [await enqueue]


# --- Redis only --------------------------------------------------------------------------
async def test_redis_memory_per_registration() -> None:
    reason = flush_redis()
    if reason:
        pytest.skip(reason)
    store = RedisStore(contract_redis_url())
    await store.open()
    client = aioredis.Redis.from_url(contract_redis_url())
    try:
        before = await client.dbsize()
        await store.create_registration(registration(1))
        await store.record_status(ident(1), 10, 3_900_000_000, 4)
        await store.set_risk(ident(1), RiskState(True, 4, 10, 12))
        assert await client.dbsize() == before + 1  # the registration adds one key, no index
        used = await client.memory_usage(store._reg_key(ident(1)), samples=0)
        print(f"Redis bytes per registration: {used}")
        assert used is not None and used <= MAX_BYTES_PER_REGISTRATION
    finally:
        await client.aclose()
        await store.close()
        flush_redis()


async def test_get_keys(store: Store) -> None:
    assert await store.get_keys(ident(1)) is None
    await store.create_registration(registration(1))
    assert await store.get_keys(ident(1)) == (registration(1).k_a, registration(1).k_ea)
