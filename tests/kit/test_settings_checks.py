"""kit.settings' checks shared by every service's ``validate``: one line naming the setting."""

from __future__ import annotations

import pytest

from kit.settings import SettingsError, check_log_level, check_origin, check_port


@pytest.mark.parametrize("value", ["", "https://robert.example.org", "http://127.0.0.1:8080/"])
def test_origins_and_empty_are_accepted(value: str) -> None:
    check_origin("public_url", value)


@pytest.mark.parametrize(
    "value", ["robert.example.org", "ftp://example.org", "https://", "https://host/robert"]
)
def test_anything_but_an_origin_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match=r"^public_url must be an origin like https://"):
        check_origin("public_url", value)


@pytest.mark.parametrize("value", ["INFO", "debug", "Warning"])
def test_log_levels_in_any_case(value: str) -> None:
    check_log_level("log_level", value)


def test_unknown_log_level_is_named() -> None:
    with pytest.raises(SettingsError, match=r"^log_level must be a logging level, not 'loud'$"):
        check_log_level("log_level", "loud")


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_ports_out_of_range(port: int) -> None:
    with pytest.raises(SettingsError, match=rf"^port must be between 1 and 65535, not {port}$"):
        check_port("port", port)
