"""The pure rules: tension rate by hand (above 100 % too), thresholds, distances, territories,
access, and the update-file parser (hypothesis)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beds import charts
from beds.access import Access
from beds.geo import haversine_km, nearest
from beds.model import BedKind, Counts
from beds.service import parse_update_file
from beds.tension import Level, Thresholds, UnitFigures, by_departement, tension_of, total
from beds.territory import TerritoryError, departement_of_postcode, parse_territory
from kit.http import HttpError


def unit(dep: str, kind: BedKind, initial: int, counts: Counts | None, stale: bool = False):
    return UnitFigures(dep, kind, initial, counts, stale)


def test_tension_rate_by_hand_including_above_100_percent() -> None:
    # Département 75: a réanimation unit of 10 initial beds now armed to 16 (6 surge), all
    # occupied, 12 of them by COVID patients; an intensive-care unit (not in the
    # denominator) with 3 COVID patients. Tension = (12 + 3) / 10 = 150 %.
    units = [
        unit("75", BedKind.REA, 10, Counts(10, 6, 16, 0, 12)),
        unit("75", BedKind.SI, 8, Counts(8, 0, 6, 2, 3)),
        # Département 92: 20 initial réa beds, 5 COVID patients: 25 %; one unit stale.
        unit("92", BedKind.REA, 20, Counts(20, 0, 14, 6, 5)),
        unit("92", BedKind.SC, 4, None, stale=True),
    ]
    paris = tension_of(units[:2])
    assert (paris.covid_critical, paris.initial_capacity) == (15, 10)
    assert paris.tension_rate == pytest.approx(1.5)
    assert paris.occupancy == pytest.approx(22 / 24)  # occupied (16 + 6) over open (16 + 8)
    assert paris.available == 2
    parts = by_departement(units)
    assert parts["92"].tension_rate == pytest.approx(0.25)
    assert parts["92"].stale_units == 1 and parts["92"].units == 2
    both = total(parts.values())
    # Rates are recomputed from sums, never averaged: (15 + 5) / (10 + 20) = 66.7 %.
    assert both.tension_rate == pytest.approx(20 / 30)
    assert Thresholds().level(paris.tension_rate) is Level.OVER
    assert Thresholds().level(both.tension_rate) is Level.ALERT


def test_no_initial_capacity_means_no_rate() -> None:
    only_si = tension_of([unit("75", BedKind.SI, 8, Counts(8, 0, 4, 4, 4))])
    assert only_si.tension_rate is None
    assert Thresholds().level(None) is Level.NONE


@pytest.mark.parametrize(
    ("rate", "level"),
    [(0.59, Level.LOW), (0.6, Level.ALERT), (0.8, Level.CRISIS), (1.0, Level.CRISIS),
     (1.01, Level.OVER)],
)  # fmt: skip
def test_thresholds(rate: float, level: Level) -> None:
    assert Thresholds(alert=0.6, crisis=0.8).level(rate) is level


def test_counts_must_hold_together() -> None:
    assert Counts(10, 2, 8, 4, 3).problems() == []
    assert Counts(10, 0, 8, 4, 0).problems() == [
        "occupied + available cannot exceed installed + surge beds"
    ]
    assert Counts(10, 0, 2, 2, 3).problems() == ["COVID patients cannot exceed occupied beds"]
    assert Counts(10, 0, 2, 2, 3).one_bed_less() == Counts(10, 0, 3, 1, 3)


def test_haversine_paris_to_lyon_and_nearest_order() -> None:
    # Pitié-Salpêtrière to Édouard-Herriot: about 392 km as the crow flies.
    assert haversine_km(48.84021, 2.36322, 45.7434, 4.87997) == pytest.approx(392, abs=3)
    lats, lons = [45.7434, 48.80994, 48.8819], [4.87997, 2.35795, 2.35376]
    found = nearest(48.84021, 2.36322, lats, lons, 2)
    assert [c.index for c in found] == [1, 2]
    assert found[0].km == pytest.approx(3.4, abs=0.2)


def test_territories_and_postcodes() -> None:
    assert parse_territory("reg:11").name == "Île-de-France"
    assert parse_territory("dep:2A").name == "Corse-du-Sud"
    assert departement_of_postcode("75013") == "75"
    assert departement_of_postcode("20167") == "2A"
    assert departement_of_postcode("20200") == "2B"
    assert departement_of_postcode("97400") == "974"
    for bad in ("reg:99", "dep:00", "paris", ""):
        with pytest.raises(TerritoryError):
            parse_territory(bad)
    with pytest.raises(TerritoryError):
        departement_of_postcode("7501")


def test_access_by_role_and_scope() -> None:
    staff = Access("staff", "finess:750100125")
    assert staff.may_edit("750100125") and not staff.may_edit("940100043")
    assert staff.may_read("750100125", "75") and not staff.may_read("940100043", "94")
    assert staff.territory is None and not staff.may_find
    ars = Access("ars", "reg:11")
    assert ars.may_read("940100043", "94") and not ars.may_read("440000271", "44")
    assert not ars.may_edit("940100043")
    assert ars.may_see_territory(parse_territory("dep:94"))
    assert not ars.may_see_territory(parse_territory("reg:52"))
    assert not ars.may_see_territory(parse_territory("fr"))
    national = Access("national", "national")
    assert national.may_see_territory(parse_territory("fr")) and national.may_edit("x")
    assert Access("reader", "").may_see_territory(parse_territory("dep:44"))


def test_update_file_both_separators() -> None:
    text = (
        "finess;unit;installed;surge;occupied;available;covid;updated_at\n"
        "750100125;REA;110;10;100;20;40;2026-12-10T04:00:00Z\n"
    )
    [(line, finess, code, counts, at)] = parse_update_file(text)
    assert (line, finess, code, counts) == (2, "750100125", "REA", Counts(110, 10, 100, 20, 40))
    assert at is not None and at.isoformat() == "2026-12-10T04:00:00+00:00"
    comma = "finess,unit,installed,surge,occupied,available,covid\n750100125,SI,8,0,4,4,1\n"
    assert parse_update_file(comma)[0][3] == Counts(8, 0, 4, 4, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("finess;unit;installed\n1;2;3\n", "missing columns: surge, occupied, available, covid"),
        ("finess;unit;installed;surge;occupied;available;covid\n1;A;x;0;0;0;0\n",
         "line 2: counts must be whole numbers"),
    ],
)  # fmt: skip
def test_update_file_refusals(text: str, message: str) -> None:
    with pytest.raises(HttpError) as raised:
        parse_update_file(text)
    assert raised.value.message == message and raised.value.status == 400


@given(st.text(max_size=300))
def test_update_file_parser_never_crashes(text: str) -> None:
    try:
        parse_update_file(text)
    except HttpError as exc:
        assert exc.status == 400


@pytest.mark.parametrize(
    "series",
    [
        [None, None, None, None, 0.43, 0.53, 0.63],
        [0.2, 0.4, 1.6, 2.4, None, 3.1, 2.9],  # far above 100 %
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # flat
    ],
)
def test_sparkline_stays_in_its_box(series: list[float | None]) -> None:
    svg = str(charts.sparkline(series))
    box = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    assert box is not None and 'width="84"' not in svg  # sized by CSS, not fixed pixels
    width, height = int(box.group(1)), int(box.group(2))
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    xy = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert len(xy) == len([v for v in series if v is not None])
    assert all(0 <= x <= width and 0 <= y <= height for x, y in xy)
    first, last = series[next(i for i, v in enumerate(series) if v is not None)], series[-1]
    assert f"{first * 100:.0f} % → {last * 100:.0f} %" in svg  # type: ignore[operator]
