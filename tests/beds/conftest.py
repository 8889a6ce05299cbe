"""Fixtures of the bed service: the service on each database, and the service running over
HTTP with people signed in (password and TOTP) through the real sign-in pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from beds.app import API_KEY_PREFIX, create_app, mount, new_service
from beds.service import BedService
from beds.settings import Settings
from kit.auth.people import Accounts
from kit.testing import (
    FAST_HASHER,
    KIT_FILTERS,
    TEST_PASSWORD,
    Clock,
    Staff,
    browser_session,
    csrf_of,
    database_url,
)

__all__ = ["FAST_HASHER", "Clock", "browser_session", "csrf_of", "database_url"]

HERE = Path(__file__).resolve().parent
SECRET = "the bed service's test secret, long enough to derive keys"
PASSWORD = TEST_PASSWORD
T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC
PITIE = "750100125"  # Pitié-Salpêtrière, Paris 13e (Île-de-France, region 11)
BICETRE = "940100043"  # Kremlin-Bicêtre (94, Île-de-France)
NANTES = "440000271"  # CHU de Nantes (44, Pays de la Loire, region 52)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kit's known third-party warning filters, on these tests."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


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
class Running(Staff):
    """The bed service over HTTP (mounted at /beds, as in robert dev)."""

    prefix: ClassVar[str] = "/beds"
    service: BedService


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
        yield Running(str(server.make_url("")).rstrip("/"), accounts, service, clock=clock)
    finally:
        await server.close()
        await service.close()
