"""Benchmark of SI-VIC at national scale: ``python -m sivic.bench [--database URL]
[--patients 30000] [--establishments 3000] [--minutes 10] [--per-minute 300] [--backlog N]``.
Prints figures; it is not a test.

A synthetic national set: ``--establishments`` establishments spread over the 101
départements, ``--patients`` patients admitted 31 to 60 days before, loaded through the
intake path (one file per establishment, as hospitals send them); optionally ``--backlog``
status changes over the 30 days before (files of 2,000 lines), the history a snapshot reads.
Then ``--minutes`` minutes of activity, each minute ``--per-minute`` status changes (moves
between units, returns home, deaths, transfers to another establishment, new admissions
keeping the count steady), sent as each establishment's file of the minute; the minutes run
back to back (compressed time), so the achieved rate is compared with the one needed. Then
the day's snapshot (the three files computed from the whole history, checked) and its
publication (files written), timed. Patients are identified by a synthetic INS, so a
transfer finds the same patient.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from kit.audit import Actor
from sivic.access import ADMIN, Access
from sivic.app import new_service
from sivic.intake import HEADER
from sivic.service import SivicService
from sivic.settings import Settings
from sivic.territory import departements

OPERATOR = Access(ADMIN, "")
BENCH = Actor("bench", ADMIN)
HEAD = ";".join(HEADER)
SECRET = "the benchmark's secret, long enough to derive keys from"


@dataclass
class Stay:
    """A synthetic patient's current line."""

    number: int
    finess: str
    dep: str
    birth: date
    sex: str
    unit: str
    status: str
    day: date

    def line(self) -> str:
        return (
            f"{self.finess};{self.dep};{self.ins()};{self.birth};{self.sex};{self.unit};"
            f"{self.status};{self.day};for"
        )

    def ins(self) -> str:
        """A synthetic NIR with a valid key (born in Paris): transfers are matched on it."""
        first = f"{2 if self.sex == 'F' else 1}{self.birth:%y%m}75{self.number:06d}"
        return f"{first}{97 - int(first) % 97:02d}"


