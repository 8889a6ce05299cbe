"""The ``robert sivic`` commands, in-process, on a temporary data dir."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.main import main
from sivic.intake import HEADER
from sivic.opendata import HOSPITAL, read_hospital

DATA = Path(__file__).resolve().parent / "data"


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> tuple[str, str]:
    assert main(list(argv)) == status
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_import_then_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    intake = tmp_path / "intake.csv"
    intake.write_text(
        "\n".join(
            [
                ";".join(HEADER),
                f"750100125;75;IPP-1;1951-04-03;F;crit;hospitalised;{yesterday};for",
                f"750100125;75;IPP-2;1938-01-20;M;conv;hospitalised;{yesterday};with",
                f"750100125;99;IPP-3;1938-01-20;M;conv;hospitalised;{yesterday};with",
            ]
        ),
        encoding="utf-8",
    )
    out, err = run(capsys, "sivic", "import", str(intake), *data, status=1)
    assert "2 created, 0 updated, 0 unchanged, 1 refused" in out
    assert "line 4: no département '99'" in err
    out, _ = run(capsys, "sivic", "import", str(intake), *data, status=1)
    assert "0 created, 0 updated, 2 unchanged, 1 refused" in out
    files = tmp_path / "opendata"
    out, _ = run(capsys, "sivic", "snapshot", "--date", str(yesterday), "--out", str(files), *data)
    written = out.split()
    assert len(written) == 3
    main_file = files / f"{HOSPITAL}-{yesterday}-19h00.csv"
    assert str(main_file) in written
    paris = [r for r in read_hospital(main_file.read_text()) if r.dep == "75" and r.sexe == 0]
    assert [(r.figures.hosp, r.figures.rea) for r in paris] == [(2, 1)]
    out, _ = run(capsys, "sivic", "check", str(main_file))
    assert out.endswith("303 rows, 0 problems\n")
    out, _ = run(capsys, "sivic", "counts", "--dep", "75", *data)
    assert '"hosp": 2' in out


def test_check_published_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    published = DATA / "spf-donnees-hospitalieres-covid19-2020-04-23-slice.csv"
    out, _ = run(capsys, "sivic", "check", str(published))
    assert out.endswith("30 rows, 0 problems\n")
    ages = DATA / "spf-donnees-hospitalieres-classe-age-covid19-2020-04-23-slice.csv"
    out, _ = run(capsys, "sivic", "check", str(ages))
    assert out.endswith("22 rows, 0 problems\n")
    new = tmp_path / "nouveaux.csv"
    new.write_text("dep;jour;incid_hosp;incid_rea;incid_dc;incid_rad\n01;19/03/2020;1;0;-1;0\n")
    out, _ = run(capsys, "sivic", "check", str(new), status=1)
    assert out.startswith("01 2020-03-19: a negative count\n")


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(";".join(HEADER).encode() + b"\n\xe9\n")
    _, err = run(capsys, "sivic", "import", str(bad), *data, status=1)
    assert err == f"robert: {bad}: not UTF-8\n"
    _, err = run(capsys, "sivic", "import", str(tmp_path / "missing.csv"), *data, status=1)
    assert err.startswith("robert: cannot read") and err.count("\n") == 1


def test_import_help_and_bad_event_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sivic", "import", "--help"])
    assert "one line per patient's current state" in capsys.readouterr().out
    intake = tmp_path / "intake.csv"
    intake.write_text(";".join(HEADER) + "\n", encoding="utf-8")
    data = ("--data-dir", str(tmp_path / "data"))
    with pytest.raises(SystemExit):
        main(["sivic", "import", str(intake), "--event", "99999999999999999999", *data])
    err = capsys.readouterr().err
    assert "no such event" in err and "Traceback" not in err
