"""Token buckets keyed by an opaque string, with an atomic take.

A limit on failures (wrong codes, wrong passwords) takes a token *before* the attempt and gives
it back when the attempt succeeds: checking first and charging after the attempt's ``await``
would let a burst of concurrent failures through before any of them is charged.

Per process and in memory: keys (client addresses, organisation names, user names) are never
written to a shared store nor logged, and memory is bounded by an LRU of keys.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    """``burst`` at once, then one more every ``per_seconds / burst`` seconds."""

    burst: int
    per_seconds: float

    @property
    def rate(self) -> float:
        """Tokens regained per second."""
        return self.burst / self.per_seconds


class Buckets:
    """Token buckets for one limit; one bucket per key, created full."""

    def __init__(
        self, limit: Limit, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def level(self, key: str) -> float:
        """Tokens ``key`` has now."""
        now = self.clock()
        tokens, updated = self._buckets.get(key, (float(self.limit.burst), now))
        return min(float(self.limit.burst), tokens + (now - updated) * self.limit.rate)

    def _set(self, key: str, tokens: float) -> None:
        self._buckets[key] = (tokens, self.clock())
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:  # evicted keys start afresh
            self._buckets.popitem(last=False)

    def take(self, key: str) -> float:
        """Take one token: 0.0 if taken, else the seconds until one is available (nothing
        taken). Atomic: no ``await`` between the check and the charge."""
        tokens = self.level(key)
        if tokens >= 1.0:
            self._set(key, tokens - 1.0)
            return 0.0
        return (1.0 - tokens) / self.limit.rate

    def give_back(self, key: str) -> None:
        """Return a token taken for an attempt that turned out not to count (a success)."""
        self._set(key, min(float(self.limit.burst), self.level(key) + 1.0))

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` has a token (0 if it has one now)."""
        tokens = self.level(key)
        return 0 if tokens >= 1.0 else math.ceil((1.0 - tokens) / self.limit.rate)

    def __len__(self) -> int:
        return len(self._buckets)
