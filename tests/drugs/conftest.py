"""Fixtures of the drug service: the service on each database, with the reference
establishments (the bed service's file) and a fixed source of patients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drugs.app import new_service
from drugs.critical_care import Patients
from drugs.service import DrugService
from drugs.settings import Settings
from kit.testing import KIT_FILTERS, database_url

__all__ = ["database_url"]
HERE = Path(__file__).resolve().parent
PLACES = HERE.parents[1] / "beds" / "data" / "establishments.csv"
T0 = 1_796_875_680.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings(*KIT_FILTERS))


class FixedPatients:
    """A critical-care source with given patients."""

    def __init__(self, patients: list[Patients]) -> None:
        self.found = patients

    async def patients(self, territory: str) -> list[Patients]:
        return self.found


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[DrugService]:
    opened = new_service(Settings(database=database_url), lambda: T0, FixedPatients([]))
    await opened.open()
    await opened.load_places(PLACES.read_text(encoding="utf-8"))
    try:
        yield opened
    finally:
        await opened.close()
