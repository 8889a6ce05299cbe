"""kit.keys: a service's secret, configured or kept in its data directory."""

from __future__ import annotations

import stat
from pathlib import Path

from kit.keys import configured_or_kept_secret


def test_a_configured_secret_wins_and_nothing_is_written(tmp_path: Path) -> None:
    assert configured_or_kept_secret("configured", tmp_path, "beds") == "configured"
    assert not (tmp_path / "beds.secret").exists()


def test_without_one_a_secret_is_kept_in_the_data_directory(tmp_path: Path) -> None:
    first = configured_or_kept_secret("", str(tmp_path / "data"), "beds")
    kept = tmp_path / "data" / "beds.secret"
    assert kept.read_text().strip() == first and len(first) == 43
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert configured_or_kept_secret("", tmp_path / "data", "beds") == first  # the same again
    assert configured_or_kept_secret("", tmp_path / "data", "drugs") != first  # one per service
