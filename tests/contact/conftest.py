"""Fixtures of Contact Covid: the service on each database, and the service running over HTTP
with people signed in (password and TOTP) through the real sign-in pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contact.access import Access
from contact.app import API_KEY_PREFIX, create_app, mount, new_service
from contact.model import PersonInput
from contact.service import ContactService
from contact.settings import Settings
from kit.auth.people import Accounts
from kit.testing import (
    FAST_HASHER,
    KIT_FILTERS,
    TEST_PASSWORD,
    Clock,
    Staff,
    another_database_url,
    browser_session,
    csrf_of,
    database_url,
)

__all__ = [
    "FAST_HASHER",
    "Clock",
    "another_database_url",
    "browser_session",
    "csrf_of",
    "database_url",
]

HERE = Path(__file__).resolve().parent
SECRET = "Contact Covid's test secret, long enough to derive keys"
PASSWORD = TEST_PASSWORD
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


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


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
class Running(Staff):
    """The service over HTTP (mounted at /contact, as in robert dev)."""

    prefix: ClassVar[str] = "/contact"
    service: ContactService


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
        yield Running(str(server.make_url("")).rstrip("/"), accounts, service, clock=clock)
    finally:
        await server.close()
        await service.close()
