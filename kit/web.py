"""The pages every service shares: one Jinja2 environment per service and language, one layout,
one set of form macros and one set of security headers.

A service makes a ``Pages`` with its title and its own templates and translations folders,
installs it on its application (``setup_pages``), mounts page routes with ``add_page`` and
answers with ``await render(request, "sidep/result.html", result=...)``. Its templates extend
``kit/base.html`` and import ``kit/macros.html``; the service's folder is searched first, so it
may override any kit template by giving the same name.

Every page is served with a per-response CSP nonce and a strict Content-Security-Policy
(nothing from elsewhere, ever: the style sheet is inlined with the nonce, images are ``data:``
or inline SVG), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (not
``no-referrer``: with it, browsers send ``Origin: null`` on form posts, which the CSRF check
refuses) and ``Cache-Control: no-store`` (pages show personal data and carry CSRF tokens).

Failures of page routes become an HTML error page in the user's language (a 401 a redirect
to the sign-in page), or the JSON envelope of ``kit.http`` for a client asking for JSON.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_session
import jinja2
import qrcode
import qrcode.constants
from aiohttp import web
from babel.support import Translations
from markupsafe import Markup

from kit.http import (
    NO_METRICS,
    Handler,
    HttpError,
    RequestObserver,
    Translator,
    add_route,
    error_response,
    see_other,
)
from kit.i18n import (
    DEFAULT_LANGUAGE,
    DEFAULT_TIME_ZONE,
    KIT_LOCALE_DIR,
    LANGUAGES,
    format_datetime,
    format_day,
    language_of,
    load_translations,
    remember_language,
)

KIT_TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

CURRENT_USER: web.RequestKey[Any] = web.RequestKey("kit_current_user", object)
"""Request key of the signed-in person (set by ``kit.auth``'s guards), shown in the header."""

ContextHook = Callable[[web.Request], Awaitable[dict[str, Any]]]
"""Adds template variables to every page of a request (the people module adds the user, the
CSRF token and the sign-out address)."""

_FLASHES = "flashes"


class LoginRequired(HttpError):
    """401: no valid session; a page answers with a redirect to the sign-in page."""

    status, code = 401, "login_required"

    def __init__(self, message: str = "sign in first", login_path: str = "/login") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Cookie realm="sign-in"'})
        self.login_path = login_path


@dataclass(frozen=True, slots=True)
class NavLink:
    """One entry of the navigation bar, shown to signed-in users of the listed roles (of any
    role if empty); ``label`` is an English message id, translated like the templates'."""

    href: str
    label: str
    roles: frozenset[str] = frozenset()


class Pages:
    """One service's templates, translations, navigation and rendering; ``home`` is where the
    service name in the header and the error pages' "back" link lead (its prefix, ``/sidep/``,
    when it is mounted beside others)."""

    def __init__(
        self,
        title: str,
        *,
        templates: Path | None = None,
        locale: Path | None = None,
        nav: Sequence[NavLink] = (),
        languages: Sequence[str] = LANGUAGES,
        default_language: str = DEFAULT_LANGUAGE,
        time_zone: str = DEFAULT_TIME_ZONE,
        home: str = "/",
    ) -> None:
        self.title = title
        self.home = home
        self.nav = tuple(nav)
        self.languages = tuple(languages)
        self.default_language = default_language
        self.time_zone = time_zone
        folders = [templates] if templates is not None else []
        self.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader([*folders, KIT_TEMPLATES_DIR])])
        self.locale_dirs = [KIT_LOCALE_DIR, *([locale] if locale is not None else [])]
        self.context_hooks: list[ContextHook] = []
        self._environments: dict[str, jinja2.Environment] = {}
        self._translations: dict[str, Translations] = {}

    def environment(self, language: str) -> jinja2.Environment:
        """The Jinja2 environment of one language (built once)."""
        env = self._environments.get(language)
        if env is None:
            env = jinja2.Environment(
                loader=self.loader,
                autoescape=True,
                undefined=jinja2.StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(  # type: ignore[attr-defined]
                self.translations(language), newstyle=True
            )
            env.filters["datetime"] = _datetime_filter
            env.filters["day"] = _day_filter
            self._environments[language] = env
        return env

    def gettext(self, language: str, message: str) -> str:
        """``message`` translated to ``language`` (for texts built outside templates)."""
        return self.translations(language).gettext(message)

    def translations(self, language: str) -> Translations:
        """The merged catalog of ``language`` (the kit's, then the service's), read once."""
        found = self._translations.get(language)
        if found is None:
            found = self._translations[language] = load_translations(language, self.locale_dirs)
        return found

    def language(self, request: web.Request) -> str:
        """The language of the page answering ``request``."""
        return language_of(request, self.languages, self.default_language)

    def render_now(
        self,
        request: web.Request,
        template: str,
        status: int = 200,
        *,
        embeddable: bool = False,
        **context: Any,
    ) -> web.Response:
        """Render without the context hooks (no session needed: error pages)."""
        language = self.language(request)
        nonce = secrets.token_urlsafe(16)
        user = request.get(CURRENT_USER)
        values: dict[str, Any] = {
            "service_title": self.title,
            "home_url": self.home,
            "lang": language,
            "languages": self.languages,
            "time_zone": getattr(user, "time_zone", None) or self.time_zone,
            "csp_nonce": nonce,
            "user": user,
            "csrf_token": "",
            "logout_url": "",
            "flashes": [],
            "nav": [n for n in self.nav if user and (not n.roles or user.role in n.roles)],
            "request_path": request.path,
            "language_links": {other: _with_query(request, lang=other) for other in self.languages},
        }
        values.update(context)
        html = self.environment(language).get_template(template).render(values)
        response = web.Response(text=html, status=status, content_type="text/html")
        secure_headers(response, nonce, embeddable=embeddable)
        remember_language(request, response, language)
        return response

    async def render(
        self,
        request: web.Request,
        template: str,
        status: int = 200,
        *,
        embeddable: bool = False,
        **context: Any,
    ) -> web.Response:
        """The page ``template`` with the layout's variables, the hooks' and ``context``."""
        values: dict[str, Any] = {}
        for hook in self.context_hooks:
            values.update(await hook(request))
        if aiohttp_session.STORAGE_KEY in request:
            session = await aiohttp_session.get_session(request)
            if _FLASHES in session:
                values["flashes"] = session.pop(_FLASHES)
        values.update(context)
        return self.render_now(request, template, status, embeddable=embeddable, **values)

    def render_error(self, request: web.Request, error: HttpError) -> web.StreamResponse:
        """A refusal as a page: sign-in redirect for 401, else the error page (or JSON for a
        client that asked for JSON)."""
        if wants_json(request):
            return error_response(error)
        if isinstance(error, LoginRequired):
            target = error.login_path
            if request.method in ("GET", "HEAD"):
                target += "?" + urlencode({"next": request.path_qs})
            return see_other(target)
        response = self.render_now(
            request,
            "kit/error.html",
            error.status,
            error_status=error.status,
            message=error.message,
        )
        response.headers.update(error.headers)
        return response


PAGES = web.AppKey("kit_pages", Pages)


def setup_pages(app: web.Application, pages: Pages) -> None:
    """Make ``pages`` the application's (``render`` and ``add_page`` find it there)."""
    app[PAGES] = pages


def pages_of(request: web.Request) -> Pages:
    """The ``Pages`` of the application (or a parent application) answering ``request``."""
    return request.config_dict[PAGES]


async def render(
    request: web.Request, template: str, status: int = 200, **context: Any
) -> web.Response:
    """Render ``template`` for ``request`` with the application's ``Pages``."""
    return await pages_of(request).render(request, template, status, **context)


def add_page(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    metrics: RequestObserver = NO_METRICS,
    translators: Sequence[Translator] = (),
    name: str | None = None,
) -> None:
    """Mount a page route: guarded like any route, its refusals rendered as pages."""

    def render_error(request: web.Request, error: HttpError) -> web.StreamResponse:
        return pages_of(request).render_error(request, error)

    add_route(app, method, path, handler, metrics, translators, render_error, name)


async def flash(request: web.Request, message: str, level: str = "info") -> None:
    """Show ``message`` on the next page rendered for this session (``info``, ``success``,
    ``error``). Needs the session middleware (``kit.auth``)."""
    session = await aiohttp_session.get_session(request)
    session[_FLASHES] = [*session.get(_FLASHES, []), {"level": level, "text": message}]


def wants_json(request: web.Request) -> bool:
    """Whether the client asked for JSON rather than a page."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def content_security_policy(nonce: str, *, embeddable: bool = False) -> str:
    """The CSP of every page: nothing from elsewhere; inline code only with ``nonce``."""
    return "; ".join(
        [
            "default-src 'none'",
            f"style-src 'self' 'nonce-{nonce}'",
            f"script-src 'nonce-{nonce}'",
            "img-src 'self' data:",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'self'" if embeddable else "frame-ancestors 'none'",
        ]
    )


def secure_headers(response: web.StreamResponse, nonce: str, *, embeddable: bool = False) -> None:
    """The security headers of a page."""
    response.headers["Content-Security-Policy"] = content_security_policy(
        nonce, embeddable=embeddable
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if not embeddable:
        response.headers["X-Frame-Options"] = "DENY"


def _with_query(request: web.Request, **changes: str) -> str:
    query = dict(request.query) | changes
    return f"{request.path}?{urlencode(query)}"


@jinja2.pass_context
def _datetime_filter(context: jinja2.runtime.Context, value: datetime | None) -> str:
    if value is None:
        return ""
    return format_datetime(value, context["lang"], context["time_zone"])


@jinja2.pass_context
def _day_filter(context: jinja2.runtime.Context, value: date | None) -> str:
    return "" if value is None else format_day(value, context["lang"])


def qr_svg(text: str, label: str) -> Markup:
    """``text`` as an inline SVG QR code (error correction M), labelled for screen readers.

    Inline, so a page with a strict CSP needs no ``data:`` image; drawn as one path of unit
    squares in a viewBox, so it scales sharply to any size the style sheet gives it."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    size = len(matrix)
    squares = "".join(
        f"M{x},{y}h1v1h-1z" for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark
    )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {0} {0}" role="img" '
        'aria-label="{1}" shape-rendering="crispEdges"><rect width="{0}" height="{0}" '
        'fill="#fff"/><path d="{2}" fill="#000"/></svg>'
    ).format(size, label, squares)
