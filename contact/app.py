"""Contact Covid's application, mounted under ``/contact``: ``create_app`` (routes relative
to ``/contact``), ``mount``, ``standalone_app`` (``robert contact serve``), ``open_service``
for the commands, and ``feed_consumer`` reading SI-DEP's ``sidep.positive`` events.

The SI-DEP feed: with ``CONTACT_SIDEP_URL`` (``https://.../sidep/api/v1/events``) and an
``event-reader`` key, an HTTP consumer; in one process (``robert dev``) the command package
passes a ``local_fetcher`` over SI-DEP's database instead (``cli/wiring.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from contact.access import ARS_AGENT, CASE_ROLES, CHECK_ROLES, CPAM, DOCTOR
from contact.service import TOPICS, ContactService
from contact.settings import Settings
from contact.store import ContactStore
from contact.web import PREFIX, install, new_metrics
from kit.audit import AuditLog
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.events import FeedConsumer, FeedMetrics, Fetch, http_fetcher
from kit.http import add_fallback, mount_service, standalone
from kit.jobs import PeriodicJob
from kit.keys import configured_or_kept_secret, derive_key, load_or_create_secret
from kit.metrics import registry_of
from kit.notify import Dispatcher, close_transports
from kit.web import NavLink, Pages, setup_pages

log = logging.getLogger("contact")

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "contact"
ISSUER = "Contact Covid"

LINKS = (
    (f"{PREFIX}/", "Contact Covid (sign in)"),
    (f"{PREFIX}/health", "health check"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "contact")


PSEUDONYM_PURPOSE = "sidep pseudonym v1"
"""SI-DEP's derivation of the pseudonym key from its file (``sidep.app.pseudonym_key``): the
same here, so that the same file gives both services the same pseudonyms."""


def pseudonym_key(settings: Settings) -> bytes:
    """The pseudonym key shared with SI-DEP: HKDF of the secret in ``DATA_DIR/pseudonym.key``
    (made on first use) for SI-DEP's purpose string."""
    return derive_key(load_or_create_secret(settings.pseudonym_key_path), PSEUDONYM_PURPOSE)


def open_accounts(settings: Settings, clock: Callable[[], float] = time.time) -> Accounts:
    """The service's users and API keys (for the ``users`` and ``apikeys`` commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        ISSUER,
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )


def new_service(settings: Settings, clock: Callable[[], float] = time.time) -> ContactService:
    """The service on its database, not yet opened (``await service.open()``)."""
    audit = AuditLog(clock=lambda: datetime.fromtimestamp(clock(), UTC))
    return ContactService(
        ContactStore(Database(settings.database_url), audit),
        rules=settings.rules,
        auto_open_after=timedelta(hours=settings.auto_open_after_hours),
        handover_after=timedelta(hours=settings.handover_after_hours),
        retention=timedelta(days=settings.retention_days),
        cluster_min_cases=settings.cluster_min_cases,
        cluster_window_days=settings.cluster_window_days,
        pseudonym_key=pseudonym_key(settings),
        clock=clock,
    )


async def open_service(
    settings: Settings, clock: Callable[[], float] = time.time
) -> ContactService:
    """The service on its database, migrated and ready."""
    service = new_service(settings, clock)
    await service.open()
    return service


def feed_consumer(
    service: ContactService, fetch: Fetch, metrics: FeedMetrics | None = None
) -> FeedConsumer:
    """The consumer of SI-DEP's positives: each event applied once, with the cursor, in
    Contact Covid's database."""
    return FeedConsumer("contact", "sidep", service.store.db, fetch, service.handle_event,
                        metrics=metrics)  # fmt: skip


def _http_feed(settings: Settings, service: ContactService) -> Callable[
    [web.Application], AsyncIterator[None]
]:  # fmt: skip
    async def run(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            fetch = http_fetcher(session, settings.sidep_url, settings.sidep_api_key, TOPICS)
            consumer = feed_consumer(service, fetch, FeedMetrics(registry_of(app)))
            async for _ in consumer.cleanup_ctx(app):
                yield

    return run


def _job(run: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    async def once() -> None:
        await run()

    return once


def create_app(
    settings: Settings,
    service: ContactService | None = None,
    accounts: Accounts | None = None,
    clock: Callable[[], float] = time.time,
    *,
    manage: bool | None = None,
    feed: Fetch | None = None,
    jobs: bool = True,
) -> web.Application:
    """The service's application, to be mounted at ``/contact``. Opens (and closes) the
    service with the application unless one is given already open. ``feed``: where SI-DEP's
    events come from in this process (else ``CONTACT_SIDEP_URL``, else none)."""
    app = web.Application(client_max_size=1024 * 1024)
    owned = service is None if manage is None else manage
    opened = service or new_service(settings, clock)
    people_accounts = accounts or Accounts(
        opened.store.db,
        service_secret(settings),
        ISSUER,
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )
    pages = Pages(
        "Contact Covid",
        templates=HERE / "templates",
        locale=HERE / "locale",
        home=f"{PREFIX}/",
        nav=[
            NavLink(f"{PREFIX}/cases", "Cases", CASE_ROLES),
            NavLink(f"{PREFIX}/cases/new", "New case", frozenset({DOCTOR, *CPAM})),
            NavLink(f"{PREFIX}/clusters", "Clusters", frozenset({*CPAM, ARS_AGENT})),
            NavLink(f"{PREFIX}/prescriptions", "Check a prescription", CHECK_ROLES),
        ],
    )
    setup_pages(app, pages)
    policy = SessionPolicy(cookie_name="contact_session", path=f"{PREFIX}/")
    People(
        people_accounts,
        policy=policy,
        home=f"{PREFIX}/",
        next_prefixes=(f"{PREFIX}/",),
        mounted_at=PREFIX,
    ).setup(app, pages)
    install(app, opened, new_metrics(app))
    add_fallback(app)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if owned:
            await opened.open()
        yield
        if owned:
            await opened.close()

    app.cleanup_ctx.append(lifetime)
    if feed is not None:
        consumer = feed_consumer(opened, feed, FeedMetrics(registry_of(app)))
        app.cleanup_ctx.append(consumer.cleanup_ctx)
    elif settings.sidep_url:
        app.cleanup_ctx.append(_http_feed(settings, opened))
    if jobs:
        chosen = settings.transports()
        dispatcher = Dispatcher(opened.store.db, chosen)

        async def transports_lifetime(app: web.Application) -> AsyncIterator[None]:
            yield
            await close_transports(chosen)

        app.cleanup_ctx.append(transports_lifetime)
        for job in (
            PeriodicJob("contact-auto-open", settings.job_seconds, _job(opened.run_jobs)),
            PeriodicJob("contact-purge", 3600.0, _job(opened.purge)),
            dispatcher.job(min(10.0, settings.job_seconds)),
        ):
            app.cleanup_ctx.append(job.cleanup_ctx)
    return app


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the service's application at ``/contact`` of ``parent``."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """The service alone: ``/`` redirects to its home page."""
    return standalone(PREFIX, create_app(settings))
