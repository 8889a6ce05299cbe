"""Connection limits below the handlers: a cap on open connections, a deadline on a request's
head, and nothing logged about a client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kit.connections import ConnectionLimits, LimitedRunner
from kit.http import json_response


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, int]]:
    async def hello(request: web.Request) -> web.Response:
        return json_response({"hello": True})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = LimitedRunner(
        app,
        ConnectionLimits(max_connections=3, header_timeout=0.3),
        access_log=None,  # as kit.cli.serve_app runs it by default
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = runner.addresses
    host, port = sockets[0][:2]
    try:
        yield host, port
    finally:
        await runner.cleanup()


async def _get(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_a_slow_head_is_cut(served: tuple[str, int]) -> None:
    """A client sending its head a few bytes at a time (slowloris) is disconnected after
    the header timeout, however often it sends a byte."""
    host, port = served
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    closed_after = None
    for tick in range(20):
        await asyncio.sleep(0.1)
        writer.write(b"X")
        if reader.at_eof() or writer.is_closing():
            closed_after = tick
            break
        try:
            if await asyncio.wait_for(reader.read(1), 0.01) == b"":
                closed_after = tick
                break
        except TimeoutError:
            continue
        except ConnectionResetError:
            closed_after = tick
            break
    writer.close()
    assert closed_after is not None and closed_after < 10
    # A normal request still works.
    assert b"200 OK" in await _get(host, port)


async def test_connections_beyond_the_cap_get_503(served: tuple[str, int]) -> None:
    host, port = served
    held = [await asyncio.open_connection(host, port) for _ in range(3)]
    await asyncio.sleep(0.05)
    answer = await _get(host, port)
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)
    assert b"200 OK" in await _get(host, port)


async def test_malformed_requests_log_no_address(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    host, port = served
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.split(b" ", 2)[1] == b"400"
    assert "127.0.0.1" not in caplog.text
