"""kit.audit on both backends: entries commit with the business change, queries, and the
database's own refusal to rewrite history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from kit.audit import Action, AuditFilter, AuditLog
from kit.db import Database

T0 = datetime(2026, 12, 10, 4, 8, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def test_entry_commits_or_rolls_back_with_the_business_change(db: Database) -> None:
    log = AuditLog()
    async with db.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE cases (id INTEGER PRIMARY KEY)")
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO cases (id) VALUES (7)")
            await log.append(
                conn, actor="dr.martin", role="doctor", action=Action.CREATE,
                object_type="case", object_id=7,
            )  # fmt: skip
            raise RuntimeError("the service fails after writing")
    assert await log.query(db) == []
    async with db.begin() as conn:
        await conn.exec_driver_sql("INSERT INTO cases (id) VALUES (7)")
        entry_id = await log.append(
            conn, actor="dr.martin", role="doctor", action="create", object_type="case",
            object_id=7, detail="level 1",
        )  # fmt: skip
    [entry] = await log.query(db)
    assert (entry.id, entry.actor, entry.role, entry.action) == (
        entry_id,
        "dr.martin",
        "doctor",
        "create",
    )
    assert (entry.object_type, entry.object_id, entry.detail) == ("case", "7", "level 1")
    assert entry.at.tzinfo == UTC


async def test_query_filters_and_pages_newest_first(db: Database) -> None:
    log = AuditLog(clock=Clock())
    for n in range(7):
        await log.append(
            db,
            actor="agent.cpam" if n % 2 else "dr.martin",
            role="cpam_agent" if n % 2 else "doctor",
            action="read",
            object_type="case",
            object_id=str(100 + n % 3),
        )
    everything = await log.query(db)
    assert [e.object_id for e in everything] == ["100", "102", "101", "100", "102", "101", "100"]
    assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
    first = await log.query(db, limit=3)
    second = await log.query(db, limit=3, before_id=first[-1].id)
    assert [e.id for e in first + second] == [e.id for e in everything[:6]]
    by_actor = await log.query(db, AuditFilter(actor="agent.cpam"))
    assert {e.actor for e in by_actor} == {"agent.cpam"} and len(by_actor) == 3
    one_case = await log.query(db, AuditFilter(object_type="case", object_id="101"))
    assert len(one_case) == 2
    window = await log.query(
        db, AuditFilter(since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=5))
    )
    assert [e.at for e in window] == [T0 + timedelta(seconds=4), T0 + timedelta(seconds=3)]


REWRITES = [
    "UPDATE kit_audit SET actor = 'someone else'",
    "UPDATE kit_audit SET detail = '' WHERE id = 1",
    "DELETE FROM kit_audit",
    "DELETE FROM kit_audit WHERE id = 1",
]


async def test_the_database_refuses_to_rewrite_the_log(db: Database) -> None:
    log = AuditLog()
    await log.append(
        db, actor="dr.martin", role="doctor", action="read", object_type="case", object_id=1
    )
    for statement in REWRITES:
        with pytest.raises(sa.exc.DBAPIError, match="kit_audit is append-only"):
            async with db.begin() as conn:
                await conn.exec_driver_sql(statement)
    [entry] = await log.query(db)
    assert (entry.actor, entry.detail) == ("dr.martin", "")


async def test_postgresql_also_refuses_truncate(db: Database) -> None:
    if db.backend != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's (SQLite has none)")
    await AuditLog().append(
        db, actor="a", role="admin", action="read", object_type="case", object_id=1
    )
    with pytest.raises(sa.exc.DBAPIError, match="kit_audit is append-only"):
        async with db.begin() as conn:
            await conn.exec_driver_sql("TRUNCATE kit_audit")
    assert len(await AuditLog().query(db)) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("action", "Read everything", "lower-case word"),
        ("action", "", "lower-case word"),
        ("actor", "", "actor must be"),
        ("object_id", "x" * 129, "object_id must be"),
        ("detail", "x" * 501, "at most 500"),
    ],
)
async def test_malformed_entries_are_refused(
    sqlite_db: Database, field: str, value: str, message: str
) -> None:
    db = sqlite_db
    entry = {
        "actor": "a",
        "role": "admin",
        "action": "read",
        "object_type": "case",
        "object_id": "1",
        "detail": "",
    } | {field: value}
    with pytest.raises(ValueError, match=message):
        await AuditLog().append(db, **entry)
    assert await AuditLog().query(db) == []
