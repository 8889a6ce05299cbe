"""Benchmark of the bed service at national scale: ``python -m beds.bench [--database URL]
[--seconds 20] [--units 3000] [--readers 2] [--http]``. Prints figures; it is not a test.

A synthetic national set: the reference sites (``beds/data/establishments.csv``) copied with
positions jittered by up to ±0.4° and their département kept, until there are ``--units``
units (3 kinds in turn). Every unit is updated once a minute (``units / 60`` updates a second,
each sent on time whether or not the previous ones have finished, as independent hospitals
would; through ``BedService.update``, audited), while ``--readers`` loops ask the dashboards
(region, France by region), the tension figures and the nearest-bed search; latencies are
those of the service calls (database included, HTTP excluded), or with ``--http`` those of
real HTTP requests from a client process of their own (one per phase) to the service on a
socket of this one (the regional dashboard as its HTML page for a signed-in national user,
the others through the JSON API with an API key, updates POSTed as JSON): client, server and
database share the machine.

It runs twice on the same data, one after the other, and prints both:

- **before**: figures summed in Python over one object per unit, one transaction per update
  (what the service did first);
- **SQL, no reuse**: as after, but the figures are summed again for every call (what the
  reuse adds, by difference);
- **after**: figures summed by the database (``GROUP BY`` département over ``beds_current``,
  one row per unit), reused while nothing is recorded (``figures_cache_seconds``, concurrent
  readers sharing one query), updates arriving together committed in one transaction.

The load average and the number of processors are printed with each phase: the figures mean
little without them on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import aiohttp
import pyotp
from aiohttp import web

from beds.access import Access
from beds.app import API_KEY_PREFIX, create_app, mount, new_service
from beds.model import BedKind, Counts, Establishment, Source
from beds.service import BedService
from beds.settings import Settings
from beds.store import COUNT_NAMES, NewUpdate
from kit.audit import Actor
from kit.auth.people import Accounts

NATIONAL = Access("national", "national")
BENCH = Actor("bench", "national")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``, in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


CALLS = ("update", "dashboard reg:11", "dashboard fr", "tension fr", "nearest")
TARGET_MS = 200.0


async def setup(database: str, units: int) -> tuple[BedService, list[int], int]:
    """The service on ``database`` with ``units`` synthetic units; (service, unit ids,
    establishments)."""
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
    # Every unit's first counts (one transaction), then six days of kept figures before
    # today, as the snapshot job leaves them (the dashboards' trend).
    first = []
    for unit_id in ids:
        occupied = rng.randint(0, 20)
        counts = Counts(20, 0, occupied, 20 - occupied, rng.randint(0, occupied))
        first.append(NewUpdate(unit_id, counts, service.now(), Source.API.value))
    await service.store.record(first, BENCH)
    # Six days of kept figures before today, as the snapshot job leaves them (the trend).
    today = service.now().date()
    for back in range(6, 0, -1):
        await service.snapshot(today - timedelta(days=back))
    return service, ids, len(places)


Call = Callable[[], Awaitable[Any]]
Update = Callable[[int, Counts], Awaitable[Any]]


def direct(service: BedService) -> tuple[Update, tuple[tuple[str, Call], ...]]:
    """The calls as the service's methods (database included, HTTP excluded)."""

    async def update(unit_id: int, counts: Counts) -> None:
        await service.update(NATIONAL, BENCH, unit_id, counts, Source.API)

    samu = Access("samu", "dep:75")
    return update, (
        ("dashboard reg:11", lambda: service.dashboard(NATIONAL, "reg:11")),
        ("dashboard fr", lambda: service.dashboard(NATIONAL, "fr")),
        ("tension fr", lambda: service.tension(NATIONAL, "fr")),
        ("nearest", lambda: service.nearest(samu, BedKind.REA, 48.84, 2.36, 5)),
    )


