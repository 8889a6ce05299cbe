"""Fixtures of the code service: the service on each database (SQLite, PostgreSQL), its pages
alone (``issuer``), and the ROBERT server with the code service mounted beside it, as
``robert dev`` runs them (``running``); people signing in to the pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from cli import wiring
from cli.dev import build_app
from client_sim.clock import VirtualClock
from codes.app import accounts_of, create_app, mount, new_service
from codes.model import Organisation, org_scope
from codes.service import CodeService
from codes.settings import Settings as CodesSettings
from kit.auth.people import Accounts
from kit.http import add_fallback
from kit.testing import KIT_FILTERS, database_url
from server.settings import Settings
from tests.server.conftest import Running

__all__ = ["database_url"]

PASSWORD = "correct horse battery staple"
SECRET = "the code service's test secret, long enough to derive keys"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
"""Cheap argon2 parameters for the pages' HTTP tests (the defaults are the kit's to test)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC))


@pytest.fixture
async def service(database_url: str, clock: VirtualClock) -> AsyncIterator[CodeService]:
    """The code service on a fresh database of each kind, opened."""
    opened = new_service(CodesSettings(database=database_url), clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


class CodesServer(Running):
    """A started ROBERT server with the code service mounted at /codes, its people and its
    (virtual) clock."""

    def __init__(
        self, server: TestServer, codes: CodeService, accounts: Accounts, clock: VirtualClock
    ) -> None:
        super().__init__(server, codes)
        self.accounts = accounts
        self.clock = clock


@pytest.fixture
async def running(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[CodesServer]:
    """``robert dev``'s application on SQLite files in tmp_path."""
    settings = Settings(data_dir=str(tmp_path), captcha="off", embedded_worker=False)
    app = build_app(settings, clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    from server.api.appkeys import SERVICE

    try:
        codes: CodeService = app[SERVICE].codes  # type: ignore[assignment]
        accounts = accounts_of(wiring.codes_settings(settings), codes)
        yield CodesServer(server, codes, accounts, clock)
    finally:
        await server.close()


@dataclass
class Issuer:
    """The code service alone, mounted at /codes, on SQLite, its clock virtual."""

    url: str
    service: CodeService
    accounts: Accounts
    clock: VirtualClock


@pytest.fixture
async def issuer(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Issuer]:
    settings = CodesSettings(data_dir=str(tmp_path), secret=SECRET)
    service = new_service(settings, clock)
    await service.open()
    root = web.Application()
    mount(root, create_app(settings, service, hasher=FAST_HASHER))
    add_fallback(root)
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        yield Issuer(url, service, accounts_of(settings, service, FAST_HASHER), clock)
    finally:
        await server.close()
        await service.close()


async def person(accounts: Accounts, username: str, org: Organisation, **extra: str) -> str:
    """A person of ``org`` (its role, scope ``org:<name>``); their TOTP secret, not yet
    confirmed: their first sign-in enrols it."""
    _, enrolment = await accounts.users.create(
        username,
        display_name=extra.get("display_name", username.title()),
        role=org.role.value,
        scope=org_scope(org.name),
        password=PASSWORD,
        time_zone=extra.get("time_zone", "Europe/Paris"),
    )
    return enrolment.secret


def browser_session() -> aiohttp.ClientSession:
    # unsafe=True: the server is on an IP address, whose cookies aiohttp drops otherwise.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


async def sign_in(
    client: aiohttp.ClientSession, url: str, username: str, secret: str, clock: VirtualClock
) -> str:
    """Both steps of the sign-in (enrolling the authenticator the first time) over HTTP;
    the page it lands on."""
    async with client.get(f"{url}/codes/login") as r:
        token = csrf_of(await r.text())
    form = {"csrf_token": token, "username": username, "password": PASSWORD, "next": ""}
    async with client.post(f"{url}/codes/login", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        step = r.headers["Location"]
    assert step in ("/codes/login/code", "/codes/login/enrol")
    async with client.get(f"{url}{step}") as r:
        token = csrf_of(await r.text())
    form = {"csrf_token": token, "code": pyotp.TOTP(secret).at(clock())}
    clock.advance(30)  # the next sign-in needs the next code
    async with client.post(f"{url}{step}", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


def read_qr(image: object) -> list[str]:
    """The texts of the QR codes in an image. Only QR is looked for: a QR pattern can also
    read, by chance, as a 1D barcode (about one image in a hundred), which is not a finding."""
    import zxingcpp

    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [f.text for f in found]
