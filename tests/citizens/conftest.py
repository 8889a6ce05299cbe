"""Fixtures of the citizen services: the application served on a free port (SQLite file or
PostgreSQL), a moderator account, Chromium."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from citizens.app import API_KEY_PREFIX, standalone_app
from citizens.settings import SHIPPED_SITES, Settings
from kit.auth.people import Accounts
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
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"


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


async def add_moderator(settings: Settings, username: str = "modo") -> None:
    """A moderator with a password (TOTP enrolled at the first sign-in)."""
    accounts = Accounts(
        Database(settings.database_url), SECRET, "Citizens", api_key_prefix=API_KEY_PREFIX,
        hasher=FAST_HASHER,
    )  # fmt: skip
    await accounts.db.migrate()
    await accounts.users.create(
        username, display_name="Modératrice Test", role="moderator", scope="", password=PASSWORD
    )
    await accounts.db.close()
