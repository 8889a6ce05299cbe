"""The ``robert sidep`` commands, in-process, on a temporary data dir (the CSV parser is the
test-only one: the real parsers are tested on their own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from sidep import intake
from sidep.model import SourceFormat
from tests.sidep import fakeparse
from tests.sidep.conftest import LAB
from tests.sidep.fakeparse import CSV_HEADER

CSV = (
    CSV_HEADER + "\n"
    f"{LAB};C1;269054958815780;Dupont;Élodie;1969-05-22;F;75013;2026-12-08T09:00:00+01:00;"
    "2026-12-08T18:00:00+01:00;94500-6;P\n"
    f"{LAB};C2;;;;;U;;2026-12-08T09:00:00+01:00;;94500-6;N\n"
)


@pytest.fixture(autouse=True)
def test_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers = {SourceFormat.CSV: fakeparse.parse_csv, SourceFormat.HL7: fakeparse.parse}
    monkeypatch.setattr(intake, "_parser", parsers.__getitem__)
    monkeypatch.setattr(intake, "_detector", lambda: lambda data: SourceFormat.CSV)


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    assert main(list(argv)) == status
    return capsys.readouterr().out


def test_ingest_results_export_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    day = tmp_path / "day.csv"
    day.write_text(CSV, encoding="utf-8")
    assert run(capsys, "sidep", "ingest", str(day), *data) == (
        "accepted=2 duplicates=0 rejected=0\n"
    )
    assert run(capsys, "sidep", "ingest", str(day), "--format", "csv", *data) == (
        "accepted=0 duplicates=2 rejected=0\n"
    )
    lines = [
        json.loads(line)
        for line in run(capsys, "sidep", "results", "--json", *data).split("\n")
        if line
    ]
    assert lines[0] == {
        "lab": LAB, "sample_id": "C1", "loinc": "94500-6", "method": "PCR", "result": "P",
        "sampled_at": "2026-12-08T08:00:00+00:00", "status": "final", "dep": "75",
        "patient": {"nir": "269054958815780", "last_name": "Dupont", "first_name": "Élodie",
                    "birth_date": "1969-05-22", "sex": "F", "postcode": "75013"},
    }  # fmt: skip
    assert lines[1]["patient"] == {
        "nir": None, "last_name": None, "first_name": None, "birth_date": None, "sex": "U",
        "postcode": None,
    }  # fmt: skip
    exported = [
        json.loads(x)
        for x in run(capsys, "sidep", "export", "--pseudonymised", *data).split("\n")
        if x
    ]
    assert len(exported) == 2
    assert all("nir" not in row and len(row["pseudonym"]) == 64 for row in exported)
    assert exported[0]["age"] == 57
    # the pseudonym key is kept in the data directory: the same person, the same pseudonym
    assert (tmp_path / "data" / "pseudonym.key").stat().st_mode & 0o077 == 0
    assert run(capsys, "sidep", "purge", *data) == "identity of 0 persons purged\n"


def test_refusals_are_printed_and_fail_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV + f"{LAB};C3;;;;;U;;yesterday;;94500-6;P\n", encoding="utf-8")
    out = run(capsys, "sidep", "ingest", str(bad), str(tmp_path / "missing.csv"), *data, status=1)
    lines = out.splitlines()
    assert lines[0] == "accepted=2 duplicates=0 rejected=2"
    assert lines[1] == f"{bad}:4: bad line (ValueError)"
    assert lines[2].startswith(f"{tmp_path / 'missing.csv'}: cannot read")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    out = run(capsys, "sidep", "ingest", str(empty), *data, status=1)
    assert out.splitlines()[1] == f"{empty}: empty"


def test_export_needs_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sidep", "export", "--data-dir", str(tmp_path)]) != 0
    assert "--pseudonymised" in capsys.readouterr().err


def test_a_bad_population_file_is_named_with_its_missing_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed "cannot compute the indicators: BinderException"."""
    tests = tmp_path / "tests.csv"
    tests.write_text("person;day;dep;age;result\n1;2026-12-01;75;40;P\n", encoding="utf-8")
    population = tmp_path / "pop.csv"
    population.write_text("departement;age;population\n75;0;2100000\n", encoding="utf-8")
    args = ("sidep", "indicators", "--tests", str(tests), "--out", str(tmp_path / "out"))
    assert main([*args, "--population", str(population)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{population} lacks the columns dep, cl_age90, pop" in err
    population.write_text("dep;cl_age90\n75;0\n", encoding="utf-8")
    assert main([*args, "--population", str(population)]) != 0
    assert "lacks the column pop (its header must hold dep;cl_age90;pop)" in capsys.readouterr().err
    tests.write_text("person;day;dep;result\n1;2026-12-01;75;P\n", encoding="utf-8")
    assert main([*args]) != 0
    assert f"the tests file {tests} lacks the column age" in capsys.readouterr().err


def test_results_json_shows_each_messages_own_patient_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same person in two messages: the first without NIR, living in 75013; the second
    with the NIR, having moved to 69003. Each result shows what its message said (it showed
    the person's latest identity: C1 with the NIR it lacked and the new postcode)."""
    data = ("--data-dir", str(tmp_path / "data"))
    day = tmp_path / "day.csv"
    day.write_text(
        CSV_HEADER + "\n"
        f"{LAB};C1;;Dupont;Élodie;1969-05-22;F;75013;2026-12-01T09:00:00+01:00;;94500-6;N\n"
        f"{LAB};C2;269054958815780;Dupont;Élodie;1969-05-22;F;69003;2026-12-08T09:00:00+01:00;"
        ";94500-6;P\n",
        encoding="utf-8",
    )
    run(capsys, "sidep", "ingest", str(day), *data)
    lines = run(capsys, "sidep", "results", "--json", *data).splitlines()
    first, second = (json.loads(line)["patient"] for line in lines)
    assert first == {
        "nir": None, "last_name": "Dupont", "first_name": "Élodie", "birth_date": "1969-05-22",
        "sex": "F", "postcode": "75013",
    }  # fmt: skip
    assert second["nir"] == "269054958815780" and second["postcode"] == "69003"


def test_indicators_below_the_departement_from_the_stored_postcodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stored results' postcodes are the areas of sg-area-classes.csv, with the
    thresholds from the command line (the classes were unreachable from the command)."""
    data = ("--data-dir", str(tmp_path / "data"))
    lines = [CSV_HEADER]
    for day in range(1, 9):
        at = f"2026-12-{day:02d}T09:00:00+01:00"
        for who, postcode, result in (
            ("A", "75013", "P"),
            ("B", "75013", "N"),
            ("C", "69003", "N"),
        ):
            name = "Nom" + "ABCDEFGH"[day - 1] + who  # (names are one person: letters only)
            person = f"{name};Jean;1980-01-01;M;{postcode}"
            lines.append(f"{LAB};S{day}{who};;{person};{at};;94500-6;{result}")
    day_file = tmp_path / "days.csv"
    day_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run(capsys, "sidep", "ingest", str(day_file), *data)
    areas = tmp_path / "areas.csv"
    areas.write_text("area;pop\n75013;180000\n69003;100000\n", encoding="utf-8")

    def classes(*flags: str) -> dict[str, list[str]]:
        out = tmp_path / "out"
        printed = run(capsys, "sidep", "indicators", "--out", str(out), "--area-population",
                      str(areas), *flags, *data)  # fmt: skip
        assert f"{out / 'sg-area-classes.csv'}: 4 rows" in printed
        import csv

        with (out / "sg-area-classes.csv").open(encoding="utf-8", newline="") as file:
            rows = list(csv.reader(file, delimiter=";"))
        assert rows[0] == ["area", "semaine_glissante", "ti_classe", "tp_classe", "td_classe"]
        found: dict[str, list[str]] = {}
        for area, _week, *values in rows[1:]:
            found.setdefault(area, []).append(" ".join(values))
        return found

    # defaults (5,000 inhabitants, 5 positives, 10 tested): 75013's 7 positives of 14 tested
    shown = classes()
    assert shown["75013"] == ["[0;10[ [20;Max] [0;1000["] * 2
    assert shown["69003"] == ["  "] * 2  # no positive: blank
    # stricter: blank everywhere; looser: 69003 shown too
    assert classes("--min-positives", "8")["75013"] == ["  "] * 2
    loose = classes("--min-positives", "0", "--min-tested", "1", "--min-population", "1")
    assert loose["69003"] == ["[0;10[ [0;1[ [0;1000["] * 2
    # thresholds without areas: one line
    assert (
        main(["sidep", "indicators", "--out", str(tmp_path / "o"), "--min-tested", "3", *data]) != 0
    )
    err = capsys.readouterr().err.strip()
    assert err.endswith("--min-tested need --area-population (the classes below the département)")
