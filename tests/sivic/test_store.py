"""The store's tables as the queries describe them match what the migrations make, on both
databases; the second migration fills the patients already stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from kit.db import Database
from sivic import store


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


async def test_the_published_rows_migration_keeps_them_for_the_covid_event(
    database_url: str,
) -> None:
    """Both ways the rows are the event SivicService.covid_event publishes for: the newest
    open COVID-19 one (4 here; the upgrade took the lowest id, 2, a closed one, and the
    downgrade kept the lowest id's rows)."""
    db = Database(database_url)
    at = datetime(2020, 4, 3, tzinfo=UTC)
    try:
        await db.migrate()
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "sivic_0002")
        async with db.begin() as conn:
            for event_id, kind, name, closed in (
                (1, "attack", "Attentat", None),
                (2, "epidemic", "COVID-19", at),
                (3, "epidemic", "COVID-19", None),
                (4, "epidemic", "COVID-19", None),
                (5, "epidemic", "Grippe", None),
            ):
                await conn.execute(
                    sa.insert(store.events).values(
                        id=event_id, kind=kind, name=name, opened_at=at, opened_by="test",
                        closed_at=closed,
                    )
                )  # fmt: skip
            await conn.execute(
                sa.text(
                    "INSERT INTO sivic_published (day, dataset, body, published_at) "
                    "VALUES ('2020-04-02', 'donnees-hospitalieres-covid19', '75;0;...', :at)"
                ),
                {"at": at},
            )
        await db.migrate(store.MIGRATIONS)
        events = await store.SivicStore(db).events()  # newest first, as covid_event reads them
        covid = next(e for e in events if e.name == "COVID-19" and e.closed_at is None)
        assert covid.id == 4
        async with db.connect() as conn:
            rows = (await conn.execute(sa.select(store.published))).all()
        assert [(r.event_id, r.day, r.body) for r in rows] == [(4, "2020-04-02", "75;0;...")]

        async with db.begin() as conn:
            for event_id in (1, 2, 3, 5):
                await conn.execute(
                    sa.insert(store.published).values(
                        event_id=event_id, day="2020-04-02",
                        dataset="donnees-hospitalieres-covid19", body=f"event {event_id}",
                        published_at=at,
                    )
                )  # fmt: skip
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade_to, "sivic_0002")
        async with db.connect() as conn:
            kept = (await conn.execute(sa.text("SELECT day, body FROM sivic_published"))).all()
        assert [tuple(r) for r in kept] == [("2020-04-02", "75;0;...")]
    finally:
        await db.close()
