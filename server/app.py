"""The aiohttp application factory: settings in, a wired application out.

Startup opens the store and loads (or creates) the keys; background tasks rotate K_S daily,
purge expired exposures and, for the embedded default, run the report worker in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from kit.http import add_fallback
from kit.memory import IdleTrimmer
from kit.metrics import registry_of
from protocol.epochs import day_of_ntp, ntp_from_unix
from server.api import routes
from server.api.appkeys import CAPTCHA, SERVICE, TRIMMER, WORKER
from server.captcha import CaptchaGate
from server.codegate import CodeGate
from server.keys import ServerKeys
from server.metrics import Metrics
from server.service import Clock, RobertService
from server.settings import Settings
from server.speech import Voices
from server.store import open_store
from server.store.base import Store
from server.worker import ReportWorker

log = logging.getLogger("robert.server")

KEY_REFRESH_SECONDS = 3600


def create_app(
    settings: Settings,
    codes: CodeGate,
    store: Store | None = None,
    clock: Clock = time.time,
    worker_idle_ms: int = 1000,
    mount: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """Build the ROBERT application; the store is opened and closed with the app.

    ``codes`` is how reports check and consume their submission code (``server.codegate``).
    ``mount`` adds the routes of other services or of the caller (the simulator's control
    routes) before the JSON 404/405 fallback, which must come last."""
    store = store or open_store(settings.store_url, settings.store_connections, settings.store_wait)
    app = web.Application(client_max_size=settings.max_report_bytes)
    metrics = Metrics(registry_of(app))
    today = day_of_ntp(ntp_from_unix(clock()))
    keys = ServerKeys.open(
        settings.keys_path, today, settings.keys_ahead_days, settings.key_retention_days
    )
    service = RobertService(settings, store, keys, metrics, clock, codes)
    app[SERVICE] = service
    app[CAPTCHA] = CaptchaGate(
        store,
        settings.captcha,
        Voices(settings.data_path / "captcha-voices"),
        clock,
        settings.captcha_lifetime,
        settings.captcha_attempts,
        settings.pow_difficulty,
    )
    app[WORKER] = ReportWorker(service)
    app[routes.INDEX_LINKS] = routes.default_links()
    routes.add_routes(app)
    gate = app[routes.IN_FLIGHT]
    admissions = app[routes.ADMISSIONS]
    app[TRIMMER] = IdleTrimmer(
        lambda: gate.seen + sum(admission.seen for admission in admissions), settings.idle_trim
    )
    if mount is not None:
        mount(app)
    add_fallback(app, metrics)  # after every other route: JSON 404/405
    app.cleanup_ctx.append(_store_ctx(store))
    app.cleanup_ctx.append(_codes_ctx(codes))
    app.cleanup_ctx.append(_background_ctx(settings, worker_idle_ms))
    return app


def _store_ctx(store: Store) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    return ctx


def _codes_ctx(codes: CodeGate) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await codes.open()
        yield
        await codes.close()

    return ctx


def _background_ctx(
    settings: Settings, worker_idle_ms: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_rotate_keys(app, stop), name="rotate-keys"),
            asyncio.create_task(_purge_captchas(app, stop), name="purge-captchas"),
        ]
        if settings.idle_trim > 0:
            tasks.append(asyncio.create_task(app[TRIMMER].run(stop), name="idle-trim"))
        if settings.embedded_worker:
            worker = app[WORKER]
            tasks.append(asyncio.create_task(worker.run(stop, worker_idle_ms), name="worker"))
            tasks.append(asyncio.create_task(_retention(worker, stop), name="retention"))
        yield
        stop.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx


async def _rotate_keys(app: web.Application, stop: asyncio.Event) -> None:
    """Keep K_S ready for the days ahead and forget those past retention, hourly."""
    service = app[SERVICE]
    settings = service.settings
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), KEY_REFRESH_SECONDS)
        if stop.is_set():
            break
        today = day_of_ntp(service.now_ntp())
        # Creates the days ahead and deletes the files of days past retention...
        created = service.keys.generate(
            today, settings.keys_ahead_days, settings.key_retention_days
        )
        # ...then the process forgets those keys too.
        service.keys.reload()
        service.forget_keys()
        if created:
            log.info("created K_S for %d day(s) up to %s", len(created), created[-1])


CAPTCHA_PURGE_SECONDS = 600


async def _purge_captchas(app: web.Application, stop: asyncio.Event) -> None:
    """Delete expired captchas every ten minutes (nobody can use them any more)."""
    gate = app[CAPTCHA]
    if gate.voices.engine is None and gate.mode != "pow":
        log.warning("espeak-ng not found: audio captchas speak English only")
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), CAPTCHA_PURGE_SECONDS)
        if not stop.is_set():
            await gate.store.purge_captchas(gate.now())


async def _retention(worker: ReportWorker, stop: asyncio.Event) -> None:
    """Purge exposures older than the contagious period, hourly."""
    while not stop.is_set():
        removed = await worker.purge_expired()
        if removed:
            log.info("retention: removed %d expired exposure entries", removed)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 3600)
