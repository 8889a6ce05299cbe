"""The daily epidemic indicators as Santé publique France published them (docs/health.md §2),
computed with DuckDB over columns, never row by row in Python.

Input: one row per virological test (PCR or antigen; serology is no infection indicator) with

====== ======= ==============================================================================
column type    meaning
====== ======= ==============================================================================
person any     the person's pseudonym (``kit.identity.pseudonym``, or any stable integer)
day    DATE    the sampling day (indicators count by sampling date, not validation date)
dep    VARCHAR the département (``01`` ... ``2A`` ... ``976``); NULL when unknown (counted in
               France only)
age    INTEGER age in years at sampling; NULL when unknown (counted in class ``0`` only)
result VARCHAR ``P``, ``N``, ``I`` or ``X``; only P and N are conclusive and counted
area   VARCHAR optional: a finer area (postcode or commune) for the classes below the
               département
====== ======= ==============================================================================

fed as a Parquet or CSV path, a dict of NumPy arrays, or a DuckDB relation (:func:`load`).

Counting (SpF's method from 8 Dec 2020, §2.3): a person is counted once a day; a person-day is
*positive* when any of the day's results is; it counts in ``P`` when the person had no
positive in the previous 60 days ("first positive in more than 60 days"), and in ``T`` (persons
tested) unless the person was positive in the previous 60 days. So ``P <= T`` and the
positivity rate excludes people already known positive.

Outputs (``;``-separated, ISO dates, as SpF): ``sp-pos-quot-dep.csv`` (``dep;jour;P;T;cl_age90;
pop``), ``sp-pos-quot-reg.csv``, ``sp-pos-quot-fra.csv`` (``fra;jour;P;T;cl_age90;pop``),
``indicateurs-dep.csv``, ``indicateurs-reg.csv`` and ``indicateurs-fra.csv``
(``dep;jour;tx_incid;tx_pos;tx_dep``: over the 7 days ending on ``jour``, incidence and testing
per 100,000 inhabitants, positivity in percent), and when areas are given
``sg-area-classes.csv`` (rates as classes, blanked under the small-number thresholds).

Population file: ``dep;cl_age90;pop`` (``cl_age90`` ``0`` for all ages; ``9`` is read as
``09``); rows with ``dep`` = ``FR`` give France's population (else the sum of the
départements'), which matters because SpF's France counts include people whose département is
unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from sidep.territory import DATA

SHIPPED_POPULATION = DATA / "population_dep_2020.csv"
"""The 101 départements' populations on 1 January 2020, all ages only (``sidep/data/README.md``)."""

DEDUP_DAYS = 60
"""A new positive counts when the person's previous positive is more than this many days old."""

WINDOW_DAYS = 7

AGE_CLASSES = ("09", "19", "29", "39", "49", "59", "69", "79", "89", "90")
"""``cl_age90``: 0-9 is ``09`` ... 80-89 is ``89``, 90 and over ``90``; ``0`` is all ages."""

FRANCE = "FR"

# SpF's classes of the infra-departmental files (docs/health.md §2.4): lower bounds, per 100,000.
TI_BOUNDS = (0.0, 10.0, 20.0, 50.0, 150.0, 250.0, 500.0, 1000.0)
TD_BOUNDS = (0.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0)
"""Testing-rate classes: an assumption of ours (the published bounds were not found)."""
TP_BOUNDS = (0.0, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0)
"""Positivity classes in percent: an assumption of ours (the published bounds were not found)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Below the département, a rate is published as a class, and blanked when its area has
    fewer than ``min_population`` inhabitants, or fewer than ``min_positives`` positives or
    ``min_tested`` persons tested over the 7 days (SpF's exact rule is unpublished: these are
    settings)."""

    min_population: int = 5000
    min_positives: int = 5
    min_tested: int = 10
    ti_bounds: tuple[float, ...] = TI_BOUNDS
    tp_bounds: tuple[float, ...] = TP_BOUNDS
    td_bounds: tuple[float, ...] = TD_BOUNDS


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`compute` wrote: file name -> number of data rows."""

    rows: dict[str, int] = field(default_factory=dict)


Source = str | Path | Mapping[str, Any] | duckdb.DuckDBPyRelation


def connect(
    threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection (spilling to a temporary directory when memory is short)."""
    con = duckdb.connect(":memory:")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit is not None:
        con.execute("SET memory_limit = ?", [memory_limit])
    con.execute("SET preserve_insertion_order = false")
    return con


