"""HTTP adapters of the code service, mounted under ``/codes``: the issuer API, the authorities
list, the ROBERT server's consume/release calls, and the issuer page.

Issuer API (``Authorization: Bearer <organisation API key>``):
``POST /codes/api/v1/codes`` issue, ``GET /codes/api/v1/codes`` list,
``POST /codes/api/v1/codes/verify`` check without consuming, ``POST /codes/api/v1/codes/revoke``;
public ``GET /codes/api/v1/authorities``. The ROBERT server (API key of role
``robert-server``): ``POST /codes/api/v1/consume`` and ``POST /codes/api/v1/release``.

The page keeps its session in an encrypted cookie (``kit.auth.sessions``, aiohttp-session);
its forms carry the session's CSRF token and POSTs from another origin are refused.
"""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp_session
import jinja2
from aiohttp import web

from codes.errors import AuthFailed, BadRequest, CodesError, TooManyAttempts
from codes.model import ROBERT_SERVER_ROLE, ROLE_KINDS, CodeState, Organisation
from codes.qr import png_data_uri
from codes.service import CodeService, IssuedCode
from kit.auth.apikeys import bearer_token
from kit.auth.sessions import CsrfRefused, check_csrf, csrf_token
from kit.http import (
    Forbidden,
    Unauthorized,
    add_fallback,
    add_route,
    json_response,
    read_json,
    see_other,
)
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from kit.ratelimit import Buckets, Limit
from protocol.codes import CodeKind

PREFIX = "/codes"
"""Where the service is mounted, alone or beside the others."""
API = "/api/v1"
PAGE = f"{PREFIX}/"
MAX_ISSUE_PER_REQUEST = 1000
TEMPLATES = Path(__file__).resolve().parent / "templates"

SERVICE = web.AppKey("codes_service", CodeService)
LIMITS = web.AppKey("codes_limits", dict[str, Buckets])

VERIFY_PER_CLIENT = Limit(burst=30, per_seconds=3600.0)
VERIFY_PER_ORG = Limit(burst=300, per_seconds=3600.0)
LOGIN_PER_CLIENT = Limit(burst=10, per_seconds=3600.0)

_ORG = "codes_org"
_KEY = "codes_key"


