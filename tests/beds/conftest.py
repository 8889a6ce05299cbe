"""Fixtures of the bed service: the service on each database, and the service running over
HTTP with people signed in (password and TOTP) through the real sign-in pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from beds.app import API_KEY_PREFIX, create_app, mount, new_service
from beds.service import BedService
from beds.settings import Settings
from kit.auth.people import Accounts
from kit.testing import KIT_FILTERS, database_url

__all__ = ["database_url"]

HERE = Path(__file__).resolve().parent
SECRET = "the bed service's test secret, long enough to derive keys"
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC
PITIE = "750100125"  # Pitié-Salpêtrière, Paris 13e (Île-de-France, region 11)
BICETRE = "940100043"  # Kremlin-Bicêtre (94, Île-de-France)
NANTES = "440000271"  # CHU de Nantes (44, Pays de la Loire, region 52)


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


@pytest.fixture
async def service(database_url: str, clock: Clock) -> AsyncIterator[BedService]:
    """The bed service on a fresh database of each kind, with the reference establishments."""
    opened = new_service(Settings(database=database_url, stale_minutes=60), clock)
    await opened.open()
    await opened.load_establishments()
    try:
        yield opened
    finally:
        await opened.close()


@dataclass
class Running:
    """The bed service over HTTP (mounted at /beds, as in robert dev)."""

    url: str
    service: BedService
    accounts: Accounts
    clock: Clock
    secrets: dict[str, str] = field(default_factory=dict)

    async def person(self, username: str, role: str, scope: str) -> None:
        """A new person; their TOTP secret kept for signing in."""
        _, enrolment = await self.accounts.users.create(
            username, display_name=username.title(), role=role, scope=scope, password=PASSWORD
        )
        self.secrets[username] = enrolment.secret

    async def api_key(self, role: str, scope: str = "") -> str:
        """A new API key of ``role`` and ``scope``."""
        _, key = await self.accounts.api_keys.create(f"test {role}", role, scope)
        return key

    async def sign_in(self, client: aiohttp.ClientSession, username: str) -> None:
        """Sign in through the pages: password, then the first TOTP code (enrolment)."""
        async with client.get(f"{self.url}/beds/login") as r:
            token = _csrf(await r.text())
        async with client.post(
            f"{self.url}/beds/login",
            data={
                "username": username,
                "password": PASSWORD,
                "csrf_token": token,
                "next": "/beds/",
            },
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()
        async with client.get(f"{self.url}/beds/login/enrol") as r:
            token = _csrf(await r.text())
        code = pyotp.TOTP(self.secrets[username]).at(self.clock())
        async with client.post(
            f"{self.url}/beds/login/enrol",
            data={"code": code, "csrf_token": token},
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()


def browser_session() -> aiohttp.ClientSession:
    """A client keeping cookies of 127.0.0.1 (aiohttp's jar refuses IP hosts by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def csrf_of(html: str) -> str:
    """The CSRF token of a page's form."""
    return _csrf(html)


@pytest.fixture
async def running(tmp_path: Path, clock: Clock) -> AsyncIterator[Running]:
    """The bed service on SQLite in tmp_path, over HTTP on 127.0.0.1, with the reference
    establishments loaded."""
    settings = Settings(database=f"sqlite:///{tmp_path / 'beds.db'}", secret=SECRET)
    service = new_service(settings, clock)
    await service.open()
    await service.load_establishments()
    accounts = Accounts(
        service.store.db,
        SECRET,
        "Lits",
        api_key_prefix=API_KEY_PREFIX,
        hasher=FAST_HASHER,
        clock=clock,
    )
    root = web.Application()
    mount(root, create_app(settings, service, accounts, clock))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(str(server.make_url("")).rstrip("/"), service, accounts, clock)
    finally:
        await server.close()
        await service.close()