def load(con: duckdb.DuckDBPyConnection, source: Source, name: str = "tests") -> None:
    """Make ``source`` the table (or view) ``name`` with the input columns (module docstring)."""
    if isinstance(source, duckdb.DuckDBPyRelation):
        source.create_view(name, replace=True)
        return
    if isinstance(source, Mapping):
        arrays = {
            key: value.astype("datetime64[s]")
            if isinstance(value, np.ndarray) and value.dtype.kind == "M"
            else value
            for key, value in source.items()
        }
        con.register(f"{name}_arrays", arrays)
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {name}_arrays")
        return
    path = str(source)
    reader = "read_parquet" if path.endswith(".parquet") else "read_csv"
    if reader == "read_csv":
        check_header(path, ("person", "day", "dep", "age", "result"), "tests file")
    options = "" if reader == "read_parquet" else ", delim = ';', header = true, all_varchar = true"
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {reader}({_quote(path)}{options})")


class InputError(ValueError):
    """An input file that cannot be read as its layout says, in one line naming what lacks."""


def check_header(path: str | Path, columns: Sequence[str], what: str) -> None:
    """Refuse a ``;``-separated file whose header lacks one of ``columns`` (InputError)."""
    try:
        with Path(path).open(encoding="utf-8-sig", errors="replace") as file:
            first = file.readline()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    found = {c.strip().strip('"').lower() for c in first.rstrip("\r\n").split(";")}
    missing = [c for c in columns if c not in found]
    if missing:
        raise InputError(
            f"the {what} {path} lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (its header must hold {';'.join(columns)})"
        )