@cache
def templates() -> jinja2.Environment:
    """The Jinja2 environment of ``codes/templates`` (autoescaped)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )


def install(app: web.Application, service: CodeService, metrics: HttpMetrics) -> None:
    """Add the service's routes to ``app`` (the application mounted at ``/codes``)."""
    app[SERVICE] = service
    app[LIMITS] = {
        "verify_client": Buckets(VERIFY_PER_CLIENT),
        "verify_org": Buckets(VERIFY_PER_ORG),
        "login_client": Buckets(LOGIN_PER_CLIENT),
    }
    for method, path, handler in (
        ("GET", f"{API}/authorities", api_authorities),
        ("POST", f"{API}/codes", api_issue),
        ("GET", f"{API}/codes", api_list),
        ("POST", f"{API}/codes/verify", api_verify),
        ("POST", f"{API}/codes/revoke", api_revoke),
        ("POST", f"{API}/consume", api_consume),
        ("POST", f"{API}/release", api_release),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
        ("GET", "/", page_index),
        ("POST", "/login", page_login),
        ("POST", "/logout", page_logout),
        ("POST", "/issue", page_issue),
    ):
        add_route(app, method, path, handler, metrics)
    add_fallback(app, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics, in the registry of ``app``."""
    return HttpMetrics("codes", registry_of(app))


def _client(request: web.Request) -> str:
    """The rate-limiting key of the client: its address, held in memory only."""
    return request.remote or "?"


def _service(request: web.Request) -> CodeService:
    return request.config_dict[SERVICE]


async def health(request: web.Request) -> web.Response:
    """GET /codes/health: 200 when the database answers, 503 otherwise."""
    ok = await _service(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


# --- issuer API --------------------------------------------------------------------------------
async def _org(request: web.Request) -> Organisation:
    return await _service(request).authenticate(bearer_token(request))


def _code_json(issued: IssuedCode) -> dict[str, str]:
    r = issued.record
    return {
        "code": r.code,
        "type": r.kind.value,
        "testDate": r.test_date,
        "org": r.org,
        "expiresAt": issued.expires_iso,
        "link": issued.link,
    }


async def api_authorities(request: web.Request) -> web.Response:
    """GET: every issuer's Ed25519 public key, for phones to verify deep links offline."""
    return json_response({"authorities": await _service(request).authorities()})


async def api_issue(request: web.Request) -> web.Response:
    """POST {type, testDate?, count?}: new codes with their signed deep links."""
    org = await _org(request)
    body = await read_json(request, frozenset(), frozenset({"type", "testDate", "count"}))
    try:
        kind = CodeKind(body.get("type", "long"))
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            raise TypeError("count")
    except (ValueError, TypeError) as exc:
        raise BadRequest("type must be short or long, count an integer") from exc
    if not 1 <= count <= MAX_ISSUE_PER_REQUEST:
        raise BadRequest(f"count must be 1..{MAX_ISSUE_PER_REQUEST}")
    test_date = body.get("testDate")
    if test_date is not None and not isinstance(test_date, str):
        raise BadRequest("testDate must be YYYY-MM-DD")
    codes = await _service(request).issue(org, kind, count, test_date)
    return json_response({"success": True, "codes": [_code_json(c) for c in codes]})


async def api_list(request: web.Request) -> web.Response:
    """GET ?limit=: the caller's latest codes (an admin's: everyone's) with their state."""
    org = await _org(request)
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise BadRequest("limit must be an integer") from exc
    scope = None if org.role == "admin" else org.name
    listed = await _service(request).list(scope, limit)
    return json_response(
        {
            "codes": [
                {
                    "code": r.code,
                    "type": r.kind.value,
                    "org": r.org,
                    "testDate": r.test_date,
                    "state": s.value,
                }
                for r, s in listed
            ]
        }
    )


async def api_verify(request: web.Request) -> web.Response:
    """POST {code}: its state without consuming it; failures are rate-limited."""
    org = await _org(request)
    limits = request.config_dict[LIMITS]
    client = _client(request)
    if limits["verify_client"].take(client):
        raise TooManyAttempts("too many failed verifications; retry later")
    if limits["verify_org"].take(org.name):
        limits["verify_client"].give_back(client)
        raise TooManyAttempts("too many failed verifications; retry later")
    body = await read_json(request, frozenset({"code"}))
    state = await _service(request).check(str(body["code"]), org)
    if state is CodeState.VALID:  # only failures count
        limits["verify_client"].give_back(client)
        limits["verify_org"].give_back(org.name)
    return json_response({"success": True, "state": state.value})


async def api_revoke(request: web.Request) -> web.Response:
    """POST {code}: revoke one of the caller's unused codes."""
    org = await _org(request)
    body = await read_json(request, frozenset({"code"}))
    await _service(request).revoke(str(body["code"]), org)
    return json_response({"success": True, "state": "revoked"})


# --- the ROBERT server's calls -----------------------------------------------------------------
async def _robert_server(request: web.Request) -> None:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("an API key is required", "bad_api_key")
    principal = await _service(request).api_keys.authenticate(token)
    if principal.role != ROBERT_SERVER_ROLE:
        raise Forbidden("only the ROBERT server consumes codes")


async def api_consume(request: web.Request) -> web.Response:
    """POST {code} (canonical): its outcome; ``accepted`` at most once."""
    await _robert_server(request)
    body = await read_json(request, frozenset({"code"}))
    if not isinstance(body["code"], str) or len(body["code"]) > 64:
        raise BadRequest("code must be a string")
    return json_response({"outcome": await _service(request).consume(body["code"])})


async def api_release(request: web.Request) -> web.Response:
    """POST {code}: give back a code whose report could not be queued."""
    await _robert_server(request)
    body = await read_json(request, frozenset({"code"}))
    if not isinstance(body["code"], str) or len(body["code"]) > 64:
        raise BadRequest("code must be a string")
    await _service(request).release(body["code"])
    return json_response({"success": True})


# --- the page ----------------------------------------------------------------------------------
def _render(name: str, status: int = 200, **context: Any) -> web.Response:
    nonce = secrets.token_urlsafe(12)
    html = templates().get_template(name).render(nonce=nonce, prefix=PREFIX, **context)
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'nonce-{nonce}';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    # not no-referrer: with it, browsers send "Origin: null" on form POSTs
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def _signed_in(request: web.Request) -> tuple[Organisation, aiohttp_session.Session] | None:
    """The organisation of the session, if its API key is still valid."""
    session = await aiohttp_session.get_session(request)
    key = session.get(_KEY)
    if not isinstance(key, str):
        return None
    try:
        org = await _service(request).authenticate(key)
    except CodesError:  # the key was revoked: the session ends with it
        session.invalidate()
        return None
    return org, session


async def _issue_page(
    request: web.Request, org: Organisation, session: aiohttp_session.Session, **extra: Any
) -> web.Response:
    kinds = [k.value for k in (CodeKind.LONG, CodeKind.SHORT) if k in ROLE_KINDS[org.role]]
    return _render(
        "issue.html",
        org=org,
        kinds=kinds,
        today=_service(request).today().isoformat(),
        csrf=csrf_token(session),
        **extra,
    )


async def page_index(request: web.Request) -> web.Response:
    """The login form, or the issue form when logged in."""
    signed_in = await _signed_in(request)
    if signed_in is None:
        return _render("login.html", error=None)
    return await _issue_page(request, *signed_in, issued=None, error=None)


async def page_login(request: web.Request) -> web.Response:
    """POST api_key: open a session; failures are rate-limited per client."""
    buckets = request.config_dict[LIMITS]["login_client"]
    client = _client(request)
    try:
        await check_csrf_origin_only(request)
    except CsrfRefused:
        return _render("login.html", 403, error="Cross-site request refused.")
    if buckets.take(client):
        return _render("login.html", 429, error="Too many failed attempts; retry later.")
    form = await request.post()
    key = str(form.get("api_key", "")).strip()
    try:
        await _service(request).authenticate(key)
    except CodesError:
        return _render("login.html", 401, error="Unknown API key.")
    buckets.give_back(client)
    session = await aiohttp_session.new_session(request)  # a fresh session id on login
    session[_KEY] = key
    return see_other(PAGE)


async def check_csrf_origin_only(request: web.Request) -> None:
    """The login form has no session yet: only its origin is checked."""
    from kit.auth.sessions import same_origin

    if not same_origin(request):
        raise CsrfRefused("cross-site request refused")


async def page_logout(request: web.Request) -> web.Response:
    """Forget the session."""
    session = await aiohttp_session.get_session(request)
    session.invalidate()
    return see_other(PAGE)


async def page_issue(request: web.Request) -> web.Response:
    """POST kind, test_date, csrf_token: issue one code and show it with its QR code."""
    signed_in = await _signed_in(request)
    if signed_in is None:
        return see_other(PAGE)
    org, session = signed_in
    try:
        await check_csrf(request)
    except CsrfRefused:
        return _render("login.html", 403, error="Cross-site request refused.")
    form = await request.post()
    service = _service(request)
    try:
        kind = CodeKind(str(form.get("kind", "")))
        [issued] = await service.issue(org, kind, 1, str(form.get("test_date", "")) or None)
    except ValueError:
        return await _issue_page(request, org, session, issued=None, error="Unknown code kind.")
    except CodesError as exc:
        return await _issue_page(request, org, session, issued=None, error=exc.message)
    return await _issue_page(
        request, org, session, issued=issued, png=png_data_uri(issued.link), error=None
    )


__all__ = ["PREFIX", "SERVICE", "AuthFailed", "install", "new_metrics"]
