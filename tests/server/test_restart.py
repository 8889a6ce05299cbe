"""Restart safety: SIGKILL the server and the worker (and Redis, persisting with AOF) in the
middle of a run; nothing that was acknowledged is lost.

Everything runs as real processes on loopback: a redis-server of our own (appendonly yes,
appendfsync always) on a free port, ``robert serve`` and ``robert worker``. Phones register and
report through HTTP for a few seconds, the processes are killed mid-stream and restarted, and
afterwards every registration that got a 201 exists and every report that got a 200 has been
processed (its score is on the contacted registration).
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
from pathlib import Path

import aiohttp
import pytest

from phone.client import Phone, PhoneError
from protocol.ebid import decrypt_ebid
from protocol.epochs import day_of_epoch
from server.keys import ServerKeys
from server.store.redis import RedisStore
from tests.cluster.localcluster import free_port
from tests.cluster.test_faults import Standalone

ROBERT = Path(sys.executable).with_name("robert")


class Robert:
    """``robert serve`` and ``robert worker`` as processes that can be SIGKILLed."""

    def __init__(self, store_url: str, data_dir: Path, port: int) -> None:
        self.port = port
        self.env = {
            **os.environ,
            "ROBERT_STORE": store_url,
            "ROBERT_DATA_DIR": str(data_dir),
            "ROBERT_CAPTCHA": "off",
            "ROBERT_STATUS_MIN_INTERVAL": "0",
            "ROBERT_EMBEDDED_WORKER": "false",
            "ROBERT_LOG_LEVEL": "WARNING",
            "ROBERT_RECLAIM_AFTER_MS": "1000",  # take over a killed worker's reports soon
        }
        self.log = (data_dir / "processes.log").open("ab")
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.server = subprocess.Popen(
            [str(ROBERT), "serve", "--port", str(self.port)], env=self.env, stderr=self.log
        )
        self.worker = subprocess.Popen([str(ROBERT), "worker"], env=self.env, stderr=self.log)

    def kill(self) -> None:
        for proc in (self.server, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
        self.log.close()

    async def wait_healthy(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError("robert serve did not become healthy")


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[Standalone]:
    node = Standalone(free_port(), tmp_path)
    node.start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


async def issue_codes(data_dir: Path, count: int) -> list[str]:
    """Codes from the code service of ``robert serve`` (in-process, beside its data)."""
    out = subprocess.run(
        [str(ROBERT), "codes", "issue", "--kind", "long", "--count", str(count),
         "--data-dir", str(data_dir)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return out.stdout.decode().split()


async def test_sigkill_of_server_worker_and_redis_loses_nothing_acknowledged(
    redis_aof: Standalone, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    store_url = f"redis://127.0.0.1:{redis_aof.port}/0"
    robert = Robert(store_url, tmp_path, free_port())
    url = f"http://127.0.0.1:{robert.port}"
    robert.start()
    try:
        await robert.wait_healthy(session)
        codes = await issue_codes(tmp_path, 200)
        hub = Phone(url, random=random.Random(0).randbytes, session=session)
        await hub.register()
        registered: list[Phone] = []
        reported = 0
        attempts = 0

        async def one(n: int) -> None:
            """Register a phone that heard the hub for five minutes, and report it."""
            nonlocal reported, attempts
            phone = Phone(url, random=random.Random(n).randbytes, session=session)
            now = phone.now_ntp()
            for i in range(30):
                hello = hub.current_hello(now + 10 * i)
                assert hello is not None
                phone.record_hello(hello, now + 10 * i, -50)
            try:
                await phone.register()
                registered.append(phone)
                attempts += 1
                await phone.report(codes[n])
                reported += 1
            except (TimeoutError, PhoneError, aiohttp.ClientError):
                pass  # not acknowledged: the process was being killed

        async def traffic(first: int, seconds: float) -> int:
            n = first
            end = time.monotonic() + seconds
            while time.monotonic() < end and n < len(codes) - 8:
                await asyncio.gather(*(one(n + k) for k in range(8)))
                n += 8
            return n

        n = await traffic(0, 1.5)
        killer = asyncio.create_task(asyncio.sleep(0.3))
        run = asyncio.create_task(traffic(n, 1.0))
        await killer
        robert.kill()  # server and worker die mid-run
        redis_aof.kill()  # and Redis too: only its AOF is left
        n = await run
        redis_aof.start()
        robert.start()
        await robert.wait_healthy(session)
        await traffic(n, 1.0)

        store = RedisStore(store_url)
        await store.open()
        try:
            for phone in registered:
                assert phone.registered
                current = phone.current_tuple()
                assert current is not None
            keys = ServerKeys(tmp_path / "keys")
            keys.reload()
            hub_tuple = hub.current_tuple()
            assert hub_tuple is not None
            k_s = keys.key_of_day(day_of_epoch(hub_tuple.epoch_id, hub.time_start))
            _, hub_id = decrypt_ebid(k_s, hub_tuple.ebid)
            for phone in registered:  # every acknowledged registration survived
                tup = phone.current_tuple()
                assert tup is not None
                day_key = keys.key_of_day(day_of_epoch(tup.epoch_id, phone.time_start))
                assert await store.get_registration(decrypt_ebid(day_key, tup.ebid)[1])
            deadline = time.monotonic() + 30
            while await store.pending_reports() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert await store.pending_reports() == 0
            fields = await store.client.hkeys(f"x{{{bytes(hub_id).hex()}}}")
            # One record per (report, epoch): a report's five minutes of HELLOs touch one
            # epoch or two. Records are unlinkable (no report id), so reports are bounded, not
            # counted: a report processed twice writes the same records again (no more).
            records = len(set(fields))
            print(
                f"\n{len(registered)} registrations and {reported} reports acknowledged; "
                f"{records} exposure records"
            )
            assert reported > 10 and len(registered) > 10
            assert records >= reported  # acknowledged ones all there (+ in-flight ones)
            assert records <= 2 * (reported + 8)
        finally:
            await store.close()
    finally:
        robert.close()
