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

People of a service under test sign in through its real pages (password, then the first
TOTP code) with ``Staff``, which a service's ``Running`` harness extends with its service::

    @dataclass
    class Running(Staff):
        prefix: ClassVar[str] = "/beds"
        service: BedService

Only imported by tests: pytest is a test dependency, not a run-time one.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import aiohttp
import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from kit.auth.people import Accounts
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


class Clock:
    """A settable clock (seconds since the epoch), for services given ``clock=``."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- people signing in -------------------------------------------------------------------
TEST_PASSWORD = "correct horse battery staple"
"""Every test person's password."""
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
"""Argon2 at its cheapest: tests create many people; never for real accounts."""


def csrf_of(html: str) -> str:
    """The CSRF token of a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def browser_session() -> aiohttp.ClientSession:
    """A client keeping cookies of 127.0.0.1 (aiohttp's jar refuses IP hosts by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@dataclass
class Staff:
    """A service over HTTP at ``url`` (mounted at ``prefix``), its people and API keys.

    ``person`` creates someone (their TOTP secret kept), ``sign_in`` signs them in through
    the service's real pages: password, then the first TOTP code at ``clock()`` (enrolment).
    """

    prefix: ClassVar[str] = ""
    url: str
    accounts: Accounts
    clock: Callable[[], float] = field(default=time.time, kw_only=True)
    secrets: dict[str, str] = field(default_factory=dict, kw_only=True)

    async def person(self, username: str, role: str, scope: str = "") -> None:
        """A new person; their TOTP secret kept for signing in."""
        _, enrolment = await self.accounts.users.create(
            username, display_name=username.title(), role=role, scope=scope, password=TEST_PASSWORD
        )
        self.secrets[username] = enrolment.secret

    async def api_key(self, role: str, scope: str = "") -> str:
        """A new API key of ``role`` and ``scope``."""
        _, key = await self.accounts.api_keys.create(f"test {role} {scope}".strip(), role, scope)
        return key

    async def sign_in(self, client: aiohttp.ClientSession, username: str) -> None:
        """Sign in through the pages: password, then the first TOTP code (enrolment)."""
        login = f"{self.url}{self.prefix}/login"
        async with client.get(login) as r:
            token = csrf_of(await r.text())
        form = {
            "username": username,
            "password": TEST_PASSWORD,
            "csrf_token": token,
            "next": f"{self.prefix}/",
        }
        async with client.post(login, data=form, allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        async with client.get(f"{login}/enrol") as r:
            token = csrf_of(await r.text())
        code = pyotp.TOTP(self.secrets[username]).at(self.clock())
        async with client.post(
            f"{login}/enrol", data={"code": code, "csrf_token": token}, allow_redirects=False
        ) as r:
            assert r.status == 303, await r.text()
