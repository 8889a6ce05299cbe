"""In-memory token buckets on failed verifications, per client and per organisation.

Per process: with N server processes an attacker gets N times the budget; that is accepted
(and documented) because the code space makes guessing hopeless anyway, and it keeps client
addresses out of every shared store. Keys (remote addresses, organisation names) live only in
this process's memory, in a bounded LRU, and are never logged.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """``burst`` failures at once, then one more every ``per_seconds / burst`` seconds."""

    burst: int
    per_seconds: float

    @property
    def rate(self) -> float:
        """Tokens regained per second."""
        return self.burst / self.per_seconds


class Buckets:
    """Token buckets keyed by an opaque string; only failures take tokens."""

    def __init__(
        self, limit: Limit, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str) -> float:
        tokens, updated = self._buckets.get(key, (float(self.limit.burst), self.clock()))
        now = self.clock()
        return min(float(self.limit.burst), tokens + (now - updated) * self.limit.rate)

    def allowed(self, key: str) -> bool:
        """Whether ``key`` may try again (at least one token left)."""
        return self._level(key) >= 1.0

    def charge(self, key: str) -> None:
        """Record a failure of ``key``: one token less."""
        level = max(0.0, self._level(key) - 1.0)
        self._buckets[key] = (level, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:  # bounded memory; evicted keys start afresh
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits of the code service (defaults documented in docs/codes.md)."""

    report_per_client: Limit = Limit(burst=10, per_seconds=3600.0)
    verify_per_client: Limit = Limit(burst=30, per_seconds=3600.0)
    verify_per_org: Limit = Limit(burst=300, per_seconds=3600.0)
    login_per_client: Limit = Limit(burst=10, per_seconds=3600.0)


class Limiters:
    """One set of buckets per limit, shared by the HTTP handlers of one process."""

    def __init__(
        self, limits: RateLimits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or RateLimits()
        self.report_client = Buckets(self.limits.report_per_client, clock=clock)
        self.verify_client = Buckets(self.limits.verify_per_client, clock=clock)
        self.verify_org = Buckets(self.limits.verify_per_org, clock=clock)
        self.login_client = Buckets(self.limits.login_per_client, clock=clock)