def files_of(stays: list[Stay]) -> dict[str, str]:
    """One file per establishment."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for s in stays:
        by_site[s.finess].append(s.line())
    return {site: "\n".join([HEAD, *lines]) for site, lines in by_site.items()}


def activity(
    rng: random.Random,
    stays: list[Stay],
    sites: list[tuple[str, str]],
    count: int,
    day: date,
    numbers: Iterator[int],
) -> list[Stay]:
    """``count`` status changes of hospitalised patients on ``day``: a move between units,
    a return home or a death (each followed by a new admission, keeping the count steady), or
    a transfer (the origin's line, then the destination's)."""
    batch: list[Stay] = []
    for index in rng.sample(range(len(stays)), count):
        s = stays[index]
        s.day = day
        roll = rng.random()
        if roll < 0.35:
            s.unit = rng.choice(("conv", "crit", "ssr_usld", "other"))
        elif roll < 0.7:
            s.status = "home"
        elif roll < 0.8:
            s.status = "deceased"
        else:
            s.status = "transferred"
            batch.append(Stay(**{**s.__dict__}))
            s.finess, s.dep = sites[rng.randrange(len(sites))]
            s.status = "hospitalised"
        batch.append(Stay(**{**s.__dict__}))
        if s.status in ("home", "deceased"):
            finess, dep = sites[rng.randrange(len(sites))]
            fresh = Stay(next(numbers), finess, dep, s.birth, s.sex, "conv", "hospitalised", day)
            stays[index] = fresh
            batch.append(fresh)
    return batch


async def send(service: SivicService, batch: list[Stay], *, by_site: bool = True) -> None:
    """The batch as hospitals send it: the origins' "transferred" lines first, then the rest;
    one file per establishment (``by_site``) or one file for all."""
    first = [b for b in batch if b.status == "transferred"]
    rest = [b for b in batch if b.status != "transferred"]
    for group in (first, rest):
        if by_site:
            texts = list(files_of(group).values())
        else:
            texts = ["\n".join([HEAD, *(b.line() for b in group)])]
        for text in texts:
            report = await service.import_text(OPERATOR, BENCH, text)
            assert not report.refused, report.refused[:3]


async def main(
    database: str,
    patients: int,
    establishments: int,
    minutes: int,
    per_minute: int,
    backlog: int,
) -> None:
    today = date(2020, 4, 15)
    clock = datetime(2020, 4, 15, 18, tzinfo=UTC).timestamp()
    service = new_service(Settings(database=database, secret=SECRET), lambda: clock)
    await service.open()
    rng = random.Random(2020)
    deps = list(departements())
    sites = [
        (f"{deps[i % len(deps)][:2]}{i:07d}", deps[i % len(deps)]) for i in range(establishments)
    ]
    stays = []
    for n in range(patients):
        finess, dep = sites[n % len(sites)]
        stays.append(
            Stay(
                n,
                finess,
                dep,
                date(1930, 1, 1) + timedelta(days=rng.randrange(80 * 365)),
                rng.choice("MMFFU"),
                rng.choice(("conv", "conv", "conv", "crit", "ssr_usld", "other")),
                "hospitalised",
                today - timedelta(days=rng.randrange(31, 61)),
            )
        )
    load = os.getloadavg()
    print(
        f"{patients} patients, {len(sites)} establishments on {service.store.db.backend} "
        f"(load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} CPUs)"
    )
    t = time.perf_counter()
    for text in files_of(stays).values():
        report = await service.import_text(OPERATOR, BENCH, text)
        assert not report.refused, report.refused[:3]
    loaded = time.perf_counter() - t
    print(f"initial load: {len(sites)} files in {loaded:.1f} s ({patients / loaded:.0f} lines/s)")

    numbers = iter(range(patients, 10**6))
    if backlog:
        t = time.perf_counter()
        per_day = backlog // 30
        for back in range(30, 0, -1):
            day = today - timedelta(days=back)
            for start in range(0, per_day, 2_000):
                batch = activity(rng, stays, sites, min(2_000, per_day - start), day, numbers)
                await send(service, batch, by_site=False)
        took = time.perf_counter() - t
        print(f"backlog: {30 * per_day} status changes over 30 days applied in {took:.1f} s")
    changed = 0
    minute_times = []
    for _ in range(minutes):
        batch = activity(rng, stays, sites, per_minute, today, numbers)
        t = time.perf_counter()
        await send(service, batch)
        minute_times.append(time.perf_counter() - t)
        changed += len(batch)
    event = await service.covid_event()
    print(f"patients registered: {await service.store.count_patients(event.id)}")
    if minutes:
        worst = max(minute_times)
        print(
            f"{minutes} minutes of activity, {changed} status lines: "
            f"{sum(minute_times):.1f} s in all, worst minute {worst:.2f} s "
            f"({'keeps up' if worst < 60 else 'does NOT keep up'} with one minute)"
        )
    t = time.perf_counter()
    snapshot = await service.snapshot(today)
    computed = time.perf_counter() - t
    totals = snapshot.totals()
    print(
        f"snapshot of {today} (today: the current states): {computed:.2f} s; France hosp "
        f"{totals.hosp}, rea {totals.rea}, rad {totals.rad}, dc {totals.dc}"
    )
    yesterday = today - timedelta(days=1)
    t = time.perf_counter()
    await service.snapshot(yesterday)
    computed = time.perf_counter() - t
    print(f"snapshot of {yesterday} (a past day: the states from the history): {computed:.2f} s")
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        published = await service.publish(today, Path(out))
        took = time.perf_counter() - t
        assert not published.problems, published.problems[:3]
        print(f"publication (snapshot, checks, three files written): {took:.2f} s")
    t = time.perf_counter()
    await service.counts(OPERATOR, dep="75")
    print(
        f"counts of one département (the board's call): {1000 * (time.perf_counter() - t):.0f} ms"
    )
    await service.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--patients", type=int, default=30_000)
    parser.add_argument("--establishments", type=int, default=3_000)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--per-minute", type=int, default=300)
    parser.add_argument(
        "--backlog", type=int, default=0, help="status changes over the 30 days before"
    )
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    asyncio.run(
        main(url, args.patients, args.establishments, args.minutes, args.per_minute, args.backlog)
    )
