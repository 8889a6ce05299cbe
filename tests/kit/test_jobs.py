"""kit.jobs: periodic runs, failures counted and logged without their message, a clean stop."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from kit.jobs import JobMetrics, PeriodicJob


async def test_a_failing_run_is_counted_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def purge() -> None:
        calls.append(len(calls))
        if len(calls) in (2, 3):
            raise ValueError("DELETE ... WHERE name = 'Élodie Dupont'")  # a driver's message

    registry = CollectorRegistry()
    job = PeriodicJob("purge", 0.01, purge, metrics=JobMetrics(registry))
    task = asyncio.create_task(job.run_forever())
    while len(calls) < 5:
        await asyncio.sleep(0.005)
    job.stop.set()
    await asyncio.wait_for(task, 2)
    assert job.failures == 2 and job.runs >= 5
    assert registry.get_sample_value("kit_job_failures_total", {"job": "purge"}) == 2
    assert "job purge failed: ValueError at test_jobs.py:" in caplog.text
    assert "Élodie" not in caplog.text


async def test_jitter_spreads_the_runs() -> None:
    async def nothing() -> None:
        return None

    job = PeriodicJob("x", 100.0, nothing, jitter=0.2)
    delays = {job.next_delay() for _ in range(50)}
    assert all(80 <= d <= 120 for d in delays) and len(delays) > 1
    with pytest.raises(ValueError, match="positive interval"):
        PeriodicJob("x", 0, nothing)


async def test_the_job_lives_and_dies_with_the_application() -> None:
    runs: list[float] = []
    finished = asyncio.Event()

    async def slow_run() -> None:
        runs.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.05)
        finished.set()

    job = PeriodicJob("slow", 60.0, slow_run)
    app = web.Application()
    app.cleanup_ctx.append(job.cleanup_ctx)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    await asyncio.sleep(0.01)
    await server.close()  # waits for the run in progress, then stops
    assert finished.is_set() and len(runs) == 1


async def test_a_job_may_wait_a_first_interval() -> None:
    loop = asyncio.get_running_loop()
    runs: list[float] = []

    async def run() -> None:
        runs.append(loop.time())

    job = PeriodicJob("later", 0.05, run, run_at_start=False, jitter=0)
    started = loop.time()
    task = asyncio.create_task(job.run_forever())
    while not runs:
        await asyncio.sleep(0.005)
    job.stop.set()
    await task
    assert runs[0] - started >= 0.05
