"""Connection limits below the handlers: a cap on open connections, a deadline on a request's
head, and nothing logged about a client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from kit.connections import Admission, ConnectionLimits, LimitedRunner, whole_request
from kit.http import Unavailable, error_body, json_response


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


# --- admissions: an endpoint bounded from its requests' first bytes ------------------------------
class Seen:
    """A metrics observer that keeps what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []

    def observe(self, endpoint: str, status: int, seconds: float, reason: str) -> None:
        self.calls.append((endpoint, status, reason))


@pytest.fixture
async def admitted() -> AsyncIterator[tuple[str, int, Admission, Seen, list[int]]]:
    """A server whose POST /slow (0.3 s) is admitted one at a time from its first bytes;
    ``reached`` counts the requests its handler saw."""
    reached: list[int] = []

    async def slow(request: web.Request) -> web.Response:
        reached.append(len(await request.read()))
        await asyncio.sleep(0.3)
        return json_response({"done": True})

    async def fast(request: web.Request) -> web.Response:
        return json_response({"fast": True})

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_post("/slower", fast)
    seen = Seen()
    admission = Admission("POST", "/slow", 1, Unavailable("busy; retry", "overloaded"), seen)
    runner = LimitedRunner(app, ConnectionLimits(admissions=(admission,)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield host, port, admission, seen, reached
    finally:
        await runner.cleanup()


def _post(path: str, body: bytes = b"{}", close: bool = True) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s" % (
        path.encode(),
        len(body),
        connection,
        body,
    )


async def _send(host: str, port: int, *parts: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    for part in parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.05)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_requests_beyond_an_admission_get_the_503_before_the_handler(
    admitted: tuple[str, int, Admission, Seen, list[int]],
) -> None:
    host, port, admission, seen, reached = admitted
    answers = await asyncio.gather(*(_send(host, port, _post("/slow")) for _ in range(4)))
    statuses = sorted(answer.split(b" ", 2)[1] for answer in answers)
    assert statuses == [b"200", b"503", b"503", b"503"]
    assert len(reached) == 1  # the refused ones never reached the handler
    refusal = next(answer for answer in answers if b" 503 " in answer[:20])
    head, body = refusal.split(b"\r\n\r\n", 1)
    assert b"\r\nRetry-After: 1\r\n" in head and b"\r\nContent-Type: application/json\r\n" in head
    assert b"\r\nDate: " in head and b"\r\nConnection: close\r\n" in head
    assert orjson.loads(body) == error_body("overloaded", "busy; retry")
    assert int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) == len(body)
    assert seen.calls == [("/slow", 503, "overloaded")] * 3
    assert (admission.busy, admission.seen, admission.refused) == (0, 4, 3)
    # The slot is back: the next one is admitted.
    assert b" 200 " in (await _send(host, port, _post("/slow")))[:20]


async def test_an_admission_holds_its_slot_on_a_kept_alive_connection_until_answered(
    admitted: tuple[str, int, Admission, Seen, list[int]],
) -> None:
    host, port, admission, _, reached = admitted
    reader, writer = await asyncio.open_connection(host, port)
    for _ in range(3):  # one after the other on the same connection: each admitted
        writer.write(_post("/slow", close=False))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        assert admission.busy == 0
    assert len(reached) == 3
    writer.write(_post("/slow", close=False))  # held while it is worked on...
    await asyncio.sleep(0.1)
    assert admission.busy == 1
    assert b" 503 " in (await _send(host, port, _post("/slow")))[:20]
    writer.close()  # ...and given back when its client goes away
    await asyncio.sleep(0.4)
    assert admission.busy == 0
    assert b" 200 " in (await _send(host, port, _post("/slow")))[:20]


async def test_requests_not_arriving_whole_are_left_to_the_handler(
    admitted: tuple[str, int, Admission, Seen, list[int]],
) -> None:
    """A body in a later packet, another path with the same start, another method: aiohttp
    parses them as usual (the handler keeps its own bound for these)."""
    host, port, admission, seen, reached = admitted
    held = asyncio.ensure_future(_send(host, port, _post("/slow")))
    await asyncio.sleep(0.1)
    assert admission.busy == 1
    request = _post("/slow", b'{"a": 1}')
    split = asyncio.ensure_future(_send(host, port, request[:-4], request[-4:]))
    other = await _send(host, port, _post("/slower"))
    assert b" 200 " in other[:20] and b'"fast"' in other
    got = await _send(host, port, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b" 405 " in got[:20]
    assert b" 200 " in (await split)[:20] and b" 200 " in (await held)[:20]
    assert reached == [2, 8] and seen.calls == []


@pytest.mark.parametrize(
    ("data", "whole"),
    [
        (b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", True),
        (b"POST /a HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"POST /a HTTP/1.1\r\ncontent-length:  2 \r\nHost: x\r\n\r\n{}", True),
        (b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\n{}", False),  # body to come
        (b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET", False),  # more after it
        (b"POST /a HTTP/1.1\r\nContent-Length: 2\r\n", False),  # head to come
        (b"POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", False),
        (b"POST /a HTTP/1.1\r\nContent-Length: -2\r\n\r\n{}", False),
        (b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", False),
    ],
)
def test_whole_request(data: bytes, whole: bool) -> None:
    assert whole_request(data) is whole
