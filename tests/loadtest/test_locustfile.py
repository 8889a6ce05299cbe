"""The locustfile against a real server, so it cannot rot.

Seeds phones and codes into an embedded (SQLite) store, starts ``robert serve`` with the
proof-of-work gate on (low difficulty, so the captcha path runs too) and runs Locust headless
for a few seconds as a subprocess: Locust's gevent monkey-patching must stay out of pytest.
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest

from loadtest import services
from loadtest.seed import seed
from loadtest.seedfile import SEED_ENV, SeedFile
from server.settings import Settings

LOCUSTFILE = Path(__file__).parents[2] / "loadtest" / "locustfile.py"


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A seed file of 300 phones and 50 codes, and the server's settings environment."""
    store = f"sqlite:///{tmp_path / 'robert.db'}"
    settings = Settings(data_dir=str(tmp_path), store=store)
    result = seed(settings, 300, 50, tmp_path / "seed.bin")
    assert result.phones == 300 and result.codes == 50
    env = {
        "ROBERT_STORE": store,
        "ROBERT_DATA_DIR": str(tmp_path),
        "ROBERT_STATUS_MIN_INTERVAL": "0",
        "ROBERT_CAPTCHA": "pow",
        "ROBERT_POW_DIFFICULTY": "4",
        "ROBERT_LOG_LEVEL": "WARNING",
    }
    return tmp_path / "seed.bin", env


def test_seed_file_round_trip(seeded: tuple[Path, dict[str, str]]) -> None:
    seed_file = SeedFile.read(seeded[0])
    assert seed_file.phones == 300
    assert len(seed_file.codes) == 50
    owner, k_a = seed_file.phone(299)
    assert len(owner) == 5 and len(k_a.material) == 32


def test_locustfile_runs_without_failures(
    seeded: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    seed_path, settings_env = seeded
    with services.robert_server(settings_env, services.free_port(), tmp_path) as url:
        env = dict(os.environ, **{SEED_ENV: str(seed_path), "ROBERT_LOADTEST_RATE": "20"})
        cmd = [
            str(services.BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "-u", "5",
            "-r", "5", "-t", "5s", "--host", url, "--exit-code-on-error", "1",
            "--csv", str(tmp_path / "run"), "--only-summary", "AppUser",
        ]  # fmt: skip
        done = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    failures = (tmp_path / "run_failures.csv").read_text()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + failures
    with (tmp_path / "run_stats.csv").open(newline="") as f:
        stats = {r["Name"]: r for r in csv.DictReader(f)}
    assert int(stats["status"]["Request Count"]) > 50
    assert all(r["Failure Count"] == "0" for r in stats.values())
