"""A tiny service built on the kit, as a real one would be: one protected page for doctors, a
form posting to it, a JSON endpoint; its own templates and French catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from kit.auth import Accounts, LoginLimits, People, SessionPolicy, require_user
from kit.db import Database
from kit.http import add_route, json_response, see_other
from kit.web import NavLink, Pages, add_page, flash, pages_of, render, setup_pages

HERE = Path(__file__).resolve().parent
SECRET = "the demo service secret, long enough to derive keys from"
UPDATED = datetime(2026, 12, 10, 4, 8, tzinfo=UTC)  # 05:08 in Paris
PASSWORD = "correct horse battery staple"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
"""Cheap argon2 parameters, so the tests sign in quickly (the defaults are tested apart)."""


class Clock:
    """A settable clock (seconds since the epoch)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_app(
    accounts: Accounts, policy: SessionPolicy | None = None, limits: LoginLimits | None = None
) -> web.Application:
    """The demo application."""
    app = web.Application()
    pages = Pages(
        "Démo Contact Covid",
        templates=HERE / "templates",
        locale=HERE / "locale",
        nav=[NavLink("/", "Cases")],
    )
    setup_pages(app, pages)
    People(accounts, policy=policy, limits=limits).setup(app, pages)

    async def home(request: web.Request) -> web.StreamResponse:
        user = await require_user(request, roles={"doctor"})
        await accounts.audit.append(
            accounts.db, actor=user.actor, role=user.role, action="read",
            object_type="case_list", object_id="open",
        )  # fmt: skip
        return await render(request, "demo/home.html", **_home(note="", error=None))

    async def notes(request: web.Request) -> web.StreamResponse:
        await require_user(request, roles={"doctor"})
        form = await request.post()
        note = str(form.get("note", "")).strip()
        pages = pages_of(request)
        language = pages.language(request)
        if not 1 <= len(note) <= 200:
            error = pages.gettext(language, "A note is 1 to 200 characters.")
            return await render(request, "demo/home.html", 422, **_home(note=note, error=error))
        await flash(request, pages.gettext(language, "Note saved."), "success")
        return see_other("/")

    async def me(request: web.Request) -> web.StreamResponse:
        user = await require_user(request)
        return json_response({"username": user.username, "scope": user.scope})

    add_page(app, "GET", "/", home)
    add_page(app, "POST", "/notes", notes)
    add_route(app, "GET", "/api/me", me)
    add_route(app, "POST", "/api/me", me)
    return app


def _home(**extra: object) -> dict[str, object]:
    rows = [["C-2026-0042", "10/12/2026", "2"], ["C-2026-0043", "10/12/2026", "1"]]
    return {"updated": UPDATED, "rows": rows, **extra}


@dataclass
class Demo:
    """A running demo service."""

    url: str
    accounts: Accounts
    clock: Clock


@asynccontextmanager
async def running_demo(
    database_url: str,
    clock: Clock,
    policy: SessionPolicy | None = None,
    limits: LoginLimits | None = None,
) -> AsyncIterator[Demo]:
    """The demo service on a free port of 127.0.0.1, over a migrated database."""
    db = Database(database_url)
    await db.migrate()
    accounts = Accounts(db, SECRET, "Démo", hasher=FAST_HASHER, clock=clock)
    server = TestServer(make_app(accounts, policy, limits), host="127.0.0.1")
    await server.start_server()
    try:
        yield Demo(str(server.make_url("")).rstrip("/"), accounts, clock)
    finally:
        await server.close()
        await db.close()
