"""The ``robert samu`` commands, in-process, on a temporary data directory: open an event,
post (twice with one client id), read the log, accounts; refusals in one line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    assert main(list(argv)) == status, capsys.readouterr()
    return capsys.readouterr().out


def test_samu_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "samu"))
    opened = run(
        capsys, "samu", "events", "--open", "Train accident", "--kind", "accident",
        "--departement", "69", "--lat", "45.76", "--lon", "4.86", *data,
    )  # fmt: skip
    assert opened.strip() == "event 1 opened: Train accident (69)"
    assert "1\topen\t69\t45.76,4.86\taccident\tTrain accident" in run(
        capsys, "samu", "events", *data
    )
    key = str(uuid.uuid4())
    posted = run(
        capsys, "samu", "post", "1", "40 injured", "--to", "samu:69", "--client-id", key, *data
    )
    assert posted.strip() == f"entry 1 stored ({key})"
    again = run(
        capsys, "samu", "post", "1", "40 injured", "--to", "samu:69", "--client-id", key, *data
    )
    assert again.strip() == f"entry 1 already stored ({key})"
    run(capsys, "samu", "post", "1", "42 injured", "--to", "samu:69", "--annotates", "1", *data)
    lines = run(capsys, "samu", "log", "1", *data).strip().splitlines()
    assert len(lines) == 2 and lines[0].endswith("console\tnational->samu:69\t40 injured")
    assert "[annotates 1]" in lines[1]
    assert run(capsys, "samu", "events", "--close", "1", *data).strip() == (
        "event 1 closed: Train accident"
    )
    assert main(["samu", "post", "1", "too late", *data]) == 1
    assert capsys.readouterr().err.strip() == "robert: the event is closed"
    assert main(["samu", "post", "9", "x", *data]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "robert: no event 9"
    assert main(["samu", "post", "1", "x", "--to", "samu:00", *data]) == 1
    assert "no samu 00" in capsys.readouterr().err
    secret = tmp_path / "password"
    secret.write_text("correct horse battery staple\n")
    added = run(
        capsys, "samu", "users", "add", "regul.69", "--name", "Régulateur Lyon",
        "--role", "regulator", "--scope", "samu:69", "--password-file", str(secret), *data,
    )  # fmt: skip
    assert "regul.69" in added
