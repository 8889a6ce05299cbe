"""The simulation: a town, an epidemic and phones talking to a real ROBERT server over HTTP.

Each day is run slot by slot (15 minutes): positive results arrive and their holders report,
phones whose time of day it is ask for their status, then the slot's encounters happen and the
disease spreads along them. At the end of the day the server's worker scores the reports.

What phones hear is never stored per HELLO: an encounter (pair, distance, minutes, body
shadowing) is enough to rebuild its HELLOs exactly (``client_sim.radio`` draws are hashed, not
sequential). HELLOs are counted for the whole town every day, and materialised, with real MACs
built by the senders' ``Phone``, only for the phones that report: the server then checks them
as it would check a real upload.
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import numpy.typing as npt

from client_sim.clock import VirtualClock
from client_sim.epidemic import DAY, DEFAULT_SCENARIO, NOBODY, Epidemic, EpidemicConfig
from client_sim.measures import COMPLETE_DAYS, growth, places, reproduction
from client_sim.phones import SimPhone, TupleTable, broadcast_hellos
from client_sim.progress import Progress
from client_sim.radio import RadioConfig, Receptions, hear, pair_key
from client_sim.server_process import READY, drain, issue_code, new_day, sim_app, sim_settings
from client_sim.world import (
    SLOT,
    SLOTS_PER_DAY,
    EncounterLog,
    Encounters,
    World,
    WorldConfig,
)
from phone.client import API, PhoneError, service_start_ntp
from phone.dummies import MEAN_DAYS_BETWEEN_DUMMIES, days_until_next_dummy
from protocol.contacts import Contact, HelloRecord
from protocol.epochs import (
    EPOCH_DURATION,
    EPOCHS_PER_DAY,
    epoch_of,
    ntp_from_datetime,
    ntp_from_unix,
    unix_from_ntp,
)
from protocol.hello import HELLO_SIZE
from protocol.scoring import CONTAGIOUS_PERIOD_DAYS

Ints = npt.NDArray[np.int64]
T = TypeVar("T")
RETENTION = CONTAGIOUS_PERIOD_DAYS * DAY
"""How far back a reporting phone's HELLOs reach [robert.md: Report]."""
DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday: day 0 of the town's week is a weekday."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything a run depends on; the same config and seed give the same results."""

    phones: int = 2000
    """People in the town (each with a phone if they adopted the app)."""
    days: int = 14
    seed: int = 1
    out: Path = Path("sim-out")
    store: str = ""
    """Store URL of the in-process server (default: SQLite in OUT/server)."""
    server: str = ""
    codes_url: str = ""
    """With ``server``: the code service's base URL (default: the server's)."""
    codes_key: str = ""
    """With ``server``: the API key of a lab of the code service."""
    """URL of a running server: real time, for small runs."""
    server_process: bool = False
    """Run the simulator's server in a child process (two cores) instead of this one."""
    risk_threshold: float = 0.1
    report_share: float = 0.5
    """Share of people with the app and a positive test who report."""
    adoption: float = 1.0
    """Share of people who installed the app."""
    close_distance: float = 1.0
    close_minutes: float = 15.0
    """Ground truth: a close contact is this many minutes within ``close_distance`` metres."""
    concurrency: int = 64
    """HTTP requests in flight at once."""
    baseline: bool = True
    """Also run the same seed without the app, for the epidemic comparison."""
    world: WorldConfig = field(default_factory=WorldConfig)
    radio: RadioConfig = field(default_factory=RadioConfig)
    epidemic: EpidemicConfig = field(default_factory=EpidemicConfig)
    scenario: str = DEFAULT_SCENARIO
    """Name of the epidemic scenario ``epidemic`` was made from (for the report)."""
    dummy_days: float = MEAN_DAYS_BETWEEN_DUMMIES
    """Mean days between two dummy reports of a phone (``phone.dummies``); 0: none."""
    count_hellos: bool = True
    """Count every HELLO the town exchanges (a second core's work; sweeps turn it off)."""
    quiet: bool = False


