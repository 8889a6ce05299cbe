"""The drug service's application, mounted under ``/drugs``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from drugs.cover import CoverThresholds
from drugs.critical_care import CriticalCareSource, HttpCriticalCare
from drugs.service import ARS, NATIONAL, PHARMACIST, DrugService
from drugs.settings import Settings
from drugs.store import DrugStore
from drugs.web import PREFIX, install, new_metrics
from kit.audit import AuditLog
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.http import add_fallback, mount_service, standalone
from kit.keys import configured_or_kept_secret
from kit.web import NavLink, Pages, setup_pages

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "drugs"
LINKS = ((f"{PREFIX}/", "drug service (sign in)"), (f"{PREFIX}/health", "health check"))


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "drugs")


def open_accounts(settings: Settings) -> Accounts:
    """The service's users and API keys (for the account commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        "Médicaments (MaPUI)",
        api_key_prefix=API_KEY_PREFIX,
    )


def new_service(
    settings: Settings,
    clock: Callable[[], float] = time.time,
    critical_care: CriticalCareSource | None = None,
) -> DrugService:
    """The drug service on its database, not yet opened. Patients in critical care come from
    ``critical_care`` (in one process), else from the bed service's URL when set."""
    if critical_care is None and settings.beds_url:
        critical_care = HttpCriticalCare(settings.beds_url, settings.beds_api_key)
    audit = AuditLog(clock=lambda: datetime.fromtimestamp(clock(), UTC))
    return DrugService(
        DrugStore(Database(settings.database_url), audit),
        thresholds=CoverThresholds(settings.low_days, settings.critical_days),
        critical_care=critical_care,
        clock=clock,
    )


def session_policy(settings: Settings) -> SessionPolicy:
    """Sessions: a cookie named after the service, sent under its prefix only; behind a TLS
    proxy (``public_url``), Secure cookies and the public origin trusted by the CSRF check."""
    origin = settings.public_origin
    return SessionPolicy(
        cookie_name="drugs_session",
        path=f"{PREFIX}/",
        secure=True if origin.startswith("https://") else None,
        trusted_origins=frozenset({origin}) if origin else frozenset(),
    )


def create_app(
    settings: Settings,
    service: DrugService | None = None,
    accounts: Accounts | None = None,
    clock: Callable[[], float] = time.time,
    *,
    manage: bool | None = None,
) -> web.Application:
    """The drug service's application, to be mounted at ``/drugs``."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    owned = service is None if manage is None else manage
    opened = service or new_service(settings, clock)
    people_accounts = accounts or Accounts(
        opened.store.db,
        service_secret(settings),
        "Médicaments (MaPUI)",
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )
    pages = Pages(
        "Médicaments en tension (MaPUI)",
        templates=HERE / "templates",
        locale=HERE / "locale",
        nav=[
            NavLink(f"{PREFIX}/", "My stocks", frozenset({PHARMACIST})),
            NavLink(f"{PREFIX}/", "Region", frozenset({ARS, NATIONAL})),
        ],
    )
    setup_pages(app, pages)
    People(
        people_accounts,
        policy=session_policy(settings),
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
    return app


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount at ``/drugs`` of ``parent``."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """The drug service alone."""
    return standalone(PREFIX, create_app(settings))
