"""The bed service's application, mounted under ``/beds``: ``create_app`` (routes relative
to ``/beds``), ``mount``, ``standalone_app`` (``robert beds serve``), and ``open_service`` for
the commands and for ``robert dev``'s wiring."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from beds.access import ARS, FIND_ROLES, NATIONAL, SAMU, STAFF
from beds.service import BedService
from beds.settings import Settings
from beds.store import BedStore
from beds.tension import Thresholds
from beds.web import PREFIX, install, new_metrics
from kit.audit import AuditLog
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.http import add_fallback, mount_service, standalone
from kit.jobs import PeriodicJob
from kit.keys import configured_or_kept_secret
from kit.web import NavLink, Pages, setup_pages

log = logging.getLogger("beds")

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "beds"

LINKS = (
    (f"{PREFIX}/", "bed service (sign in)"),
    (f"{PREFIX}/api/v1/tension?territory=fr", "tension API"),
    (f"{PREFIX}/fhir/Location", "FHIR Location (ROR capacity)"),
    (f"{PREFIX}/health", "health check"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "beds")


def open_accounts(settings: Settings, clock: Callable[[], float] = time.time) -> Accounts:
    """The service's users and API keys (for the ``users`` and ``apikeys`` commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        "Lits (ROR)",
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )


def new_service(settings: Settings, clock: Callable[[], float] = time.time) -> BedService:
    """The bed service on its database, not yet opened (``await service.open()``)."""
    from datetime import UTC, datetime

    audit = AuditLog(clock=lambda: datetime.fromtimestamp(clock(), UTC))
    return BedService(
        BedStore(Database(settings.database_url), audit),
        stale_after=settings.stale_minutes * 60,
        thresholds=Thresholds(settings.tension_alert, settings.tension_crisis),
        clock=clock,
        figures_cache_seconds=settings.figures_cache_seconds,
    )


async def open_service(settings: Settings, clock: Callable[[], float] = time.time) -> BedService:
    """The bed service on its database, migrated and ready."""
    service = new_service(settings, clock)
    await service.open()
    return service


def session_policy(settings: Settings) -> SessionPolicy:
    """Sessions: a cookie named after the service, sent under its prefix only; behind a TLS
    proxy (``public_url``), Secure cookies and the public origin trusted by the CSRF check."""
    origin = settings.public_origin
    return SessionPolicy(
        cookie_name="beds_session",
        path=f"{PREFIX}/",
        secure=True if origin.startswith("https://") else None,
        trusted_origins=frozenset({origin}) if origin else frozenset(),
    )


def create_app(
    settings: Settings,
    service: BedService | None = None,
    accounts: Accounts | None = None,
    clock: Callable[[], float] = time.time,
    *,
    manage: bool | None = None,
) -> web.Application:
    """The bed service's application, to be mounted at ``/beds``. Opens (and closes) the
    service with the application unless one is given already open."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    owned = service is None if manage is None else manage
    opened = service or new_service(settings, clock)
    people_accounts = accounts or Accounts(
        opened.store.db,
        service_secret(settings),
        "Lits (ROR)",
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )
    pages = Pages(
        "Lits de soins critiques (ROR)",
        templates=HERE / "templates",
        locale=HERE / "locale",
        nav=[
            NavLink(f"{PREFIX}/", "My establishment", frozenset({STAFF})),
            NavLink(f"{PREFIX}/dashboard", "Tension", frozenset({SAMU, ARS, NATIONAL})),
            NavLink(f"{PREFIX}/find", "Find a bed", FIND_ROLES),
        ],
    )
    setup_pages(app, pages)
    policy = session_policy(settings)
    People(
        people_accounts,
        policy=policy,
        home=f"{PREFIX}/",
        next_prefixes=(f"{PREFIX}/",),
        mounted_at=PREFIX,
    ).setup(app, pages)
    install(app, opened, new_metrics(app))
    add_fallback(app)
    snapshot = PeriodicJob("beds-daily", settings.snapshot_minutes * 60, _snapshot(opened))

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if owned:
            await opened.open()
        yield
        if owned:
            await opened.close()

    app.cleanup_ctx.append(lifetime)
    app.cleanup_ctx.append(snapshot.cleanup_ctx)
    return app


def _snapshot(service: BedService) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await service.snapshot()

    return run


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the service's application at ``/beds`` of ``parent`` (``/beds`` redirects)."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """The bed service alone: ``/`` redirects to its home page."""
    return standalone(PREFIX, create_app(settings))
