"""The indicators against Santé publique France's published files.

Fixtures (tests/sidep/data), all published by Santé publique France on data.gouv.fr
(Licence Ouverte 2.0), taken from public mirrors:

- ``spf_sp_pos_quot_dep_01.csv``: 21 days (2020-05-25 to 2020-06-14) of département 01 (Ain)
  from SpF's daily file ``sp-pos-quot-dep`` ("Données relatives aux résultats des tests
  virologiques COVID-19", dataset 5ed117db6c161bd5baf070be), as mirrored in
  rozierguillaume/covid-19 ``data/france/tests_viro-dep-quot.csv``;
- ``spf_indicateurs_fra.csv``: 27 days (2020-05-13 to 2020-06-08) of the columns ``date``,
  ``pos``, ``pos_7j`` and ``tx_incid`` of SpF's ``table-indicateurs-open-data-france.csv``
  ("Synthèse des indicateurs de suivi de l'épidémie COVID-19"), as mirrored in
  vanAkim/covid-infographic-bot ``data/table-indicateurs-open-data-france.csv``;
- ``population_subset.csv``: the ``pop`` column of the same files (INSEE estimates used by SpF)
  for département 01 and France (``FR``), per ``cl_age90``: a subset, not the whole country.

The département-level published ``tx_incid`` file was not found in the stored sources: for 01
the daily counts are checked exactly and the incidence against SpF's formula on them; for
France the computed incidence is checked against SpF's published ``tx_incid``.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from sidep import indicators

DATA = Path(__file__).parent / "data"
POPULATION = DATA / "population_subset.csv"
HEADER = ["person", "day", "dep", "age", "result", "area"]
AGE_OF_CLASS = {c: (int(c) - 9 if c != "90" else 92) + 4 for c in indicators.AGE_CLASSES}


def read(path: Path, delimiter: str = ";") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def write_tests(path: Path, rows: list[tuple[object, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(HEADER)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
    return path


def dep01_tests() -> list[tuple[object, ...]]:
    """Persons whose tests give SpF's published counts of département 01, plus tests that must
    not change them (re-tests of known positives, same-day duplicates, inconclusive results)."""
    rows: list[tuple[object, ...]] = []
    n = 0
    first = date(2020, 5, 25)
    for r in read(DATA / "spf_sp_pos_quot_dep_01.csv"):
        if r["cl_age90"] == "0":
            continue
        day, age = date.fromisoformat(r["jour"]), AGE_OF_CLASS[r["cl_age90"]]
        for i in range(int(r["T"])):
            n += 1
            person = f"p{n}"
            positive = i < int(r["P"])
            rows.append((person, day, "01", age, "P" if positive else "N", None))
            if positive:
                # a second positive 3 days later and a negative 10 days later: not counted
                rows.append((person, day + timedelta(days=3), "01", age, "P", None))
                rows.append((person, day + timedelta(days=10), "01", age, "N", None))
                # and the same day a negative antigen test: one person-day, positive
                rows.append((person, day, "01", age, "N", None))
            else:
                rows.append((person, day, "01", age, "I", None))
    # someone positive 30 days before the period, re-tested negative during it: not in T
    rows.append(("old", first - timedelta(days=30), "01", 40, "P", None))
    rows.append(("old", first + timedelta(days=2), "01", 40, "N", None))
    return rows


def test_dep01_daily_counts_equal_spf_published(tmp_path: Path) -> None:
    source = write_tests(tmp_path / "tests.csv", dep01_tests())
    first, last = date(2020, 5, 25), date(2020, 6, 14)
    written = indicators.compute(source, POPULATION, tmp_path, since=first, until=last)
    got = {
        (r["jour"], r["cl_age90"]): r
        for r in read(tmp_path / "sp-pos-quot-dep.csv")
        if r["dep"] == "01"
    }
    published = read(DATA / "spf_sp_pos_quot_dep_01.csv")
    assert len(got) == len(published) == 231
    for r in published:
        mine = got[(r["jour"], r["cl_age90"])]
        assert (mine["P"], mine["T"]) == (r["P"], r["T"]), r
        assert float(mine["pop"]) == float(r["pop"])
    assert written.rows["sp-pos-quot-dep.csv"] == 231

    # the 7-day rates of 01, from the 7th day on, against SpF's formula on its published counts
    totals = [r for r in published if r["cl_age90"] == "0"]
    rates = {r["jour"]: r for r in read(tmp_path / "indicateurs-dep.csv")}
    assert len(rates) == len(totals) - 6
    for i in range(6, len(totals)):
        week = totals[i - 6 : i + 1]
        p7, t7 = sum(int(r["P"]) for r in week), sum(int(r["T"]) for r in week)
        mine = rates[totals[i]["jour"]]
        assert float(mine["tx_incid"]) == pytest.approx(1e5 * p7 / 656955, rel=1e-12)
        assert float(mine["tx_pos"]) == pytest.approx(100 * p7 / t7, rel=1e-12)
        assert float(mine["tx_dep"]) == pytest.approx(1e5 * t7 / 656955, rel=1e-12)


def test_france_incidence_equals_spf_published_tx_incid(tmp_path: Path) -> None:
    published = read(DATA / "spf_indicateurs_fra.csv", delimiter=",")
    rows: list[tuple[object, ...]] = []
    for r in published:
        day = date.fromisoformat(r["date"])
        for i in range(int(r["pos"])):
            rows.append((f"{r['date']}-{i}", day, None, None, "P", None))
            rows.append((f"{r['date']}-n{i}", day, None, None, "N", None))
    source = write_tests(tmp_path / "tests.csv", rows)
    indicators.compute(source, POPULATION, tmp_path)
    mine = {r["jour"]: r for r in read(tmp_path / "indicateurs-fra.csv")}
    checked = 0
    for r in published:
        if not r["tx_incid"]:
            assert r["date"] not in mine  # fewer than 7 days of data
            continue
        assert float(mine[r["date"]]["tx_incid"]) == pytest.approx(float(r["tx_incid"]), rel=1e-12)
        assert float(mine[r["date"]]["tx_pos"]) == pytest.approx(50.0)
        checked += 1
    assert checked == 21
    fra = read(tmp_path / "sp-pos-quot-fra.csv")
    assert fra[0]["fra"] == "FR" and set(fra[0]) == {"fra", "jour", "P", "T", "cl_age90", "pop"}
    assert float(next(r for r in fra if r["cl_age90"] == "0")["pop"]) == 67114995


def test_sixty_day_rule_and_age_classes(tmp_path: Path) -> None:
    d0 = date(2021, 1, 1)
    rows: list[tuple[object, ...]] = [
        ("a", d0, "75", 34, "P", None),
        ("a", d0 + timedelta(days=60), "75", 34, "P", None),  # 60 days later: not new
        ("a", d0 + timedelta(days=121), "75", 34, "P", None),  # 61 after the last: new
        ("b", d0, "75", 95, "N", None),
        ("b", d0, "75", 95, "X", None),
        ("c", d0, "2A", None, "P", None),
    ]
    source = write_tests(tmp_path / "t.csv", rows)
    indicators.compute(source, POPULATION, tmp_path)
    got = {
        (r["dep"], r["jour"], r["cl_age90"]): (int(r["P"]), int(r["T"]))
        for r in read(tmp_path / "sp-pos-quot-dep.csv")
    }
    assert got[("75", "2021-01-01", "39")] == (1, 1)
    assert got[("75", "2021-01-01", "90")] == (0, 1)
    assert got[("75", "2021-01-01", "0")] == (1, 2)
    assert got[("2A", "2021-01-01", "0")] == (1, 1)  # unknown age: all ages only
    assert sum(v[0] for k, v in got.items() if k[2] == "0" and k[0] == "2A") == 1
    assert got[("75", "2021-03-02", "0")] == (0, 0)
    assert got[("75", "2021-05-02", "0")] == (1, 1)
    regions = {
        (r["reg"], r["jour"], r["cl_age90"]): r for r in read(tmp_path / "sp-pos-quot-reg.csv")
    }
    assert regions[("11", "2021-01-01", "0")]["P"] == "1"
    assert regions[("94", "2021-01-01", "0")]["P"] == "1"
    reg_rates = read(tmp_path / "indicateurs-reg.csv")
    assert {r["reg"] for r in reg_rates} >= {"11", "94"}


def test_numpy_input_and_area_classes(tmp_path: Path) -> None:
    n = 3000
    rng = np.random.default_rng(7)
    days = np.datetime64("2021-03-01") + rng.integers(0, 14, n).astype("timedelta64[D]")
    areas = np.where(np.arange(n) % 10 == 0, "01990", "01000")
    source = {
        "person": np.arange(n, dtype=np.int64),
        "day": days,
        "dep": np.full(n, "01", dtype=object),
        "age": rng.integers(0, 100, n),
        "result": np.where(np.arange(n) % 3 == 0, "P", "N").astype(object),
        "area": areas.astype(object),
    }
    area_pop = tmp_path / "areas.csv"
    area_pop.write_text("area;pop\n01000;200000\n01990;3000\n01500;100000\n", encoding="utf-8")
    written = indicators.compute(
        source,
        POPULATION,
        tmp_path,
        area_population=area_pop,
        thresholds=indicators.Thresholds(min_population=5000),
    )
    classes = read(tmp_path / "sg-area-classes.csv")
    assert written.rows["sg-area-classes.csv"] == len(classes) == 3 * 8
    big = [r for r in classes if r["area"] == "01000"]
    small = [r for r in classes if r["area"] == "01990"]
    empty = [r for r in classes if r["area"] == "01500"]
    assert all(r["ti_classe"].startswith("[") for r in big)
    assert big[0]["semaine_glissante"] == "2021-03-01-2021-03-07"
    assert all(r["ti_classe"] == "" for r in small)  # under the population threshold
    assert all(r["ti_classe"] == r["tp_classe"] == "" for r in empty)  # no positives
    dep = read(tmp_path / "sp-pos-quot-dep.csv")
    assert sum(int(r["P"]) for r in dep if r["cl_age90"] == "0") == n // 3


def test_shipped_population_covers_every_departement(tmp_path: Path) -> None:
    rows = read(indicators.SHIPPED_POPULATION)
    assert len(rows) == 101 and {r["cl_age90"] for r in rows} == {"0"}
    assert sum(int(r["pop"]) for r in rows) == 67_287_241
    source = write_tests(tmp_path / "t.csv", [("a", date(2021, 1, 1), "976", 30, "P", None)])
    indicators.compute(source, indicators.SHIPPED_POPULATION, tmp_path)
    fra = [r for r in read(tmp_path / "sp-pos-quot-fra.csv") if r["cl_age90"] == "0"]
    assert float(fra[0]["pop"]) == 67_287_241  # no FR rows: the sum of the départements
    dep = {(r["dep"], r["cl_age90"]): r for r in read(tmp_path / "sp-pos-quot-dep.csv")}
    assert len({d for d, _ in dep}) == 101
    assert dep[("976", "0")]["P"] == "1" and float(dep[("976", "0")]["pop"]) == 278926
    assert dep[("976", "29")]["pop"] == ""  # no age-class populations in this file


def test_junk_days_and_ages_are_not_counted_or_crash(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [
        ("a", date(2021, 1, 1), "75", 30, "P", None),
        ("b", "not a day", "75", 30, "P", None),
        ("c", date(2021, 1, 1), "75", "old", "N", None),
    ]
    indicators.compute(write_tests(tmp_path / "t.csv", rows), POPULATION, tmp_path)
    dep = {(r["dep"], r["cl_age90"]): r for r in read(tmp_path / "sp-pos-quot-dep.csv")}
    assert (dep[("75", "0")]["P"], dep[("75", "0")]["T"]) == ("1", "2")
    assert dep[("75", "39")]["T"] == "1"  # the junk age counts in all ages only


def test_no_conclusive_result_writes_empty_files(tmp_path: Path) -> None:
    source = write_tests(tmp_path / "t.csv", [("x", date(2021, 1, 1), "75", 30, "I", None)])
    written = indicators.compute(source, indicators.SHIPPED_POPULATION, tmp_path / "out")
    assert set(written.rows.values()) == {0}
    header = (tmp_path / "out" / "sp-pos-quot-dep.csv").read_text(encoding="utf-8").splitlines()
    assert header == ["dep;jour;P;T;cl_age90;pop"]
