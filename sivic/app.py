"""SI-VIC's application, mounted under ``/sivic``: ``create_app`` (routes relative to
``/sivic``), ``mount``, ``standalone_app`` (``robert sivic serve``), and ``open_service`` for
the commands and for ``robert dev``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from kit.audit import AuditLog
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.http import add_fallback, mount_service, standalone
from kit.jobs import PeriodicJob
from kit.keys import configured_or_kept_secret
from kit.web import NavLink, Pages, setup_pages
from sivic.access import ADMIN, ARS, NATIONAL, STAFF
from sivic.service import SivicService
from sivic.settings import Settings
from sivic.store import SivicStore
from sivic.web import PREFIX, install, new_metrics

log = logging.getLogger("sivic")

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "sivic"
TITLE = "SI-VIC"

LINKS = (
    (f"{PREFIX}/", "SI-VIC (sign in)"),
    (f"{PREFIX}/api/v1/counts", "counts API (the SAMU board's)"),
    (f"{PREFIX}/health", "health check"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "sivic")


def open_accounts(settings: Settings, clock: Callable[[], float] = time.time) -> Accounts:
    """The service's users and API keys (for the ``users`` and ``apikeys`` commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        TITLE,
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )


def new_service(settings: Settings, clock: Callable[[], float] = time.time) -> SivicService:
    """SI-VIC on its database, not yet opened (``await service.open()``)."""
    audit = AuditLog(clock=lambda: datetime.fromtimestamp(clock(), UTC))
    return SivicService(
        SivicStore(Database(settings.database_url), audit), service_secret(settings), clock
    )


async def open_service(settings: Settings, clock: Callable[[], float] = time.time) -> SivicService:
    """SI-VIC on its database, migrated and ready."""
    service = new_service(settings, clock)
    await service.open()
    return service


def create_app(
    settings: Settings,
    service: SivicService | None = None,
    accounts: Accounts | None = None,
    clock: Callable[[], float] = time.time,
    *,
    manage: bool | None = None,
) -> web.Application:
    """SI-VIC's application, to be mounted at ``/sivic``. Opens (and closes) the service with
    the application unless one is given already open."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    owned = service is None if manage is None else manage
    opened = service or new_service(settings, clock)
    people_accounts = accounts or Accounts(
        opened.store.db,
        service_secret(settings),
        TITLE,
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )
    pages = Pages(
        "SI-VIC",
        templates=HERE / "templates",
        locale=HERE / "locale",
        nav=[
            NavLink(f"{PREFIX}/", "Patients", frozenset({STAFF, ADMIN})),
            NavLink(f"{PREFIX}/counts", "Counts", frozenset({ARS, NATIONAL, ADMIN})),
            NavLink(f"{PREFIX}/events", "Events", frozenset({STAFF, ARS, NATIONAL, ADMIN})),
        ],
        home=f"{PREFIX}/",
    )
    setup_pages(app, pages)
    origin = settings.public_url.rstrip("/")
    policy = SessionPolicy(
        cookie_name="sivic_session",
        path=f"{PREFIX}/",
        secure=True if origin.startswith("https://") else None,
        trusted_origins=frozenset({origin}) if origin else frozenset(),
    )
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
    if settings.publish_dir:
        job = PeriodicJob(
            "sivic-opendata",
            settings.publish_minutes * 60,
            _publish(opened, Path(settings.publish_dir)),
            run_at_start=False,
        )
        app.cleanup_ctx.append(job.cleanup_ctx)
    return app


def _publish(service: SivicService, out: Path) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        result = await service.publish(service.today(), out)
        if result.problems:
            log.error(
                "open data of %s not published: %s", result.day, "; ".join(result.problems[:5])
            )

    return run


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the service's application at ``/sivic`` of ``parent`` (``/sivic`` redirects)."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """SI-VIC alone: ``/`` redirects to its home page."""
    return standalone(PREFIX, create_app(settings))