@dataclass(slots=True)
class Counters:
    """What happened during a run with the app."""

    registrations: int = 0
    status_requests: int = 0
    status_errors: int = 0
    reports: int = 0
    report_errors: int = 0
    hellos_exchanged: int = 0
    hellos_reported: int = 0
    hellos_built: int = 0
    encounters: int = 0
    dummy_reports: int = 0
    dummy_errors: int = 0
    dummy_hellos: int = 0
    dummy_seconds: float = 0.0
    report_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str, exc: PhoneError) -> None:
        """Count a refused request by kind and reason (never dropped silently)."""
        key = f"{what}:{exc.status}:{exc.code}"
        self.errors[key] = self.errors.get(key, 0) + 1


@dataclass(slots=True)
class DayStats:
    """One point of the epidemic curve."""

    day: int
    new_infections: int = 0
    infected_total: int = 0
    isolated: int = 0
    positives: int = 0
    reports: int = 0
    warned_total: int = 0


# --- the server side -------------------------------------------------------------------------
class Backend:
    """The server the phones talk to: in this process, in a child process, or a running one."""

    url: str
    clock: Callable[[], float]

    async def set_time(self, unix: float) -> None:
        """Move the shared virtual clock to ``unix`` (never backwards)."""
        clock = self.clock
        assert isinstance(clock, VirtualClock)
        clock.move_to(unix)

    async def new_day(self) -> None:
        """Daily chores a deployment's background tasks would do."""

    async def drain(self) -> int:
        """Score the reports queued so far."""
        return 0

    async def issue_code(self, test_date: str) -> str:
        """A long code, as a lab would receive for a positive result."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop what was started."""


class EmbeddedBackend(Backend):
    """The real server application on 127.0.0.1 (port chosen by the OS), sharing the clock."""

    def __init__(self, config: SimConfig, clock: VirtualClock) -> None:
        self.config = config
        self.clock = clock
        self._runner: Any = None

    async def start(self) -> None:
        """Build the app with sim settings and listen on loopback."""
        from aiohttp import web

        data = self.config.out / "server"
        data.mkdir(parents=True, exist_ok=True)
        settings = sim_settings(str(data), self.config.store, self.config.risk_threshold)
        self.app = sim_app(settings, self.clock)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def new_day(self) -> None:
        """Keys for the days ahead: the app's hourly rotation runs on real time, not ours."""
        await new_day(self.app)

    async def drain(self) -> int:
        """Run the report worker to the end of the queue."""
        return await drain(self.app)

    async def issue_code(self, test_date: str) -> str:
        """Through the codes service, as the lab integration would."""
        return await issue_code(self.app, test_date)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


START_SECONDS = 60
"""How long the server process may take to listen."""
DRAIN_SECONDS = 3600
"""How long one day's reports may take the worker (other control calls: 60 s)."""


