"""SI-DEP's application, mounted under ``/sidep``: ``create_app`` (routes relative to
``/sidep``), ``mount``, ``standalone_app`` (``robert sidep serve``: HTTP and the MLLP
listener), and ``new_service``/``open_service`` for the commands and ``robert dev``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from argon2 import PasswordHasher

from kit import notify
from kit.auth.apikeys import setup_api_keys
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.events import mount_event_feed
from kit.http import add_fallback, mount_service, standalone
from kit.jobs import PeriodicJob
from kit.keys import configured_or_kept_secret, derive_key, load_or_create_secret
from kit.web import Pages, setup_pages
from sidep.dashboard import Dashboard
from sidep.intake import Intake
from sidep.issuer import CodeIssuer, HttpCodeIssuer
from sidep.mllp import Committer, MllpListener
from sidep.pages import DASHBOARD, NAV, install_pages
from sidep.service import SidepService
from sidep.settings import Settings
from sidep.sites import SiteFinder
from sidep.store import SidepStore
from sidep.web import API, PREFIX, install, new_metrics

log = logging.getLogger("sidep")

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "sidep"
ISSUER = "SI-DEP"
NOTICE_INTERVAL = 10.0
PURGE_INTERVAL = 3600.0
NOTIFY_INTERVAL = 10.0

LINKS = (
    (f"{PREFIX}/", "pages of biologists, testers, doctors, agents, analysts (sign in)"),
    (f"{PREFIX}{API}/hl7", "HL7 v2 intake (POST, API key of role lab)"),
    (f"{PREFIX}/health", "health check"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "sidep")


def pseudonym_key(settings: Settings) -> bytes:
    """The key of the patients' pseudonyms, from its file (created on first use)."""
    text = load_or_create_secret(settings.pseudonym_key_path)
    return derive_key(text, "sidep pseudonym v1")


def http_issuer(settings: Settings) -> CodeIssuer | None:
    """The code service over HTTP, when ``SIDEP_CODES_URL`` is set."""
    if settings.codes_url:
        return HttpCodeIssuer(settings.codes_url, settings.codes_api_key)
    return None


def open_accounts(settings: Settings, clock: Callable[[], float] = time.time) -> Accounts:
    """The service's users and API keys (for the ``users`` and ``apikeys`` commands)."""
    return Accounts(
        Database(settings.database_url),
        service_secret(settings),
        ISSUER,
        api_key_prefix=API_KEY_PREFIX,
        clock=clock,
    )


def new_service(
    settings: Settings,
    clock: Callable[[], float] = time.time,
    issuer: CodeIssuer | None = None,
) -> SidepService:
    """SI-DEP on its database, not yet opened (``await service.open()``)."""
    return SidepService(
        SidepStore(Database(settings.database_url)),
        pseudonym_key(settings),
        issuer=issuer or http_issuer(settings),
        purge_days=settings.purge_days,
        clock=clock,
        sites=SiteFinder(settings.sites_url) if settings.sites_url else None,
    )


async def open_service(
    settings: Settings, clock: Callable[[], float] = time.time, issuer: CodeIssuer | None = None
) -> SidepService:
    """SI-DEP on its database, migrated and ready."""
    service = new_service(settings, clock, issuer)
    await service.open()
    return service


def create_app(
    settings: Settings,
    service: SidepService | None = None,
    *,
    intake: Intake | None = None,
    clock: Callable[[], float] = time.time,
    hasher: PasswordHasher | None = None,
    mllp: bool = False,
    manage: bool | None = None,
) -> web.Application:
    """SI-DEP's application, to be mounted at ``/sidep``: the intake API, the event feed, the
    pages, the notice, purge and notification jobs, and (``mllp``) the MLLP listener on
    ``settings.mllp_port``. Opens (and closes) the service unless one is given open."""
    app = web.Application(client_max_size=32 * 1024 * 1024 + 1024)
    owned = service is None if manage is None else manage
    opened = service or new_service(settings, clock)
    accounts = Accounts(
        opened.store.db,
        service_secret(settings),
        ISSUER,
        api_key_prefix=API_KEY_PREFIX,
        hasher=hasher,
        clock=clock,
    )
    opened.audit = accounts.audit
    pages = Pages(
        "SI-DEP", templates=HERE / "templates", locale=HERE / "locale", nav=NAV,
        home=f"{PREFIX}/",
    )  # fmt: skip
    setup_pages(app, pages)
    People(
        accounts,
        policy=SessionPolicy(cookie_name="sidep_session", path=f"{PREFIX}/"),
        home=f"{PREFIX}/",
        next_prefixes=(f"{PREFIX}/",),
        mounted_at=PREFIX,
    ).setup(app, pages)
    setup_api_keys(app, accounts.api_keys)
    metrics = new_metrics(app)
    committer = Committer(opened, settings.commit_batch)
    reader = intake or Intake()
    install(app, opened, reader, committer, metrics)
    install_pages(app, metrics)
    app[DASHBOARD] = Dashboard(opened)
    mount_event_feed(app, opened.store.db, API, accounts.audit)
    add_fallback(app, metrics)
    dispatcher = notify.Dispatcher(opened.store.db, settings.transports())
    jobs = [
        PeriodicJob("sidep-notices", NOTICE_INTERVAL, _notices(opened)),
        retention_job(opened),
        dispatcher.job(NOTIFY_INTERVAL),
    ]

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if owned:
            await opened.open()
        await committer.start()
        listener = None
        if mllp and settings.mllp_port:
            listener = MllpListener(reader, committer)
            port = await listener.start(settings.host, settings.mllp_port)
            log.info("MLLP listener on %s:%d", settings.host, port)
        yield
        if listener is not None:
            await listener.stop()
        await committer.stop()
        await notify.close_transports(dispatcher.transports)
        if owned:
            await opened.close()

    app.cleanup_ctx.append(lifetime)
    for job in jobs:
        app.cleanup_ctx.append(job.cleanup_ctx)
    return app


def _notices(service: SidepService) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await service.process_notices()

    return run


def retention_job(service: SidepService, interval: float = PURGE_INTERVAL) -> PeriodicJob:
    """The purge of identities past the retention, as a periodic job (``kit.jobs``)."""
    from kit.audit import Actor

    async def run() -> None:
        purged = await service.purge(Actor("sidep-retention", "system"))
        if purged:
            log.info("retention: identity of %d persons purged", purged)

    return PeriodicJob("sidep-purge", interval, run)


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the application at ``/sidep`` of ``parent`` (``/sidep`` redirects)."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings, issuer: CodeIssuer | None = None) -> web.Application:
    """SI-DEP alone, with its MLLP listener: ``/`` redirects to its home page."""
    service = new_service(settings, issuer=issuer) if issuer else None
    return standalone(PREFIX, create_app(settings, service, mllp=True, manage=True))


__all__ = ["create_app", "mount", "standalone_app"]
