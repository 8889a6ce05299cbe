"""The code service's application: opened on its own database, mounted under ``/codes``.

``create_app`` builds the service's application (its routes relative to ``/codes``);
``standalone_app`` serves it alone (``robert codes serve``); ``robert dev`` mounts it beside
the ROBERT server. ``open_service`` opens the service without HTTP, for the commands and for
the ROBERT server's in-process code gate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web
from argon2 import PasswordHasher

from codes import admin
from codes.pages import install_pages
from codes.service import CodeService
from codes.settings import Settings
from codes.store import CodeStore
from codes.web import PREFIX, install, new_metrics
from kit.auth.apikeys import ApiKeyStore
from kit.auth.people import Accounts
from kit.db import Database
from kit.http import add_fallback, mount_service, standalone
from kit.jobs import PeriodicJob
from kit.keys import configured_or_kept_secret

log = logging.getLogger("codes")

API_KEY_PREFIX = "codes"
ISSUER = "Codes TousAntiCovid"
"""How people's authenticator apps name the account (the TOTP issuer)."""
RETENTION_INTERVAL = 3600.0

LINKS = (
    (f"{PREFIX}/", "pages of labs, doctors and administrators (sign in)"),
    (f"{PREFIX}/api/v1/authorities", "authorities (public keys)"),
    (f"{PREFIX}/health", "health check"),
    (f"{PREFIX}/metrics", "metrics"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "codes")


def open_accounts(settings: Settings) -> Accounts:
    """The service's users and API keys (for the ``users`` and ``apikeys`` commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        ISSUER,
        api_key_prefix=API_KEY_PREFIX,
    )


def accounts_of(
    settings: Settings, service: CodeService, hasher: PasswordHasher | None = None
) -> Accounts:
    """The people and keys of a service's pages, on its database and clock."""
    return Accounts(
        service.store.db,
        service_secret(settings),
        ISSUER,
        api_key_prefix=API_KEY_PREFIX,
        hasher=hasher,
        clock=service.clock,
    )


def new_service(settings: Settings, clock: Callable[[], float] = time.time) -> CodeService:
    """The code service on its database, not yet opened (``await service.open()``)."""
    db = Database(settings.database_url)

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    return CodeService(CodeStore(db), ApiKeyStore(db, API_KEY_PREFIX, clock=now), clock=clock)


async def open_service(settings: Settings, clock: Callable[[], float] = time.time) -> CodeService:
    """The code service on its database, migrated and ready."""
    service = new_service(settings, clock)
    await service.open()
    return service


def create_app(
    settings: Settings,
    service: CodeService | None = None,
    clock: Callable[[], float] = time.time,
    hasher: PasswordHasher | None = None,
) -> web.Application:
    """The code service's application, to be mounted at ``/codes``: the machine API and the
    pages people sign in to. Opens (and closes) the service with the application unless one
    is given already open. ``hasher``: argon2 parameters of passwords (tests make them cheap)."""
    app = web.Application(client_max_size=64 * 1024)
    owned = service is None
    opened = service or new_service(settings, clock)
    accounts = accounts_of(settings, opened, hasher)
    metrics = new_metrics(app)
    install(app, opened, metrics)
    install_pages(app, accounts, metrics)
    admin.install(app, metrics)
    add_fallback(app, metrics)
    retention = PeriodicJob("codes-retention", RETENTION_INTERVAL, _purge(opened))

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if owned:
            await opened.open()
        yield
        if owned:
            await opened.close()

    app.cleanup_ctx.append(lifetime)
    app.cleanup_ctx.append(retention.cleanup_ctx)
    return app


def _purge(service: CodeService) -> Callable[[], Awaitable[None]]:
    async def purge() -> None:
        removed = await service.purge_expired()
        if removed:
            log.info("retention: removed %d expired codes", removed)

    return purge


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the service's application at ``/codes`` of ``parent`` (``/codes`` redirects)."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """The code service alone: ``/`` redirects to its pages."""
    return standalone(PREFIX, create_app(settings))