class ProcessBackend(Backend):
    """The same server in a child process (``client_sim.server_process``): the phones and the
    server then run on two cores. The virtual clock is kept here and pushed to the child."""

    def __init__(self, config: SimConfig, clock: VirtualClock) -> None:
        self.config = config
        self.clock = clock
        self._child: asyncio.subprocess.Process | None = None
        self._control: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Start the child and wait until it listens."""
        data = self.config.out / "server"
        data.mkdir(parents=True, exist_ok=True)
        self._child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "client_sim.server_process",
            "--data-dir", str(data), "--store", self.config.store,
            "--risk-threshold", str(self.config.risk_threshold), "--start", str(self.clock()),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._child.stdout is not None
        try:
            line = await asyncio.wait_for(self._child.stdout.readline(), START_SECONDS)
        except TimeoutError:
            line = b""
        if not line.startswith(READY.encode()):
            await self.close()
            raise RuntimeError(
                f"the server process did not start (exit code {self._child.returncode}; "
                f"its errors are above)"
            )
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        self._control = aiohttp.ClientSession()

    async def _post(
        self, path: str, body: dict[str, Any] | None = None, seconds: float = 60
    ) -> Any:
        assert self._control is not None
        timeout = aiohttp.ClientTimeout(total=seconds)
        url = f"{self.url}/_sim/{path}"
        async with self._control.post(url, json=body or {}, timeout=timeout) as answer:
            answer.raise_for_status()
            return await answer.json()

    async def set_time(self, unix: float) -> None:
        await super().set_time(unix)
        await self._post("clock", {"now": self.clock()})

    async def new_day(self) -> None:
        await self._post("new-day")

    async def drain(self) -> int:
        return int((await self._post("drain", seconds=DRAIN_SECONDS))["reports"])

    async def issue_code(self, test_date: str) -> str:
        return str((await self._post("code", {"testDate": test_date}))["code"])

    async def close(self) -> None:
        if self._control is not None:
            await self._control.close()
        if self._child is not None and self._child.returncode is None:
            self._child.terminate()
            try:
                await asyncio.wait_for(self._child.wait(), 30)
            except TimeoutError:
                self._child.kill()
                await self._child.wait()


class RemoteBackend(Backend):
    """A running server in real time; codes from its code service's API with a lab's key."""

    def __init__(self, url: str, codes_url: str, codes_key: str) -> None:
        if not codes_key:
            raise ValueError(
                "--server needs --codes-key: the API key of a lab of the code service "
                "('robert codes orgs add --name sim-lab --role lab' prints one)"
            )
        self.url = url.rstrip("/")
        self.codes_url = (codes_url or url).rstrip("/")
        self.codes_key = codes_key
        self.clock = time.time
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP session the codes come through."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def issue_code(self, test_date: str) -> str:
        """A fresh long code from the code service, as the lab's system gets one."""
        assert self._session is not None
        async with self._session.post(
            f"{self.codes_url}/codes/api/v1/codes",
            json={"type": "long", "testDate": test_date, "count": 1},
            headers={"Authorization": f"Bearer {self.codes_key}"},
        ) as answer:
            body = await answer.json()
            if answer.status != 200:
                raise RuntimeError(
                    f"the code service refused: {body.get('message', answer.status)}"
                )
            return str(body["codes"][0]["code"])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


