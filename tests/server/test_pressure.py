"""Back-pressure: a bound on requests in flight, store connections that turn into 503 when
none is free, liveness apart from readiness, slow and vanishing uploads."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from client_sim.clock import VirtualClock
from kit.connections import ConnectionLimits, LimitedRunner
from phone.client import Phone, PhoneError
from server.api.appkeys import TRIMMER
from server.app import create_app
from server.settings import Settings
from server.store.redis import RedisStore
from tests.server.conftest import Running, code_service

WRONG = "0f0e0d0c-0b0a-4909-8807-060504030201"


class SlowCodes:
    """A code service that takes ``delay`` seconds per code."""

    def __init__(self, codes: Any, delay: float) -> None:
        self.codes, self.delay = codes, delay

    async def open(self) -> None:
        await self.codes.open()

    async def close(self) -> None:
        await self.codes.close()

    async def consume(self, code: str) -> str:
        await asyncio.sleep(self.delay)
        outcome: str = await self.codes.consume(code)
        return outcome

    async def release(self, code: str) -> None:
        await self.codes.release(code)


@pytest.fixture
async def serve(
    make_settings: Callable[..., Settings], clock: VirtualClock
) -> AsyncIterator[Callable[..., Any]]:
    servers: list[TestServer] = []

    async def start(delay: float = 0.0, **changes: Any) -> Running:
        settings = make_settings(**changes)
        codes = code_service(Path(settings.data_dir), clock)
        gate = SlowCodes(codes, delay) if delay else codes
        server = TestServer(create_app(settings, gate, clock=clock), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Running(server, codes)

    yield start
    for server in servers:
        await server.close()


async def _post(
    session: aiohttp.ClientSession, url: str, body: Any, client: str = ""
) -> tuple[int, dict[str, Any], str | None]:
    headers = {"X-Forwarded-For": client} if client else {}
    async with session.post(url, json=body, headers=headers) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_requests_beyond_the_in_flight_bound_get_503(serve: Callable[..., Any]) -> None:
    running = await serve(delay=0.5, max_in_flight=2, trusted_proxies="127.0.0.1")
    url = f"{running.url}/api/v6/report"
    async with aiohttp.ClientSession() as session:
        tasks = [
            asyncio.ensure_future(
                _post(session, url, {"token": WRONG, "contacts": []}, f"198.51.100.{i}")
            )
            for i in range(6)
        ]
        await asyncio.sleep(0.2)
        # Health and metrics are outside the bound.
        async with session.get(f"{running.url}/health/live") as live:
            assert live.status == 200
        answers = await asyncio.gather(*tasks)
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [401, 401, 503, 503, 503, 503]
        for status, body, after in answers:
            if status == 503:
                assert body["error"] == "overloaded" and after == "1"
        # Once the two are done, the process takes requests again.
        status, _, _ = await _post(session, url, {"token": WRONG, "contacts": []}, "203.0.113.1")
        assert status == 401


async def test_no_free_store_connection_is_503_and_liveness_stays(
    serve: Callable[..., Any], store_url: str, clock: VirtualClock
) -> None:
    if not store_url.startswith("redis"):
        pytest.skip("the connection pool is Redis's")
    running = await serve(store_connections=1, store_wait=0.1)
    store = running.service.store
    assert isinstance(store, RedisStore)
    async with aiohttp.ClientSession() as session:
        phone = Phone(running.url, clock, random.Random(5).randbytes, session)
        await phone.register()
        clock.advance(2)
        # The pool's only connection is busy for a second.
        hold = asyncio.ensure_future(store.client.blpop(["nothing-ever"], timeout=1))
        await asyncio.sleep(0.05)
        with pytest.raises(PhoneError) as refused:
            await phone.delete_history()
        assert refused.value.status == 503
        assert refused.value.code == "store_unavailable"
        async with session.get(f"{running.url}/health") as health:
            assert (health.status, health.headers.get("Retry-After")) == (503, "1")
        async with session.get(f"{running.url}/health/live") as live:
            assert live.status == 200
        await hold
        async with session.get(f"{running.url}/health") as health:
            assert health.status == 200
        clock.advance(2)
        await phone.delete_history()  # the connection is back


async def _raw(host: str, port: int, data: bytes, then_close: bool) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    if then_close:
        writer.close()
        return b""
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    answer += await asyncio.wait_for(reader.read(200), 5)
    writer.close()
    return answer


async def test_a_slow_body_gets_408(serve: Callable[..., Any]) -> None:
    running = await serve(body_timeout=0.3)
    head = (
        b"POST /api/v6/status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\nConnection: close\r\n\r\n{"ebid"'
    )
    answer = await _raw(running.server.host, running.server.port or 0, head, False)
    assert answer.split(b" ", 2)[1] == b"408"
    assert b"request_timeout" in answer


async def test_a_dropped_upload_is_not_an_error_of_ours(
    settings: Settings, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Served as ``robert serve`` serves (kit.connections' runner, no handler cancellation):
    a client that goes away mid-body is counted as gone, never as a 500, and nothing is
    logged."""
    app = create_app(settings, code_service(Path(settings.data_dir), clock), clock=clock)
    runner = LimitedRunner(app, ConnectionLimits(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    caplog.set_level(logging.INFO)
    try:
        head = (
            b"POST /api/v6/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000000\r\n\r\n{"token": "' + b"x" * 200_000
        )
        await _raw(host, port, head, True)
        await asyncio.sleep(0.3)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/metrics") as response,
        ):
            text = await response.text()
    finally:
        await runner.cleanup()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 'status="500"' not in text
    assert 'reason="client_gone"' in text


async def test_registrations_beyond_their_bound_get_503(serve: Callable[..., Any]) -> None:
    """Registrations have their own, tighter bound (each costs an ECDH and a bundle)."""
    from loadtest.messages import register_body

    running = await serve(max_registering=2)
    service = running.service
    register = service.register

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await register(*args, **kwargs)

    service.register = slow  # type: ignore[method-assign]
    url = f"{running.url}/api/v6/register"
    async with aiohttp.ClientSession() as session:

        async def post() -> tuple[int, str | None]:
            async with session.post(
                url, data=register_body(), headers={"Content-Type": "application/json"}
            ) as response:
                body = await response.json()
                return response.status, body.get("error")

        answers = await asyncio.gather(*(post() for _ in range(5)))
    assert sorted(answers, key=str) == [(201, None)] * 2 + [(503, "overloaded")] * 3


async def test_idle_trimmer_runs_after_requests_and_is_harmless(
    serve: Callable[..., Any],
) -> None:
    running = await serve(idle_trim=0.01)
    trimmer = running.server.app[TRIMMER]
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{running.url}/api/v6/clock") as answer:
                assert answer.status == 200
        assert trimmer.activity() >= 3
        for _ in range(200):  # the background check runs every second
            if trimmer.trims:
                break
            await asyncio.sleep(0.05)
        assert trimmer.trims >= 1
        async with session.get(f"{running.url}/api/v6/clock") as answer:
            assert answer.status == 200


async def test_registrations_beyond_their_bound_are_refused_from_their_first_bytes(
    make_settings: Callable[..., Settings], clock: VirtualClock
) -> None:
    """Served as ``robert serve`` serves (the registrations' admission in the connection
    layer): the excess of a burst gets the handler's 503 JSON with Retry-After without being
    parsed, is counted with its reason, and /health is not bounded."""
    from loadtest.messages import register_body
    from server.api.routes import ADMISSIONS, REGISTERING, SERVICE

    settings = make_settings(max_registering=2)
    app = create_app(settings, code_service(Path(settings.data_dir), clock), clock=clock)
    service = app[SERVICE]
    register = service.register

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await register(*args, **kwargs)

    service.register = slow  # type: ignore[method-assign]
    runner = LimitedRunner(app, ConnectionLimits(admissions=app[ADMISSIONS]), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        requests = []
        for _ in range(6):
            body = register_body()
            requests.append(
                b"POST /api/v6/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )
        connections = [await asyncio.open_connection(host, port) for _ in requests]
        for (_, writer), request in zip(connections, requests, strict=True):
            writer.write(request)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{host}:{port}/health") as health:
                assert health.status == 200
            answers = [await asyncio.wait_for(reader.read(), 5) for reader, _ in connections]
            async with session.get(f"http://{host}:{port}/metrics") as response:
                metrics = await response.text()
        for _, writer in connections:
            writer.close()
        statuses = sorted(answer.split(b" ", 2)[1] for answer in answers)
        assert statuses == [b"201"] * 2 + [b"503"] * 4
        for answer in answers:
            if b" 503 " in answer[:20]:
                head, body = answer.split(b"\r\n\r\n", 1)
                assert b"\r\nRetry-After: 1\r\n" in head
                assert orjson.loads(body) == {
                    "success": False,
                    "error": "overloaded",
                    "message": "too many registrations at once; retry later",
                }
        line = 'robert_rejected_requests_total{endpoint="/api/v6/register",reason="overloaded"}'
        assert f"{line} 4.0" in metrics
        assert app[ADMISSIONS][0].refused == 4  # all four from their first bytes
        assert app[ADMISSIONS][0].busy == 0 and app[REGISTERING].busy == 0
    finally:
        await runner.cleanup()
