"""The hospitals' intake file: good lines kept, bad ones refused with their number and reason,
and no input at all that makes the parser raise."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from sivic.intake import HEADER, parse, parse_date, parse_form
from sivic.model import Covid, Sex, Status, UnitKind

HEAD = ";".join(HEADER)
NIR = "255081416802538"  # the specimen NIR of the Assurance maladie's documentation


def test_good_lines_become_registrations() -> None:
    text = (
        f"\ufeff{HEAD}\r\n"
        "750100125;75;IPP-0042;1951-04-03;F;crit;hospitalised;2020-03-27;for\r\n"
        f"940100043;94;{NIR};1955-08-14;M;conv;home;2020-03-28T18:30:00+01:00;with\r\n"
        "\r\n"
    )
    intake = parse(text)
    assert intake.errors == []
    (n1, first), (n2, second) = intake.registrations
    assert (n1, n2) == (2, 3)
    assert first.identity.patient_ref == "IPP-0042" and first.identity.ins is None
    assert first.identity.sex == Sex.FEMALE and first.identity.birth_date == date(1951, 4, 3)
    assert first.episode.unit == UnitKind.CRIT and first.episode.status == Status.HOSPITALISED
    assert first.episode.covid == Covid.FOR and first.episode.status_date == date(2020, 3, 27)
    assert second.identity.ins == NIR and second.identity.patient_ref is None
    assert second.episode.status_date == date(2020, 3, 28)


def test_bad_lines_are_refused_with_number_and_reason() -> None:
    text = "\n".join(
        [
            HEAD,
            "750100125;75;P1;1951-04-03;F;crit;hospitalised;2020-03-27;for",
            "75010012;75;P2;1951-04-03;F;crit;hospitalised;2020-03-27;for",
            "750100125;99;P3;1951-04-03;F;crit;hospitalised;2020-03-27;for",
            "750100125;75;P4;03/04/1951;F;crit;hospitalised;2020-03-27;for",
            "750100125;75;P5;1951-04-03;X;crit;hospitalised;2020-03-27;for",
            "750100125;75;P6;1951-04-03;F;icu;hospitalised;2020-03-27;for",
            "750100125;75;P7;1951-04-03;F;crit;cured;2020-03-27;for",
            "750100125;75;P8;1951-04-03;F;crit;hospitalised;2020-03-27;maybe",
            "750100125;75;P9;1951-04-03;F;crit;hospitalised;1950-01-01;for",
            "750100125;75;P1;1951-04-03;F;conv;hospitalised;2020-03-28;for",
            "750100125;75;P10;1951-04-03;F;crit;hospitalised",
            "750100125;75;pas un numéro;1951-04-03;F;crit;hospitalised;2020-03-27;for",
            "750100125;75;P11;1951-04-03;F;crit;hospitalised;2031-03-27;for",
        ]
    )
    intake = parse(text, today=date(2020, 4, 1))
    assert [n for n, _ in intake.registrations] == [2]
    reasons = {e.line: e.reason for e in intake.errors}
    assert sorted(reasons) == list(range(3, 15))
    assert "finess" in reasons[3]
    assert "no département '99'" in reasons[4]
    assert "birth_date" in reasons[5]
    assert "sex must be one of M, F, U" in reasons[6]
    assert "unit must be one of conv, crit, ssr_usld, other" in reasons[7]
    assert "status must be one of" in reasons[8]
    assert "covid must be one of for, with" in reasons[9]
    assert "before birth_date" in reasons[10]
    assert "already on line 2" in reasons[11]
    assert "7 fields, 9 expected" in reasons[12]
    assert "patient_id" in reasons[13]
    assert "future" in reasons[14]
    assert str(intake.errors[0]) == f"line 3: {reasons[3]}"


def test_a_wrong_header_refuses_the_file() -> None:
    intake = parse("finess,dep,patient_id\n750100125,75,P1\n")
    assert intake.registrations == []
    assert intake.errors[0].line == 1 and "header" in intake.errors[0].reason


def test_dates() -> None:
    assert parse_date("2020-03-27") == date(2020, 3, 27)
    assert parse_date("2020-03-27T23:10:00Z") == date(2020, 3, 27)


LINE = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(["750100125", "75", "2A", "F", "crit", "home", "for", "2020-03-27"]),
    ),
    max_size=11,
).map(";".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.lists(LINE, max_size=6).map(lambda ls: "\n".join([HEAD, *ls]))))
def test_no_input_raises(text: str) -> None:
    intake = parse(text, today=date(2020, 4, 1))
    lines = text.removeprefix("\ufeff").split("\n")
    for number, _ in intake.registrations:
        assert 2 <= number <= len(lines)
    assert all(e.reason for e in intake.errors)


VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.sampled_from(["750100125", "75", "1960-02-29", "F", "crit", "home", "for", NIR, "É"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*HEADER, "ins", "patient_ref", "last_name", "first_name"]), VALUES
    )
)
def test_a_form_is_refused_with_a_reason_never_an_error(values: dict[str, object]) -> None:
    try:
        registration = parse_form(values, today=date(2020, 4, 1))
    except ValueError as exc:
        assert str(exc)
    else:
        identity = registration.identity
        assert identity.ins or identity.patient_ref or identity.last_name
