"""Fixtures of the board: a settable clock, the databases (``database_url``: SQLite and
PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.testing import KIT_FILTERS, database_url

__all__ = ["database_url"]

HERE = Path(__file__).resolve().parent
T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC


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
