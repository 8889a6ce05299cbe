"""A lean, auto-pipelining Redis connection for the status hot path.

redis-py's asyncio client checks a connection out of a pool for every command and pays tens of
microseconds of Python per call; under a burst it also runs out of connections. The status path
needs only a few plain commands (GET, SET NX, EVALSHA), so here they go through one long-lived
connection: every command issued during one event-loop iteration is written in a single
``write`` (Redis pipelining, without anybody asking for it), and replies, parsed by hiredis,
resolve the waiting futures in order. Nothing is written that redis-py does better: streams,
scans and the rest stay on redis-py.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Awaitable
from typing import Any, cast
from urllib.parse import unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


class _Connection(asyncio.Protocol):
    """One Redis connection: commands queued per loop iteration, replies matched FIFO."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._reader = hiredis.Reader()
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._outgoing: list[bytes] = []
        self._flush_scheduled = False
        self.lost: BaseException | None = None

    # asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        pending = self._pending
        while (reply := self._reader.gets()) is not False:
            future = pending.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or RedisConnectionError("connection closed by Redis")
        self._transport = None
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(RedisConnectionError(f"Redis connection lost: {self.lost}"))

    # commands -----------------------------------------------------------------------------
    def execute(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command; its reply resolves the returned future."""
        future = self._loop.create_future()
        if self._transport is None:
            future.set_exception(RedisConnectionError("Redis connection is closed"))
            return future
        self._pending.append(future)
        self._outgoing.append(hiredis.pack_command(args))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is not None and self._outgoing:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @property
    def usable(self) -> bool:
        return self._transport is not None


class PipelinedRedis:
    """One auto-pipelining connection to one Redis, reconnected lazily.

    One, not a pool: every command of an event-loop iteration then goes out in one write, the
    largest pipelines and the fewest system calls, and Redis runs commands one at a time
    anyway (two connections measured 1.5 µs more per status request, docs/performance.md).
    """

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "redis":
            raise ValueError("the fast path speaks plain redis:// only")
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 6379
        self._username = unquote(parsed.username) if parsed.username else None
        self._password = unquote(parsed.password) if parsed.password else None
        path = parsed.path.lstrip("/")
        self._db = int(path) if path else 0
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: _Connection(loop), self._host, self._port
        )
        if self._password is not None:
            auth = (self._username, self._password) if self._username else (self._password,)
            await connection.execute(("AUTH", *auth))
        if self._db:
            await connection.execute(("SELECT", self._db))
        return connection

    def execute(self, *args: Any) -> Awaitable[Any]:
        """Queue one command; awaiting the result gives its reply (bytes, int, list or None).

        A plain function, not a coroutine: on a live connection the caller awaits the reply's
        future directly, one coroutine frame less on the hot path."""
        connection = self._connection
        if connection is None or not connection.usable:
            return self._execute_reconnecting(args)
        return connection.execute(args)

    async def _execute_reconnecting(self, args: tuple[Any, ...]) -> Any:
        if self._connecting is None:  # one reconnection, however many callers wait
            self._connecting = asyncio.ensure_future(self._connect())
        try:
            self._connection = await self._connecting
        finally:
            self._connecting = None
        return await self._connection.execute(args)

    async def close(self) -> None:
        """Close the connection."""
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        await asyncio.sleep(0)  # let the transport finish closing
