"""Fixtures of SI-VIC: the service on each database, and the service over HTTP with people
signed in (password and TOTP) through the real sign-in pages."""

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

from kit.auth.people import Accounts
from kit.testing import KIT_FILTERS, database_url
from sivic.app import API_KEY_PREFIX, create_app, mount, new_service
from sivic.service import SivicService
from sivic.settings import Settings

__all__ = ["database_url"]

HERE = Path(__file__).resolve().parent
SECRET = "SI-VIC's test secret, long enough to derive keys from"
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
T0 = 1_585_900_800.0  # 2020-04-03 08:00 UTC
PITIE = "750100125"  # Pitié-Salpêtrière, Paris 13e (75, Île-de-France)
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
async def service(database_url: str, clock: Clock) -> AsyncIterator[SivicService]:
    """SI-VIC on a fresh database of each kind."""
    opened = new_service(Settings(database=database_url, secret=SECRET), clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@dataclass
class Running:
    """SI-VIC over HTTP (mounted at /sivic, as in robert dev)."""

    url: str
    service: SivicService
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
        async with client.get(f"{self.url}/sivic/login") as r:
            token = csrf_of(await r.text())
        async with client.post(
            f"{self.url}/sivic/login",
            data={
                "username": username,
                "password": PASSWORD,
                "csrf_token": token,
                "next": "/sivic/",
            },
            allow_redirects=False,
        ) as r:
            assert r.status == 303, await r.text()
        async with client.get(f"{self.url}/sivic/login/enrol") as r:
            token = csrf_of(await r.text())
        code = pyotp.TOTP(self.secrets[username]).at(self.clock())
        async with client.post(
            f"{self.url}/sivic/login/enrol",
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
    """SI-VIC on SQLite in tmp_path, over HTTP on 127.0.0.1."""
    settings = Settings(database=f"sqlite:///{tmp_path / 'sivic.db'}", secret=SECRET)
    service = new_service(settings, clock)
    await service.open()
    accounts = Accounts(
        service.store.db,
        SECRET,
        "SI-VIC",
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
