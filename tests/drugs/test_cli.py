"""The ``robert drugs`` commands, in-process, on a temporary data directory: places, report,
redeploy, allocate; refusals in one line on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from tests.drugs.conftest import PLACES

PITIE, BICETRE = "750100125", "940100043"


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    assert main(list(argv)) == status, capsys.readouterr()
    return capsys.readouterr().out


def test_drugs_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "drugs"))
    assert "establishments registered" in run(capsys, "drugs", "places", str(PLACES), *data)
    pitie, bicetre = tmp_path / "pitie.csv", tmp_path / "bicetre.csv"
    pitie.write_text("code;stock;daily_use\nDIPRIVAN 1 % 50 mL;5;2.5\n", encoding="utf-8")
    # Another pharmacy software's product name: accepted leniently (molecule and strength).
    bicetre.write_text("code;stock;daily_use\nPropofol Lipuro 1% 50ml;600;10\n", encoding="utf-8")
    for finess, file in ((PITIE, pitie), (BICETRE, bicetre)):
        printed = run(capsys, "drugs", "report", finess, str(file), *data).strip()
        assert printed == f"1 drugs reported for {finess}"
    plan = json.loads(run(capsys, "drugs", "redeploy", "11", "PROP-500-50", *data))
    assert [(m["from"], m["to"], m["units"]) for m in plan["moves"]] == [(BICETRE, PITIE, 30)]
    steps = run(capsys, "drugs", "allocate", "PROP-500-50", "100", *data)
    assert steps.startswith("Quota\n  100 units to allocate")
    assert f"  {PITIE}: L = 0 + 0.5×0 = 0;" in steps  # no bed service here: no patients
    assert main(["drugs", "allocate", "NOPE-1", "100", *data]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("robert: ") and "\n" not in err


def test_an_unknown_region_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "drugs"))
    run(capsys, "drugs", "places", str(PLACES), *data)
    assert main(["drugs", "redeploy", "99", "PROP-500-50", *data]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # no empty plan
    assert err.startswith("robert: unknown region '99'") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["drugs", "places"], ["finess, name, departement, region", "lat, lon"]),
        (["drugs", "report"], ["FINESS", "code", "stock", "daily_use", "decimal comma"]),
        (["drugs", "redeploy"], ["INSEE code", "virtual_drugs.csv"]),
        (["drugs", "allocate"], ["whole units", "virtual_drugs.csv"]),
    ],
)
def test_every_argument_is_explained(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for word in words:
        assert word in shown, word
