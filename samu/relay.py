"""The live feed across processes: new log entries relayed through Redis pub/sub.

With one process (the default) a new entry goes straight to this process's open streams
(``samu.live.Broadcaster``). With several processes behind a proxy (``SAMU_REDIS_URL`` set),
each process publishes its new entries on one Redis channel and every process, itself
included, hands what it receives to its own streams, which filter by scope as before. Redis
pub/sub delivers at most once and only to processes listening at the time: a stream that
missed an entry (its process was reconnecting to Redis) gets it from the database when its
page reconnects with ``Last-Event-ID``, and each stream skips what it already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

import orjson
import redis.asyncio as aioredis

from samu.live import Broadcaster
from samu.model import Entry

log = logging.getLogger("samu.relay")
CHANNEL = "samu:entries"


def entry_message(entry: Entry) -> bytes:
    """An entry as the relay carries it."""
    return orjson.dumps(
        {
            "id": entry.id, "event_id": entry.event_id, "client_id": entry.client_id,
            "at": entry.at.isoformat(), "author": entry.author,
            "sender_scope": entry.sender_scope, "target_scope": entry.target_scope,
            "text": entry.text, "annotates": entry.annotates,
        }
    )  # fmt: skip


def entry_of(message: bytes) -> Entry:
    """The entry a relay message carries (``ValueError``/``KeyError`` if it is not one)."""
    d = orjson.loads(message)
    return Entry(
        int(d["id"]), int(d["event_id"]), str(d["client_id"]), datetime.fromisoformat(d["at"]),
        str(d["author"]), str(d["sender_scope"]), str(d["target_scope"]), str(d["text"]),
        None if d["annotates"] is None else int(d["annotates"]),
    )  # fmt: skip


class RedisRelay:
    """Publishes this process's new entries and fans out everyone's to ``live``."""

    def __init__(self, url: str, live: Broadcaster, channel: str = CHANNEL) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.live = live
        self.channel = channel
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Subscribe, and fan out what arrives until ``stop``; returns once subscribed."""
        self._task = asyncio.create_task(self._listen())
        waiting = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({waiting, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiting.cancel()
            self._task.result()  # raises what stopped it

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self._ready.set()
                        elif message["type"] == "message":
                            self._fan_out(message["data"])
            except (aioredis.ConnectionError, OSError) as exc:
                if not self._ready.is_set():
                    raise
                log.warning("Redis relay lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(1.0)

    def _fan_out(self, data: bytes) -> None:
        try:
            entry = entry_of(data)
        except (ValueError, KeyError, TypeError):
            log.warning("a relay message that is not an entry was ignored")
            return
        self.live.publish(entry)

    async def send(self, entry: Entry) -> None:
        """Relay a new entry to every process (this one included); if Redis cannot take it,
        to this process's streams only (the others' pages catch up when they reconnect)."""
        try:
            await self.redis.publish(self.channel, entry_message(entry))
        except (aioredis.RedisError, OSError) as exc:
            log.warning("Redis relay refused an entry (%s); local pages only", type(exc).__name__)
            self.live.publish(entry)

    async def stop(self) -> None:
        """Stop listening, close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aioredis.RedisError, OSError):
                await self._task
        await self.redis.aclose()
