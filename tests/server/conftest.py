"""Fixtures that run the real server over loopback HTTP on each store backend."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from aiohttp import web
from aiohttp.test_utils import TestServer

from client_sim.clock import VirtualClock
from codes.app import new_service
from codes.model import Role
from codes.service import CodeService
from codes.settings import Settings as CodesSettings
from protocol.codes import CodeKind
from server.app import SERVICE, WORKER, create_app
from server.service import RobertService
from server.settings import Settings
from server.worker import ReportWorker

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
E2E_REDIS_DB = 12


def redis_url_with_db(db: int) -> str:
    """REDIS_URL with its database number replaced, so tests never touch db 0."""
    base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
    return f"{base}/{db}"


def redis_available() -> bool:
    try:
        client = redis.Redis.from_url(redis_url_with_db(E2E_REDIS_DB), socket_timeout=1)
        client.ping()
        client.close()
        return True
    except redis.exceptions.RedisError:
        return False


@contextlib.contextmanager
def backend_url(backend: str, tmp_path: Path, redis_db: int) -> Iterator[str]:
    """A store URL of ``backend``: a SQLite file in tmp_path, or Redis database ``redis_db``
    flushed before and after (skips the test when Redis is not reachable)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'robert.db'}"
        return
    if not redis_available():
        pytest.skip(f"no Redis at {REDIS_URL}")
    url = redis_url_with_db(redis_db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend in turn."""
    with backend_url(request.param, tmp_path, E2E_REDIS_DB) as url:
        yield url


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path, store_url: str) -> Settings:
    return Settings(
        data_dir=str(tmp_path),
        store=store_url,
        captcha="off",
        status_min_interval=0,
        embedded_worker=False,
    )


def code_service(data_dir: Path, clock: VirtualClock | None = None) -> CodeService:
    """A code service on a SQLite file in ``data_dir`` (opened by the app it is given to)."""
    settings = CodesSettings(data_dir=str(data_dir))
    return new_service(settings, clock) if clock is not None else new_service(settings)


async def issue(codes: CodeService, kind: CodeKind = CodeKind.LONG, count: int = 1) -> list[str]:
    """``count`` fresh codes of ``kind`` from the test lab (an admin: both kinds)."""
    org = await codes.ensure_org("TESTLAB", Role.ADMIN)
    return [c.record.code for c in await codes.issue(org, kind, count)]


class Running:
    """A started server: its URL, service, worker and code service."""

    def __init__(self, server: TestServer, codes: CodeService) -> None:
        self.server = server
        self.url = str(server.make_url("")).rstrip("/")
        self.service: RobertService = server.app[SERVICE]
        self.worker: ReportWorker = server.app[WORKER]
        self.codes = codes

    async def code(self, kind: CodeKind = CodeKind.LONG) -> str:
        """One fresh submission code."""
        return (await issue(self.codes, kind))[0]


@pytest.fixture
async def running(settings: Settings, clock: VirtualClock) -> AsyncIterator[Running]:
    codes = code_service(Path(settings.data_dir), clock)
    server = TestServer(create_app(settings, codes, clock=clock), host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(server, codes)
    finally:
        await server.close()


@pytest.fixture
def make_settings(settings: Settings):  # type: ignore[no-untyped-def]
    """Variants of the settings for one test."""
    return lambda **changes: replace(settings, **changes)


@contextlib.contextmanager
def served_in_a_thread(app_settings: Settings, data: Path) -> Iterator[int]:
    """The ROBERT server (with a code service in ``data``) on a loopback port, its event loop
    in a thread of its own, for tools that call it synchronously (hypothesis, schemathesis):
    the port, then everything stopped and closed."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runners: list[web.AppRunner] = []

    async def start() -> None:  # the application is made in the loop that serves it
        runner = web.AppRunner(create_app(app_settings, code_service(data)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(20)
    (runner,) = runners
    try:
        yield int(runner.addresses[0][1])
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(20)
        loop.close()
