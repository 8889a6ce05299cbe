"""Sessions in encrypted cookies, and the CSRF check of cookie-authenticated requests.

The session lives in the browser, in one cookie encrypted and authenticated with Fernet
(aiohttp-session's ``EncryptedCookieStorage``), its key derived from the service secret:
nothing to store server-side, and a restart does not sign anyone out. The cookie is
``HttpOnly`` (no script reads it), ``SameSite=Lax`` (not sent on cross-site sub-requests and
form posts; sent when following a link from an e-mail, so the page opens signed in), path
``/``, ``Secure`` whenever the request came over HTTPS, and without ``Max-Age``: it ends with
the browser, and sooner by the timeouts kept inside it.

A cookie cannot be revoked by the server; what bounds a stolen one is the idle timeout, the
absolute timeout, and the account checks of every request (disabled, password or TOTP reset
since the sign-in: see ``kit.auth.people``).

CSRF: every form of a session carries the session's random token (``csrf_field``); an unsafe
request authenticated by the cookie must echo it (form field ``csrf_token`` or header
``X-CSRF-Token``) and must not come from another origin (``Origin`` and ``Sec-Fetch-Site``).
Requests authenticated by an ``Authorization`` header carry no ambient credential and need
no token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import warnings
from dataclasses import dataclass, field

import aiohttp_session
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from markupsafe import Markup, escape

from kit.http import Forbidden
from kit.keys import SESSION_COOKIES, derive_key

log = logging.getLogger("kit.auth")

SESSION_KEYS_WARNING = (
    "ignore:It is recommended to use web.RequestKey:aiohttp.web_exceptions.NotAppKeyWarning"
    ":aiohttp_session"
)
"""aiohttp (3.14) asks for typed request keys; aiohttp-session (2.12, its latest) still stores
the session under string keys. Only that library's use is silenced, here for the running
service and, as a pytest ``filterwarnings`` mark, in tests (``kit.testing``)."""
warnings.filterwarnings(
    "ignore", "It is recommended to use web.RequestKey", NotAppKeyWarning, "aiohttp_session"
)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF = "csrf"


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How sessions behave; every duration in seconds."""

    idle_timeout: float = 30 * 60
    """Signed out after this long without a request."""
    absolute_timeout: float = 12 * 3600
    """Signed out this long after signing in, however active."""
    pending_timeout: float = 5 * 60
    """Time allowed between the password and the code."""
    cookie_name: str = "kit_session"
    """Name the cookie after the service (``sidep_session``): services mounted side by side
    on one host (``robert dev``) must not overwrite each other's sessions."""
    path: str = "/"
    """The path the cookie is sent for: the service's prefix (``/sidep/``) when mounted."""
    same_site: str = "Lax"
    secure: bool | None = None
    """``Secure`` cookies: None follows the request's scheme; True behind a TLS proxy."""
    trusted_origins: frozenset[str] = field(default_factory=frozenset)
    """Origins accepted besides the request's own (``https://sidep.example.fr`` behind a
    proxy that terminates TLS, where the request itself looks like plain HTTP)."""


class SessionCookies(EncryptedCookieStorage):
    """aiohttp-session's encrypted cookies, ``Secure`` when the request is HTTPS."""

    def __init__(self, key: bytes, policy: SessionPolicy) -> None:
        super().__init__(
            key,
            cookie_name=policy.cookie_name,
            path=policy.path,
            httponly=True,
            samesite=policy.same_site,
            secure=policy.secure,
        )
        self.policy = policy

    async def save_session(
        self,
        request: web.Request,
        response: web.StreamResponse,
        session: aiohttp_session.Session,
    ) -> None:
        await super().save_session(request, response, session)
        morsel = response.cookies.get(self.cookie_name)
        if morsel is not None and self.policy.secure is None and request.secure:
            morsel["secure"] = True


def session_storage(secret: str, policy: SessionPolicy | None = None) -> SessionCookies:
    """The cookie storage keyed from ``secret``; with no secret, a random key for this
    process only (and a warning: sessions will not survive a restart)."""
    if secret:
        key = derive_key(secret, SESSION_COOKIES)
    else:
        log.warning("no service secret configured: sessions will not survive a restart")
        key = secrets.token_bytes(32)
    return SessionCookies(key, policy or SessionPolicy())


def setup_sessions(app: web.Application, storage: SessionCookies) -> None:
    """Install the session middleware (before the application starts)."""
    app.middlewares.append(aiohttp_session.session_middleware(storage))


# --- CSRF ----------------------------------------------------------------------------------------
class CsrfRefused(Forbidden):
    """403: an unsafe request without the session's token, or from another origin."""

    code = "csrf"

    def __init__(self, message: str = "the form expired or came from another site") -> None:
        super().__init__(message)


def csrf_token(session: aiohttp_session.Session) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = session[_CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_field(token: str) -> Markup:
    """The hidden form field carrying ``token`` (also ``kit/macros.html``'s ``csrf_field``)."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(token))


def same_origin(request: web.Request, trusted: frozenset[str] = frozenset()) -> bool:
    """Whether the browser says the request comes from this origin (or a trusted one).

    A browser sends ``Origin`` on every POST and ``Sec-Fetch-Site`` on every request; a
    client that sends neither is not a browser, and the token alone decides."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}" or origin in trusted


async def check_csrf(request: web.Request, trusted: frozenset[str] = frozenset()) -> None:
    """Refuse (``CsrfRefused``) an unsafe request without the session's token or from
    another origin; safe methods pass."""
    if request.method in SAFE_METHODS:
        return
    if not same_origin(request, trusted):
        raise CsrfRefused("cross-site request refused")
    session = await aiohttp_session.get_session(request)
    expected = session.get(_CSRF)
    given = request.headers.get(CSRF_HEADER)
    if given is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        value = (await request.post()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not isinstance(expected, str) or given is None:
        raise CsrfRefused()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfRefused()
