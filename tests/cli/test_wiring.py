"""``robert dev``'s wiring between services of one process (cli/wiring.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import wiring
from server.settings import Settings as RobertSettings


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8090/citizens"),
        ("0.0.0.0", "http://127.0.0.1:8090/citizens"),
        ("::", "http://[::1]:8090/citizens"),
        ("robert.example.fr", "http://robert.example.fr:8090/citizens"),
    ],
)
def test_served_url(host: str, url: str) -> None:
    assert wiring.served_url(RobertSettings(host=host, port=8090), "/citizens") == url


def test_sidep_notices_take_the_test_sites_of_the_citizens_service_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIDEP_SITES_URL", raising=False)
    robert = RobertSettings(data_dir=str(tmp_path), port=8090)
    codes = wiring.in_process_codes(robert)
    settings, _ = wiring.in_process_sidep(robert, codes)
    assert settings.sites_url == "http://127.0.0.1:8090/citizens"
    monkeypatch.setenv("SIDEP_SITES_URL", "https://sante.example.fr/citizens")
    settings, _ = wiring.in_process_sidep(robert, codes)
    assert settings.sites_url == "https://sante.example.fr/citizens"
