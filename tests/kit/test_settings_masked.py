"""``ServiceSettings``' ``repr`` and ``describe`` never show a credential: a secret field is
masked (left out of ``repr``), a URL's user and password become ``***``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from kit.settings import ServiceSettings, mask_url, setting


@dataclass(frozen=True, slots=True)
class DemoSettings(ServiceSettings):
    ENV_PREFIX: ClassVar[str] = "DEMO_"
    port: int = setting(8089, "TCP port")
    database: str = setting("sqlite:///data/demo.db", "database URL")
    store: str = setting("", "Redis URLs, comma-separated")
    api_key: str = setting("", "key of the other service", secret=True)


SETTINGS = DemoSettings(
    database="postgresql://demo:pw-db@db.local:5432/demo",
    store="redis://:pw-a@a:6379/0,redis://user:pw-b@b:6379/0",
    api_key="pw-key",
)


@pytest.mark.parametrize("shown", [repr, str, DemoSettings.describe])
def test_no_credential_is_shown(shown: object) -> None:
    assert callable(shown)
    text = shown(SETTINGS)
    assert "pw-" not in text and "pw@" not in text, text
    assert "postgresql://***@db.local:5432/demo" in text
    assert "redis://***@a:6379/0,redis://***@b:6379/0" in text


def test_repr_keeps_everything_else() -> None:
    assert repr(DemoSettings(port=9000)) == (
        "DemoSettings(port=9000, database='sqlite:///data/demo.db', store='')"
    )
    assert DemoSettings(port=9000) == DemoSettings(port=9000)  # still a dataclass


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("plain", "plain"),
        ("https://robert.example.org/a@b", "https://robert.example.org/a@b"),
        ("smtp://user:pw@mail:25", "smtp://***@mail:25"),
        ("http://h/x, redis://:pw@r/1", "http://h/x, redis://***@r/1"),
    ],
)
def test_mask_url(value: str, masked: str) -> None:
    assert mask_url(value) == masked
