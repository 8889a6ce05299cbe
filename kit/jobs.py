"""Periodic background jobs of an aiohttp application: retention purges, dispatchers, feeds.

``PeriodicJob(name, interval, run)`` calls ``run()`` every ``interval`` seconds (give or take
a random jitter, so that the jobs of many processes do not hit the database together), until
its stop event is set. A failing run is counted and logged, with its exception's type and the
place it was raised, never its message (a driver's message may quote personal data): the loop
goes on. ``app.cleanup_ctx.append(job.cleanup_ctx)`` starts it with the application and stops
it, waiting for a run in progress, when the application stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("kit.jobs")


def describe_failure(exc: BaseException) -> str:
    """An exception as ``Type at file.py:line``: where and what, without its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


class JobMetrics:
    """Runs and failures of every job, by job name, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.runs = Counter("kit_job_runs", "Runs of background jobs", ["job"], registry=registry)
        self.failures = Counter(
            "kit_job_failures", "Failed runs of background jobs", ["job"], registry=registry
        )


class PeriodicJob:
    """``run`` every ``interval`` seconds (± ``jitter`` of it) until stopped."""

    def __init__(
        self,
        name: str,
        interval: float,
        run: Callable[[], Awaitable[object]],
        *,
        jitter: float = 0.1,
        run_at_start: bool = True,
        metrics: JobMetrics | None = None,
    ) -> None:
        if interval <= 0 or not 0 <= jitter < 1:
            raise ValueError("a job needs a positive interval and a jitter in [0, 1)")
        self.name = name
        self.interval = interval
        self.run = run
        self.jitter = jitter
        self.run_at_start = run_at_start
        self.metrics = metrics
        self.stop = asyncio.Event()
        self.runs = 0
        self.failures = 0

    def next_delay(self) -> float:
        """Seconds until the next run."""
        return self.interval * (1 + random.uniform(-self.jitter, self.jitter))

    async def run_once(self) -> bool:
        """One run; whether it succeeded (a failure is counted and logged, not raised)."""
        self.runs += 1
        if self.metrics:
            self.metrics.runs.labels(self.name).inc()
        try:
            await self.run()
        except Exception as exc:
            self.failures += 1
            if self.metrics:
                self.metrics.failures.labels(self.name).inc()
            log.error("job %s failed: %s", self.name, describe_failure(exc))
            return False
        return True

    async def run_forever(self) -> None:
        """Run until ``stop`` is set (a run in progress finishes first)."""
        if not self.run_at_start and await self._sleep(self.next_delay()):
            return
        while not self.stop.is_set():
            await self.run_once()
            if await self._sleep(self.next_delay()):
                return

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopped; whether stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: start with the application, stop with it."""
        self.stop.clear()
        task = asyncio.create_task(self.run_forever(), name=f"job {self.name}")
        yield
        self.stop.set()
        await task
