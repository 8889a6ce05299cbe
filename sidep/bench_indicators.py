"""Benchmark of the indicators: a synthetic national year of test results, every département,
age class and day (issue 17: about 150 million results in under 2 minutes on a 2-core machine,
within its memory).

    python -m sidep.bench_indicators                      # 150 million results (minutes)
    python -m sidep.bench_indicators --results 10000000   # a quick run

The results are generated inside DuckDB over ``range()`` (never held in Python) and written to
a Parquet file first, untimed, as the service would export them: a person is a number below
``--persons`` (France's population by default, so people are tested about twice a year), with
a département and an age of their own; a test falls on a uniform day of the year and is
positive with probability ``--positivity``. The timed part reads that file and computes and
writes every indicator file. The population file is synthetic too (every département the same
size). Figures go to docs/sidep-indicators.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from sidep import indicators
from sidep.territory import departements


def synthetic_tests(
    con: object, results: int, persons: int, positivity: float, year: int = 2021
) -> None:
    """The view ``tests`` of ``results`` synthetic tests (module docstring)."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    deps = ", ".join(f"'{d}'" for d in sorted(departements()))
    threshold = int(positivity * 1_000_000)
    con.execute(
        f"""
        CREATE OR REPLACE VIEW tests AS
        WITH t AS (
            SELECT CAST(hash(i) % {int(persons)} AS BIGINT) AS person,
                   CAST(hash(i + 7919) % 365 AS INTEGER) AS d,
                   hash(i + 104729) % 1000000 AS draw
            FROM range({int(results)}) r(i)
        )
        SELECT person,
               DATE '{year}-01-01' + d AS day,
               ([{deps}])[1 + CAST(hash(person + 1) % {len(departements())} AS INTEGER)] AS dep,
               CAST(hash(person + 2) % 100 AS INTEGER) AS age,
               CASE WHEN draw < {threshold} THEN 'P' ELSE 'N' END AS result
        FROM t
        """
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def synthetic_population(path: Path) -> None:
    rows = ["dep;cl_age90;pop"]
    for dep in sorted(departements()):
        for cl in indicators.AGE_CLASSES:
            rows.append(f"{dep};{cl};66000")
        rows.append(f"{dep};0;660000")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=int, default=150_000_000)
    parser.add_argument("--persons", type=int, default=67_000_000)
    parser.add_argument("--positivity", type=float, default=0.07)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--memory-limit",
        default="16GB",
        help="DuckDB's memory limit (default 16GB: two thirds of this 24 GB machine; the person-"
        "day aggregation of 150 million results then stays in memory instead of spilling)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sidep-bench-") as tmp:
        out = Path(tmp)
        population = out / "population.csv"
        synthetic_population(population)
        con = indicators.connect(threads=args.threads, memory_limit=args.memory_limit)
        con.execute(f"SET temp_directory = '{out / 'spill'}'")
        synthetic_tests(con, args.results, args.persons, args.positivity)
        parquet = out / "tests.parquet"
        t = time.perf_counter()
        con.execute(f"COPY (SELECT * FROM tests) TO '{parquet}' (FORMAT parquet)")
        generated = time.perf_counter() - t
        size_mb = parquet.stat().st_size / 1e6
        indicators.load(con, parquet)
        indicators.load_population(con, population)
        indicators.load_regions(con)
        phases: list[tuple[str, float]] = []
        cpu_start = _cpu()
        start = time.perf_counter()
        indicators.count_persons(con)
        phases.append(("count persons (dedup, 60-day rule)", time.perf_counter() - start))
        t = time.perf_counter()
        indicators.daily_counts(con)
        indicators.rates(con, "daily_dep", "rates_dep")
        indicators.rates(con, "daily_reg", "rates_reg")
        indicators.rates(con, "daily_fra", "rates_fra")
        phases.append(("daily counts and 7-day rates", time.perf_counter() - t))
        t = time.perf_counter()
        written = indicators.write(con, out / "files", with_areas=False)
        phases.append(("write the SpF files", time.perf_counter() - t))
        total = time.perf_counter() - start
        cpu = _cpu() - cpu_start
        row = con.execute("SELECT sum(P), sum(T) FROM counts").fetchone()
        positives, tested = row if row else (0, 0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"results: {args.results:,} (persons {args.persons:,}, positivity {args.positivity})")
    print(f"generated into Parquet ({size_mb:,.0f} MB) in {generated:.1f} s, untimed")
    print(f"counted: P (first positives in 60 days) {positives:,}; T (persons tested) {tested:,}")
    for name, seconds in phases:
        print(f"  {name}: {seconds:.1f} s")
    print(
        f"CPU time: {cpu:.1f} s (user + system; on an idle machine the wall time is about "
        f"CPU / threads), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"total: {total:.1f} s ({args.results / total / 1e6:.2f} M results/s), "
        f"threads {args.threads}, peak RSS {peak_mb:,.0f} MB"
    )
    for name, rows in written.rows.items():
        print(f"  {name}: {rows:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
