"""The board's application, mounted under ``/samu``: ``create_app`` (routes relative to
``/samu``), ``mount``, ``standalone_app`` (``robert samu serve``), and ``new_service`` for the
commands and for ``robert dev``'s wiring."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from kit.audit import AuditLog
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.http import add_fallback, mount_service, standalone
from kit.keys import configured_or_kept_secret
from kit.web import NavLink, Pages, setup_pages
from samu.access import BOARD_ROLES, TRANSFER_ROLES
from samu.links import CountsSource, HttpCounts, HttpTension, TensionSource
from samu.relay import RedisRelay
from samu.service import SamuService
from samu.settings import Settings
from samu.store import SamuStore
from samu.web import PREFIX, install, new_metrics

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "samu"
TITLE = "Portail SI-SAMU"

LINKS = (
    (f"{PREFIX}/", "SAMU board (sign in)"),
    (f"{PREFIX}/api/v1/events", "events API"),
    (f"{PREFIX}/health", "health check"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "samu")


def open_accounts(settings: Settings, clock: Callable[[], float] = time.time) -> Accounts:
    """The board's users and API keys (for the ``users`` and ``apikeys`` commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        TITLE,
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )


def new_service(
    settings: Settings,
    clock: Callable[[], float] = time.time,
    counts: CountsSource | None = None,
    tension: TensionSource | None = None,
) -> SamuService:
    """The board on its database, not yet opened. SI-VIC's counts and the bed tension come
    from ``counts``/``tension`` if given (one process), else over HTTP when their URLs are
    set, else they read "not available"."""
    if counts is None and settings.sivic_url:
        counts = HttpCounts(settings.sivic_url, settings.sivic_key)
    if tension is None and settings.beds_url:
        tension = HttpTension(settings.beds_url, settings.beds_key)
    audit = AuditLog(clock=lambda: datetime.fromtimestamp(clock(), UTC))
    service = SamuService(
        SamuStore(Database(settings.database_url), audit),
        counts=counts,
        tension=tension,
        clock=clock,
    )
    if settings.redis_url:
        service.relay = RedisRelay(settings.redis_url, service.live)
    return service


def session_policy(settings: Settings) -> SessionPolicy:
    """Sessions: a cookie named after the service, sent under its prefix only."""
    origin = settings.public_origin
    return SessionPolicy(
        cookie_name="samu_session",
        path=f"{PREFIX}/",
        secure=True if origin.startswith("https://") else None,
        trusted_origins=frozenset({origin}) if origin else frozenset(),
    )


def create_app(
    settings: Settings,
    service: SamuService | None = None,
    accounts: Accounts | None = None,
    clock: Callable[[], float] = time.time,
    *,
    manage: bool | None = None,
) -> web.Application:
    """The board's application, to be mounted at ``/samu``. Opens (and closes) the service
    with the application unless one is given already open."""
    app = web.Application()
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
        TITLE,
        templates=HERE / "templates",
        locale=HERE / "locale",
        nav=[
            NavLink(f"{PREFIX}/", "Events", frozenset(BOARD_ROLES)),
            NavLink(f"{PREFIX}/transfers", "Transfers", frozenset(TRANSFER_ROLES)),
        ],
        home=f"{PREFIX}/",
    )
    setup_pages(app, pages)
    People(
        people_accounts,
        policy=session_policy(settings),
        home=f"{PREFIX}/",
        next_prefixes=(f"{PREFIX}/",),
        mounted_at=PREFIX,
    ).setup(app, pages)
    install(app, opened, new_metrics(app), settings.heartbeat_seconds)
    add_fallback(app)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if owned:
            await opened.open()
        yield
        if owned:
            await opened.close()

    async def end_streams(app: web.Application) -> None:
        opened.live.close()  # open pages' streams end before the server waits for them

    app.on_shutdown.append(end_streams)
    app.cleanup_ctx.append(lifetime)
    return app


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the board's application at ``/samu`` of ``parent`` (``/samu`` redirects)."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """The board alone: ``/`` redirects to its home page."""
    return standalone(PREFIX, create_app(settings))
