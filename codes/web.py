"""The code service's machine API, mounted under ``/codes``: the issuer API for labs' systems,
the authorities list, the ROBERT server's consume/release calls. People's pages are in
``codes.pages`` and ``codes.admin``.

Issuer API (``Authorization: Bearer <organisation API key>``):
``POST /codes/api/v1/codes`` issue, ``GET /codes/api/v1/codes`` list,
``POST /codes/api/v1/codes/verify`` check without consuming, ``POST /codes/api/v1/codes/revoke``;
public ``GET /codes/api/v1/authorities``. The ROBERT server (API key of role
``robert-server``): ``POST /codes/api/v1/consume`` and ``POST /codes/api/v1/release``.
"""

from __future__ import annotations

from aiohttp import web

from codes.errors import AuthFailed, BadRequest, TooManyAttempts
from codes.model import ROBERT_SERVER_ROLE, CodeState, Organisation
from codes.service import CodeService, IssuedCode
from kit.auth.apikeys import bearer_token
from kit.http import (
    Forbidden,
    Unauthorized,
    add_route,
    json_response,
    read_json,
)
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from kit.ratelimit import Buckets, Limit
from protocol.codes import CodeKind

PREFIX = "/codes"
"""Where the service is mounted, alone or beside the others."""
API = "/api/v1"
MAX_ISSUE_PER_REQUEST = 1000

SERVICE = web.AppKey("codes_service", CodeService)
LIMITS = web.AppKey("codes_limits", dict[str, Buckets])

VERIFY_PER_CLIENT = Limit(burst=30, per_seconds=3600.0)
VERIFY_PER_ORG = Limit(burst=300, per_seconds=3600.0)


def install(app: web.Application, service: CodeService, metrics: HttpMetrics) -> None:
    """Add the API's routes to ``app`` (the application mounted at ``/codes``)."""
    app[SERVICE] = service
    app[LIMITS] = {
        "verify_client": Buckets(VERIFY_PER_CLIENT),
        "verify_org": Buckets(VERIFY_PER_ORG),
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
    ):
        add_route(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics, in the registry of ``app``."""
    return HttpMetrics("codes", registry_of(app))


def client_of(request: web.Request) -> str:
    """The rate-limiting key of the client: its address, held in memory only."""
    return request.remote or "?"


def service_of(request: web.Request) -> CodeService:
    """The code service of the application answering ``request``."""
    return request.config_dict[SERVICE]


async def health(request: web.Request) -> web.Response:
    """GET /codes/health: 200 when the database answers, 503 otherwise."""
    ok = await service_of(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


# --- issuer API --------------------------------------------------------------------------------
async def _org(request: web.Request) -> Organisation:
    return await service_of(request).authenticate(bearer_token(request))


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
    return json_response({"authorities": await service_of(request).authorities()})


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
    codes = await service_of(request).issue(org, kind, count, test_date)
    return json_response({"success": True, "codes": [_code_json(c) for c in codes]})


async def api_list(request: web.Request) -> web.Response:
    """GET ?limit=: the caller's latest codes (an admin's: everyone's) with their state."""
    org = await _org(request)
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError as exc:
        raise BadRequest("limit must be an integer") from exc
    scope = None if org.role == "admin" else org.name
    listed = await service_of(request).list(scope, limit)
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
    client = client_of(request)
    if limits["verify_client"].take(client):
        raise TooManyAttempts("too many failed verifications; retry later")
    if limits["verify_org"].take(org.name):
        limits["verify_client"].give_back(client)
        raise TooManyAttempts("too many failed verifications; retry later")
    body = await read_json(request, frozenset({"code"}))
    state = await service_of(request).check(str(body["code"]), org)
    if state is CodeState.VALID:  # only failures count
        limits["verify_client"].give_back(client)
        limits["verify_org"].give_back(org.name)
    return json_response({"success": True, "state": state.value})


async def api_revoke(request: web.Request) -> web.Response:
    """POST {code}: revoke one of the caller's unused codes."""
    org = await _org(request)
    body = await read_json(request, frozenset({"code"}))
    await service_of(request).revoke(str(body["code"]), org)
    return json_response({"success": True, "state": "revoked"})


# --- the ROBERT server's calls -----------------------------------------------------------------
async def _robert_server(request: web.Request) -> None:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("an API key is required", "bad_api_key")
    principal = await service_of(request).api_keys.authenticate(token)
    if principal.role != ROBERT_SERVER_ROLE:
        raise Forbidden("only the ROBERT server consumes codes")


async def api_consume(request: web.Request) -> web.Response:
    """POST {code} (canonical): its outcome; ``accepted`` at most once."""
    await _robert_server(request)
    body = await read_json(request, frozenset({"code"}))
    if not isinstance(body["code"], str) or len(body["code"]) > 64:
        raise BadRequest("code must be a string")
    return json_response({"outcome": await service_of(request).consume(body["code"])})


async def api_release(request: web.Request) -> web.Response:
    """POST {code}: give back a code whose report could not be queued."""
    await _robert_server(request)
    body = await read_json(request, frozenset({"code"}))
    if not isinstance(body["code"], str) or len(body["code"]) > 64:
        raise BadRequest("code must be a string")
    await service_of(request).release(body["code"])
    return json_response({"success": True})


__all__ = ["PREFIX", "SERVICE", "AuthFailed", "install", "new_metrics"]