def load_population(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """The table ``population(dep, cl_age90, pop)`` from a ``dep;cl_age90;pop`` file
    (InputError naming the missing columns)."""
    check_header(path, ("dep", "cl_age90", "pop"), "population file")
    con.execute(
        f"""
        CREATE OR REPLACE TABLE population AS
        SELECT CAST(dep AS VARCHAR) AS dep,
               CASE WHEN CAST(cl_age90 AS VARCHAR) IN ('0', '00') THEN '0'
                    ELSE lpad(CAST(cl_age90 AS VARCHAR), 2, '0') END AS cl_age90,
               CAST(replace(CAST(pop AS VARCHAR), ',', '.') AS DOUBLE) AS pop
        FROM read_csv({_quote(path)}, delim = ';', header = true, all_varchar = true)
        """
    )


def load_regions(con: duckdb.DuckDBPyConnection) -> None:
    """The table ``regions(dep, reg)`` of the 101 départements (``sidep/data``)."""
    con.execute(
        "CREATE OR REPLACE TABLE regions AS SELECT code AS dep, region AS reg "
        f"FROM read_csv({_quote(DATA / 'departements.csv')}, header = true, all_varchar = true)"
    )


def _quote(path: str | Path) -> str:
    """A SQL string literal of a path (DuckDB cannot take a parameter in a view or COPY)."""
    return "'" + str(path).replace("'", "''") + "'"


_AGE = "TRY_CAST(age AS INTEGER)"
_CLASS_CODE = f"CAST(CASE WHEN {_AGE} BETWEEN 0 AND 130 THEN LEAST({_AGE} // 10, 9) END AS TINYINT)"
"""An age's class as a small number, 0 (0-9) ... 8 (80-89), 9 (90 and over): cheap to carry
through the big aggregation."""
_CLASS_NAME = "CASE WHEN cl = 9 THEN '90' ELSE lpad(CAST(cl * 10 + 9 AS VARCHAR), 2, '0') END"
"""The ``cl_age90`` of a class number ``cl`` (NULL stays NULL)."""


def count_persons(
    con: duckdb.DuckDBPyConnection,
    *,
    until: date | None = None,
    since: date | None = None,
    dedup_days: int = DEDUP_DAYS,
    with_area: bool = False,
) -> None:
    """From the table ``tests``, the table ``counts(dep, area, day, cl, P, T)``: how many
    person-days count in P and in T (module docstring) per département, area, day and age class
    (``cl`` NULL for an unknown age; ``area`` NULL unless ``with_area``)."""
    area = "min(CAST(area AS VARCHAR))" if with_area else "CAST(NULL AS VARCHAR)"
    day = "TRY_CAST(day AS DATE)"
    bounds = [f"{day} IS NOT NULL"]
    if until is not None:
        bounds.append(f"{day} <= DATE '{until.isoformat()}'")
    where = " AND ".join(["result IN ('P', 'N')", *bounds])
    gap = int(dedup_days)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE positives AS SELECT DISTINCT person, {day} AS day "
        f"FROM tests WHERE {where} AND result = 'P'"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE positive_persons AS SELECT DISTINCT person FROM positives"
    )
    # Départements as small numbers through the big aggregation (its state stays small).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE dep_codes AS SELECT dep, "
        "CAST(row_number() OVER (ORDER BY dep) AS SMALLINT) AS k FROM "
        "(SELECT DISTINCT CAST(dep AS VARCHAR) AS dep FROM tests WHERE dep IS NOT NULL)"
    )
    # Persons never positive count in T every day they are tested, and never in P: their
    # person-days are counted straight from the tests (an anti join, no per-person work). For
    # the others (a small share), the latest positive strictly before each person-day comes
    # from an as-of join over their positives, instead of a window over every person-day.
    since_filter = f"WHERE day >= DATE '{since.isoformat()}'" if since is not None else ""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE counts AS
        WITH never AS (
            SELECT k, area, day, cl, 0 AS P, count(*) AS T FROM (
                SELECT person, {day} AS day, min(d.k) AS k, min({_CLASS_CODE}) AS cl,
                       {area} AS area
                FROM tests ANTI JOIN positive_persons q ON tests.person = q.person
                LEFT JOIN dep_codes d ON d.dep = CAST(tests.dep AS VARCHAR)
                WHERE {where}
                GROUP BY person, {day}
            ) {since_filter}
            GROUP BY ALL
        ),
        ever_days AS (
            SELECT person, {day} AS day, bool_or(result = 'P') AS pos,
                   min(d.k) AS k, min({_CLASS_CODE}) AS cl, {area} AS area
            FROM tests SEMI JOIN positive_persons q ON tests.person = q.person
            LEFT JOIN dep_codes d ON d.dep = CAST(tests.dep AS VARCHAR)
            WHERE {where}
            GROUP BY person, {day}
        ),
        ever AS (
            SELECT d.k, d.area, d.day, d.cl,
                   count_if(d.pos AND (p.day IS NULL OR d.day - p.day > {gap})) AS P,
                   count_if(p.day IS NULL OR d.day - p.day > {gap}) AS T
            FROM (SELECT * FROM ever_days {since_filter}) d
            ASOF LEFT JOIN positives p ON d.person = p.person AND d.day > p.day
            GROUP BY ALL
        ),
        both_kinds AS (SELECT * FROM never UNION ALL SELECT * FROM ever)
        SELECT d.dep, b.area, b.day, {_CLASS_NAME.replace("cl", "b.cl")} AS cl,
               sum(b.P)::BIGINT AS P, sum(b.T)::BIGINT AS T
        FROM both_kinds b LEFT JOIN dep_codes d ON d.k = b.k
        GROUP BY ALL
        """
    )
    con.execute("DROP TABLE positives; DROP TABLE positive_persons; DROP TABLE dep_codes")


def daily_counts(con: duckdb.DuckDBPyConnection) -> None:
    """Tables ``daily_dep``, ``daily_reg``, ``daily_fra`` (``zone, jour, cl_age90, P, T, pop``),
    one row per zone, day and age class (zeros included) from the first to the last day."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE agg AS
        SELECT dep, day, COALESCE(cl, '?') AS cl, sum(P)::BIGINT AS P, sum(T)::BIGINT AS T
        FROM counts GROUP BY dep, day, cl
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE calendar AS
        SELECT CAST(range AS DATE) AS jour
        FROM range((SELECT min(day) FROM agg), (SELECT max(day) FROM agg) + INTERVAL 1 DAY,
                   INTERVAL 1 DAY)
        """
    )
    classes = ", ".join(f"('{c}')" for c in (*AGE_CLASSES, "0"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE classes AS SELECT * FROM (VALUES {classes}) c(cl)")
    # by département: the départements of the population file and of the data
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE deps AS
        SELECT dep FROM population WHERE dep <> 'FR'
        UNION SELECT dep FROM agg WHERE dep IS NOT NULL
        """
    )
    _by_zone(con, "daily_dep", "deps", "population", "agg")
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE reg_population AS
        SELECT r.reg AS dep, p.cl_age90, sum(p.pop) AS pop
        FROM population p JOIN regions r USING (dep) GROUP BY r.reg, p.cl_age90
        """
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE regs AS SELECT DISTINCT reg AS dep FROM regions "
        "WHERE dep IN (SELECT dep FROM deps)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE agg_reg AS SELECT r.reg AS dep, a.day, a.cl, "
        "sum(a.P)::BIGINT AS P, sum(a.T)::BIGINT AS T FROM agg a JOIN regions r USING (dep) "
        "GROUP BY r.reg, a.day, a.cl"
    )
    _by_zone(con, "daily_reg", "regs", "reg_population", "agg_reg")
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fra_population AS
        SELECT 'FR' AS dep, cl_age90,
               COALESCE(max(pop) FILTER (WHERE dep = 'FR'), sum(pop) FILTER (WHERE dep <> 'FR'))
               AS pop
        FROM population GROUP BY cl_age90
        """
    )
    con.execute("CREATE OR REPLACE TEMP TABLE fra AS SELECT 'FR' AS dep")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE agg_fra AS SELECT 'FR' AS dep, day, cl, "
        "sum(P)::BIGINT AS P, sum(T)::BIGINT AS T FROM agg GROUP BY day, cl"
    )
    _by_zone(con, "daily_fra", "fra", "fra_population", "agg_fra")


