"""Signing people in and out of a service's pages, and the guards of its handlers.

``People(accounts).setup(app, pages)`` adds the session middleware and these pages:

- ``GET/POST /login``: user name and password. A failure says only "wrong user name or
  password"; failures are limited per user name and per client (take a token before trying,
  give it back on success: ``kit.ratelimit``) and audited (``login_failed``).
- ``GET/POST /login/code``: the six-digit TOTP code (limited and audited likewise).
- ``GET/POST /login/enrol``: at the first sign-in, the authenticator app's QR code and key,
  and a first code to confirm it.
- ``POST /login/cancel`` and ``POST /logout`` (with the CSRF token).

The session id rotates when the password is accepted and again when the code is, and only
then does the session count as signed in (``login`` audited). After it, the browser goes to
the page it first asked for, if that is a path of this site under an allowed prefix; anything
else (another host, ``//host``, a scheme, backslashes) goes to the home page.

Handlers guard themselves: ``user = await require_user(request, roles={"doctor"})`` gives the
signed-in user or answers for them: a redirect to the sign-in page for a browser, 401 JSON for
an API client, 403 for a role not allowed, 403 for an unsafe request failing the CSRF check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp_session
from aiohttp import web
from argon2 import PasswordHasher

from kit.audit import Action, AuditLog
from kit.auth.apikeys import ApiKeyStore, setup_api_keys
from kit.auth.sessions import (
    CsrfRefused,
    SessionPolicy,
    check_csrf,
    csrf_token,
    session_storage,
    setup_sessions,
)
from kit.auth.users import BadCredentials, CodeCheck, User, UserStore, normalise_username
from kit.db import Database
from kit.http import Forbidden, see_other
from kit.keys import check_secret
from kit.ratelimit import Buckets, Limit
from kit.web import CURRENT_USER, LoginRequired, Pages, add_page, pages_of, qr_svg

# Session fields (inside the encrypted cookie).
_UID, _SID, _MFA, _LOGIN_AT, _SEEN_AT, _NEXT = "uid", "sid", "mfa", "login_at", "seen_at", "next"
SEEN_RESOLUTION = 60.0
"""The last-seen time is rewritten at most once a minute (each rewrite sends a cookie)."""


class Accounts:
    """A service's people and machines: its users, API keys and audit log, on its database.

    ``secret`` is the service secret (``<PREFIX>_SECRET``); TOTP secrets are encrypted with a
    key derived from it, so it is required and must not change (``kit.keys``)."""

    def __init__(
        self,
        db: Database,
        secret: str,
        issuer: str,
        *,
        api_key_prefix: str = "kit",
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_secret(secret)
        self.db = db
        self.secret = secret
        self.clock = clock
        self.users = UserStore(db, secret, issuer, hasher=hasher, clock=clock)
        self.audit: AuditLog = self.users.audit
        self.api_keys = ApiKeyStore(db, api_key_prefix, audit=self.audit, clock=self.users.now)


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed sign-in attempts (passwords and codes together) allowed before waiting."""

    per_user: Limit = field(default_factory=lambda: Limit(5, 15 * 60))
    per_client: Limit = field(default_factory=lambda: Limit(30, 15 * 60))


@dataclass(frozen=True, slots=True)
class LoginPaths:
    """Where the sign-in pages are, under the prefix the service mounts them at."""

    prefix: str = ""

    @property
    def login(self) -> str:
        return f"{self.prefix}/login"

    @property
    def code(self) -> str:
        return f"{self.prefix}/login/code"

    @property
    def enrol(self) -> str:
        return f"{self.prefix}/login/enrol"

    @property
    def cancel(self) -> str:
        return f"{self.prefix}/login/cancel"

    @property
    def logout(self) -> str:
        return f"{self.prefix}/logout"


