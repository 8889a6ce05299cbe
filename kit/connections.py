"""Limits on client connections, below the request handlers: a cap on open connections, a
deadline for a request's head, an idle timeout, and a log that never names a client.

aiohttp holds a connection as long as its client keeps sending a byte now and then (slowloris),
and has no cap on how many it holds: both would let a few machines exhaust the process's file
descriptors. ``LimitedRunner`` is an ``aiohttp.web.AppRunner`` whose connections:

- beyond ``max_connections`` open at once, are answered ``503`` with ``Retry-After`` and
  closed at once;
- are closed when no complete request head (request line and headers) has arrived
  ``header_timeout`` seconds after the connection opened or its last answer went out, however
  often the client sends a byte (slowloris) or none at all (idle keep-alive). This is
  aiohttp's keep-alive timer, which bytes do not reset; no per-chunk work is added;
- log malformed requests without the client's address (aiohttp's own message names it);
- with ``admissions``, bound an endpoint's requests in flight from their first bytes: a
  request beyond its ``Admission``'s limit is answered a prebuilt 503 and its connection
  closed before aiohttp parses it (no request object, no task, no handler).

Body read deadlines are the handlers' (``kit.http.read_body``'s ``timeout``).

Why the admission is taken here rather than in a handler: in a launch burst (2,000
registrations arriving at the same instant on one process), the handler's bound refused the
excess only after aiohttp had parsed each request, built its request object and task, routed
it, read its body and written a 503 through its response machinery (about 230 µs of server CPU
a refusal on the shared 2-core machine), and the accepted requests' next steps queued behind
all of it (docs/operations.md, "Before and after (issue 16)"). Here a refusal is a prefix
comparison, a ``find``, one ``write`` and a close (55-100 µs, about half in the kernel), and
the write and close wait for the work already queued: at most ``REFUSALS_PER_ROUND`` refusals
are answered per turn of the event loop, so the admitted requests run ahead of a burst's
refusals instead of behind them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_server import Server

from kit.http import NO_METRICS, HttpError, RequestObserver, error_body

log = logging.getLogger("kit.connections")

BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 72\r\nConnection: close\r\n\r\n{"success":false,"error":"busy",'
    b'"message":"too many connections; retry"}'
)


class Admission:
    """A bound on one endpoint's requests in flight, taken from a request's first bytes.

    A request whose bytes start with ``METHOD PATH`` (then a space or a query), arriving
    whole (head and ``Content-Length`` body) in one read at a request boundary (a fresh
    connection, or one whose previous request has been answered), is admitted while fewer
    than ``limit`` admitted ones are unanswered; beyond, it is answered ``refusal`` (its JSON
    envelope and headers, ``Retry-After`` included, prebuilt once) with ``Connection:
    close`` and its connection closed (a few turns of the event loop later, after the work
    queued before it: ``REFUSALS_PER_ROUND``), and ``observe`` counts it (status 503, reason
    the refusal's code) as the handler's refusals are counted. An admitted request keeps its
    slot until its answer is written or its connection lost.

    A request that does not arrive whole in one read (its body in a later packet, chunked)
    is left to aiohttp and the handler unbounded here: the handler keeps its own bound with
    the same limit, which these admissions never trip (they hold each slot longer than the
    handler does)."""

    __slots__ = (
        "_answer",
        "_body",
        "_date",
        "_head",
        "_observe",
        "busy",
        "endpoint",
        "limit",
        "prefixes",
        "reason",
        "refused",
        "seen",
        "status",
    )

    def __init__(
        self,
        method: str,
        path: str,
        limit: int,
        refusal: HttpError,
        observe: RequestObserver = NO_METRICS,
    ) -> None:
        start = f"{method} {path}".encode("ascii")
        self.prefixes = (start + b" ", start + b"?")
        self.endpoint = path
        self.limit = limit
        self.busy = 0
        """Admitted requests not yet answered."""
        self.seen = 0
        """Requests matched, admitted or refused (an activity count, as ``InFlight.seen``)."""
        self.refused = 0
        self.status = refusal.status
        self.reason = refusal.code
        self._observe = observe
        self._body = orjson.dumps(error_body(refusal.code, refusal.message))
        headers = {"Content-Type": "application/json", **refusal.headers}
        self._head = (
            f"HTTP/1.1 {refusal.status} {HTTPStatus(refusal.status).phrase}\r\n".encode("ascii")
            + b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items())
            + b"Content-Length: %d\r\nConnection: close\r\nDate: " % len(self._body)
        )
        self._date = -1
        self._answer = b""

    def answer(self) -> bytes:
        """The refusal's bytes (their ``Date`` made once a second)."""
        now = int(time.time())
        if now != self._date:
            self._date = now
            date = formatdate(now, usegmt=True).encode("ascii")
            self._answer = self._head + date + b"\r\n\r\n" + self._body
        return self._answer

    def matches(self, data: bytes) -> bool:
        """True if ``data`` is one whole request to this endpoint, nothing before or after."""
        return data.startswith(self.prefixes) and whole_request(data)

    def count_refusal(self, seconds: float) -> None:
        self.refused += 1
        self._observe.observe(self.endpoint, self.status, seconds, self.reason)


def whole_request(data: bytes) -> bool:
    """True if ``data`` is exactly one request head and the ``Content-Length`` body it
    announces (none if it announces none), with nothing after it; False for anything else
    (a chunked body, several or malformed lengths, an unfinished head or body)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = data[:end].lower()
    if b"\r\ntransfer-encoding:" in head:
        return False
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        length = 0
    else:
        if head.find(b"\r\ncontent-length:", at + 17) >= 0:
            return False
        stop = head.find(b"\r\n", at + 17)
        value = head[at + 17 : stop if stop >= 0 else len(head)].strip(b" \t")
        if not value.isdigit() or len(value) > 9:
            return False
        length = int(value)
    return len(data) == end + 4 + length


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per process: open connections; seconds a connection may go without a complete
    request head (from its opening or its last answer); endpoints bounded from their
    requests' first bytes (``Admission``)."""

    max_connections: int = 4096
    header_timeout: float = 10.0
    admissions: tuple[Admission, ...] = ()


class _Handler(RequestHandler):
    """aiohttp's connection handler, refusing connections beyond the cap and requests beyond
    their admission's limit."""

    __slots__ = (
        "_clean",
        "_finished",
        "_held",
        "_last_payload",
        "_limits",
        "_refusing",
        "refused",
    )

    def __init__(self, manager: Server, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self.refused = False
        self._held: Admission | None = None
        self._finished = 0
        """Requests answered on this connection (``_request_count`` counts those parsed)."""
        self._clean = True
        """No bytes of an unfinished request head have been fed to the parser."""
        self._last_payload: StreamReader | None = None
        self._refusing = False

    def data_received(self, data: bytes) -> None:
        admissions = self._limits.admissions
        if self._refusing:
            return
        if not admissions or not data:
            super().data_received(data)
            return
        if self._held is None:
            for admission in admissions:  # the request's first bytes, then the connection
                if not admission.matches(data):
                    continue
                if self._at_boundary():
                    admission.seen += 1
                    if admission.busy >= admission.limit:
                        self._refuse(admission)
                        return
                    admission.busy += 1
                    self._held = admission
                break  # the one endpoint its bytes name
        parsed = self._request_count
        payload = self._last_payload
        between = payload is None or payload.is_eof()
        super().data_received(data)
        if self._request_count != parsed and self._messages:
            self._last_payload = self._messages[-1][1]
            self._clean = True
        elif between:
            self._clean = False  # part of a head: the next read does not start a request

    def _at_boundary(self) -> bool:
        """True if the next byte received starts a request: every request parsed has been
        answered, its body fully received, and no part of a new head is waiting."""
        payload = self._last_payload
        return (
            self._clean
            and self._finished == self._request_count
            and (payload is None or payload.is_eof())
            and self._payload_parser is None
            and not self._upgraded
            and not self._close
            and not self._force_close
            and self.transport is not None
        )

    def _refuse(self, admission: Admission) -> None:
        self._refusing = True
        manager = self._manager
        assert isinstance(manager, _LimitedServer)
        manager.defer(self, admission, time.perf_counter())

    def answer_refusal(self, admission: Admission, started: float) -> None:
        """Write the refusal and close (if the client is still there); count it."""
        transport = self.transport
        if transport is not None:
            transport.write(admission.answer())
            self.force_close()
        admission.count_refusal(time.perf_counter() - started)

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            held.busy -= 1

    async def finish_response(
        self, request: BaseRequest, resp: StreamResponse, start_time: float | None
    ) -> tuple[StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._finished += 1
            self._release()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager = self._manager
        if manager is not None and len(manager.connections) >= self._limits.max_connections:
            self.refused = True
            tcp = transport  # the client gets a JSON 503 and the connection is closed
            tcp.write(BUSY)  # type: ignore[attr-defined]
            tcp.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.refused:
            return
        self._release()
        self._last_payload = None
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's messages name the client ("Error handling request from %s"): logged
        without their arguments, and without the traceback of a client's malformed bytes."""
        message = str(args[0]) if args else "error"
        if "request from" in message:
            log.info("malformed request refused")
            return
        self.logger.error(message.replace("%s", "?"), exc_info=kw.get("exc_info"))


REFUSALS_PER_ROUND = 64
"""Refusals answered per turn of the event loop (16 gave the same figures in the burst)."""


class _LimitedServer(Server):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._refusals: deque[tuple[_Handler, Admission, float]] = deque()

    def defer(self, handler: _Handler, admission: Admission, started: float) -> None:
        """Answer a refusal after the work already queued: at most ``REFUSALS_PER_ROUND``
        refusals are written per turn of the event loop, so that the admitted requests'
        next steps (queued in between) are not kept waiting behind a whole burst's."""
        if not self._refusals:
            asyncio.get_running_loop().call_soon(self._answer_refusals)
        self._refusals.append((handler, admission, started))

    def _answer_refusals(self) -> None:
        refusals = self._refusals
        for _ in range(min(REFUSALS_PER_ROUND, len(refusals))):
            handler, admission, started = refusals.popleft()
            handler.answer_refusal(admission, started)
        if refusals:
            asyncio.get_running_loop().call_soon(self._answer_refusals)

    def __call__(self) -> RequestHandler:
        return _Handler(self, self.limits, loop=self._loop, **self._kwargs)


class LimitedRunner(web.AppRunner):
    """An AppRunner whose server enforces ``ConnectionLimits``."""

    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", limits.header_timeout)
        # After answering a request whose body did not all come (413, 408), aiohttp reads
        # and drops the rest for up to 10 s; one second is enough for an honest client.
        kwargs.setdefault("lingering_time", 1.0)
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> Server:
        plain = await super()._make_server()  # runs the app's start-up
        return _LimitedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            loop=asyncio.get_running_loop(),
            limits=self.limits,
            **self._kwargs,
        )
