"""HTTP adapters of the code service: the issuer API, the authorities list, the /codes/ page,
and the guard that rate-limits failed reports. ``mount(app, service)`` wires them all.

Issuer API (``Authorization: Bearer <API key>``):
``POST /api/v1/codes`` issue, ``GET /api/v1/codes`` list, ``POST /api/v1/codes/verify`` check
without consuming, ``POST /api/v1/codes/revoke``; public ``GET /api/v1/codes/authorities``.

The page keeps its session in a signed, HttpOnly, SameSite=Strict cookie scoped to /codes/;
the issue form also carries a CSRF token bound to the session, and POSTs with a foreign Origin
are refused.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from kit.http import HttpError as ApiError
from kit.http import add_route, json_response
from protocol.codes import CodeKind
from server.api.routes import REPORT_GUARD
from server.codes.errors import AuthFailed, BadRequest, CodesError, TooManyAttempts
from server.codes.issuer import CodeIssuer, CodeState, IssuedCode
from server.codes.model import ROLE_KINDS, Organisation
from server.codes.qr import png_data_uri
from server.codes.ratelimit import Limiters, RateLimits
from server.codes.store import open_issuer_store
from server.service import RobertService

API = "/api/v1/codes"
PAGE = "/codes/"
COOKIE = "robert_codes"
SESSION_SECONDS = 8 * 3600
MAX_ISSUE_PER_REQUEST = 1000
ISSUER = web.AppKey("code_issuer", CodeIssuer)
LIMITERS = web.AppKey("code_limiters", Limiters)
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@cache
def templates() -> jinja2.Environment:
    """The Jinja2 environment of ``server/templates`` (autoescaped)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )


def mount(app: web.Application, service: RobertService, limits: RateLimits | None = None) -> None:
    """Add the code service to a ROBERT application sharing its store, clock and policy."""
    issuer = CodeIssuer(
        service.store,
        open_issuer_store(service.settings.store_url),
        service.code_policy,
        clock=service.clock,
    )
    app[ISSUER] = issuer
    app[LIMITERS] = Limiters(limits)
    service.code_hook = issuer.on_consume
    app[REPORT_GUARD] = report_guard
    app.cleanup_ctx.append(_issuer_ctx)
    for method, path, handler in (
        ("GET", f"{API}/authorities", api_authorities),
        ("POST", API, api_issue),
        ("GET", API, api_list),
        ("POST", f"{API}/verify", api_verify),
        ("POST", f"{API}/revoke", api_revoke),
        ("GET", "/codes", page_redirect),
        ("GET", PAGE, page_index),
        ("POST", f"{PAGE}login", page_login),
        ("POST", f"{PAGE}logout", page_logout),
        ("POST", f"{PAGE}issue", page_issue),
    ):
        add_route(app, method, path, handler, service.metrics)


async def _issuer_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[ISSUER].issuers.open()
    yield
    await app[ISSUER].issuers.close()


def _client(request: web.Request) -> str:
    """The rate-limiting key of the client: its address, held in memory only."""
    return request.remote or "?"


# --- the report path -----------------------------------------------------------------------
async def report_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse clients that failed too many code checks on /report; count their failures."""
    buckets = request.app[LIMITERS].report_client
    client = _client(request)
    if not buckets.allowed(client):
        raise ApiError(
            "too many failed submission codes; retry later", "too_many_attempts", status=429
        )
    try:
        return await handler(request)
    except ApiError as exc:
        if exc.code.startswith("code_") or exc.code == "bad_token":
            buckets.charge(client)
        raise


# --- issuer API ----------------------------------------------------------------------------
def _api_error(exc: CodesError) -> ApiError:
    return ApiError(str(exc), exc.code, status=exc.status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError("body must be a JSON object", "malformed", status=400) from exc
    if not isinstance(body, dict):
        raise ApiError("body must be a JSON object", "malformed", status=400)
    return body


async def _org(request: web.Request) -> Organisation:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise AuthFailed("use Authorization: Bearer <API key>")
        return await request.app[ISSUER].authenticate(key)
    except CodesError as exc:
        raise _api_error(exc) from exc


def _code_json(issued: IssuedCode) -> dict[str, str]:
    r = issued.record
    return {
        "code": r.code,
        "type": r.kind,
        "testDate": r.test_date,
        "org": r.org,
        "expiresAt": issued.expires_iso,
        "link": issued.link,
    }


async def api_authorities(request: web.Request) -> web.Response:
    """GET: every issuer's Ed25519 public key, for phones to verify deep links offline."""
    return json_response({"authorities": await request.app[ISSUER].authorities()})


async def api_issue(request: web.Request) -> web.Response:
    """POST {type, testDate?, count?}: new codes with their signed deep links."""
    org = await _org(request)
    body = await _body(request)
    try:
        kind = CodeKind(body.get("type", "long"))
        count = int(body.get("count", 1))
        if not 1 <= count <= MAX_ISSUE_PER_REQUEST:
            raise BadRequest(f"count must be 1..{MAX_ISSUE_PER_REQUEST}")
        codes = await request.app[ISSUER].issue(org, kind, count, body.get("testDate"))
    except (ValueError, TypeError) as exc:
        raise ApiError(
            "type must be short or long, count an integer", "bad_request", status=400
        ) from exc
    except CodesError as exc:
        raise _api_error(exc) from exc
    return json_response({"success": True, "codes": [_code_json(c) for c in codes]})


