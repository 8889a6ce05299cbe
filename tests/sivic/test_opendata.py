"""The open-data snapshot against a hand-computed example, its invariants, the movement rules
of a transfer, and the reader on rows Santé publique France published."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sivic.model import (
    Covid,
    Episode,
    Sex,
    Status,
    UnitKind,
    age_class,
    movement,
)
from sivic.opendata import (
    AGE,
    HOSPITAL,
    NEW,
    Figures,
    FileError,
    HospitalRow,
    MovementCount,
    StateCount,
    check_age_rows,
    check_rows,
    check_snapshot,
    compute,
    csv_text,
    file_name,
    read_age,
    read_day,
    read_hospital,
    read_new,
)

DATA = Path(__file__).resolve().parent / "data"
DAY = date(2020, 4, 2)
H, HOME = Status.HOSPITALISED, Status.HOME
M, F, U = Sex.MALE, Sex.FEMALE, Sex.UNKNOWN

STATES = [
    StateCount("75", F, "69", UnitKind.CRIT, H, Covid.FOR),  # A
    StateCount("75", M, "89", UnitKind.CONV, H, Covid.WITH),  # B
    StateCount("75", U, "49", UnitKind.SSR_USLD, H, Covid.FOR),  # C
    StateCount("92", M, "90", UnitKind.OTHER, H, Covid.FOR),  # D
    StateCount("75", F, "79", UnitKind.CONV, HOME, Covid.FOR),  # E, home: not in hosp
]
MOVEMENTS = [
    MovementCount("75", F, "69", Covid.FOR, on_day=True, admitted=1, to_critical=1),  # A
    MovementCount("75", M, "89", Covid.WITH, on_day=False, admitted=1, to_death=2),
    MovementCount("75", F, "79", Covid.FOR, on_day=True, to_home=1),  # E
    MovementCount("92", M, "90", Covid.FOR, on_day=True, admitted=1),  # D
    MovementCount("75", U, "49", Covid.FOR, on_day=False, admitted=1),  # C
]


def _lines(text: str, *prefixes: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefixes)]


def test_snapshot_matches_the_hand_computed_files() -> None:
    snapshot = compute(DAY, STATES, MOVEMENTS)
    main = csv_text(HOSPITAL, [snapshot.body(HOSPITAL)])
    assert main.splitlines()[0] == "dep;sexe;jour;hosp;rea;HospConv;SSR_USLD;autres;rad;dc"
    assert _lines(main, "75;", "92;") == [
        "75;0;2020-04-02;3;1;1;1;0;1;2",
        "75;1;2020-04-02;1;0;1;0;0;0;2",
        "75;2;2020-04-02;1;1;0;0;0;1;0",
        "92;0;2020-04-02;1;0;0;0;1;0;0",
        "92;1;2020-04-02;1;0;0;0;1;0;0",
        "92;2;2020-04-02;0;0;0;0;0;0;0",
    ]
    others = [line for line in main.splitlines()[1:] if not line.startswith(("75;", "92;"))]
    assert len(others) == 3 * 99 and all(line.endswith(";0;0;0;0;0;0;0") for line in others)
    new = csv_text(NEW, [snapshot.body(NEW)])
    assert new.splitlines()[0] == "dep;jour;incid_hosp;incid_rea;incid_dc;incid_rad"
    assert _lines(new, "75;", "92;") == ["75;2020-04-02;1;1;0;1", "92;2020-04-02;1;0;0;0"]
    age = csv_text(AGE, [snapshot.body(AGE)])
    assert age.splitlines()[0] == "reg;cl_age90;jour;hosp;rea;HospConv;SSR_USLD;autres;rad;dc"
    assert _lines(age, "11;") == [
        "11;0;2020-04-02;4;1;1;1;1;1;2",
        "11;09;2020-04-02;0;0;0;0;0;0;0",
        "11;19;2020-04-02;0;0;0;0;0;0;0",
        "11;29;2020-04-02;0;0;0;0;0;0;0",
        "11;39;2020-04-02;0;0;0;0;0;0;0",
        "11;49;2020-04-02;1;0;0;1;0;0;0",
        "11;59;2020-04-02;0;0;0;0;0;0;0",
        "11;69;2020-04-02;1;1;0;0;0;0;0",
        "11;79;2020-04-02;0;0;0;0;0;1;0",
        "11;89;2020-04-02;1;0;1;0;0;0;2",
        "11;90;2020-04-02;1;0;0;0;1;0;0",
    ]
    assert check_snapshot(snapshot) == []
    assert file_name(HOSPITAL, DAY) == "donnees-hospitalieres-covid19-2020-04-02-19h00.csv"


def test_covid_for_only() -> None:
    snapshot = compute(DAY, STATES, MOVEMENTS, reasons=frozenset({Covid.FOR}))
    totals = snapshot.totals(["75"])
    assert (totals.hosp, totals.rea, totals.dc) == (2, 1, 0)


def test_invariants_refuse_a_fall_of_cumulative_counts() -> None:
    yesterday = compute(date(2020, 4, 1), STATES, MOVEMENTS)
    fewer = [m for m in MOVEMENTS if m.to_death == 0]
    today = compute(DAY, STATES, fewer)
    problems = check_snapshot(today, yesterday.hospital)
    assert "75 sexe 0: dc fell from 2 on 2020-04-01 to 0 on 2020-04-02" in problems
    assert "75 sexe 1: dc fell from 2 on 2020-04-01 to 0 on 2020-04-02" in problems
    assert check_snapshot(compute(DAY, STATES, MOVEMENTS), yesterday.hospital) == []


def test_invariants_of_a_row() -> None:
    day = date(2020, 3, 18)
    rows = [
        HospitalRow("75", 0, day, Figures(3, 4, None, None, None, 0, 0)),
        HospitalRow("75", 1, day, Figures(2, 0, None, None, None, 0, 0)),
        HospitalRow("75", 2, day, Figures(2, 0, None, None, None, 0, 0)),
    ]
    assert check_rows(rows) == [
        "75 sexe 0 2020-03-18: rea 4 > hosp 3",
        "75 2020-03-18: hosp of men and women 4 > 3",
    ]


def test_movements_of_a_stay_and_of_a_transfer() -> None:
    day = date(2020, 3, 20)
    at_a = Episode("750100125", "75", UnitKind.CRIT, H, day, Covid.FOR)
    gone = Episode("750100125", "75", UnitKind.CRIT, Status.TRANSFERRED, day, Covid.FOR)
    at_b_crit = Episode("440000271", "44", UnitKind.CRIT, H, day, Covid.FOR)
    at_b_conv = Episode("440000271", "44", UnitKind.CONV, H, day, Covid.FOR)
    first = movement(None, at_a)
    assert first.admitted and first.to_critical and not first.to_home
    assert not movement(at_a, gone).any
    assert not movement(gone, at_b_crit).any  # arriving: neither admitted nor a new rea entry
    assert not movement(at_a, at_b_crit).any  # arriving before the origin said "transferred"
    back = movement(at_b_conv, at_b_crit)
    assert back.to_critical and not back.admitted
    home = Episode("440000271", "44", UnitKind.CONV, HOME, day, Covid.FOR)
    assert movement(at_b_conv, home).to_home
    assert not movement(home, home).any
    dead = Episode("440000271", "44", UnitKind.CONV, Status.DECEASED, day, Covid.FOR)
    assert movement(at_b_conv, dead).to_death
    assert movement(home, at_b_conv).admitted  # readmitted after going home


def test_age_classes() -> None:
    on = date(2020, 4, 2)
    assert age_class(date(2020, 1, 1), on) == "09"
    assert age_class(date(2010, 4, 2), on) == "19"
    assert age_class(date(2010, 4, 3), on) == "09"
    assert age_class(date(1940, 4, 2), on) == "89"
    assert age_class(date(1930, 4, 2), on) == "90"


def test_reader_on_rows_spf_published() -> None:
    text = (DATA / "spf-donnees-hospitalieres-covid19-2020-04-23-slice.csv").read_text()
    rows = read_hospital(text)
    assert len(rows) == 30
    paris = [r for r in rows if r.dep == "75" and r.sexe == 0]
    assert [
        (r.jour, r.figures.hosp, r.figures.rea, r.figures.rad, r.figures.dc) for r in paris
    ] == [
        (date(2020, 3, 18), 359, 105, 40, 14),
        (date(2020, 3, 19), 453, 122, 62, 22),
    ]
    assert paris[0].figures.conv is None  # the first layout had no split of hosp
    assert check_rows(rows) == []  # the published rows hold the invariants
    french = text.replace('"2020-03-18"', "18/03/2020").replace('"2020-03-19"', "19/03/2020")
    assert read_hospital(french) == rows


def test_reader_of_the_later_layout_and_of_our_files() -> None:
    snapshot = compute(DAY, STATES, MOVEMENTS)
    ours = read_hospital(csv_text(HOSPITAL, [snapshot.body(HOSPITAL)]))
    assert ours == snapshot.hospital
    later = "dep;sexe;jour;hosp;rea;HospConv;SSR_USLD;autres;rad;dc\n01;0;2020-03-18;2;0;;;;1;0\n"
    (row,) = read_hospital(later)
    assert row.figures == Figures(2, 0, None, None, None, 1, 0)
    assert read_new(csv_text(NEW, [snapshot.body(NEW)])) == snapshot.new
    assert read_new("dep;jour;incid_hosp;incid_rea;incid_dc;incid_rad\n01;19/03/2020;1;0;0;0\n")[
        0
    ].jour == date(2020, 3, 19)


def test_reader_refuses_other_files() -> None:
    with pytest.raises(FileError, match="line 1"):
        read_hospital("a;b\n1;2\n")
    with pytest.raises(FileError, match="line 2"):
        read_hospital("dep;sexe;jour;hosp;rea;rad;dc\n01;0;2020-13-45;1;0;0;0\n")
    with pytest.raises(ValueError):
        read_day("2020/03/18")


def test_reader_of_the_age_classes_on_rows_spf_published() -> None:
    text = (DATA / "spf-donnees-hospitalieres-classe-age-covid19-2020-04-23-slice.csv").read_text()
    rows = read_age(text)
    assert len(rows) == 22 and {r.reg for r in rows} == {"11"}
    whole = [r for r in rows if r.cl_age90 == "0"]
    assert [(r.jour, r.figures.hosp, r.figures.dc) for r in whole] == [
        (date(2020, 4, 7), 12074, 2627),
        (date(2020, 4, 8), 12479, 2850),
    ]
    # 11,880 of the 12,074 hospitalised of 7 April had a known age: the rest are in class 0 only.
    known = sum(r.figures.hosp for r in rows if r.jour == date(2020, 4, 7) and r.cl_age90 != "0")
    assert known == 11880
    assert check_age_rows(rows) == []
    ours = compute(DAY, STATES, MOVEMENTS)
    assert read_age(csv_text(AGE, [ours.body(AGE)])) == ours.age
    assert check_age_rows(ours.age) == []
    wrong = text.replace(
        '"11";"90";"2020-04-08";1053;3;139;484', '"11";"90";"2020-04-08";1053;3;39;484'
    )
    assert check_age_rows(read_age(wrong)) == [
        "region 11 class 90: rad fell on 2020-04-08 after 2020-04-07"
    ]
    with pytest.raises(FileError, match="line 2: no age class"):
        read_age("reg;cl_age90;jour;hosp;rea;rad;dc\n11;100;2020-04-07;1;0;0;0\n")