def _by_zone(
    con: duckdb.DuckDBPyConnection, table: str, zones: str, population: str, agg: str
) -> None:
    """One row per zone of ``zones``, day of the calendar and age class (``0`` all ages, which
    includes unknown ages), with the counts of ``agg`` (zeros where none) and the population."""
    column = "dep"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH grid AS (
            SELECT z.{column} AS zone, c.jour, k.cl
            FROM {zones} z CROSS JOIN calendar c CROSS JOIN classes k
        ),
        counts AS (
            SELECT {column} AS zone, day, cl, P, T FROM {agg} WHERE cl <> '?'
            UNION ALL
            SELECT {column} AS zone, day, '0' AS cl, sum(P), sum(T) FROM {agg}
            GROUP BY {column}, day
        ),
        by_class AS (
            SELECT g.zone, g.jour, g.cl,
                   COALESCE(a.P, 0)::BIGINT AS P, COALESCE(a.T, 0)::BIGINT AS T
            FROM grid g LEFT JOIN counts a ON a.zone = g.zone AND a.day = g.jour AND a.cl = g.cl
        )
        SELECT b.zone, b.jour, b.cl AS cl_age90, b.P, b.T, p.pop
        FROM by_class b LEFT JOIN {population} p ON p.dep = b.zone AND p.cl_age90 = b.cl
        """
    )


def rates(con: duckdb.DuckDBPyConnection, daily: str, out: str) -> None:
    """Table ``out(zone, jour, tx_incid, tx_pos, tx_dep)`` from a daily table: all ages, over
    the 7 days ending on ``jour``, from the 7th day of data on."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {out} AS
        WITH w AS (
            SELECT zone, jour, pop,
                   sum(P) OVER s AS p7, sum(T) OVER s AS t7, count(*) OVER s AS n
            FROM {daily} WHERE cl_age90 = '0'
            WINDOW s AS (PARTITION BY zone ORDER BY jour
                         ROWS BETWEEN {WINDOW_DAYS - 1} PRECEDING AND CURRENT ROW)
        )
        SELECT zone, jour,
               CASE WHEN pop > 0 THEN 100000.0 * p7 / pop END AS tx_incid,
               CASE WHEN t7 > 0 THEN 100.0 * p7 / t7 END AS tx_pos,
               CASE WHEN pop > 0 THEN 100000.0 * t7 / pop END AS tx_dep
        FROM w WHERE n = {WINDOW_DAYS}
        """
    )


def area_classes(
    con: duckdb.DuckDBPyConnection, area_population: str | Path, thresholds: Thresholds
) -> None:
    """Table ``area_classes(area, semaine_glissante, ti_classe, tp_classe, td_classe)``: 7-day
    rates below the département as classes, blank under the small-number thresholds."""
    check_header(area_population, ("area", "pop"), "area population file")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE area_population AS SELECT CAST(area AS VARCHAR) AS area, "
        "CAST(replace(CAST(pop AS VARCHAR), ',', '.') AS DOUBLE) AS pop "
        f"FROM read_csv({_quote(area_population)}, delim = ';', header = true, "
        "all_varchar = true)"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE area_classes AS
        WITH daily AS (
            SELECT a.area, c.jour,
                   COALESCE(sum(k.P), 0) AS P, COALESCE(sum(k.T), 0) AS T
            FROM area_population a CROSS JOIN calendar c
            LEFT JOIN counts k ON k.area = a.area AND k.day = c.jour
            GROUP BY a.area, c.jour
        ),
        w AS (
            SELECT area, jour, sum(P) OVER s AS p7, sum(T) OVER s AS t7, count(*) OVER s AS n
            FROM daily
            WINDOW s AS (PARTITION BY area ORDER BY jour
                         ROWS BETWEEN {WINDOW_DAYS - 1} PRECEDING AND CURRENT ROW)
        )
        SELECT w.area,
               strftime(w.jour - INTERVAL {WINDOW_DAYS - 1} DAY, '%Y-%m-%d') || '-' ||
               strftime(w.jour, '%Y-%m-%d') AS semaine_glissante,
               w.p7, w.t7, a.pop,
               (a.pop >= {thresholds.min_population}
                AND w.p7 >= {thresholds.min_positives}
                AND w.t7 >= {thresholds.min_tested}) AS shown,
               100000.0 * w.p7 / a.pop AS ti, 100.0 * w.p7 / nullif(w.t7, 0) AS tp,
               100000.0 * w.t7 / a.pop AS td
        FROM w JOIN area_population a USING (area) WHERE w.n = {WINDOW_DAYS} AND a.pop > 0
        """
    )
    for name, bounds in (
        ("ti", thresholds.ti_bounds),
        ("tp", thresholds.tp_bounds),
        ("td", thresholds.td_bounds),
    ):
        con.execute(
            f"ALTER TABLE area_classes ADD COLUMN {name}_classe VARCHAR; "
            f"UPDATE area_classes SET {name}_classe = CASE WHEN NOT shown OR {name} IS NULL "
            f"THEN '' {_class_case(name, bounds)} END"
        )


