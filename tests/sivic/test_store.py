"""The store's tables as the queries describe them match what the migrations make, on both
databases; the second migration fills the patients already stored; the third gives the rows
published before it to the event the service reads them for, or stops."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from kit.audit import AuditFilter, AuditLog
from kit.db import Database, DatabaseError
from kit.testing import Clock
from sivic import store
from sivic.app import new_service
from sivic.opendata import AGE, DATASETS, HOSPITAL, NEW, csv_text, file_name
from sivic.settings import Settings
from tests.sivic.conftest import SECRET, T0


def _differences(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": lambda name, kind, _parent: (
                kind != "table" or str(name).startswith("sivic_")
            ),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, store.metadata))


async def test_tables_match_the_migrations(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.migrate(store.MIGRATIONS)
        assert await db.revisions() == {
            "alembic_version_kit": "kit_0001",
            "alembic_version_sivic": store.REVISION,
        }
        async with db.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await db.close()


def _upgrade_to(connection: sa.Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(store.MIGRATIONS.location))
    config.attributes["version_table"] = store.MIGRATIONS.version_table
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_the_age_class_migration_fills_existing_patients(database_url: str) -> None:
    db = Database(database_url)
    at = datetime(2020, 4, 3, tzinfo=UTC)
    try:
        await db.migrate()
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "sivic_0001")
        async with db.begin() as conn:
            await conn.execute(
                sa.insert(store.events).values(
                    id=1, kind="epidemic", name="COVID-19", opened_at=at, opened_by="test"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO sivic_patients (event_id, finess, dep, birth_date, sex, unit, "
                    "status, status_date, covid, updated_at) VALUES (1, '750100125', '75', "
                    "'1930-04-04', 'F', 'conv', 'hospitalised', '2020-04-03', 'for', :at)"
                ),
                {"at": at},
            )
        await db.migrate(store.MIGRATIONS)
        async with db.connect() as conn:
            ages = (await conn.execute(sa.select(store.patients.c.age_class))).scalars().all()
        assert ages == ["89"]  # 89 years old on 3 April 2020
    finally:
        await db.close()


def _downgrade_to(connection: sa.Connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(store.MIGRATIONS.location))
    config.attributes["version_table"] = store.MIGRATIONS.version_table
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


# --- sivic_0003: the published rows kept per event ------------------------------------------
AT = datetime(2020, 4, 3, tzinfo=UTC)
PUBLISHED = [
    (day, dataset, body.format(day=day))
    for day in ("2020-04-01", "2020-04-02")
    for dataset, body in (
        (HOSPITAL, "75;0;{day};0;0;0;0;0;0;0\n"),
        (NEW, "75;{day};0;0;0;0\n"),
        (AGE, "11;0;{day};0;0;0;0;0;0;0\n"),
    )
]
"""What was published before sivic_0003, as SivicService.publish kept it (zeros: no patient)."""

EventRow = tuple[str, str, datetime | None]
"""kind, name, closed_at."""


async def _at_0002(db: Database, events: Sequence[EventRow]) -> None:
    """``db`` at sivic_0002 with ``events`` (ids 1, 2... in order: inserted without one, the
    way the service does, so that PostgreSQL's sequence counts them) and two days of the
    three files published."""
    await db.migrate()
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade_to, "sivic_0002")
    async with db.begin() as conn:
        for kind, name, closed in events:
            await conn.execute(
                sa.insert(store.events).values(
                    kind=kind, name=name, opened_at=AT, closed_at=closed, opened_by="test"
                )
            )
        for day, dataset, body in PUBLISHED:
            await conn.execute(
                sa.text(
                    "INSERT INTO sivic_published (day, dataset, body, published_at) "
                    "VALUES (:day, :dataset, :body, :at)"
                ),
                {"day": day, "dataset": dataset, "body": body, "at": AT},
            )


async def _published(db: Database) -> list[tuple[int, str, str, str]]:
    async with db.connect() as conn:
        rows = await conn.execute(sa.select(store.published).order_by(store.published.c.day))
        return sorted((r.event_id, r.day, r.dataset, r.body) for r in rows)


async def _read_by_the_service(url: str, tmp_path: Path, event_id: int) -> None:
    """The service publishes for ``event_id`` by default and reads the rows published before
    the migration as that event's history: the next day's files hold them."""
    service = new_service(Settings(database=url, secret=SECRET), Clock(T0))
    await service.open()
    try:
        before = [e.id for e in await service.store.events()]
        assert (await service.covid_event()).id == event_id
        assert [e.id for e in await service.store.events()] == before  # none made
        result = await service.publish(date(2020, 4, 3), tmp_path / "out")
        assert result.problems == []
        for dataset in DATASETS:
            text = (tmp_path / "out" / file_name(dataset, date(2020, 4, 3))).read_text()
            earlier = [body for _, name, body in PUBLISHED if name == dataset]
            assert text.startswith(csv_text(dataset, earlier))
    finally:
        await service.close()


async def test_sivic_0003_makes_the_covid_event_for_rows_published_without_one(
    database_url: str, tmp_path: Path
) -> None:
    """No event at all: the upgrade makes the one covid_event would make (the upgrade of
    before dropped every published row)."""
    db = Database(database_url)
    try:
        await _at_0002(db, [])
        await db.migrate(store.MIGRATIONS)
        async with db.connect() as conn:
            made = (await conn.execute(sa.select(store.events))).one()
        assert (made.kind, made.name, made.closed_at, made.opened_by) == (
            "epidemic", "COVID-19", None, "system",
        )  # fmt: skip
        assert await _published(db) == sorted((made.id, *row) for row in PUBLISHED)
        audited = await AuditLog().query(db, AuditFilter(object_type="event"))
        assert [(a.actor, a.role, a.action, a.object_id, a.detail) for a in audited] == [
            ("system", "admin", "create", str(made.id), "epidemic")
        ]
    finally:
        await db.close()
    await _read_by_the_service(database_url, tmp_path, made.id)


@pytest.mark.parametrize(
    ("open_event", "owner"),
    [
        pytest.param(("epidemic", "COVID-19"), 2, id="open-covid"),
        pytest.param(("attack", "Attentat"), 3, id="open-attack"),  # 3: made by the upgrade
    ],
)
async def test_sivic_0003_gives_the_rows_to_the_open_covid_event_not_a_closed_one(
    database_url: str, tmp_path: Path, open_event: tuple[str, str], owner: int
) -> None:
    """A closed COVID-19 event and an open one: the rows go to the open COVID-19 event the
    service reads, made if the open one is another event (the upgrade of before gave them to
    the closed COVID-19 event, which the service never reads again)."""
    db = Database(database_url)
    try:
        await _at_0002(db, [("epidemic", "COVID-19", AT), (*open_event, None)])
        await db.migrate(store.MIGRATIONS)
        assert await _published(db) == sorted((owner, *row) for row in PUBLISHED)
        async with db.connect() as conn:
            ids = (await conn.execute(sa.select(store.events.c.id))).scalars().all()
        assert sorted(ids) == sorted({1, 2, owner})
    finally:
        await db.close()
    await _read_by_the_service(database_url, tmp_path, owner)


async def test_sivic_0003_gives_the_rows_to_the_open_covid_event_the_service_reads(
    database_url: str, tmp_path: Path
) -> None:
    """Two open COVID-19 events: the rows go to the newest, the one covid_event has read them
    for until now and reads afterwards (never to the attack event, never dropped)."""
    db = Database(database_url)
    try:
        open_covid = ("epidemic", "COVID-19", None)
        await _at_0002(db, [("attack", "Attentat", None), open_covid, open_covid])
        await db.migrate(store.MIGRATIONS)
        assert await _published(db) == sorted((3, *row) for row in PUBLISHED)
        async with db.connect() as conn:
            count = await conn.execute(sa.select(sa.func.count()).select_from(store.events))
            assert count.scalar_one() == 3  # none made
    finally:
        await db.close()
    await _read_by_the_service(database_url, tmp_path, 3)


async def test_sivic_0003_downgrades_losslessly_or_not_at_all(database_url: str) -> None:
    """The downgrade refuses while rows of another event than the open COVID-19 one are kept
    (the downgrade of before dropped them); with that event's rows only, it keeps every row,
    and upgrading again gives them back to the same event."""
    db = Database(database_url)
    try:
        await _at_0002(db, [("epidemic", "COVID-19", AT), ("epidemic", "COVID-19", None)])
        await db.migrate(store.MIGRATIONS)
        async with db.begin() as conn:
            await conn.execute(
                sa.insert(store.published).values(
                    event_id=1, day="2020-04-02", dataset=HOSPITAL, body="closed", published_at=AT
                )
            )
        after_upgrade = await _published(db)
        with pytest.raises(DatabaseError, match="belong to events 1, 2"):
            async with db.engine.begin() as conn:
                await conn.run_sync(_downgrade_to, "sivic_0002")
        assert (await db.revisions())["alembic_version_sivic"] == "sivic_0003"
        assert await _published(db) == after_upgrade

        async with db.begin() as conn:
            await conn.execute(sa.delete(store.published).where(store.published.c.event_id == 1))
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade_to, "sivic_0002")
        async with db.connect() as conn:
            kept = await conn.execute(sa.text("SELECT day, dataset, body FROM sivic_published"))
            assert sorted(tuple(r) for r in kept) == sorted(PUBLISHED)
        await db.migrate(store.MIGRATIONS)
        assert await _published(db) == sorted((2, *row) for row in PUBLISHED)
    finally:
        await db.close()