async def api_list(request: web.Request) -> web.Response:
    """GET ?limit=: the caller's latest codes (an admin's: everyone's) with their state."""
    org = await _org(request)
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise ApiError("limit must be an integer", "bad_request", status=400) from exc
    scope = None if org.role == "admin" else org.name
    listed = await request.app[ISSUER].list(scope, limit)
    return json_response(
        {
            "codes": [
                {
                    "code": r.code,
                    "type": r.kind,
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
    limiters = request.app[LIMITERS]
    client = _client(request)
    if not (limiters.verify_client.allowed(client) and limiters.verify_org.allowed(org.name)):
        raise _api_error(TooManyAttempts("too many failed verifications; retry later"))
    body = await _body(request)
    state = await request.app[ISSUER].check(str(body.get("code", "")), org)
    if state is not CodeState.VALID:
        limiters.verify_client.charge(client)
        limiters.verify_org.charge(org.name)
    return json_response({"success": True, "state": state.value})


async def api_revoke(request: web.Request) -> web.Response:
    """POST {code}: revoke one of the caller's unused codes."""
    org = await _org(request)
    body = await _body(request)
    try:
        await request.app[ISSUER].revoke(str(body.get("code", "")), org)
    except CodesError as exc:
        raise _api_error(exc) from exc
    return json_response({"success": True, "state": "revoked"})


# --- the page ------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def _make_session(issuer: CodeIssuer, org: Organisation) -> str:
    # The key hash prefix ends the session if the organisation's key is replaced.
    payload = {
        "org": org.name,
        "exp": int(issuer.clock()) + SESSION_SECONDS,
        "kh": org.key_hash[:8].hex(),
        "sid": secrets.token_hex(16),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.digest(await issuer.secret(b"session"), body.encode(), "sha256")
    return f"{body}.{_b64(mac)}"


async def _session(request: web.Request) -> tuple[Organisation, str] | None:
    """The logged-in organisation and session id, or None."""
    issuer = request.app[ISSUER]
    cookie = request.cookies.get(COOKIE, "")
    body, _, mac = cookie.partition(".")
    if not body or not mac:
        return None
    try:
        expected = hmac.digest(await issuer.secret(b"session"), body.encode(), "sha256")
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    if payload["exp"] < issuer.clock():
        return None
    org = await issuer.issuers.get_org(payload["org"])
    if org is None or org.key_hash[:8].hex() != payload["kh"]:
        return None
    return org, payload["sid"]


async def _csrf(issuer: CodeIssuer, sid: str) -> str:
    return _b64(hmac.digest(await issuer.secret(b"csrf"), sid.encode(), "sha256"))


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _render(name: str, status: int = 200, **context: Any) -> web.Response:
    nonce = secrets.token_urlsafe(12)
    html = templates().get_template(name).render(nonce=nonce, **context)
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


def _see_other(location: str) -> web.Response:
    # Returned, not raised: the JSON error guard would turn a raised redirect into JSON.
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def _issue_page(
    request: web.Request, org: Organisation, sid: str, **extra: Any
) -> web.Response:
    kinds = [k.value for k in (CodeKind.LONG, CodeKind.SHORT) if k in ROLE_KINDS[org.role]]
    issuer = request.app[ISSUER]
    return _render(
        "codes_issue.html",
        org=org,
        kinds=kinds,
        today=issuer.today().isoformat(),
        csrf=await _csrf(issuer, sid),
        **extra,
    )


async def page_redirect(request: web.Request) -> web.Response:
    """/codes -> /codes/."""
    return _see_other(PAGE)


async def page_index(request: web.Request) -> web.Response:
    """The login form, or the issue form when logged in."""
    session = await _session(request)
    if session is None:
        return _render("codes_login.html", error=None)
    return await _issue_page(request, *session, issued=None, error=None)


async def page_login(request: web.Request) -> web.Response:
    """POST api_key: open a session cookie; failures are rate-limited per client."""
    buckets = request.app[LIMITERS].login_client
    client = _client(request)
    if not _same_origin(request):
        return _render("codes_login.html", 403, error="Cross-site request refused.")
    if not buckets.allowed(client):
        return _render("codes_login.html", 429, error="Too many failed attempts; retry later.")
    form = await request.post()
    issuer = request.app[ISSUER]
    try:
        org = await issuer.authenticate(str(form.get("api_key", "")))
    except CodesError:
        buckets.charge(client)
        return _render("codes_login.html", 401, error="Unknown API key.")
    response = _see_other(PAGE)
    response.set_cookie(
        COOKIE,
        await _make_session(issuer, org),
        max_age=SESSION_SECONDS,
        path=PAGE,
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )
    return response


async def page_logout(request: web.Request) -> web.Response:
    """Forget the session cookie."""
    response = _see_other(PAGE)
    response.del_cookie(COOKIE, path=PAGE)
    return response


async def page_issue(request: web.Request) -> web.Response:
    """POST kind, test_date, csrf: issue one code and show it with its QR code."""
    session = await _session(request)
    if session is None:
        return _see_other(PAGE)
    org, sid = session
    form = await request.post()
    issuer = request.app[ISSUER]
    token = str(form.get("csrf", ""))
    if not _same_origin(request) or not hmac.compare_digest(token, await _csrf(issuer, sid)):
        return _render("codes_login.html", 403, error="Cross-site request refused.")
    try:
        kind = CodeKind(str(form.get("kind", "")))
        [issued] = await issuer.issue(org, kind, 1, str(form.get("test_date", "")) or None)
    except ValueError:
        return await _issue_page(request, org, sid, issued=None, error="Unknown code kind.")
    except CodesError as exc:
        return await _issue_page(request, org, sid, issued=None, error=str(exc))
    return await _issue_page(
        request,
        org,
        sid,
        issued=issued,
        png=png_data_uri(issued.link),
        error=None,
    )
