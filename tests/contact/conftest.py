"""Fixtures of Contact Covid: the service on each database, and the service running over HTTP
with people signed in (password and TOTP) through the real sign-in pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import aiohttp
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from contact.access import Access
from contact.app import API_KEY_PREFIX, create_app, mount, new_service
from contact.model import PersonInput
from contact.service import ContactService
from contact.settings import Settings
from kit.auth.people import Accounts
from kit.testing import KIT_FILTERS, another_database_url, database_url

__all__ = ["another_database_url", "database_url"]

HERE = Path(__file__).resolve().parent
SECRET = "Contact Covid's test secret, long enough to derive keys"
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
T0 = 1_603_440_000.0  # 2020-10-23 08:00 UTC
DOCTOR = Access("dr.martin", "doctor", "rpps:10003456789")
CPAM = Access("agent.cpam75", "cpam_agent", "dep:75")
ARS = Access("ars.idf", "ars_agent", "dep:75")
PHARMACIST = Access("pharma.rivoli", "pharmacist", "finess:750012345")
BIOLOGIST = Access("bio.cerballiance", "biologist", "finess:750054321")
SPF = Access("spf", "spf_analyst", "national")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kit's known third-party warning filters, on these tests."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings_for(database: str, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        database=database,
        data_dir=str(tmp_path / "data"),
        secret=SECRET,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def service(database_url: str, clock: Clock, tmp_path: Path) -> AsyncIterator[ContactService]:
    """The service on a fresh database of each kind."""
    opened = new_service(settings_for(database_url, tmp_path), clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def person(last: str, first: str, born: str = "1980-01-01", **extra: object) -> PersonInput:
    """A person of the tests, in Paris."""
    values: dict[str, object] = {"postcode": "75011", "department": "75", **extra}
    return PersonInput(last, first, date.fromisoformat(born), **values)  # type: ignore[arg-type]


@dataclass
class Running:
    """The service over HTTP (mounted at /contact, as in robert dev)."""

    url: str
    service: ContactService
    accounts: Accounts
    clock: Clock
    secrets: dict[str, str] = field(default_factory=dict)

    async def person(self, username: str, role: str, scope: str = "") -> None:
        """A new person; their TOTP secret kept for signing in."""
        _, enrolment = await self.accounts.users.create(
            username, display_name=username.title(), role=role, scope=scope, password=PASSWORD
        )
        self.secrets[username] = enrolment.secret

    async def api_key(self, role: str, scope: str = "") -> str:
        """A new API key of ``role`` and ``scope``."""
        _, key = await self.accounts.api_keys.create(f"test {role} {scope}", role, scope)
        return key

    async def sign_in(self, client: aiohttp.ClientSession, username: str) -> None:
        """Sign in through the pages: password, then the first TOTP code (enrolment)."""
        async with client.get(f"{self.url}/contact/login") as r:
            token = csrf_of(await r.text())
        async with client.post(
            f"{self.url}/contact/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token,
                  "next": "/contact/"},
            allow_redirects=False,
        ) as r:  # fmt: skip
            assert r.status == 303, await r.text()
        async with client.get(f"{self.url}/contact/login/enrol") as r:
            token = csrf_of(await r.text())
        code = pyotp.TOTP(self.secrets[username]).at(self.clock())
        async with client.post(
            f"{self.url}/contact/login/enrol",
            data={"code": code, "csrf_token": token},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()


def browser_session() -> aiohttp.ClientSession:
    """A client keeping cookies of 127.0.0.1 (aiohttp's jar refuses IP hosts by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    """The CSRF token of a page's form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@pytest.fixture
async def running(tmp_path: Path, clock: Clock) -> AsyncIterator[Running]:
    """The service on SQLite in tmp_path, over HTTP on 127.0.0.1 (no background jobs: the
    tests run them when they mean to)."""
    settings = settings_for(f"sqlite:///{tmp_path / 'contact.db'}", tmp_path)
    service = new_service(settings, clock)
    await service.open()
    accounts = Accounts(
        service.store.db, SECRET, "Contact Covid", api_key_prefix=API_KEY_PREFIX,
        hasher=FAST_HASHER, clock=clock,
    )  # fmt: skip
    root = web.Application()
    mount(root, create_app(settings, service, accounts, clock, jobs=False))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(str(server.make_url("")).rstrip("/"), service, accounts, clock)
    finally:
        await server.close()
        await service.close()