class Http:
    """The bed service on a real socket of this process, a national user signed in (password
    and TOTP, through the sign-in pages) and a national API key, for ``HttpClient`` in
    another process."""

    def __init__(self, service: BedService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.accounts = Accounts(
            service.store.db, settings.secret, "Lits", api_key_prefix=API_KEY_PREFIX
        )
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.key = ""
        self.cookie = ""

    async def start(self) -> None:
        """Serve, make the key, sign in (the session cookie is what the client sends)."""
        root = web.Application()
        mount(root, create_app(self.settings, self.service, self.accounts))
        self.runner = web.AppRunner(root, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.base = f"http://{host}:{port}/beds"
        _, self.key = await self.accounts.api_keys.create("bench", "national", "national")
        password = secrets.token_urlsafe(16)
        _, enrolment = await self.accounts.users.create(
            "bench", display_name="Bench", role="national", scope="national", password=password
        )
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            for path, form in (
                ("/login", {"username": "bench", "password": password, "next": "/beds/"}),
                ("/login/enrol", {"code": pyotp.TOTP(enrolment.secret).now()}),
            ):
                async with session.get(self.base + path) as r:
                    token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
                assert token is not None, path
                form = {**form, "csrf_token": token.group(1)}
                async with session.post(self.base + path, data=form) as r:
                    assert r.status == 200, (path, r.status)
            cookie = next(c for c in jar if c.key == "beds_session")
            self.cookie = f"beds_session={cookie.value}"

    async def stop(self) -> None:
        """Close the server."""
        if self.runner is not None:
            await self.runner.cleanup()


class HttpClient:
    """The calls as browsers and clients make them, from their own process: the regional
    dashboard as its HTML page (with the map and curves) for the signed-in user, the rest
    through the JSON API with the key, updates POSTed as JSON."""

    def __init__(self, base: str, key: str, cookie: str) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {key}"}
        self.cookie = {"Cookie": cookie}
        self.session: aiohttp.ClientSession | None = None

    async def _get(self, path: str, keyed: bool = True) -> None:
        assert self.session is not None
        headers = self.headers if keyed else self.cookie
        async with self.session.get(self.base + path, headers=headers) as r:
            await r.read()
            assert r.status == 200, (path, r.status)

    def calls(self) -> tuple[Update, tuple[tuple[str, Call], ...]]:
        """The update and the reads."""

        async def update(unit_id: int, counts: Counts) -> None:
            assert self.session is not None
            body = {f: getattr(counts, f) for f in COUNT_NAMES}
            async with self.session.post(
                f"{self.base}/api/v1/units/{unit_id}/counts", json=body, headers=self.headers
            ) as r:
                await r.read()
                assert r.status == 200, r.status

        return update, (
            ("dashboard reg:11", lambda: self._get("/dashboard?territory=reg:11", keyed=False)),
            ("dashboard fr", lambda: self._get("/api/v1/dashboard?territory=fr")),
            ("tension fr", lambda: self._get("/api/v1/tension?territory=fr")),
            ("nearest", lambda: self._get("/api/v1/nearest?kind=rea&lat=48.84&lon=2.36")),
        )

    async def run(
        self, ids: list[int], seconds: float, readers: int
    ) -> tuple[dict[str, list[float]], float]:
        """One phase of load from this client."""
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as self.session:
            update, calls = self.calls()
            return await phase(ids, seconds, readers, update, calls)


def client_process(
    base: str, key: str, cookie: str, ids: list[int], seconds: float, readers: int, out: Any
) -> None:
    """A phase of HTTP load in a process of its own; the timings sent through ``out``."""
    out.send(asyncio.run(HttpClient(base, key, cookie).run(ids, seconds, readers)))
    out.close()


async def http_phase(
    server: Http, ids: list[int], seconds: float, readers: int
) -> tuple[dict[str, list[float]], float]:
    """Run a phase's client in another process while this one serves."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=client_process,
        args=(server.base, server.key, server.cookie, ids, seconds, readers, sending),
    )
    child.start()
    sending.close()
    try:
        result: tuple[dict[str, list[float]], float] = await asyncio.to_thread(receiving.recv)
    finally:
        await asyncio.to_thread(child.join)
    return result


async def phase(
    ids: list[int],
    seconds: float,
    readers: int,
    update: Update,
    calls: tuple[tuple[str, Call], ...],
) -> tuple[dict[str, list[float]], float]:
    """Run the load for ``seconds``; each call's latencies (s) and the updates per second
    committed."""
    rng = random.Random(19)
    timings: dict[str, list[float]] = {k: [] for k in CALLS}
    started = time.perf_counter()
    stop = started + seconds
    rate = len(ids) / 60
    in_flight: set[asyncio.Task[None]] = set()

    async def one_update(unit_id: int) -> None:
        installed = 20
        occupied = rng.randint(0, installed)
        counts = Counts(installed, 0, occupied, installed - occupied, rng.randint(0, occupied))
        t = time.perf_counter()
        await update(unit_id, counts)
        timings["update"].append(time.perf_counter() - t)

    async def updater() -> None:
        sent = 0
        while time.perf_counter() < stop:
            task = asyncio.create_task(one_update(ids[(sent * 7919) % len(ids)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
            delay = started + sent / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async def reader(first: int) -> None:
        turn = first
        while time.perf_counter() < stop:
            name, call = calls[turn % len(calls)]
            turn += 1
            t = time.perf_counter()
            await call()
            timings[name].append(time.perf_counter() - t)

    await asyncio.gather(updater(), *(reader(i) for i in range(readers)))
    if in_flight:
        await asyncio.gather(*in_flight)
    elapsed = time.perf_counter() - started
    return timings, len(timings["update"]) / elapsed


def table(timings: dict[str, list[float]]) -> None:
    """Print count, p50, p99 and max of each call, in ms."""
    print(f"{'call':<18}{'count':>7}{'p50':>9}{'p99':>9}{'max':>9}")
    for name, values in timings.items():
        if values:
            print(
                f"{name:<18}{len(values):>7}{percentile(values, 0.5):>9.1f}"
                f"{percentile(values, 0.99):>9.1f}{1000 * max(values):>9.1f}"
            )


def load() -> str:
    """The machine's load as the figures should be read with."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} processors"


async def main(database: str, units: int, seconds: float, readers: int, http: bool) -> None:
    service, ids, places = await setup(database, units)
    print(f"{units} units in {places} establishments on {service.store.db.backend}")
    print(
        f"{len(ids) / 60:.0f} updates/s asked, {readers} reader loops, {seconds:.0f} s a phase, "
        + (
            "over HTTP from another process (dashboard reg:11 is the HTML page, the others "
            "the JSON API)"
            if http
            else "service calls (no HTTP)"
        )
    )
    server = None
    update, calls = direct(service)
    if http:
        server = Http(service, Settings(database=database, secret=secrets.token_hex(32)))
        await server.start()
    results = {}
    for name, in_sql, group_commit, cache in (
        ("before", False, False, 0.0),
        ("SQL, no reuse", True, True, 0.0),
        ("after", True, True, 1.0),
    ):
        service.in_sql = in_sql
        service.group_commit = group_commit
        service.figures_cache_seconds = cache
        print(
            f"\n{name}: sums in {'SQL' if in_sql else 'Python'}, "
            f"{'group commit' if group_commit else 'one transaction per update'}, "
            f"figures reused {cache:g} s; {load()}"
        )
        if server is not None:
            timings, achieved = await http_phase(server, ids, seconds, readers)
        else:
            timings, achieved = await phase(ids, seconds, readers, update, calls)
        table(timings)
        print(f"updates committed: {achieved:.1f}/s; {load()}")
        results[name] = timings
    print(f"\np99 in ms by phase (target {TARGET_MS:.0f} ms for the reads)")
    print(f"{'call':<18}" + "".join(f"{name:>15}" for name in results))
    for call in CALLS:
        print(
            f"{call:<18}"
            + "".join(
                f"{percentile(r[call], 0.99) if r[call] else float('nan'):>15.1f}"
                for r in results.values()
            )
        )
    if server is not None:
        await server.stop()
    await service.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--http", action="store_true", help="through the HTTP server")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    asyncio.run(main(url, args.units, args.seconds, args.readers, args.http))
