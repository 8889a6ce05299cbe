"""The citizen services' application: mounted under ``/citizens``, alone or beside the others.

``create_app`` builds it (routes relative to ``/citizens``); ``standalone_app`` serves it
alone (``robert citizens serve``); ``robert dev`` mounts it beside the other services. The
test sites are read at start and re-read when their file changes (``citizens.sites``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from citizens import directory_web
from citizens.advice import shipped_rules
from citizens.geo import france_map
from citizens.places import shipped_places
from citizens.settings import Settings
from citizens.sites import SiteBook
from citizens.store import DirectoryStore
from citizens.web import PREFIX, STATIC, Citizens, install
from kit.auth.people import Accounts, People
from kit.auth.sessions import SessionPolicy
from kit.db import Database
from kit.http import add_fallback, mount_service, standalone
from kit.jobs import PeriodicJob
from kit.keys import configured_or_kept_secret
from kit.metrics import HttpMetrics, registry_of
from kit.web import NavLink, Pages, setup_pages

log = logging.getLogger("citizens")

HERE = Path(__file__).resolve().parent
API_KEY_PREFIX = "citizens"
TITLE = "Services aux citoyens"

LINKS = (
    (f"{PREFIX}/", "services for citizens"),
    (f"{PREFIX}/advice/", "Mes Conseils Covid"),
    (f"{PREFIX}/sites/", "test sites"),
    (f"{PREFIX}/directory/", "e-health directory"),
    (f"{PREFIX}/health", "health check"),
)


def service_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data directory (created on first use)."""
    return configured_or_kept_secret(settings.secret, settings.data_dir, "citizens")


def open_accounts(settings: Settings) -> Accounts:
    """The moderators' accounts (for the ``users`` commands)."""
    return Accounts(
        Database(settings.database_url), service_secret(settings), "Citizens",
        api_key_prefix=API_KEY_PREFIX,
    )  # fmt: skip


def session_policy(settings: Settings) -> SessionPolicy:
    """Moderators' sessions: a cookie named after the service and sent under its prefix only
    (services mounted side by side keep theirs apart); behind a TLS proxy (``public_url``),
    Secure cookies and the public origin trusted by the CSRF check."""
    origin = settings.public_origin
    return SessionPolicy(
        cookie_name="citizens_session",
        path=f"{PREFIX}/",
        secure=True if origin.startswith("https://") else None,
        trusted_origins=frozenset({origin}) if origin else frozenset(),
    )


def new_pages() -> Pages:
    """The service's pages: its templates and French catalog, the kit's layout."""
    return Pages(
        TITLE,
        templates=HERE / "templates",
        locale=HERE / "locale",
        nav=[NavLink(f"{PREFIX}/directory/moderation", "Moderation", frozenset({"moderator"}))],
    )


def create_app(settings: Settings, accounts: Accounts | None = None) -> web.Application:
    """The citizen services' application, to be mounted at ``/citizens``."""
    app = web.Application(client_max_size=64 * 1024)
    accounts = accounts or open_accounts(settings)
    pages = new_pages()
    setup_pages(app, pages)
    policy = session_policy(settings)
    people = People(
        accounts, policy=policy, home=f"{PREFIX}/directory/moderation",
        next_prefixes=(f"{PREFIX}/",), mounted_at=PREFIX,
    )  # fmt: skip
    people.setup(app, pages)  # /login here, /citizens/login in links and redirects

    book = SiteBook(settings.sites_path)
    state = Citizens(
        book=book,
        places=shipped_places(),
        france=france_map(),
        rules=shipped_rules(),
        embed_ancestors=settings.embed_ancestors,
        public_origin=settings.public_origin,
        advice_script=(STATIC / "advice.js").read_text(encoding="utf-8"),
    )
    metrics = HttpMetrics("citizens", registry_of(app))
    store = DirectoryStore(accounts.db, accounts.audit)
    install(app, state, metrics)
    directory_web.install(app, store, metrics, policy.trusted_origins)
    add_fallback(app, metrics)

    async def reload() -> None:
        await asyncio.to_thread(book.reload)

    watcher = PeriodicJob("citizens-sites", settings.sites_check_every, reload)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        await reload()
        yield
        await store.close()

    app.cleanup_ctx.append(lifetime)
    app.cleanup_ctx.append(watcher.cleanup_ctx)
    return app


def mount(parent: web.Application, app: web.Application) -> None:
    """Mount the application at ``/citizens`` of ``parent`` (``/citizens`` redirects)."""
    mount_service(parent, PREFIX, app)


def standalone_app(settings: Settings) -> web.Application:
    """The citizen services alone: ``/`` redirects to their index."""
    return standalone(PREFIX, create_app(settings))