def safe_next(value: str | None, fallback: str, allowed: Collection[str] = ("/",)) -> str:
    """``value`` if it is a path of this site under one of the ``allowed`` prefixes, else
    ``fallback``: never another host (``//evil``, ``https://evil``, ``/\\evil``)."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return fallback
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return fallback
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return fallback
    if not any(parts.path == p.rstrip("/") or parts.path.startswith(p) for p in allowed):
        return fallback
    return value


class People:
    """Sessions, sign-in pages and guards of one service's pages."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        policy: SessionPolicy | None = None,
        limits: LoginLimits | None = None,
        home: str = "/",
        next_prefixes: Collection[str] = ("/",),
        prefix: str = "",
        mounted_at: str = "",
    ) -> None:
        """``prefix`` places the sign-in routes within the application (``/login``...);
        ``mounted_at`` is where that application is mounted as a sub-application
        (``/sidep``): routes are registered without it, links and redirects carry it."""
        self.accounts = accounts
        self.users = accounts.users
        self.audit = accounts.audit
        self.clock = accounts.clock
        self.policy = policy or SessionPolicy()
        limits = limits or LoginLimits()
        self.per_user = Buckets(limits.per_user)
        self.per_client = Buckets(limits.per_client)
        self.home = home
        self.routes = LoginPaths(prefix)
        """Where the sign-in routes are registered (relative to the application)."""
        self.paths = LoginPaths(mounted_at.rstrip("/") + prefix)
        """Where browsers find them (the links, redirects and form actions)."""
        self.next_prefixes = tuple(next_prefixes)

    # --- wiring ------------------------------------------------------------------------------
    def setup(self, app: web.Application, pages: Pages) -> None:
        """Sessions, the sign-in pages and the guards' state on ``app`` (before it starts)."""
        app[PEOPLE] = self
        setup_api_keys(app, self.accounts.api_keys)
        setup_sessions(app, session_storage(self.accounts.secret, self.policy))
        pages.context_hooks.append(self._page_context)
        p = self.routes
        for method, path, handler in (
            ("GET", p.login, self.login_page),
            ("POST", p.login, self.login_submit),
            ("GET", p.code, self.code_page),
            ("POST", p.code, self.code_submit),
            ("GET", p.enrol, self.enrol_page),
            ("POST", p.enrol, self.enrol_submit),
            ("POST", p.cancel, self.cancel),
            ("POST", p.logout, self.logout),
        ):
            add_page(app, method, path, handler)

    async def _page_context(self, request: web.Request) -> dict[str, Any]:
        session = await aiohttp_session.get_session(request)
        return {"csrf_token": csrf_token(session), "logout_url": self.paths.logout}

    # --- the guard ---------------------------------------------------------------------------
    async def current_user(self, request: web.Request) -> User | None:
        """The signed-in user of the request, or None (ending a session that timed out or
        whose account changed since)."""
        session = await aiohttp_session.get_session(request)
        if not session.get(_MFA):
            return None
        now = self.clock()
        login_at, seen_at = float(session.get(_LOGIN_AT, 0)), float(session.get(_SEEN_AT, 0))
        if (
            now - login_at > self.policy.absolute_timeout
            or now - seen_at > self.policy.idle_timeout
        ):
            session.invalidate()
            return None
        user = await self.users.get(int(session[_UID]))
        if (
            user is None
            or not user.enabled
            or not user.totp_confirmed
            or user.password_changed_at.timestamp() > login_at
        ):
            session.invalidate()
            return None
        if now - seen_at >= SEEN_RESOLUTION:
            session[_SEEN_AT] = now
        request[CURRENT_USER] = user
        return user

    async def require(self, request: web.Request, roles: Collection[str] | None = None) -> User:
        """The signed-in user, if their role is one of ``roles`` (any role if None)."""
        user = await self.current_user(request)
        if user is None:
            raise LoginRequired(login_path=self.paths.login)
        await check_csrf(request, self.policy.trusted_origins)
        if roles is not None and user.role not in roles:
            raise Forbidden("your role does not give access to this page")
        return user

    # --- sign-in steps -------------------------------------------------------------------------
    def _pending(self, session: aiohttp_session.Session) -> int | None:
        """The user id between the password and the code, if that step has not timed out."""
        if _UID not in session or session.get(_MFA):
            return None
        if self.clock() - float(session.get(_LOGIN_AT, 0)) > self.policy.pending_timeout:
            return None
        return int(session[_UID])

    def _next(self, raw: object) -> str:
        value = raw if isinstance(raw, str) else None
        target = safe_next(value, self.home, self.next_prefixes)
        return self.home if target.startswith(self.paths.login) else target

    def _client(self, request: web.Request) -> str:
        return request.remote or "?"

    def _take(self, user_key: str, client_key: str) -> float:
        """Take a token from both limits; the longer wait if either is empty (nothing kept)."""
        wait_user = self.per_user.take(user_key)
        wait_client = self.per_client.take(client_key)
        if wait_user and not wait_client:
            self.per_client.give_back(client_key)
        if wait_client and not wait_user:
            self.per_user.give_back(user_key)
        return max(wait_user, wait_client)

    def _give_back(self, user_key: str, client_key: str) -> None:
        self.per_user.give_back(user_key)
        self.per_client.give_back(client_key)

    async def _render(
        self, request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        return await pages_of(request).render(request, template, status, **context)

    def _text(self, request: web.Request, message: str) -> str:
        pages = pages_of(request)
        return pages.gettext(pages.language(request), message)

    async def _login_form(
        self, request: web.Request, status: int, error: str | None, username: str, next_: str
    ) -> web.Response:
        return await self._render(
            request, "kit/login.html", status, error=error, username=username, next=next_,
            action=self.paths.login,
        )  # fmt: skip

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        """GET /login: the user name and password form."""
        next_ = self._next(request.query.get("next"))
        if await self.current_user(request) is not None:
            return see_other(next_)
        return await self._login_form(request, 200, None, "", next_)

    async def login_submit(self, request: web.Request) -> web.StreamResponse:
        """POST /login: check the password; on success, on to the code (or enrolment)."""
        form = await request.post()
        username = str(form.get("username", ""))[:200]
        next_ = self._next(form.get("next"))
        try:
            await check_csrf(request, self.policy.trusted_origins)
        except CsrfRefused:
            message = self._text(request, "The form expired. Please sign in again.")
            return await self._login_form(request, 403, message, username, next_)
        user_key, client_key = "u:" + normalise_username(username)[:64], self._client(request)
        wait = self._take(user_key, client_key)
        if wait:
            message = self._text(request, "Too many failed attempts. Try again in a few minutes.")
            response = await self._login_form(request, 429, message, username, next_)
            response.headers["Retry-After"] = str(max(1, int(wait)))
            return response
        try:
            user = await self.users.authenticate(username, str(form.get("password", "")))
        except BadCredentials:
            known = await self.users.find(username)
            await self.audit.append(
                self.accounts.db,
                actor=known.username if known else "anonymous",
                role=known.role if known else "none",
                action=Action.LOGIN_FAILED,
                object_type="user",
                object_id=known.id if known else "unknown",
                detail="wrong password" if known else "unknown user name",
            )
            message = self._text(request, "Wrong user name or password.")
            return await self._login_form(request, 401, message, username, next_)
        self._give_back(user_key, client_key)
        session = await aiohttp_session.new_session(request)  # a new session id: no fixation
        now = self.clock()
        session.update({_UID: user.id, _MFA: False, _LOGIN_AT: now, _SEEN_AT: now, _NEXT: next_})
        return see_other(self.paths.code if user.totp_confirmed else self.paths.enrol)

    async def code_page(self, request: web.Request) -> web.StreamResponse:
        """GET /login/code: the TOTP code form."""
        session = await aiohttp_session.get_session(request)
        user_id = self._pending(session)
        if user_id is None:
            return see_other(self.paths.login)
        return await self._code_form(request, 200, None)

    async def _code_form(
        self, request: web.Request, status: int, error: str | None
    ) -> web.Response:
        return await self._render(
            request, "kit/code.html", status, error=error, action=self.paths.code,
            cancel_url=self.paths.cancel,
        )  # fmt: skip

    async def code_submit(self, request: web.Request) -> web.StreamResponse:
        """POST /login/code: check the code; on success, signed in."""
        return await self._second_factor(request, enrolling=False)

    async def enrol_page(self, request: web.Request) -> web.StreamResponse:
        """GET /login/enrol: the QR code and key of a new authenticator app."""
        session = await aiohttp_session.get_session(request)
        user_id = self._pending(session)
        user = None if user_id is None else await self.users.get(user_id)
        if user is None:
            return see_other(self.paths.login)
        if user.totp_confirmed:
            return see_other(self.paths.code)
        return await self._enrol_form(request, user, 200, None)

    async def _enrol_form(
        self, request: web.Request, user: User, status: int, error: str | None
    ) -> web.Response:
        enrolment = await self.users.enrolment(user.id)
        return await self._render(
            request,
            "kit/enrol.html",
            status,
            error=error,
            qr_svg=qr_svg(enrolment.uri, self._text(request, "QR code to scan with the app")),
            secret_groups=enrolment.grouped_secret,
            account=f"{self.users.issuer} ({user.username})",
            action=self.paths.enrol,
            cancel_url=self.paths.cancel,
        )

    async def enrol_submit(self, request: web.Request) -> web.StreamResponse:
        """POST /login/enrol: confirm the new app with its first code; then signed in."""
        return await self._second_factor(request, enrolling=True)

    async def _second_factor(self, request: web.Request, *, enrolling: bool) -> web.StreamResponse:
        session = await aiohttp_session.get_session(request)
        user_id = self._pending(session)
        user = None if user_id is None else await self.users.get(user_id)
        if user is None or user.totp_confirmed == enrolling:
            return see_other(self.paths.login)
        form = await request.post()
        await check_csrf(request, self.policy.trusted_origins)
        user_key, client_key = "u:" + user.username, self._client(request)
        wait = self._take(user_key, client_key)
        if wait:
            session.invalidate()
            return see_other(self.paths.login)
        code = str(form.get("code", ""))
        if enrolling:
            check = await self.users.confirm_totp(user.id, code)
        else:
            check = await self.users.verify_totp(user.id, code)
        if check is not CodeCheck.OK:
            await self.audit.append(
                self.accounts.db, actor=user.username, role=user.role,
                action=Action.LOGIN_FAILED, object_type="user", object_id=user.id,
                detail=f"{check.value} code",
            )  # fmt: skip
            error = self._text(request, "This code is not valid. Wait for the next one and retry.")
            if enrolling:
                return await self._enrol_form(request, user, 401, error)
            return await self._code_form(request, 401, error)
        self._give_back(user_key, client_key)
        next_ = self._next(session.get(_NEXT))
        session = await aiohttp_session.new_session(request)  # rotate again: now signed in
        now = self.clock()
        session.update({_UID: user.id, _MFA: True, _LOGIN_AT: now, _SEEN_AT: now})
        await self.audit.append(
            self.accounts.db, actor=user.username, role=user.role, action=Action.LOGIN,
            object_type="user", object_id=user.id,
            detail="password and new authenticator" if enrolling else "password and code",
        )  # fmt: skip
        return see_other(next_)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """POST /login/cancel: abandon a sign-in between its steps."""
        await check_csrf(request, self.policy.trusted_origins)
        await aiohttp_session.new_session(request)
        return see_other(self.paths.login)

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """POST /logout: end the session."""
        user = await self.current_user(request)
        await check_csrf(request, self.policy.trusted_origins)
        if user is not None:
            await self.audit.append(
                self.accounts.db, actor=user.username, role=user.role, action=Action.LOGOUT,
                object_type="user", object_id=user.id,
            )  # fmt: skip
        session = await aiohttp_session.new_session(request)
        session["flashes"] = [
            {"level": "success", "text": self._text(request, "You are signed out.")}
        ]
        return see_other(self.paths.login)


PEOPLE = web.AppKey("kit_people", People)


async def require_user(request: web.Request, roles: Collection[str] | None = None) -> User:
    """The signed-in user of a page request, whose role is one of ``roles`` (any if None).

    Raises ``LoginRequired`` (a page answers with a redirect to the sign-in page, an API
    request with 401), ``Forbidden`` for another role, ``CsrfRefused`` for an unsafe request
    without the session's CSRF token or from another site."""
    return await request.config_dict[PEOPLE].require(request, roles)


async def optional_user(request: web.Request) -> User | None:
    """The signed-in user, or None (for pages that also serve anonymous visitors)."""
    return await request.config_dict[PEOPLE].current_user(request)
