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
- log malformed requests without the client's address (aiohttp's own message names it).

Body read deadlines are the handlers' (``kit.http.read_body``'s ``timeout``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

log = logging.getLogger("kit.connections")

BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n"
    b'Content-Length: 72\r\nConnection: close\r\n\r\n{"success":false,"error":"busy",'
    b'"message":"too many connections; retry"}'
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per process: open connections; seconds a connection may go without a complete
    request head (from its opening or its last answer)."""

    max_connections: int = 4096
    header_timeout: float = 10.0


class _Handler(RequestHandler):
    """aiohttp's connection handler, refusing connections beyond the cap."""

    __slots__ = ("_limits", "refused")

    def __init__(self, manager: Server, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self.refused = False

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
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's messages name the client ("Error handling request from %s"): logged
        without their arguments, and without the traceback of a client's malformed bytes."""
        message = str(args[0]) if args else "error"
        if "request from" in message:
            log.info("malformed request refused")
            return
        self.logger.error(message.replace("%s", "?"), exc_info=kw.get("exc_info"))


class _LimitedServer(Server):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

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
