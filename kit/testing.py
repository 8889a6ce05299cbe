"""Pytest fixtures for any service's tests: a fresh, empty database on each backend.

A service's ``conftest.py`` imports them by name (pytest finds fixtures imported there)::

    from kit.testing import database_url  # noqa: F401

``database_url`` is parametrised: each test that uses it runs once on a SQLite file in the
test's ``tmp_path`` and once on a PostgreSQL database of its own (``kit_test_<hex>``, created
for the test and dropped after it; skipped, saying why, when PostgreSQL is unreachable).
``KIT_TEST_POSTGRES`` names the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``).

Tests of pages with sessions also need ``KIT_FILTERS`` on their items (the suite runs with
``-W error``; see ``kit.auth.sessions.SESSION_KEYS_WARNING``)::

    def pytest_collection_modifyitems(items):
        for item in items:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))

Only imported by tests: pytest is a test dependency, not a run-time one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from kit.auth.sessions import SESSION_KEYS_WARNING

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
KIT_FILTERS = (SESSION_KEYS_WARNING,)
"""The warning filters a service's tests add (third-party warnings the kit cannot fix)."""
BACKENDS = ("sqlite", "postgresql")


def postgres_server_url() -> str:
    """The maintenance database URL of the PostgreSQL server tests use."""
    return os.environ.get("KIT_TEST_POSTGRES", DEFAULT_SERVER)


async def _administer(statement: str) -> None:
    """Run one statement outside a transaction on the server's maintenance database; skip the
    test, saying why, when the server cannot be reached."""
    url = make_url(postgres_server_url()).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(statement)
    except (OSError, sa.exc.InterfaceError) as exc:
        pytest.skip(f"PostgreSQL unreachable at {postgres_server_url()}: {exc}")
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL unusable at {postgres_server_url()}: {exc.orig}")
    finally:
        await engine.dispose()


async def create_postgres_database() -> str:
    """Create an empty database with a random name; its URL."""
    name = f"kit_test_{secrets.token_hex(6)}"
    await _administer(f'CREATE DATABASE "{name}"')
    return make_url(postgres_server_url()).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database`` (closing its connections)."""
    name = make_url(url).database
    assert name is not None and name.startswith("kit_test_")
    await _administer(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, then a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def another_database_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A second fresh database on the same backend as ``database_url`` (two services)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'another.db'}"
        return
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)
