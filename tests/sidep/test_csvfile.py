"""The flat CSV file: each line its own unit, a bad line refused with file:line and reason."""

from __future__ import annotations

from datetime import date, datetime

from sidep.formats.common import PARIS
from sidep.formats.csvfile import HEADER, parse
from sidep.model import Method, Result, Sex, SourceFormat, Status

GOOD = (
    "750712184;S-0001;295109912611193;Dupont;Céline;1995-10-01;F;75011;"
    "2020-10-01T08:30;2020-10-01T18:00;94500-6;P"
)


def csv(*lines: str) -> bytes:
    return ("\n".join((HEADER, *lines)) + "\n").encode()


def test_a_good_line() -> None:
    parsed = parse(csv(GOOD), "labo.csv")
    assert parsed.refusals == ()
    (r,) = parsed.results
    assert r.lab == "750712184" and r.sample_id == "S-0001" and r.loinc == "94500-6"
    assert r.method is Method.PCR and r.result is Result.POSITIVE and r.status is Status.FINAL
    assert r.sampled_at == datetime(2020, 10, 1, 8, 30, tzinfo=PARIS)
    assert r.validated_at == datetime(2020, 10, 1, 18, 0, tzinfo=PARIS)
    assert r.patient.nir == "295109912611193" and r.patient.nir_valid is True
    assert r.patient.first_name == "Céline" and r.patient.birth_date == date(1995, 10, 1)
    assert r.patient.sex is Sex.FEMALE and r.dep == "75" and r.source is SourceFormat.CSV
    assert r.raw_ref == "labo.csv:2"


def test_a_bad_line_is_refused_alone_with_its_line_number() -> None:
    bad_result = GOOD.replace(";P", ";Q")
    parsed = parse(csv(GOOD, bad_result, GOOD.replace("S-0001", "S-0002")), "f.csv")
    assert [r.sample_id for r in parsed.results] == ["S-0001", "S-0002"]
    (refusal,) = parsed.refusals
    assert refusal.where == "f.csv:3" and "P, N, I or X" in refusal.reason


def test_bad_nir_key_is_flagged_not_refused_and_junk_nir_is_refused() -> None:
    parsed = parse(
        csv(GOOD.replace("295109912611193", "295109912611199"), GOOD.replace("2951099", "ABC")),
        "f.csv",
    )
    (r,) = parsed.results
    assert r.patient.nir == "295109912611199" and r.patient.nir_valid is False
    assert parsed.refusals[0].where == "f.csv:3" and "NIR" in parsed.refusals[0].reason


def test_optional_values_may_be_empty() -> None:
    line = "750712184;S-9;;;;;;;2020-10-01;;94558-4;N"
    (r,) = parse(csv(line), "f.csv").results
    assert r.patient.nir is None and r.patient.nir_valid is None
    assert r.patient.birth_date is None and r.patient.sex is Sex.UNKNOWN
    assert r.method is Method.ANTIGEN and r.dep == "75"  # the lab's département


def test_line_refusals() -> None:
    lines = [
        GOOD.replace("2020-10-01T08:30", "01/10/2020"),
        GOOD.replace("94500-6", "1554-5"),
        GOOD.replace(";F;", ";W;"),
        GOOD.replace("750712184", "7507"),
        GOOD + ";extra",
        GOOD.replace("2020-10-01T18:00", "2020-09-30T18:00"),
        GOOD.replace("S-0001", ""),
        GOOD.replace("75011", "7501"),
        GOOD.replace("2020-10-01T08:30", "2019-10-01T08:30").replace("2020-10-01T18:00", ""),
    ]
    parsed = parse(csv(*lines), "f.csv")
    assert parsed.results == ()
    reasons = [r.reason for r in parsed.refusals]
    assert len(reasons) == len(lines)
    for expected, reason in zip(
        [
            "ISO date-time",
            "not a SARS-CoV-2 result code",
            "sex",
            "FINESS",
            "13 fields",
            "validated before",
            "sample_id is missing",
            "postcode",
            "before 2020",
        ],
        reasons,
        strict=True,
    ):
        assert expected in reason


def test_ct_value_line_is_skipped() -> None:
    parsed = parse(csv(GOOD.replace("94500-6", "94745-7")), "f.csv")
    assert parsed.results == () and parsed.refusals == ()
    assert "cycle-threshold" in parsed.skipped[0]


def test_header_must_be_exact() -> None:
    for header in (HEADER.replace(";", ","), HEADER.replace("nir", "NIR"), "lab_finess;sample_id"):
        parsed = parse((header + "\n" + GOOD + "\n").encode(), "f.csv")
        assert parsed.results == ()
        assert parsed.refusals[0].where == "f.csv:1"


def test_bom_and_crlf_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + (HEADER + "\r\n" + GOOD + "\r\n").encode()
    assert len(parse(data, "f.csv").results) == 1


def test_latin1_line_is_refused_not_guessed() -> None:
    data = b"\n".join([HEADER.encode(), GOOD.encode("latin-1"), GOOD.replace("é", "e").encode()])
    parsed = parse(data, "f.csv")
    assert len(parsed.results) == 1
    assert parsed.refusals[0].where == "f.csv:2" and "UTF-8" in parsed.refusals[0].reason
