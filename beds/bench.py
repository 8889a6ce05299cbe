"""Benchmark of the bed service at national scale: ``python -m beds.bench [--database URL]
[--seconds 30]``. Prints figures; it is not a test.

A synthetic national set: the reference sites (``beds/data/establishments.csv``) copied with
positions jittered by up to ±0.4° and their département kept, until there are ``--units``
units (3 kinds in turn); every unit is updated once a minute (``units / 60`` updates a second,
one transaction each, audited), while dashboards (region, France by region), the tension API's
figures and the nearest-bed search are asked in a loop; latencies are those of the service
calls (database included, HTTP excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import replace

from beds.access import Access
from beds.app import new_service
from beds.model import BedKind, Counts, Establishment, Source
from beds.settings import Settings
from beds.store import NewUpdate
from kit.audit import Actor

NATIONAL = Access("national", "national")
BENCH = Actor("bench", "national")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(database: str, units: int, seconds: float) -> None:
    service = new_service(Settings(database=database, stale_minutes=5))
    await service.open()
    await service.load_establishments(with_units=False)
    rng = random.Random(2020)
    base = await service.store.establishments_in(None)
    places: list[Establishment] = []
    while len(places) * 3 < units:
        b = base[len(places) % len(base)]
        places.append(
            replace(
                b,
                finess=f"{len(places):09d}",
                lat=b.lat + rng.uniform(-0.4, 0.4),
                lon=b.lon + rng.uniform(-0.4, 0.4),
            )
        )
    await service.store.put_establishments(places, BENCH)
    ids = []
    for i in range(units):
        kind = list(BedKind)[i % 3]
        unit = await service.store.add_unit(
            places[i // 3].finess, kind.value, kind.value, kind, rng.randint(6, 40), BENCH
        )
        assert unit is not None
        ids.append(unit.id)
    print(f"{units} units in {len(places)} establishments on {service.store.db.backend}")
    timings: dict[str, list[float]] = {
        k: [] for k in ("update", "dashboard reg:11", "dashboard fr", "tension fr", "nearest")
    }
    stop = time.perf_counter() + seconds
    rate = units / 60

    async def updater() -> None:
        sent = 0
        started = time.perf_counter()
        while time.perf_counter() < stop:
            unit_id = ids[sent % len(ids)]
            installed = 20
            occupied = rng.randint(0, installed)
            counts = Counts(installed, 0, occupied, installed - occupied, rng.randint(0, occupied))
            t = time.perf_counter()
            await service.store.record(
                [NewUpdate(unit_id, counts, service.now(), Source.API)], BENCH
            )
            timings["update"].append(time.perf_counter() - t)
            sent += 1
            delay = started + sent / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async def reader() -> None:
        while time.perf_counter() < stop:
            for name, call in (
                ("dashboard reg:11", lambda: service.dashboard(NATIONAL, "reg:11")),
                ("dashboard fr", lambda: service.dashboard(NATIONAL, "fr")),
                ("tension fr", lambda: service.tension(NATIONAL, "fr")),
                (
                    "nearest",
                    lambda: service.nearest(Access("samu", "dep:75"), BedKind.REA, 48.84, 2.36, 5),
                ),
            ):
                t = time.perf_counter()
                await call()
                timings[name].append(time.perf_counter() - t)

    await asyncio.gather(updater(), reader())
    print(f"{seconds:.0f} s, target {rate:.0f} updates/s; latencies in ms")
    print(f"{'call':<18}{'count':>7}{'p50':>9}{'p99':>9}{'max':>9}")
    for name, values in timings.items():
        print(
            f"{name:<18}{len(values):>7}{percentile(values, 0.5):>9.1f}"
            f"{percentile(values, 0.99):>9.1f}{1000 * max(values):>9.1f}"
        )
    achieved = len(timings["update"]) / seconds
    print(
        f"updates achieved: {achieved:.1f}/s "
        f"(mean {1000 * statistics.mean(timings['update']):.1f} ms)"
    )
    await service.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    asyncio.run(main(url, args.units, args.seconds))
