"""kit.db: URLs, the SQLite file, migrations (the kit's and a service's), time columns."""

from __future__ import annotations

import asyncio
import gc
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kit import schema
from kit.db import (
    Database,
    DatabaseClosed,
    DatabaseError,
    DatabaseUnreachable,
    Migrations,
    UtcDateTime,
    engine_url,
    init_migrations,
    main,
    new_migration,
)


# --- URLs ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "driver", "database"),
    [
        ("sqlite:///data/sidep.db", "sqlite+aiosqlite", "data/sidep.db"),
        ("sqlite:////var/lib/sidep.db", "sqlite+aiosqlite", "/var/lib/sidep.db"),
        ("postgresql://sidep@db.local:5433/sidep", "postgresql+asyncpg", "sidep"),
        ("postgresql+asyncpg://u:pw@h/d", "postgresql+asyncpg", "d"),
    ],
)
def test_urls_become_async_drivers(url: str, driver: str, database: str) -> None:
    parsed = engine_url(url)
    assert (parsed.drivername, parsed.database) == (driver, database)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/d",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://u@h",
        "redis://localhost:6379/0",
        "not a url",
        "postgresql+psycopg2://u@h/d",
    ],
)
def test_other_urls_are_refused_in_one_line(url: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        engine_url(url)
    assert "\n" not in str(caught.value)


def test_refusal_masks_credentials() -> None:
    with pytest.raises(DatabaseError) as caught:
        engine_url("mysql://admin:hunter2@h/d")
    assert "hunter2" not in str(caught.value)


async def test_unreachable_database_is_named_with_its_password_masked() -> None:
    """The driver's own "connection refused" would not say which database."""
    db = Database("postgresql://admin:hunter2@127.0.0.1:1/sidep")
    try:
        with pytest.raises(DatabaseUnreachable) as caught:
            await db.migrate()
    finally:
        await db.close()
    assert str(caught.value) == (
        "cannot reach the database at postgresql://admin:***@127.0.0.1:1/sidep: connection refused"
    )


# --- the SQLite file -----------------------------------------------------------------------------
async def test_sqlite_creates_its_directory(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/a/b/service.db")
    try:
        assert await db.ping()
        assert (tmp_path / "a" / "b" / "service.db").is_file()
    finally:
        await db.close()


def test_sqlite_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DatabaseError, match="cannot create the database directory") as caught:
        Database(f"sqlite:///{tmp_path}/file/service.db")
    assert "\n" not in str(caught.value)


def test_read_only_sqlite_file_is_one_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes through file modes: use a file system refusing it
        path = Path("/sys/kernel/kit-test.db")
        if not path.parent.is_dir():
            pytest.skip("running as root without /sys: no read-only place to try")
    else:
        path = tmp_path / "service.db"
        path.write_bytes(b"")
        path.chmod(0o400)
    with pytest.raises(DatabaseError, match="read-only") as caught:
        Database(f"sqlite:///{path}")
    assert "\n" not in str(caught.value)


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/service.db")
    try:
        async with db.connect() as conn:
            pragmas = [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
        assert pragmas == ["wal", 1, 15000]
    finally:
        await db.close()


async def test_sqlite_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    """Concurrent read-then-write transactions: with BEGIN IMMEDIATE none gets 'locked'."""
    db = Database(f"sqlite:///{tmp_path}/service.db")
    try:
        async with db.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
            await conn.exec_driver_sql("INSERT INTO counter VALUES (0)")

        async def increment() -> None:
            async with db.begin() as conn:
                n = (await conn.exec_driver_sql("SELECT n FROM counter")).scalar_one()
                await asyncio.sleep(0.01)
                await conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(*(increment() for _ in range(5)))
        async with db.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT n FROM counter")).scalar_one() == 5
    finally:
        await db.close()


async def test_unreachable_postgresql_does_not_ping() -> None:
    db = Database("postgresql://postgres@127.0.0.1:1/nothing")
    try:
        assert not await db.ping()
    finally:
        await db.close()


# --- migrations ----------------------------------------------------------------------------------
async def test_close_waits_for_connections_in_use(database_url: str) -> None:
    """A connection in use when the service closes is waited for, then closed: the pool
    alone closes only idle ones, and aiosqlite warns (an error here) when one is collected
    open. After closing, a late task gets DatabaseClosed instead of a new, unclosed pool."""
    db = Database(database_url)

    async def reader() -> None:
        async with db.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            await asyncio.sleep(0.2)
            await conn.execute(sa.text("SELECT 1"))

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    await db.close()
    assert task.done()
    await task
    with pytest.raises(DatabaseClosed):
        async with db.connect():
            pass
    with pytest.raises(DatabaseClosed):
        async with db.begin():
            pass
    gc.collect()  # an unclosed driver connection would warn here, failing the test
    await db.migrate()  # opens it again
    assert await db.ping()
    await db.close()


async def test_migrate_is_idempotent_and_versioned(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()
        await db.migrate()
        assert await db.revisions() == {"alembic_version_kit": "kit_0001"}
    finally:
        await db.close()


def _schema_differences(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": lambda name, kind, _parent: (
                not (kind == "table" and str(name).startswith("alembic_version_"))
            ),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, schema.metadata))


async def test_schema_module_matches_the_migrations(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate()
        async with db.connect() as conn:
            assert await conn.run_sync(_schema_differences) == []
    finally:
        await db.close()


async def test_a_service_migrates_after_the_kit(database_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "demo" / "migrations"
    init_migrations(folder)
    with pytest.raises(DatabaseError, match="already holds migrations"):
        init_migrations(folder)
    script = new_migration(folder, "demo records")
    text = script.read_text().replace(
        "def upgrade() -> None:\n    pass",
        "def upgrade() -> None:\n"
        "    op.create_table('demo_records', sa.Column('id', sa.Integer(), primary_key=True),\n"
        "        sa.Column('audit_id', sa.Integer(), sa.ForeignKey('kit_audit.id')))",
    )
    script.write_text(text)
    db = Database(database_url)
    try:
        await db.migrate(Migrations("demo", folder))
        revisions = await db.revisions()
        assert revisions["alembic_version_kit"] == "kit_0001"
        assert revisions["alembic_version_demo"] == script.name.split("_")[0]
        async with db.begin() as conn:
            await conn.exec_driver_sql("INSERT INTO demo_records (id) VALUES (1)")
    finally:
        await db.close()


async def test_the_command_line_makes_and_runs_migrations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "migrations"
    assert main(["init", str(folder)]) == 0
    assert main(["revision", str(folder), "-m", "first"]) == 0
    url = f"sqlite:///{tmp_path}/cli.db"
    assert await asyncio.to_thread(main, ["migrate", url, f"demo={folder}"]) == 0
    out = capsys.readouterr().out
    assert "alembic_version_kit: kit_0001" in out and "alembic_version_demo: " in out
    assert await asyncio.to_thread(main, ["migrate", url, f"other={tmp_path}/none"]) == 1
    assert capsys.readouterr().err.strip().startswith("kit.db: no migrations at")


async def test_missing_migrations_folder_is_refused(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/service.db")
    try:
        with pytest.raises(DatabaseError, match="no migrations at"):
            await db.migrate(Migrations("ghost", tmp_path / "nowhere"))
    finally:
        await db.close()


# --- time ----------------------------------------------------------------------------------------
async def test_times_are_aware_utc_on_both_backends(database_url: str) -> None:
    table = sa.Table(
        "times",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime()),
    )
    paris_winter = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 10, 5, 8, 3, 250_000, tzinfo=paris_winter)
    db = Database(database_url)
    try:
        async with db.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(table.insert().values(id=1, at=moment))
        async with db.connect() as conn:
            stored = (await conn.execute(sa.select(table.c.at))).scalar_one()
            later = await conn.execute(
                sa.select(table.c.id).where(table.c.at > datetime(2026, 12, 10, 4, 8, tzinfo=UTC))
            )
            assert later.scalars().all() == [1]
        assert stored == moment and stored.tzinfo == UTC
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            async with db.begin() as conn:
                await conn.execute(table.insert().values(id=2, at=datetime(2026, 1, 1)))
    finally:
        await db.close()
