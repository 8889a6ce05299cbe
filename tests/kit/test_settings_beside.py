"""``ServiceSettings.beside``: in ``robert dev`` a service's data goes beside the ROBERT
server's, unless the service's own ``<PREFIX>DATA_DIR`` says otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from kit.settings import ServiceSettings, setting


@dataclass(frozen=True, slots=True)
class DemoSettings(ServiceSettings):
    ENV_PREFIX: ClassVar[str] = "DEMO_"
    data_dir: str = setting("data", "directory of the embedded database")


def test_beside_follows_the_given_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEMO_DATA_DIR", raising=False)
    assert DemoSettings.beside("/srv/robert").data_dir == "/srv/robert"


def test_the_service_own_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_DATA_DIR", "/srv/demo")
    assert DemoSettings.beside("/srv/robert").data_dir == "/srv/demo"
