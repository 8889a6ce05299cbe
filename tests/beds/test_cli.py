"""The ``robert beds`` commands, in-process, on a temporary data directory: load, update
from a file, tension, snapshot; refusals in one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.beds.conftest import BICETRE, PITIE


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    assert main(list(argv)) == status, capsys.readouterr()
    return capsys.readouterr().out


def test_beds_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "beds"))
    loaded = run(capsys, "beds", "load", *data)
    assert loaded.startswith("55 establishments") and "new units" in loaded
    counts = tmp_path / "counts.csv"
    counts.write_text(
        "finess;unit;installed;surge;occupied;available;covid\n"
        f"{PITIE};REA;110;30;130;10;120\n{BICETRE};REA;56;0;50;6;20\n",
        encoding="utf-8",
    )
    assert run(capsys, "beds", "update", str(counts), *data).strip() == "2 updates recorded"
    figures = json.loads(run(capsys, "beds", "tension", "reg:11", *data))
    assert figures["territory"] == "reg:11" and figures["covid_critical"] == 140
    assert figures["tension_rate"] == round(140 / figures["initial_capacity"], 4)
    kept = run(capsys, "beds", "snapshot", *data)
    assert kept.startswith("figures of ") and kept.strip().endswith("départements kept")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"finess;unit;installed;surge;occupied;available;covid\n{PITIE};REA;1;0;2;0;0\n")
    assert main(["beds", "update", str(bad), *data]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("robert: line 2:") and "\n" not in err
    assert main(["beds", "tension", "reg:99", *data]) == 1
    assert capsys.readouterr().err == "robert: no region 99\n"


@pytest.mark.parametrize("service", ["beds", "drugs"])
def test_every_command_explains_itself(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--help`` of each command prints its settings (a ``%`` in a setting's help once made
    argparse fail on ``robert beds serve --help``)."""
    commands = {
        "beds": ["serve", "load", "tension", "update", "snapshot"],
        "drugs": ["serve", "places", "report", "allocate", "redeploy"],
    }
    for command in commands[service]:
        with pytest.raises(SystemExit) as exited:
            main([service, command, "--help"])
        assert exited.value.code == 0, command
        assert "--data-dir" in capsys.readouterr().out


def test_update_file_argument_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["beds", "update", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "finess, unit, installed, surge, occupied, available, covid" in shown
    assert "updated_at (ISO 8601)" in shown
