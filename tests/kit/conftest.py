"""Fixtures of the kit's tests: a fresh database on each backend, migrated or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kit.db import Database
from kit.testing import KIT_FILTERS, another_database_url, database_url

__all__ = ["another_database_url", "database_url"]

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kit's known third-party warning filters, on the kit's tests only."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A fresh database (SQLite, then PostgreSQL) with the kit's tables."""
    database = Database(database_url)
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database alone, for checks that do not depend on the backend (input
    validation): the contract tests use ``db``, on both."""
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()
