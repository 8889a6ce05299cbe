"""Fixtures of the citizen services: the application served on a free port (SQLite file or
PostgreSQL), a moderator account, Chromium."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from citizens.app import API_KEY_PREFIX, standalone_app
from citizens.settings import SHIPPED_SITES, Settings
from kit.auth.people import Accounts
from kit.auth.users import CodeCheck
from kit.db import Database
from kit.testing import KIT_FILTERS, database_url

__all__ = ["database_url"]

SECRET = "the citizen services' test secret, long enough for keys"
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DOCS_SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    """Where the browser tests put their screenshots: the test's temporary directory, or
    ``$CITIZENS_SCREENSHOTS`` when set (``CITIZENS_SCREENSHOTS=docs/screens`` renews those
    of docs/citizens.md; a normal run leaves the committed ones alone)."""
    folder = Path(os.environ.get("CITIZENS_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/citizens" in str(item.fspath):
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


@dataclass
class Running:
    """The service on a free port."""

    url: str
    settings: Settings
    sites_file: Path


@pytest.fixture
def sites_file(tmp_path: Path) -> Path:
    """A copy of the shipped sites, which a test may replace."""
    path = tmp_path / "sites.csv"
    shutil.copy(SHIPPED_SITES, path)
    return path


async def start(settings: Settings) -> tuple[TestServer, str]:
    server = TestServer(standalone_app(settings), host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def running(tmp_path: Path, sites_file: Path) -> AsyncIterator[Running]:
    """The citizen services alone, on SQLite, watching ``sites_file`` every second."""
    settings = Settings(
        data_dir=str(tmp_path), secret=SECRET, sites_file=str(sites_file), sites_check_every=1.0
    )
    server, url = await start(settings)
    try:
        yield Running(url, settings, sites_file)
    finally:
        await server.close()


async def add_moderator(settings: Settings, username: str = "modo") -> pyotp.TOTP:
    """A moderator with a password and a confirmed authenticator app, whose generator is
    returned. The confirmation used the previous 30-second step, so the current one is still
    unused: the sign-in that follows is a normal one, password then code."""
    accounts = Accounts(
        Database(settings.database_url), SECRET, "Citizens", api_key_prefix=API_KEY_PREFIX,
        hasher=FAST_HASHER,
    )  # fmt: skip
    try:
        await accounts.db.migrate()
        user, enrolment = await accounts.users.create(
            username, display_name="Camille Modératrice", role="moderator", scope="",
            password=PASSWORD,
        )  # fmt: skip
        totp = pyotp.TOTP(enrolment.secret)
        check = await accounts.users.confirm_totp(user.id, totp.at(time.time() - 30))
        assert check is CodeCheck.OK, check
    finally:
        await accounts.db.close()
    return totp
