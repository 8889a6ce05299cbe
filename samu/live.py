"""The live feed: new log entries fanned out, in this process, to the open pages allowed to
see them.

Each open page (a server-sent-events stream) subscribes with the event it watches and its
viewer's scope; ``publish`` hands a new entry to every subscriber of that event whose scope
may see it (``samu.scopes.may_see``), without waiting: a subscriber whose queue is full (a
page that stopped reading) is dropped, and its page reconnects and catches up from the
database with ``Last-Event-ID``.

This fan-out reaches the pages served by *this* process only. With several processes behind
a proxy, ``samu.relay.RedisRelay`` (``SAMU_REDIS_URL``) carries each new entry through Redis
pub/sub to every process, which publishes it here (NATS would do as well).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from samu.model import Entry
from samu.scopes import Scope, may_see, parse_scope

QUEUE_SIZE = 256


@dataclass(eq=False)
class Subscriber:
    """One open page: the event it watches, its viewer's scope, its queue (None: closed)."""

    event_id: int
    scope: Scope
    queue: asyncio.Queue[Entry | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    dropped: bool = False


class Broadcaster:
    """The subscribers of this process, by event."""

    def __init__(self) -> None:
        self._by_event: dict[int, set[Subscriber]] = {}
        self.closed = False

    def subscribe(self, event_id: int, scope: Scope) -> Subscriber:
        """A new subscriber of ``event_id`` seeing what ``scope`` may see."""
        subscriber = Subscriber(event_id, scope)
        if self.closed:
            subscriber.queue.put_nowait(None)
        self._by_event.setdefault(event_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (its page closed)."""
        found = self._by_event.get(subscriber.event_id)
        if found is not None:
            found.discard(subscriber)
            if not found:
                del self._by_event[subscriber.event_id]

    def count(self, event_id: int | None = None) -> int:
        """How many pages are subscribed (to ``event_id``, or to any event)."""
        if event_id is not None:
            return len(self._by_event.get(event_id, ()))
        return sum(len(s) for s in self._by_event.values())

    def publish(self, entry: Entry) -> int:
        """Hand ``entry`` to the subscribers allowed to see it; how many received it."""
        target = parse_scope(entry.target_scope)
        sender = parse_scope(entry.sender_scope)
        delivered = 0
        for subscriber in list(self._by_event.get(entry.event_id, ())):
            if not may_see(subscriber.scope, target, sender):
                continue
            try:
                subscriber.queue.put_nowait(entry)
                delivered += 1
            except asyncio.QueueFull:
                subscriber.dropped = True
                self.unsubscribe(subscriber)
        return delivered

    def close(self) -> None:
        """End every stream (the application stops)."""
        self.closed = True
        for subscribers in self._by_event.values():
            for subscriber in subscribers:
                try:
                    subscriber.queue.put_nowait(None)
                except asyncio.QueueFull:
                    subscriber.dropped = True
