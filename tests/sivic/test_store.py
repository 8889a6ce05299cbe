"""The store's tables as the queries describe them match what the migrations make, on both
databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
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
