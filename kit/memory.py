"""Give memory back to the system once a burst is over.

After a burst of requests, the objects it made are freed, but the C allocator keeps the memory
that held them (glibc keeps freed heap pages in its arenas, and a Python process's resident
size stays near its peak; ``tracemalloc`` then shows live Python objects back at their resting
level while the resident size is tens of MiB above it). :func:`release` collects garbage and
asks glibc to hand free pages back (``malloc_trim(0)``); :class:`IdleTrimmer` calls it once a
process has been quiet for a few seconds after some activity: never on a request's path, never
while requests keep arriving, at most once per quiet spell.

On a system without glibc's ``malloc_trim`` (macOS, musl) only the garbage is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["IdleTrimmer", "can_trim", "release"]


def _load_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc: Any = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_MALLOC_TRIM = _load_trim()


def can_trim() -> bool:
    """Whether the C allocator can be asked to give free memory back (glibc)."""
    return _MALLOC_TRIM is not None


def release() -> bool:
    """Collect garbage, then ask the C allocator to return its free pages to the system;
    whether it gave any back (always False without glibc)."""
    gc.collect()
    if _MALLOC_TRIM is None:
        return False
    return bool(_MALLOC_TRIM(0))


class IdleTrimmer:
    """Calls ``release`` once ``activity()`` (a count that grows with each request) has not
    moved for ``quiet`` seconds after it last moved: after a burst, not during one, and not
    again until there has been new activity."""

    def __init__(
        self,
        activity: Callable[[], int],
        quiet: float = 5.0,
        release: Callable[[], object] = release,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.activity = activity
        self.quiet = quiet
        self._release = release
        self._clock = clock
        self._count = activity()
        self._moved = clock()
        self._dirty = False
        self.trims = 0
        """How many times memory was released."""

    def check(self) -> bool:
        """Look once (cheap: reads the count): release if quiet long enough since activity;
        whether it released."""
        now, count = self._clock(), self.activity()
        if count != self._count:
            self._count, self._moved, self._dirty = count, now, True
            return False
        if not self._dirty or now - self._moved < self.quiet:
            return False
        self._dirty = False
        self._release()
        self.trims += 1
        return True

    async def run(self, stop: asyncio.Event, every: float = 1.0) -> None:
        """Check every ``every`` seconds until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if not stop.is_set():
                self.check()
