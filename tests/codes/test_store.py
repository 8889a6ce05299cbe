"""The code store's contract, on SQLite and PostgreSQL: what the service relies on."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from codes.model import CodeRecord, CodeState, Organisation, Outcome, Role
from codes.store import CodeHasher, CodeStore, metadata
from kit.audit import Actor
from kit.db import Database
from protocol.codes import CodeKind

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ACTOR = Actor("org:LAB1", "lab")
HASH = CodeHasher(bytes(32))


def code(text: str, expires_in: int = 1_000) -> CodeRecord:
    """A short code issued at T0, valid ``expires_in`` seconds."""
    return CodeRecord(
        text, CodeKind.SHORT, "LAB1", "2026-03-01", T0, T0 + timedelta(seconds=expires_in)
    )


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CodeStore]:
    opened = CodeStore(Database(database_url))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def consume(store: CodeStore, text: str, seconds: int) -> Outcome:
    return await store.consume(text, at(seconds), ACTOR, HASH(text))


async def test_add_and_get_codes(store: CodeStore) -> None:
    stored = await store.add_codes([code("AAAAAA"), code("BBBBBB")], ACTOR, HASH)
    assert [c.code for c in stored] == ["AAAAAA", "BBBBBB"]
    again = await store.add_codes([code("AAAAAA", 9), code("CCCCCC")], ACTOR, HASH)
    assert [c.code for c in again] == ["CCCCCC"]  # an existing text is never replaced
    assert await store.add_codes([], ACTOR, HASH) == []
    assert await store.get_code("AAAAAA") == (code("AAAAAA"), "valid")
    assert await store.get_code("ZZZZZZ") is None


async def test_consume_outcomes(store: CodeStore) -> None:
    await store.add_codes([code("AAAAAA"), code("BBBBBB")], ACTOR, HASH)
    assert await consume(store, "ZZZZZZ", 500) is Outcome.UNKNOWN
    assert await consume(store, "AAAAAA", 1_000) is Outcome.EXPIRED
    assert await consume(store, "AAAAAA", 999) is Outcome.ACCEPTED
    assert await consume(store, "AAAAAA", 999) is Outcome.USED
    assert await store.get_code("AAAAAA") == (code("AAAAAA"), "used")
    assert await store.revoke("BBBBBB", ACTOR, HASH("BBBBBB"))
    assert await consume(store, "BBBBBB", 500) is Outcome.REVOKED


async def test_revoke(store: CodeStore) -> None:
    await store.add_codes([code("AAAAAA"), code("BBBBBB")], ACTOR, HASH)
    await consume(store, "AAAAAA", 500)
    assert not await store.revoke("AAAAAA", ACTOR, HASH("AAAAAA"))
    assert await store.get_code("AAAAAA") == (code("AAAAAA"), "used")
    assert not await store.revoke("ZZZZZZ", ACTOR, HASH("ZZZZZZ"))
    assert await store.revoke("BBBBBB", ACTOR, HASH("BBBBBB"))
    assert await store.revoke("BBBBBB", ACTOR, HASH("BBBBBB"))  # still unused: holds


async def test_release_only_undoes_a_use(store: CodeStore) -> None:
    await store.add_codes([code("AAAAAA"), code("BBBBBB")], ACTOR, HASH)
    assert not await store.release("AAAAAA", ACTOR, HASH("AAAAAA"))  # never used
    assert await consume(store, "AAAAAA", 500) is Outcome.ACCEPTED
    assert await store.release("AAAAAA", ACTOR, HASH("AAAAAA"))
    assert await consume(store, "AAAAAA", 500) is Outcome.ACCEPTED
    await store.revoke("BBBBBB", ACTOR, HASH("BBBBBB"))
    assert not await store.release("BBBBBB", ACTOR, HASH("BBBBBB"))
    assert not await store.release("ZZZZZZ", ACTOR, HASH("ZZZZZZ"))


async def test_purge_by_expiry(store: CodeStore) -> None:
    await store.add_codes([code("AAAAAA", 0), code("BBBBBB", 2_000), code("CCCCCC")], ACTOR, HASH)
    await consume(store, "AAAAAA", -500)
    assert await store.purge(at(500)) == 1  # used or not, expired is gone
    assert await store.get_code("AAAAAA") is None
    assert await store.purge(at(1_500)) == 1
    assert await store.get_code("BBBBBB") is not None
    assert await store.purge(at(1_500)) == 0


async def test_consume_exactly_once_under_concurrency(store: CodeStore) -> None:
    await store.add_codes([code("AAAAAA")], ACTOR, HASH)
    outcomes = await asyncio.gather(*(consume(store, "AAAAAA", 500) for _ in range(20)))
    assert outcomes.count(Outcome.ACCEPTED) == 1
    assert outcomes.count(Outcome.USED) == 19


async def test_list_newest_first_with_state(store: CodeStore) -> None:
    await store.add_codes([code("AAAAAA"), code("BBBBBB", 10)], ACTOR, HASH)
    listed = await store.list_codes("LAB1", 10, at(100))
    assert {r.code: s for r, s in listed} == {
        "AAAAAA": CodeState.VALID,
        "BBBBBB": CodeState.EXPIRED,
    }
    assert await store.list_codes("LAB2", 10, at(100)) == []


async def test_organisations_and_secret(store: CodeStore) -> None:
    org = Organisation(
        "LAB1", Role.LAB, bytes(range(32)), T0, "Labo Biomed", "1 rue A\n75011 Paris"
    )
    assert await store.add_org(org, ACTOR)
    assert not await store.add_org(org, ACTOR)
    assert await store.get_org("LAB1") == org
    assert await store.list_orgs() == [org]
    assert await store.update_org("LAB1", "Laboratoire Biomed", "2 rue B", ACTOR)
    assert not await store.update_org("LAB9", "x", "", ACTOR)
    changed = await store.get_org("LAB1")
    assert changed is not None and (changed.title, changed.address) == (
        "Laboratoire Biomed",
        "2 rue B",
    )
    secret = await store.secret()
    assert len(secret) == 32 and await store.secret() == secret


async def test_batches_with_their_states(store: CodeStore) -> None:
    def in_batch(text: str, batch: str | None, expires_in: int = 1_000) -> CodeRecord:
        later = 0 if batch == "a" * 16 else 1  # the second batch is the newer
        return dataclasses.replace(code(text, expires_in), batch=batch, issued_at=at(later))

    first = [
        in_batch("AAAAAA", "a" * 16),
        in_batch("BBBBBB", "a" * 16),
        in_batch("CCCCCC", "a" * 16),
    ]
    await store.add_codes(first, ACTOR, HASH)
    await store.add_codes([in_batch("DDDDDD", "b" * 16, 10), in_batch("EEEEEE", None)], ACTOR, HASH)
    await consume(store, "AAAAAA", 5)
    await store.revoke("BBBBBB", ACTOR, HASH("BBBBBB"))
    newest, oldest = await store.list_batches("LAB1", 10, at(100))
    assert (oldest.id, oldest.count, oldest.valid, oldest.used, oldest.revoked) == (
        "a" * 16,
        3,
        1,
        1,
        1,
    )
    assert (newest.id, newest.count, newest.valid, newest.expired) == ("b" * 16, 1, 0, 1)
    assert oldest.test_day.isoformat() == "2026-03-01" and oldest.kind is CodeKind.SHORT
    assert await store.list_batches("LAB2", 10, at(100)) == []
    listed = await store.batch_codes("LAB1", "a" * 16, at(100))
    assert [(r.code, s) for r, s in listed] == [
        ("AAAAAA", CodeState.USED),
        ("BBBBBB", CodeState.REVOKED),
        ("CCCCCC", CodeState.VALID),
    ]
    assert await store.batch_codes("LAB2", "a" * 16, at(100)) == []


def _differences(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": lambda name, kind, _parent: (
                kind != "table" or str(name).startswith("codes_")
            ),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, metadata))


async def test_the_store_tables_match_the_migrations(store: CodeStore) -> None:
    async with store.db.connect() as conn:
        assert await conn.run_sync(_differences) == []
