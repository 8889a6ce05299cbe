"""Test sites: the CSV layout, the search against a brute-force haversine, the reload, the
places and the map's projection."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citizens.data.slices import inside
from citizens.geo import france_map, haversine_km
from citizens.places import POSTCODE, Origin, shipped_places
from citizens.settings import SHIPPED_SITES
from citizens.sites import (
    REQUIRED,
    SANTE_FR_COLUMNS,
    Kind,
    SiteBook,
    SiteIndex,
    SiteQuery,
    SitesFileError,
    from_sante_fr,
    parse_row,
    parse_sites,
)

HEADER = "id;name;address;postcode;commune;lat;lon;kinds;walk_in;appointment_url"
ROW = "A1;Labo;1 rue X;75011;Paris;48.85;2.38;PCR,ANTIGEN;oui;https://rdv.example.org/a1"


def test_the_shipped_file_loads_whole() -> None:
    index = SiteIndex.from_file_bytes(SHIPPED_SITES.read_bytes())
    assert len(index.sites) > 200 and index.bad_rows == ()


def test_a_row_is_parsed() -> None:
    [site] = parse_sites(f"{HEADER}\n{ROW}\n".encode()).sites
    assert site.kinds == {Kind.PCR, Kind.ANTIGEN} and site.walk_in
    assert site.appointment_url == "https://rdv.example.org/a1" and site.departement == "75"


def test_decimal_commas_and_any_column_order() -> None:
    text = (
        "lon;lat;walk_in;kinds;id;name;address;postcode;commune\n"
        "2,38;48,85;non;pcr;B;N;A;2A004;Ajaccio\n"
    )
    [site] = parse_sites(text.encode()).sites
    assert (site.lat, site.lon, site.walk_in, site.postcode) == (48.85, 2.38, False, "2A004")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (ROW.replace("75011", "7501"), "postcode"),
        (ROW.replace("48.85", "north"), "decimal degrees"),
        (ROW.replace("48.85", "95"), "off the globe"),
        (ROW.replace("PCR,ANTIGEN", "SEROLOGY"), "only PCR and ANTIGEN"),
        (ROW.replace(";oui;", ";peut-être;"), "walk_in"),
        (ROW.replace("https://rdv", "javascript:alert(1)//rdv"), "http(s)"),
    ],
)
def test_bad_rows_are_explained(row: str, reason: str) -> None:
    header = HEADER.split(";")
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_row(dict(zip(header, row.split(";"), strict=True)))


def test_a_few_bad_rows_are_skipped_with_their_line() -> None:
    good = "\n".join(ROW.replace("A1", f"A{i}") for i in range(60))
    parsed = parse_sites(
        f"{HEADER}\n{good}\n{ROW.replace('A1', 'Z').replace('75011', 'x')}\n".encode()
    )
    assert len(parsed.sites) == 60 and parsed.bad_rows[0].line == 62


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id;name\nA;B\n", "missing column"),
        (f"{HEADER}\n{ROW}\n{ROW}\n".encode(), "unusable"),
        (b"\xff\xfe", "not UTF-8"),
        (f"{HEADER}\n".encode(), "no usable site"),
    ],
)
def test_unusable_files_are_refused(content: bytes, message: str) -> None:
    with pytest.raises(SitesFileError, match=message):
        parse_sites(content)


@given(st.dictionaries(st.sampled_from(REQUIRED), st.text(max_size=40)))
def test_any_row_is_a_site_or_a_value_error(row: dict[str, str]) -> None:
    try:
        site = parse_row(row)
    except ValueError:
        return
    assert -90 <= site.lat <= 90 and site.kinds


@given(st.floats(-89, 89), st.floats(-179, 179), st.floats(-89, 89), st.floats(-179, 179))
def test_haversine_is_a_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    d = haversine_km(lat1, lon1, lat2, lon2)
    assert d == pytest.approx(haversine_km(lat2, lon2, lat1, lon1), abs=1e-6)
    assert 0 <= d <= math.pi * 6371.0088 + 1e-6


def test_haversine_known_distance() -> None:
    # Paris (Notre-Dame) to Lyon (Bellecour): about 392 km as the crow flies
    assert haversine_km(48.8530, 2.3499, 45.7578, 4.8320) == pytest.approx(392.0, abs=2.0)


def test_search_is_the_brute_force_nearest_with_filters() -> None:
    index = SiteIndex.from_file_bytes(SHIPPED_SITES.read_bytes())
    origin = Origin("Rennes", 48.11109, -1.67431, "commune")
    for kind, walk_in in ((None, False), (Kind.PCR, False), (Kind.ANTIGEN, True)):
        found = index.search(SiteQuery(origin, kind, walk_in, 7))
        expected = sorted(
            (haversine_km(origin.lat, origin.lon, s.lat, s.lon), s.id)
            for s in index.sites
            if (kind is None or kind in s.kinds) and (not walk_in or s.walk_in)
        )[:7]
        assert [(round(f.distance_km, 6), f.site.id) for f in found] == [
            (round(d, 6), i) for d, i in expected
        ]


def test_reload_swaps_only_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(f"{HEADER}\n{ROW}\n")
    book = SiteBook(path)
    assert book.reload() and len(book.current.sites) == 1
    first = book.current
    assert not book.reload()  # unchanged: nothing to do
    path.write_text("garbage")
    assert not book.reload() and book.current is first and "missing column" in str(book.last_error)
    path.write_text(f"{HEADER}\n{ROW}\n{ROW.replace('A1', 'A2')}\n")
    assert book.reload() and len(book.current.sites) == 2 and book.last_error is None
    assert len(first.sites) == 1  # a search holding the old index still sees it whole


def test_places_by_postcode_and_name() -> None:
    places = shipped_places()
    origin = places.locate_postcode("75011")
    assert (
        origin is not None
        and origin.label.startswith("Paris 11e")
        and origin.precision == "commune"
    )
    fallback = places.locate_postcode("35160")  # a small commune not in the table
    assert fallback is not None and fallback.precision == "departement"
    assert abs(fallback.lat - 48.1) < 0.5
    assert places.locate_postcode("99999") is None
    found = places.locate_commune("saint etienne")
    assert found is not None and found.label == "Saint-Étienne (42)"


def test_communes_fall_in_their_own_departement_on_the_map() -> None:
    """The fitted projection against the shipped communes: 94 % inside their own outline
    (towns on a border or a coast fall just outside the simplified drawing), and every other
    one within 4 map units (about 6 km) of it."""
    france = france_map()
    outlines = {code: _rings(path) for code, path in france.outlines.items()}
    checked = inside_count = 0
    for place in shipped_places().places:
        if place.departement not in outlines:
            continue
        x, y = france.project(place.lat, place.lon)
        checked += 1
        if inside(outlines[place.departement], x, y):
            inside_count += 1
        else:
            ring_points = [p for ring in outlines[place.departement] for p in ring]
            assert min(math.hypot(px - x, py - y) for px, py in ring_points) < 4, place.name
    assert checked > 900 and inside_count / checked > 0.93


def _rings(path: str) -> list[list[tuple[float, float]]]:
    rings = []
    for part in path.split("M")[1:]:
        ring = []
        for pair in part.rstrip("Z").split():
            x, y = pair.split(",")
            ring.append((float(x), float(y)))
        rings.append(ring)
    return rings


SANTE_FR_SAMPLE = Path(__file__).parent / "data" / "sante-fr-sample.csv"


def test_sante_fr_public_layout_is_read() -> None:
    """A file with the header of Santé.fr's public file (``,``-separated, quoted addresses
    with commas, ``check_rdv`` meaning "by appointment", JSON opening hours, French dates)."""
    data = SANTE_FR_SAMPLE.read_bytes()
    assert data.startswith(b"ID,id_ej,finess,rs,adresse,cpl_loc,do_prel,do_antigenic,")
    with pytest.raises(SitesFileError, match="line 6: adresse does not end with a postcode"):
        parse_sites(data)  # its last row, 1 of 5, is too many bad rows: refused, saying why
    parsed = parse_sites(b"\n".join(data.splitlines()[:5]))
    assert parsed.bad_rows == ()
    by_id = {s.id: s for s in parsed.sites}
    voltaire, roquette, barachois, cours = (by_id[f"F000{i}"] for i in range(1, 5))
    assert (voltaire.name, voltaire.address, voltaire.postcode, voltaire.commune) == (
        "Laboratoire Voltaire (fictif)",
        "12 boulevard Voltaire, Rez-de-chaussée",
        "75011",
        "Paris",
    )
    assert (voltaire.lat, voltaire.lon) == (48.8630, 2.3702)
    assert voltaire.kinds == {Kind.PCR} and not voltaire.walk_in  # check_rdv: appointment
    assert voltaire.appointment_url == "https://rdv.example.org/voltaire"
    assert voltaire.phone == "01 99 00 12 34" and voltaire.public == "Tout public"
    assert voltaire.hours == "lundi 08:00-12:00; mardi 08:00-12:00"
    assert str(voltaire.updated) == "2020-11-02"
    assert roquette.kinds == {Kind.ANTIGEN} and roquette.walk_in
    assert roquette.hours == "lun-sam 09:00-19:00 (publics prioritaires : lun-ven 09:00-10:00)"
    assert str(roquette.updated) == "2020-11-02" and roquette.appointment_url is None
    assert barachois.kinds == {Kind.PCR, Kind.ANTIGEN}
    assert (barachois.postcode, barachois.commune) == ("97400", "Saint-Denis")
    assert (cours.postcode, cours.address, cours.updated) == ("20000", "5 cours Napoléon", None)


def test_sante_fr_layout_is_indexed_and_searched() -> None:
    good = b"\n".join(SANTE_FR_SAMPLE.read_bytes().splitlines()[:5]) + b"\n"
    index = SiteIndex.from_file_bytes(good)
    [nearest] = index.search(SiteQuery(Origin("Paris 11e", 48.857, 2.372, "position"), limit=1))
    assert nearest.site.id == "F0002"


def test_sante_fr_layout_with_semicolons_and_missing_columns() -> None:
    lines = SANTE_FR_SAMPLE.read_text(encoding="utf-8").splitlines()
    row = "F9;;;Labo;3 rue X 35000 Rennes;;oui;non;-1.68;48.11;;;;;non;;;"
    semicolons = "\n".join([lines[0].replace(",", ";"), row])
    [site] = parse_sites(semicolons.encode()).sites
    assert (site.commune, site.kinds, site.walk_in) == ("Rennes", {Kind.PCR}, True)
    with pytest.raises(SitesFileError, match=r"latitude.*Santé\.fr's layout, separator ','"):
        parse_sites(b"ID,rs,adresse,do_prel,do_antigenic,longitude\n")


def test_a_broken_file_is_logged_once_per_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(f"{HEADER}\n{ROW}\n")
    book = SiteBook(path)
    assert book.reload()
    caplog.set_level("ERROR", logger="citizens.sites")
    path.write_text("garbage")
    for _ in range(5):  # five checks of the same broken file
        assert not book.reload()
    assert len(caplog.records) == 1 and "missing column" in caplog.records[0].getMessage()
    assert book.failures == 5 and "missing column" in str(book.last_error)
    path.write_text("other garbage")  # another file: said again, once
    assert not book.reload() and not book.reload()
    assert len(caplog.records) == 2
    path.write_text(f"{HEADER}\n{ROW}\n")  # the served file back: no error left
    assert not book.reload() and book.last_error is None
    path.write_text("garbage")  # broken again later: a new episode, said again
    assert not book.reload()
    assert len(caplog.records) == 3


def test_sites_commands_describe_their_file_argument(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    for command in ("check", "publish"):
        with pytest.raises(SystemExit):
            main(["citizens", "sites", command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "file a CSV file of test sites" in out and "Santé.fr" in out, command


def test_a_missing_file_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    book = SiteBook(tmp_path / "absent.csv")
    caplog.set_level("ERROR", logger="citizens.sites")
    assert not book.reload() and not book.reload() and not book.reload()
    assert len(caplog.records) == 1 and book.failures == 3


@given(
    st.dictionaries(
        st.sampled_from([c.lower() for c in SANTE_FR_COLUMNS]),
        st.text(max_size=40) | st.sampled_from(["True", "False", "oui", "1 rue X 75011 Paris"]),
    )
)
def test_any_sante_fr_row_is_a_site_or_a_value_error(row: dict[str, str]) -> None:
    try:
        site = parse_row(from_sante_fr(row))
    except ValueError:
        return
    assert POSTCODE.match(site.postcode) and site.kinds
