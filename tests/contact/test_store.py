"""The store's tables agree with its migrations, on both databases; name search."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from contact.service import ContactService
from contact.store import metadata
from tests.contact.conftest import person


def _differences(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": lambda name, kind, _parent: (
                kind != "table" or str(name).startswith("contact_")
            ),
            "compare_type": True,
        },
    )
    # the name-search index differs by backend (trigram GIN or B-tree): indexes are the
    # migration's, columns and constraints must agree
    return [
        d for d in compare_metadata(context, metadata) if d[0] not in ("add_index", "remove_index")
    ]


async def test_the_schema_module_matches_the_migrations(service: ContactService) -> None:
    async with service.store.db.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_name_search_by_word_prefixes(service: ContactService) -> None:
    from datetime import UTC, datetime

    now = datetime(2020, 10, 23, tzinfo=UTC)
    async with service.store.db.begin() as conn:
        for last, first in (("Dupont-Lefèvre", "Élodie"), ("Lefebvre", "Marc"), ("Du Pont", "Eli")):
            await service.store.upsert_person(conn, person(last, first), now, None)

        async def names(**query: Any) -> list[str]:
            ids = await service.store.search_persons(conn, **query)
            found = await service.store.persons_of(conn, ids)
            return sorted(found[i].last_name for i in ids)

        assert await names(name="LEFEVRE ELODIE") == ["Dupont-Lefèvre"]
        assert await names(name="ELOD DUPO") == ["Dupont-Lefèvre"]  # any order, prefixes
        assert await names(name="DUPONT") == ["Dupont-Lefèvre"]
        assert await names(name="PONT") == ["Du Pont"]  # word starts only
        assert await names(name="DU PONT") == ["Du Pont"]  # a short word filters
        assert await names(name="LEF") == ["Dupont-Lefèvre", "Lefebvre"]
        assert await names(name="LEFEVRES") == []
        assert await names(name="DU") == []  # no word of 3 letters: nothing (no scan)
        assert await names(name="100%") == []
        assert await names(name="D_P") == []


async def test_tokens_migration_fills_existing_persons(database_url: str) -> None:
    """``contact_0002`` computes the tokens of persons entered under ``contact_0001``."""
    from datetime import UTC, datetime

    from alembic import command

    from contact.store import MIGRATIONS, ContactStore
    from kit.db import KIT_MIGRATIONS, Database, _config

    db = Database(database_url)

    def upgrade(connection: sa.Connection, migrations: Any, target: str) -> None:
        config = _config(migrations)
        config.attributes["connection"] = connection
        command.upgrade(config, target)

    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade, KIT_MIGRATIONS, "head")
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade, MIGRATIONS, "contact_0001")
            await conn.execute(
                sa.text(
                    "INSERT INTO contact_persons (last_name, first_name, sex, address, postcode, "
                    "department, search_name, collected_at) VALUES ('Du Pont', 'Eli', 'U', '', "
                    "'', '', 'DU PONT ELI', :now)"
                ),
                {"now": datetime(2020, 10, 23, tzinfo=UTC)},
            )
        store = ContactStore(db)
        await store.open()
        async with db.connect() as conn:
            assert await store.search_persons(conn, name="PON ELI") == [1]
    finally:
        await db.close()


async def test_two_cases_matching_one_person_at_once_keep_the_first_fields(
    service: ContactService,
) -> None:
    """Two transactions complete one person together: the second, started while the first
    holds the row, must see the phone the first recorded, not overwrite it with its own (on
    PostgreSQL the row is locked FOR UPDATE; SQLite's BEGIN IMMEDIATE queues the writers)."""
    import asyncio
    from datetime import UTC, datetime

    now = datetime(2020, 10, 23, tzinfo=UTC)
    store = service.store
    async with store.db.begin() as conn:
        created, new = await store.upsert_person(conn, person("Martin", "Léa"), now, None)
    assert new and created.phone is None and created.email is None
    second_started = asyncio.Event()

    async def second() -> None:
        second_started.set()
        async with store.db.begin() as conn:
            both = person("Martin", "Léa", phone="+33611111111", email="lea@example.fr")
            await store.upsert_person(conn, both, now, None)

    async def first() -> None:
        async with store.db.begin() as conn:
            phone = person("Martin", "Léa", phone="+33600000000")
            await store.upsert_person(conn, phone, now, None)
            task = asyncio.create_task(second())
            await second_started.wait()
            await asyncio.sleep(0.5)  # the second reads (and waits) before this one commits
        await task

    await first()
    async with store.db.connect() as conn:
        done = await store.person(conn, created.id)
    assert done is not None
    assert (done.phone, done.email) == ("+33600000000", "lea@example.fr")
