"""Fixtures of SI-DEP's service half: the service on each database, results built by hand
(the parsers are tested on their own), and a fake code issuer that records its calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kit.auth.people import Accounts
from kit.db import Database
from kit.testing import (
    FAST_HASHER,
    KIT_FILTERS,
    TEST_PASSWORD,
    Staff,
    browser_session,
    csrf_of,
    database_url,
)
from sidep.issuer import CodeUnavailable, IssuedCode
from sidep.model import (
    LabResult,
    Method,
    Parsed,
    Patient,
    Result,
    Sex,
    SourceFormat,
    Status,
)
from sidep.service import SidepService
from sidep.store import SidepStore

__all__ = ["FAST_HASHER", "browser_session", "csrf_of", "database_url"]

HERE = Path(__file__).resolve().parent
T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC
NOW = datetime.fromtimestamp(T0, UTC)
KEY = b"k" * 32
LAB = "750012345"
OTHER_LAB = "690001234"
NIR = "269054958815780"  # a NIR with its key (python-stdnum's example)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kit's known third-party warning filters, on these tests."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


def patient(**changes: object) -> Patient:
    base = Patient(
        nir=NIR,
        nir_valid=True,
        last_name="Dupont-Lefèvre",
        first_name="Élodie",
        birth_date=date(1969, 5, 22),
        sex=Sex.FEMALE,
        postcode="75013",
        phone="06 12 34 56 78",
        email="elodie@example.org",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def lab_result(
    sample: str = "S1",
    result: Result = Result.POSITIVE,
    status: Status = Status.FINAL,
    lab: str = LAB,
    loinc: str = "94500-6",
    who: Patient | None = None,
    days_ago: float = 1.0,
) -> LabResult:
    sampled = NOW - timedelta(days=days_ago)
    return LabResult(
        lab=lab,
        sample_id=sample,
        loinc=loinc,
        method=Method.PCR,
        result=result,
        sampled_at=sampled,
        validated_at=sampled + timedelta(hours=6),
        status=status,
        patient=who or patient(),
        source=SourceFormat.HL7,
        dep="75",
    )


def parsed(*items: LabResult) -> Parsed:
    return Parsed(results=tuple(items))


@dataclass
class FakeIssuer:
    """A code issuer that hands out numbered long codes, or fails when told to."""

    calls: list[date] = field(default_factory=list)
    down: bool = False

    async def issue_long(self, test_date: date) -> IssuedCode:
        if self.down:
            raise CodeUnavailable("down")
        self.calls.append(test_date)
        n = len(self.calls)
        return IssuedCode(
            f"{n:08d}-aaaa-bbbb-cccc-dddddddddddd",
            f"https://bonjour.tousanticovid.gouv.fr/app/code/{n}",
            NOW + timedelta(days=15),
        )


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
async def service(database_url: str, issuer: FakeIssuer) -> AsyncIterator[SidepService]:
    opened = SidepService(SidepStore(Database(database_url)), KEY, issuer=issuer, clock=lambda: T0)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


SECRET = "SI-DEP's test secret, long enough to derive keys from"
PASSWORD = TEST_PASSWORD


@dataclass
class Running(Staff):
    """SI-DEP over HTTP (mounted at /sidep, as in robert dev), with the test parser."""

    prefix: ClassVar[str] = "/sidep"
    service: SidepService


@pytest.fixture
async def running(database_url: str, tmp_path: Path, issuer: FakeIssuer) -> AsyncIterator[Running]:
    """SI-DEP over HTTP on each database (SQLite, then PostgreSQL)."""
    from sidep.app import API_KEY_PREFIX, create_app, mount
    from sidep.intake import Intake
    from sidep.settings import Settings
    from tests.sidep import fakeparse

    settings = Settings(
        database=database_url,
        secret=SECRET,
        data_dir=str(tmp_path),
    )
    service = SidepService(
        SidepStore(Database(settings.database_url)), KEY, issuer=issuer, clock=lambda: T0
    )
    await service.open()
    accounts = Accounts(
        service.store.db, SECRET, "SI-DEP", api_key_prefix=API_KEY_PREFIX,
        hasher=FAST_HASHER, clock=lambda: T0,
    )  # fmt: skip
    root = web.Application()
    intake = Intake(
        {
            SourceFormat.HL7: fakeparse.parse,
            SourceFormat.CSV: fakeparse.parse_csv,
            SourceFormat.FHIR: fakeparse.parse_fhir,
        }
    )
    app = create_app(
        settings, service, intake=intake, clock=lambda: T0, hasher=FAST_HASHER, manage=False
    )
    mount(root, app)
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(str(server.make_url("")).rstrip("/"), accounts, service, clock=lambda: T0)
    finally:
        await server.close()
        await service.close()