def _class_case(column: str, bounds: Sequence[float]) -> str:
    def fmt(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else str(x)

    parts = []
    for i, low in enumerate(bounds):
        label = f"[{fmt(low)};{fmt(bounds[i + 1])}[" if i + 1 < len(bounds) else f"[{fmt(low)};Max]"
        parts.append(f"WHEN {column} >= {low} THEN '{label}'")
    return " ".join(reversed(parts))


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    con.execute(f"COPY ({query}) TO {_quote(path)} (HEADER, DELIMITER ';')")
    result = con.execute(f"SELECT count(*) FROM ({query})").fetchone()
    return int(result[0]) if result else 0


def write(con: duckdb.DuckDBPyConnection, out_dir: str | Path, *, with_areas: bool) -> Written:
    """Write the SpF files into ``out_dir`` (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    order = "ORDER BY zone, jour, cl_age90 = '0', cl_age90"
    for name, table, label in (
        ("sp-pos-quot-dep.csv", "daily_dep", "dep"),
        ("sp-pos-quot-reg.csv", "daily_reg", "reg"),
        ("sp-pos-quot-fra.csv", "daily_fra", "fra"),
    ):
        rows[name] = _copy(
            con,
            f"SELECT zone AS {label}, strftime(jour, '%Y-%m-%d') AS jour, P, T, cl_age90, pop "
            f"FROM {table} {order}",
            out / name,
        )
    for name, table, label in (
        ("indicateurs-dep.csv", "rates_dep", "dep"),
        ("indicateurs-reg.csv", "rates_reg", "reg"),
        ("indicateurs-fra.csv", "rates_fra", "fra"),
    ):
        rows[name] = _copy(
            con,
            f"SELECT zone AS {label}, strftime(jour, '%Y-%m-%d') AS jour, tx_incid, tx_pos, "
            f"tx_dep FROM {table} ORDER BY zone, jour",
            out / name,
        )
    if with_areas:
        rows["sg-area-classes.csv"] = _copy(
            con,
            "SELECT area, semaine_glissante, ti_classe, tp_classe, td_classe FROM area_classes "
            "ORDER BY area, semaine_glissante",
            out / "sg-area-classes.csv",
        )
    return Written(rows)


def compute(
    source: Source,
    population: str | Path,
    out_dir: str | Path,
    *,
    until: date | None = None,
    since: date | None = None,
    area_population: str | Path | None = None,
    thresholds: Thresholds | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Written:
    """Everything: read the tests and the population, count, compute the rates, write the
    files. ``until`` is the last sampling day counted (SpF published up to 3 days before the
    publication day); ``since`` the first day written (earlier days still count for the 60-day
    rule)."""
    con = con or connect()
    csv_source = isinstance(source, str | Path) and not str(source).endswith(".parquet")
    if area_population is not None and csv_source:
        check_header(str(source), ("area",), "tests file")
    load(con, source)
    load_population(con, population)
    load_regions(con)
    with_areas = area_population is not None
    count_persons(con, until=until, since=since, with_area=with_areas)
    daily_counts(con)
    rates(con, "daily_dep", "rates_dep")
    rates(con, "daily_reg", "rates_reg")
    rates(con, "daily_fra", "rates_fra")
    if area_population is not None:
        area_classes(con, area_population, thresholds or Thresholds())
    return write(con, out_dir, with_areas=with_areas)