# --- a run -----------------------------------------------------------------------------------
class Run:
    """One run of the town for ``config.days`` days, with the app or without it."""

    def __init__(self, config: SimConfig, with_app: bool, progress: Progress) -> None:
        self.config = config
        self.with_app = with_app
        self.progress = progress
        self.remote = bool(config.server)
        start = ntp_from_unix(time.time()) // SLOT * SLOT if self.remote else None
        self.start = start if start is not None else ntp_from_datetime(DEFAULT_START)
        n = config.phones
        self.world = World(n, config.seed, config.world, config.radio)
        self.epidemic = Epidemic(n, config.seed, self.start, config.epidemic)
        rng = np.random.default_rng([config.seed, 20])
        self.has_app: npt.NDArray[np.bool_] = (
            rng.random(n) < config.adoption if with_app else np.zeros(n, bool)
        )
        self.would_report = rng.random(n) < config.report_share
        self.left_at = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        """NTP time each phone unregistered (it stops broadcasting then)."""
        self.warned_at = np.full(n, np.inf)
        self.reporters: list[tuple[int, int]] = []
        self.log = EncounterLog()
        self.counters = Counters()
        self.curve: list[DayStats] = []
        self.phones: dict[int, SimPhone] = {}
        self.server_requests: dict[str, dict[str, float]] = {}
        self.time_start = 0
        self.next_dummy = np.full(n, np.inf)
        """NTP time of each phone's next dummy report."""
        self._radio_jobs: list[asyncio.Future[int]] = []
        self._radio = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radio")

    # --- driving -------------------------------------------------------------------------------
    async def run(self) -> None:
        """All days, then a last round of status requests so late reports reach their contacts."""
        if not self.with_app:
            for day in range(self.config.days):
                await self._day(day, None)
            return
        clock = time.time if self.remote else VirtualClock(unix_from_ntp(self.start))
        backend: RemoteBackend | ProcessBackend | EmbeddedBackend
        if self.remote:
            backend = RemoteBackend(
                self.config.server, self.config.codes_url, self.config.codes_key
            )
        else:
            assert isinstance(clock, VirtualClock)
            kind = ProcessBackend if self.config.server_process else EmbeddedBackend
            backend = kind(self.config, clock)
        self.backend = backend
        self.semaphore = asyncio.Semaphore(self.config.concurrency)
        try:
            await backend.start()
            connector = aiohttp.TCPConnector(limit=max(100, 2 * self.config.concurrency))
            async with aiohttp.ClientSession(connector=connector) as session:
                await self._register_all(session, clock)
                for day in range(self.config.days):
                    await self._day(day, backend)
                await self._set_time(self.start + self.config.days * DAY)
                await backend.drain()
                await self._statuses(np.flatnonzero(self._registered()))
                self.server_requests = await server_requests(session, backend.url)
                for job in self._radio_jobs:
                    self.counters.hellos_exchanged += await job
        finally:
            self._radio.shutdown(cancel_futures=True)
            await backend.close()

    async def _set_time(self, ntp: int) -> None:
        """Move the shared clock (virtual), or wait for real time to get there (remote)."""
        if self.remote:
            delay = unix_from_ntp(ntp) - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            return
        await self.backend.set_time(float(unix_from_ntp(ntp)))

    async def _gather(self, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        async def limited(call: Callable[[], Awaitable[T]]) -> T:
            async with self.semaphore:
                return await call()

        return await asyncio.gather(*(limited(c) for c in calls))

    async def _register_all(self, session: aiohttp.ClientSession, clock: Any) -> None:
        n, days = self.config.phones, self.config.days
        async with session.get(f"{self.backend.url}{API}/clock") as answer:
            service_start = (await answer.json())["serviceStartDate"]
            time_start = self.time_start = service_start_ntp(service_start)
        first = epoch_of(self.start, time_start) - 1
        table = TupleTable(n, first, (days + 6) * EPOCHS_PER_DAY)
        people = np.flatnonzero(self.has_app)
        for i in people:
            seeded = random.Random(self.config.seed * 1_000_003 + int(i))
            self.phones[int(i)] = SimPhone(
                int(i), table, self.backend.url, clock, seeded.randbytes, session
            )

        async def register(phone: SimPhone) -> None:
            try:
                await phone.register()
                self.counters.registrations += 1
            except PhoneError as exc:
                self.counters.error("register", exc)
                self.left_at[phone.index] = self.start

        self.progress.stage("registering", len(people))
        calls = [partial(register, p) for p in self.phones.values()]
        for chunk in range(0, len(calls), 1000):
            await self._gather(calls[chunk : chunk + 1000])
            self.progress.advance(min(1000, len(calls) - chunk))
        if self.config.dummy_days > 0:
            for person, phone in self.phones.items():
                self.next_dummy[person] = self.start + self._dummy_gap(phone)

    def _dummy_gap(self, phone: SimPhone) -> float:
        return days_until_next_dummy(phone.random, self.config.dummy_days) * DAY

    def _registered(self) -> npt.NDArray[np.bool_]:
        registered: npt.NDArray[np.bool_] = self.has_app & (self.left_at == np.iinfo(np.int64).max)
        return registered

    async def _day(self, day: int, backend: Backend | None) -> None:
        day_start = self.start + day * DAY
        stats = DayStats(day)
        before = self.epidemic.ever_infected()
        if backend is not None:
            await self._set_time(day_start)
            await backend.new_day()
        plan = self.world.schedule(day, self.epidemic.isolated(day_start))
        self.progress.stage(f"day {day + 1}/{self.config.days}", SLOTS_PER_DAY)
        for slot in range(SLOTS_PER_DAY):
            now = day_start + slot * SLOT
            positives = self.epidemic.positives_between(now, now + SLOT)
            stats.positives += len(positives)
            self.epidemic.isolate(positives, now)
            if backend is not None:
                await self._set_time(now)
                stats.reports += await self._reports(positives, now, backend)
                await self._dummies(now)
                due = np.flatnonzero(self._registered() & (self.world.status_slot == slot))
                warned = await self._statuses(due)
                self.epidemic.isolate(warned, now)
            met = self.world.encounters(day, slot, plan[slot], now)
            self.epidemic.transmit(met, slot, day)
            if self.with_app:
                self.log.add_slot(met)
            self.progress.advance(1)
        if self.with_app:
            table = self.log.end_day(self.config.phones)
            self.counters.encounters += len(table)
            if self.config.count_hellos:
                loop = asyncio.get_running_loop()
                # numpy releases the GIL: the day's HELLO count runs on the second core.
                job = loop.run_in_executor(self._radio, self._count_hellos, table)
                self._radio_jobs.append(job)
        if backend is not None:
            await self._set_time(day_start + DAY - 60)
            await backend.drain()
        stats.new_infections = self.epidemic.ever_infected() - before
        stats.infected_total = self.epidemic.ever_infected()
        stats.isolated = int(self.epidemic.isolated(day_start + DAY).sum())
        stats.warned_total = int(np.isfinite(self.warned_at).sum())
        self.curve.append(stats)

    # --- phones' requests ----------------------------------------------------------------------
    async def _statuses(self, people: Ints) -> Ints:
        """Status requests of ``people``; those newly at risk."""

        async def ask(phone: SimPhone) -> bool:
            self.counters.status_requests += 1
            try:
                return (await phone.check_status()).at_risk
            except PhoneError as exc:
                self.counters.status_errors += 1
                self.counters.error("status", exc)
                return False

        answers = await self._gather([partial(ask, self.phones[int(i)]) for i in people])
        at_risk = people[np.array(answers, dtype=bool)] if len(people) else people
        new: Ints = at_risk[~np.isfinite(self.warned_at[at_risk])]
        self.warned_at[new] = ntp_from_unix(self.backend.clock())
        return new

    async def _reports(self, positives: Ints, now: int, backend: Backend) -> int:
        """Positive people with the app who choose to report: code, HELLOs, upload, leave."""
        reporters = positives[self._registered()[positives] & self.would_report[positives]]
        test_date = datetime.fromtimestamp(unix_from_ntp(now), UTC).date().isoformat()

        async def report(person: int) -> bool:
            phone = self.phones[person]
            try:
                code = await backend.issue_code(test_date)
                self._feed(phone, now)
                self.counters.hellos_reported += sum(len(r) for r in phone.heard.values())
                began = time.perf_counter()
                await phone.report(code)
                self.counters.report_seconds += time.perf_counter() - began
                await phone.unregister()
            except PhoneError as exc:
                self.counters.report_errors += 1
                self.counters.error("report", exc)
                return False
            finally:
                phone.heard.clear()
            self.left_at[person] = now
            self.reporters.append((person, now))
            self.counters.reports += 1
            return True

        done = await self._gather([partial(report, int(p)) for p in reporters])
        return sum(done)

    async def _dummies(self, now: int) -> None:
        """Dummy reports of the phones whose time it is, shaped like the report each would
        send now; each phone then draws its next time (``phone.dummies``)."""
        due = np.flatnonzero(self._registered() & (self.next_dummy < now + SLOT))

        async def dummy(person: int) -> None:
            phone = self.phones[person]
            shape = self._shape(person, now)
            began = time.perf_counter()
            try:
                await phone.dummy_report_shaped(shape)
                self.counters.dummy_reports += 1
                self.counters.dummy_hellos += sum(len(c.records) for c in shape)
            except PhoneError as exc:
                self.counters.dummy_errors += 1
                self.counters.error("dummy", exc)
            self.counters.dummy_seconds += time.perf_counter() - began
            while self.next_dummy[person] < now + SLOT:
                self.next_dummy[person] += self._dummy_gap(phone)

        await self._gather([partial(dummy, int(p)) for p in due])

    def _shape(self, person: int, now: int) -> list[Contact]:
        """The contacts a report of ``person`` would carry now: one per sender and epoch, one
        record per HELLO heard (contents are the dummy's own random bytes)."""
        heard = self._heard_by(person, now - RETENTION, now)
        epochs = (heard.time_sent - self.time_start) // EPOCH_DURATION  # epoch_of, vectorised
        order = np.lexsort((heard.time_collected, epochs, heard.sender))
        keys = (heard.sender[order] << 32) | epochs[order]
        starts: Ints = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        bounds = [*map(int, starts), len(keys)] if len(keys) else []
        collected = heard.time_collected[order].tolist()
        sent = (heard.time_sent[order] & 0xFFFF).tolist()
        rssi = heard.rssi[order].tolist()
        return [
            Contact(
                bytes(8),
                bytes(1),
                tuple(HelloRecord(collected[k], sent[k], bytes(5), rssi[k]) for k in range(lo, hi)),
            )
            for lo, hi in pairwise(bounds)
        ]

    def _feed(self, phone: SimPhone, now: int) -> None:
        """Give the reporting phone the HELLOs it heard in the contagious period.

        Each HELLO is built once per (sender, time) by the sender's key and tuple, as the
        sender's phone broadcast it, and handed over as the 16 bytes the radio carried.
        """
        heard = self._heard_by(phone.index, now - RETENTION, now)
        sent = (heard.sender.astype(np.int64) << 32) | heard.time_sent  # NTP times < 2**32
        unique, which = np.unique(sent, return_inverse=True)
        built, hellos = broadcast_hellos(
            self.phones, phone.table, unique >> 32, unique & 0xFFFF_FFFF, self.time_start
        )
        self.counters.hellos_built += int(built.sum())
        kept = built[which]
        rows = np.frombuffer(hellos, dtype=np.uint8).reshape(-1, HELLO_SIZE)
        position = np.cumsum(built) - 1
        phone.record_hellos(
            rows[position[which[kept]]].tobytes(),
            heard.time_collected[kept].tolist(),
            heard.rssi[kept].tolist(),
        )

    def _heard_by(self, person: int, since: int, until: int) -> Receptions:
        met = self.log.of_person(person, since, until)
        parts = []
        for direction, mine in ((0, met.b == person), (1, met.a == person)):
            parts.append(self._audible(self._hear(met.take(mine), direction), until))
        return Receptions(*(np.concatenate([getattr(p, f) for p in parts]) for f in _RX_FIELDS))

    def _hear(self, met: Encounters, direction: int) -> Receptions:
        """The HELLOs of one direction of encounters (0: a to b), the columns widened."""
        sender, receiver = (met.a, met.b) if direction == 0 else (met.b, met.a)
        shadow = met.shadow_ab if direction == 0 else met.shadow_ba
        return hear(
            sender.astype(np.int64),
            receiver.astype(np.int64),
            met.start.astype(np.int64),
            met.duration.astype(np.int64),
            met.distance.astype(np.float64),
            shadow.astype(np.float64),
            pair_key(self.config.seed, met.eid.astype(np.int64), direction),
            self.world.model,
            self.config.radio,
        )

    def _audible(self, rx: Receptions, until: int) -> Receptions:
        """HELLOs both phones were on the app for, heard before ``until``."""
        ok = (
            self.has_app[rx.sender]
            & self.has_app[rx.receiver]
            & (rx.time_sent < self.left_at[rx.sender])
            & (rx.time_sent < self.left_at[rx.receiver])
            & (rx.time_collected < until)
        )
        return Receptions(*(getattr(rx, f)[ok] for f in _RX_FIELDS))

    def _count_hellos(self, table: Encounters) -> int:
        """HELLOs heard in one day's encounters (in chunks to bound memory)."""
        total = 0
        for lo in range(0, len(table), 50_000):
            sub = table.take(np.arange(lo, min(lo + 50_000, len(table))))
            for direction in (0, 1):
                total += len(self._audible(self._hear(sub, direction), np.iinfo(np.int64).max))
        return total

    # --- quality against the ground truth ------------------------------------------------------
    def quality(self) -> dict[str, Any]:
        """The warnings against the ground truth: the reporters' true close contacts (recall,
        precision), who was warned needlessly, how long after the contact, and which
        infections the app traced."""
        n, c = self.config.phones, self.config
        true_close = np.zeros(n, bool)
        true_2m = np.zeros(n, bool)
        last_contact = np.full(n, -np.inf)
        """Last time each person met someone who reported before that person was warned."""
        for person, when in self.reporters:
            met = self.log.of_person(person, when - RETENTION, when)
            other = np.where(met.a == person, met.b, met.a).astype(np.int64)
            start = met.start.astype(np.float64)
            minutes = met.duration / 60.0
            for mask, limit in ((true_close, c.close_distance), (true_2m, 2.0)):
                near = met.distance <= limit
                total = np.bincount(other[near], weights=minutes[near], minlength=n)
                mask |= total >= c.close_minutes
            before = self.warned_at[other] >= when
            np.maximum.at(last_contact, other[before], start[before])
        reporters = np.zeros(n, bool)
        reporters[[p for p, _ in self.reporters]] = True
        reachable = true_close & self.has_app & ~reporters
        warned = np.isfinite(self.warned_at)
        hits = int((warned & reachable).sum())
        e = self.epidemic
        complied = warned & (e.adheres < e.config.adherence)
        needless = complied & ~(e.infected_at <= self.warned_at)
        timed = warned & np.isfinite(last_contact)
        delays = (self.warned_at[timed] - last_contact[timed]) / DAY
        # Infections the app traced: the infector reported through the app and the infected
        # person was warned; over infections by people infected early enough to have tested.
        end = self.start + c.days * DAY
        child = np.flatnonzero(np.isfinite(e.infected_at) & (e.infector != NOBODY))
        parent = e.infector[child].astype(np.int64)
        eligible = e.infected_at[parent] < end - COMPLETE_DAYS * DAY
        traced = eligible & reporters[parent] & warned[child]
        return {
            "recall": hits / int(reachable.sum()) if reachable.any() else None,
            "precision": int((warned & true_close).sum()) / int(warned.sum())
            if warned.any()
            else None,
            "precision_2m": int((warned & true_2m).sum()) / int(warned.sum())
            if warned.any()
            else None,
            "true_close_contacts": int(reachable.sum()),
            "true_close_contacts_warned": hits,
            "warned": int(warned.sum()),
            "warned_true_close": int((warned & true_close).sum()),
            "warned_not_within_2m": int((warned & ~true_2m).sum()),
            "isolated_after_warning": int(complied.sum()),
            "isolated_needlessly": int(needless.sum()),
            "contact_to_warning_days_median": round(float(np.median(delays)), 2)
            if len(delays)
            else None,
            "traced_infections": int(traced.sum()),
            "traceable_infections": int(eligible.sum()),
            "traced_share": round(int(traced.sum()) / int(eligible.sum()), 4)
            if eligible.any()
            else None,
        }

    def epidemic_measures(self) -> dict[str, Any]:
        """The run's epidemic as its infection tree tells it."""
        e = self.epidemic
        shape, scale = e.config.generation_shape, e.config.generation_scale
        return {
            "infected": e.ever_infected(),
            **reproduction(e.infected_at, e.infector, self.start, self.config.days),
            **growth([s.new_infections for s in self.curve], shape, scale),
            "infections_by_place": places(e.infected_where),
        }


async def server_requests(session: aiohttp.ClientSession, url: str) -> dict[str, dict[str, float]]:
    """Requests the server answered and the seconds it spent on them, by endpoint, from its
    ``/metrics`` (empty if it does not expose them to us)."""
    try:
        async with session.get(f"{url}/metrics") as answer:
            if answer.status != 200:
                return {}
            text = await answer.text()
    except aiohttp.ClientError:
        return {}
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        for suffix, key in (("_sum", "seconds"), ("_count", "requests")):
            head = f"robert_request_seconds{suffix}{{"
            if line.startswith(head) and 'endpoint="' in line:
                endpoint = line.split('endpoint="', 1)[1].split('"', 1)[0]
                found.setdefault(endpoint, {})[key] = round(float(line.rsplit(" ", 1)[1]), 3)
    return found


_RX_FIELDS = ("sender", "receiver", "time_sent", "time_collected", "rssi")


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def simulate(config: SimConfig) -> dict[str, Any]:
    """Run the town with the app (and, unless disabled, without it); the report as a dict."""
    progress = Progress(enabled=not config.quiet)
    began = time.perf_counter()
    with_app = Run(config, True, progress)
    await with_app.run()
    app_seconds = time.perf_counter() - began
    without = None
    if config.baseline:
        without = Run(config, False, progress)
        await without.run()
    progress.close()
    wall = time.perf_counter() - began
    k = with_app.counters
    report: dict[str, Any] = {
        **with_app.quality(),
        "phones": config.phones,
        "days": config.days,
        "seed": config.seed,
        "risk_threshold": config.risk_threshold,
        "report_share": config.report_share,
        "adoption": config.adoption,
        "store": "remote" if config.server else (config.store or "sqlite (embedded)"),
        "registrations": k.registrations,
        "status_requests": k.status_requests,
        "status_errors": k.status_errors,
        "reports": k.reports,
        "report_errors": k.report_errors,
        "errors": dict(sorted(k.errors.items())),
        "notifications": int(np.isfinite(with_app.warned_at).sum()),
        "encounters": k.encounters,
        "hellos_exchanged": k.hellos_exchanged,
        "hellos_reported": k.hellos_reported,
        "hellos_built": k.hellos_built,
        "dummy_reports": {
            "mean_days_between": config.dummy_days,
            "sent": k.dummy_reports,
            "errors": k.dummy_errors,
            "hellos": k.dummy_hellos,
            "real_reports": k.reports,
            "real_hellos": k.hellos_reported,
        },
        "server_requests": {
            endpoint: int(v.get("requests", 0)) for endpoint, v in with_app.server_requests.items()
        },
        "scenario": config.scenario,
        "beta": config.epidemic.beta,
        "test_share": config.epidemic.test_share,
        "test_delay_days": list(config.epidemic.test_delay_days),
        "adherence": config.epidemic.adherence,
        "infected_with_app": with_app.epidemic.ever_infected(),
        "infected_without_app": without.epidemic.ever_infected() if without else None,
        "epidemic_with_app": with_app.epidemic_measures(),
        "epidemic_without_app": without.epidemic_measures() if without else None,
        "curve_with_app": [_point(s) for s in with_app.curve],
        "curve_without_app": [_point(s) for s in without.curve] if without else None,
        "timing": {
            "wall_seconds": round(wall, 2),
            "app_run_seconds": round(app_seconds, 2),
            "hellos_per_second": round(k.hellos_exchanged / app_seconds, 1)
            if config.count_hellos
            else None,
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "server_seconds": {
                endpoint: v.get("seconds", 0.0) for endpoint, v in with_app.server_requests.items()
            },
            "dummy_phone_seconds": round(k.dummy_seconds, 2),
            "report_phone_seconds": round(k.report_seconds, 2),
        },
    }
    return report


def _point(stats: DayStats) -> dict[str, int]:
    return {
        "day": stats.day,
        "new_infections": stats.new_infections,
        "infected_total": stats.infected_total,
        "isolated": stats.isolated,
        "positives": stats.positives,
        "reports": stats.reports,
        "warned_total": stats.warned_total,
    }
