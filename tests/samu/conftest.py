"""Fixtures of the board: a settable clock, the databases (``database_url``: SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

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
from samu.app import API_KEY_PREFIX, create_app, mount, new_service
from samu.links import CountsSource, TensionSource
from samu.service import SamuService
from samu.settings import Settings

__all__ = ["FAST_HASHER", "Clock", "browser_session", "csrf_of", "database_url"]

HERE = Path(__file__).resolve().parent
T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kit's known third-party warning filters, on these tests."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


SECRET = "the board's test secret, long enough to derive keys"
PASSWORD = TEST_PASSWORD


@dataclass
class Running(Staff):
    """The board over HTTP (mounted at /samu, as in robert dev)."""

    prefix: ClassVar[str] = "/samu"
    service: SamuService


async def start_board(
    tmp_path: Path,
    clock: Clock,
    counts: CountsSource | None = None,
    tension: TensionSource | None = None,
    settings: Settings | None = None,
) -> tuple[Running, TestServer]:
    """The board on SQLite in ``tmp_path``, over HTTP on 127.0.0.1."""
    settings = settings or Settings(
        database=f"sqlite:///{tmp_path / 'samu.db'}", secret=SECRET, heartbeat_seconds=1.0
    )
    service = new_service(settings, clock, counts, tension)
    await service.open()
    accounts = Accounts(
        service.store.db, SECRET, "SAMU", api_key_prefix=API_KEY_PREFIX, hasher=FAST_HASHER,
        clock=clock,
    )  # fmt: skip
    root = web.Application()
    mount(root, create_app(settings, service, accounts, clock))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    return Running(str(server.make_url("")).rstrip("/"), accounts, service, clock=clock), server


@pytest.fixture
async def running(tmp_path: Path, clock: Clock) -> AsyncIterator[Running]:
    """The board over HTTP, SI-VIC and beds not configured."""
    board, server = await start_board(tmp_path, clock)
    try:
        yield board
    finally:
        await server.close()
        await board.service.close()
