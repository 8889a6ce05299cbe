"""Fixtures of the kit's tests: a fresh database on each backend, migrated or not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kit.db import Database
from kit.testing import database_url

__all__ = ["database_url"]

SECRET = "a test secret of the kit, long enough to be a real one"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A fresh database (SQLite, then PostgreSQL) with the kit's tables."""
    database = Database(database_url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()
