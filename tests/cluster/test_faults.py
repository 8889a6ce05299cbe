"""Faults, each bounded in time and on loopback only: a master SIGKILLed under load, a worker
SIGKILLed mid-batch, a standalone Redis SIGKILLed and restarted from its AOF.

What is checked is what the API promised: every registration answered 201 is still readable
(a status request succeeds), every report answered 2xx is processed, exactly once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer

from client_sim.clock import VirtualClock
from phone.client import Phone, PhoneError
from protocol.codes import CodeKind
from protocol.ebid import decrypt_ebid
from protocol.epochs import day_of_epoch
from protocol.types import IdA
from server.app import SERVICE, WORKER, create_app
from server.service import RobertService
from server.settings import Settings
from server.store import open_store
from server.store.base import Registration
from server.store.redis import RedisStore
from tests.cluster.localcluster import LocalCluster, free_port
from tests.server.conftest import code_service, issue
from tests.server.test_e2e import meet
from tests.server.test_store_contract import ident, registration

pytestmark = pytest.mark.cluster

LOAD_SECONDS = 6.0
KILL_AFTER_SECONDS = 1.5
CONCURRENCY = 8
MAX_ERROR_RATE = 0.5
"""Bound on failed requests during the load run with a master killed: a third of the slots is
unreachable for the failover (about 2 s of the 6 s run with a 1 s node timeout), so about
1/3 x 2/6 of requests fail; 0.5 leaves room for a slow shared machine."""
WAIT = "wait=1&wait_timeout_ms=250"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


def phone(url: str, clock: VirtualClock, session: aiohttp.ClientSession, seed: int) -> Phone:
    return Phone(url, clock, random.Random(seed).randbytes, session)


def wait_cluster_ok(
    cluster: LocalCluster, ports: list[int], synced: bool = False, timeout: float = 30
) -> None:
    """Until every listed node reports cluster_state:ok (and, if ``synced``, every replica's
    link to its master is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for port in ports:
            node = redis.Redis(port=port, socket_timeout=1)
            try:
                ok = node.cluster("info")["cluster_state"] == "ok"
                if synced:
                    info = node.info("replication")
                    ok = ok and info.get("master_link_status", "up") == "up"
                states.append(ok)
            except redis.RedisError:
                states.append(False)
            finally:
                node.close()
        if all(states):
            return
        time.sleep(0.1)
    raise AssertionError(f"cluster not ok after {timeout} s")


@dataclass
class LoadResult:
    registered: list[Phone] = field(default_factory=list)
    reports_acked: int = 0
    attempts: int = 0
    failures: int = 0


async def _load(
    url: str,
    clock: VirtualClock,
    session: aiohttp.ClientSession,
    template: Phone,
    codes: list[str],
    seconds: float,
) -> LoadResult:
    """CONCURRENCY loops of: register a phone; every other one also reports (HELLOs of
    ``template``)."""
    result = LoadResult()
    deadline = time.monotonic() + seconds
    seeds = iter(range(1000, 10**6))

    async def loop() -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            p = phone(url, clock, session, next(seeds))
            result.attempts += 1
            try:
                await p.register()
            except (TimeoutError, PhoneError, aiohttp.ClientError):
                result.failures += 1
                await asyncio.sleep(0.02)
                continue
            result.registered.append(p)
            if n % 2 or not codes:
                continue
            p.heard = {k: list(v) for k, v in template.heard.items()}
            result.attempts += 1
            try:
                await p.report(codes.pop())
                result.reports_acked += 1
            except (TimeoutError, PhoneError, aiohttp.ClientError):
                result.failures += 1

    await asyncio.gather(*(loop() for _ in range(CONCURRENCY)))
    return result


async def test_master_killed_under_load(
    redis_cluster: LocalCluster,
    store_url: str,
    settings: Settings,
    clock: VirtualClock,
    session: aiohttp.ClientSession,
) -> None:
    codes_service = code_service(Path(settings.data_dir), clock)
    app = create_app(replace(settings, store=f"{store_url}?{WAIT}"), codes_service, clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:
        contact, template = phone(url, clock, session, 1), phone(url, clock, session, 2)
        await contact.register()
        await template.register()
        meet(contact, template, clock, minutes=20, rssi=-50)
        codes = await issue(codes_service, CodeKind.LONG, 2000)
        victim = redis_cluster.base_port  # a master at creation (replicas are base+3..5)
        assert redis_cluster.role(victim) == "master"

        async def kill_later() -> None:
            await asyncio.sleep(KILL_AFTER_SECONDS)
            os.kill(redis_cluster.pid(victim), signal.SIGKILL)

        killer = asyncio.create_task(kill_later())
        started = time.monotonic()
        load = await _load(url, clock, session, template, codes, LOAD_SECONDS)
        await killer
        survivors = [p for p in redis_cluster.ports if p != victim]
        await asyncio.to_thread(wait_cluster_ok, redis_cluster, survivors)
        error_rate = load.failures / load.attempts
        print(
            f"\nmaster killed under load: {load.attempts} requests in "
            f"{time.monotonic() - started:.1f} s, {load.failures} failed "
            f"(error rate {error_rate:.1%}), {len(load.registered)} registrations and "
            f"{load.reports_acked} reports acknowledged; "
            f"{app[SERVICE].store.unreplicated_writes} writes WAIT saw on no replica"
        )
        assert load.reports_acked > 0 and len(load.registered) > 50
        assert error_rate <= MAX_ERROR_RATE
        # Every acknowledged registration still answers a status request.
        lost = 0
        for p in load.registered:
            try:
                await p.check_status()
            except PhoneError:
                lost += 1
        assert lost == 0, f"{lost} acknowledged registrations lost"
        # Every acknowledged report is still queued and gets processed.
        worker = app[WORKER]
        processed = 0
        for _ in range(50):
            processed += await worker.drain()
            if processed >= load.reports_acked and await worker.store.pending_reports() == 0:
                break
        assert processed >= load.reports_acked
        assert (await contact.check_status()).at_risk
    finally:
        await server.close()
        # Bring the killed node back as a replica so later tests see a full cluster.
        await asyncio.to_thread(_restart_node, redis_cluster, redis_cluster.base_port)


def _restart_node(cluster: LocalCluster, port: int) -> None:
    conf = cluster.directory / str(port) / "redis.conf"
    node = redis.Redis(port=port, socket_timeout=0.5)
    try:
        node.ping()
        return
    except redis.RedisError:
        pass
    finally:
        node.close()
    subprocess.run(["redis-server", str(conf)], check=True, timeout=10)
    wait_cluster_ok(cluster, cluster.ports, synced=True)


# --- worker killed mid-batch ---------------------------------------------------------------
REPORTS = 48


async def test_worker_killed_mid_batch_is_reclaimed_once(
    redis_cluster: LocalCluster,
    store_url: str,
    settings: Settings,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Real time, two hours back: the worker process runs on the wall clock, and its key
    # rotation and retention must agree with the server's about what is recent.
    clock = VirtualClock(datetime.now(UTC) - timedelta(hours=2))
    codes_service = code_service(tmp_path, clock)
    app = create_app(settings, codes_service, clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    proc: subprocess.Popen[bytes] | None = None
    try:
        contact, template = phone(url, clock, session, 1), phone(url, clock, session, 2)
        await contact.register()
        await template.register()
        meet(contact, template, clock, minutes=60, rssi=-50)
        service = app[SERVICE]
        for code in await issue(codes_service, CodeKind.LONG, REPORTS):
            reporter = phone(url, clock, session, 100 + len(code))
            reporter.heard = template.heard
            await reporter._call(
                "POST",
                "/api/v6/report",
                {
                    "token": code,
                    "contacts": [
                        c.to_fields() for c in reporter.state.contacts(reporter.now_ntp())
                    ],
                },
            )
        store = service.store
        assert isinstance(store, RedisStore)
        assert await store.pending_reports() == REPORTS
        # The worker as a separate process (same keys, same virtual time is not needed: the
        # HELLOs are checked against their own reception times).
        env = {
            **os.environ,
            "ROBERT_STORE": store_url,
            "ROBERT_DATA_DIR": settings.data_dir,
            "ROBERT_TIME_START": settings.time_start,
            "ROBERT_LOG_LEVEL": "WARNING",
        }
        robert = Path(sys.executable).with_name("robert")
        with (tmp_path / "worker.log").open("wb") as log_file:
            proc = subprocess.Popen([str(robert), "worker"], env=env, stderr=log_file)
        killed_with = await _kill_mid_batch(proc, store)
        print(f"\nworker killed with {killed_with} report(s) claimed and not acknowledged")
        assert killed_with > 0
        left = await store.pending_reports()
        assert 0 < left < REPORTS, "the worker must be killed mid-way"
        # Another worker reclaims what the dead one held (reclaim delay shortened for the test).
        app[WORKER].reclaim_after_ms = 200
        await asyncio.sleep(0.3)
        assert await app[WORKER].drain() == left
        assert await store.pending_reports() == 0
        id_a = _id_a(service, contact)
        exposures = await _exposure_fields(store, id_a)
        # Records are unlinkable (one per report and epoch, no report id): every report is
        # alike here, so each exposed epoch must hold exactly REPORTS records of one score.
        per_epoch: dict[int, list[float]] = {}
        for f, score in exposures.items():
            per_epoch.setdefault(int(f.split(":", 1)[0]), []).append(score)
        assert per_epoch and all(len(scores) == REPORTS for scores in per_epoch.values())
        assert all(len(set(scores)) == 1 for scores in per_epoch.values())  # counted once, alike
        by_epoch = await store.get_exposures(id_a)
        single = sum(scores[0] for scores in per_epoch.values())
        assert abs(sum(by_epoch.values()) - REPORTS * single) < 1e-6
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=10)
        await server.close()


async def _kill_mid_batch(proc: subprocess.Popen[bytes], store: RedisStore) -> int:
    """SIGKILL the worker as soon as it holds claimed reports and has acknowledged some."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = 0
        for shard in range(store.target.shards):
            summary = await store.client.xpending(store._stream(shard), "workers")
            held += int(summary["pending"])
        if held and await store.pending_reports() < REPORTS:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            return held
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}")
        await asyncio.sleep(0.002)
    raise AssertionError("the worker never held a batch")


def _id_a(service: RobertService, p: Phone) -> IdA:
    """The ID_A behind a phone's current EBID (the server can decrypt it, the test too)."""
    epoch = p.state.current_epoch(p.now_ntp())
    key = service.keys.key_of_day(day_of_epoch(epoch, service.time_start))
    return decrypt_ebid(key, p.state.tuples[epoch].ebid)[1]


async def _exposure_fields(store: RedisStore, id_a: IdA) -> dict[str, float]:
    """The raw exposure hash: ``<epoch>:<tag>`` -> score."""
    raw = await store.client.hgetall(store._exp_key(id_a))
    return {k.decode(): float(v) for k, v in raw.items()}


# --- Redis restarted from its AOF after SIGKILL ---------------------------------------------
@dataclass
class Standalone:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            client = redis.Redis(port=self.port, socket_timeout=0.5)
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    """A redis-server of our own with appendonly yes, appendfsync always, on a free port."""
    node = Standalone(free_port(), tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.kill()


async def test_aof_restart_after_sigkill_keeps_acknowledged_writes(
    standalone: Standalone,
) -> None:
    url = f"redis://127.0.0.1:{standalone.port}/0"
    store = open_store(url)
    await store.open()
    written: list[Registration] = []
    try:
        for n in range(200):
            reg = registration(n)
            assert await store.create_registration(reg)
            written.append(reg)
        report_ids = [await store.enqueue_report(bytes([n])) for n in range(50)]
    finally:
        await store.close()
    standalone.kill()  # no shutdown, no final save: only the AOF is left
    standalone.start()
    store = open_store(url)
    await store.open()
    try:
        for reg in written:
            assert await store.get_registration(reg.id_a) == reg
        claimed = await store.claim_reports("after-restart", 100, 0, 60_000)
        assert [r.report_id for r in claimed] == report_ids
        assert await store.get_registration(ident(999)) is None
    finally:
        await store.close()
