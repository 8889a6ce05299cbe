"""Settings and key files."""

from __future__ import annotations

import argparse
import stat
from datetime import date, timedelta
from pathlib import Path

import pytest

from protocol.errors import KeyUnavailable
from server.keys import ServerKeys
from server.settings import Settings


def test_flags_override_environment_override_defaults() -> None:
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    args = parser.parse_args(["--port", "9000", "--no-embedded-worker"])
    settings = Settings.from_sources(args, {"ROBERT_PORT": "1", "ROBERT_CAPTCHA": "off"})
    assert (settings.port, settings.captcha, settings.embedded_worker) == (9000, "off", False)
    assert Settings.from_sources(None, {}).port == 8080


def test_bad_settings_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match="ROBERT_PORT"):
        Settings.from_sources(None, {"ROBERT_PORT": "eighty"})
    with pytest.raises(ValueError, match="ROBERT_CAPTCHA"):
        Settings.from_sources(None, {"ROBERT_CAPTCHA": "maybe"})
    with pytest.raises(ValueError):
        Settings.from_sources(None, {"ROBERT_TIME_START": "not a date"})
    # The apps learn the service start as a date (GET /clock): it must be a midnight.
    with pytest.raises(ValueError, match="midnight"):
        Settings.from_sources(None, {"ROBERT_TIME_START": "2020-06-01T12:00:00Z"})


def test_the_default_gate_is_the_apps_captcha() -> None:
    assert Settings().captcha == "image"


def test_help_lists_every_variable() -> None:
    parser = argparse.ArgumentParser()
    Settings.add_arguments(parser)
    text = parser.format_help()
    for name in (
        "ROBERT_HOST",
        "ROBERT_PORT",
        "ROBERT_STORE",
        "ROBERT_DATA_DIR",
        "ROBERT_KEYS_DIR",
        "ROBERT_STATUS_MIN_INTERVAL",
        "ROBERT_TIME_START",
        "ROBERT_RISK_THRESHOLD",
        "ROBERT_HELLO_TOLERANCE",
        "ROBERT_CAPTCHA",
    ):
        assert name in text


def test_store_credentials_are_masked() -> None:
    text = Settings(store="redis://user:secret@db:6379/0").describe()
    assert "secret" not in text and "db:6379/0" in text


def test_keys_are_created_private_and_rotated(tmp_path: Path) -> None:
    today = date(2026, 3, 2)
    keys = ServerKeys.open(tmp_path / "keys", today, ahead_days=3, retention_days=14)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    for path in [*(tmp_path / "keys").rglob("*.key"), *(tmp_path / "keys").glob("*.pem")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {p.name for p in (tmp_path / "keys").glob("*.pem")} == {
        "ecdh-private.pem",
        "token-es256.pem",
    }
    assert keys.days == [today + timedelta(days=i) for i in range(4)]
    assert "material" not in repr(keys) and "EbidKey" not in repr(keys)
    first = keys.key_of_day(today)
    # A second process opening the same directory gets the same keys.
    again = ServerKeys.open(tmp_path / "keys", today, ahead_days=3, retention_days=14)
    assert again.key_of_day(today) == first
    assert again.public_key_spki() == keys.public_key_spki()
    assert again.jwks() == keys.jwks()
    # Twenty days later, today's key is gone for good.
    later = ServerKeys.open(tmp_path / "keys", today + timedelta(days=20), 3, 14)
    with pytest.raises(KeyUnavailable):
        later.key_of_day(today)


def test_key_repr_never_shows_material() -> None:
    from protocol.types import MacKey

    key = MacKey(b"\xaa" * 32)
    assert "aa" not in repr(key).lower().replace("mackey", "")


async def test_embedded_store_file_is_private(tmp_path: Path) -> None:
    from server.store.sqlite import SqliteStore

    store = SqliteStore(str(tmp_path / "data" / "robert.db"))
    await store.open()
    await store.close()
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    for name in ("robert.db", "robert.db-wal", "robert.db-shm"):
        path = tmp_path / "data" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_an_earlier_embedded_store_is_opened_and_migrated(tmp_path: Path) -> None:
    """A file of the earlier schema (with tuples_until_epoch) keeps its registrations."""
    import sqlite3

    from protocol.types import IdA
    from server.store.sqlite import SqliteStore

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE registrations (id_a BLOB PRIMARY KEY, k_a BLOB NOT NULL, k_ea BLOB"
            " NOT NULL, last_status_epoch INTEGER NOT NULL, last_status_time INTEGER NOT NULL,"
            " tuples_until_epoch INTEGER NOT NULL, at_risk INTEGER NOT NULL, risk_level INTEGER"
            " NOT NULL, last_contact_epoch INTEGER NOT NULL, last_scoring_epoch INTEGER NOT NULL)"
            " WITHOUT ROWID"
        )
        conn.execute(
            "INSERT INTO registrations VALUES (?, ?, ?, 5, 6, 7, 1, 4, 8, 9)",
            (b"\x01" * 5, b"\x02" * 32, b"\x03" * 32),
        )
    store = SqliteStore(str(path))
    await store.open()
    try:
        registration = await store.get_registration(IdA(b"\x01" * 5))
        assert registration is not None
        assert (registration.last_status_epoch, registration.last_status_time) == (5, 6)
        assert (registration.risk.risk_level, registration.risk.last_scoring_epoch) == (4, 9)
    finally:
        await store.close()
