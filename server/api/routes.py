"""Handlers of the ROBERT client API under ``/api/v6`` [robert.md: the contract the real apps
hold the server to].

Each handler validates its JSON at the edge (exact field set, types), calls ``RobertService``
(or the captcha gate) and formats the answer with the field names, types and status codes the
TousAntiCovid apps read; the kit's guard (``kit.http.guarded``) turns refusals into JSON
answers, protocol errors through ``server.errors.translate``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from kit.http import (
    HttpError,
    Malformed,
    TooManyRequests,
    add_route,
    index_page,
    json_response,
    read_json,
)
from kit.metrics import metrics_handler
from kit.ratelimit import Buckets, Limit
from protocol.auth import b64decode
from protocol.contacts import parse_contacts
from server import errors
from server.api.appkeys import CAPTCHA, SERVICE
from server.store.base import PushInfo

API = "/api/v6"
"""The apps' API version: the iOS app accepts only v5 or v6, and v6 is the last."""
JWKS_PATH = "/.well-known/jwks.json"
"""Where the token key's public half is published (RFC 8414's well-known place)."""
VERSION = "0.2.0"
NO_STORE = {"Cache-Control": "no-store"}


def _service(request: web.Request) -> Any:
    return request.app[SERVICE]


def _client(request: web.Request) -> str:
    """The rate-limiting key of the client: its address, held in memory only, never logged."""
    return request.remote or "?"


PUSH_LIMITS = {"token": 512, "locale": 64, "timezone": 64}
"""Longest push token, locale and time zone taken (APNs tokens are 64 hex characters, FCM
tokens under 200 characters)."""


def push_info(value: Any) -> PushInfo | None:
    """The ``pushInfo`` of a registration or status request ({token, locale, timezone}, as
    the iOS app sends it), or None if absent; 400 if it is anything else."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(PUSH_LIMITS):
        raise Malformed("pushInfo must be {token, locale, timezone}")
    for name, limit in PUSH_LIMITS.items():
        field = value[name]
        if not isinstance(field, str) or len(field) > limit or not field.isprintable():
            raise Malformed(f"pushInfo.{name} must be a printable string of <= {limit} characters")
    return PushInfo(value["token"], value["locale"], value["timezone"])


# --- captcha -------------------------------------------------------------------------------
async def captcha(request: web.Request) -> web.Response:
    """POST /captcha {type: IMAGE|AUDIO|POW, locale} (201): a captcha id."""
    data = await read_json(request, frozenset({"type"}), frozenset({"locale"}))
    gate = request.app[CAPTCHA]
    return json_response(await gate.create(data["type"], data.get("locale"), _client(request)), 201)


async def captcha_image(request: web.Request) -> web.Response:
    """GET /captcha/{id}/image: the PNG to show."""
    png = await request.app[CAPTCHA].image(request.match_info["captcha_id"])
    return web.Response(body=png, content_type="image/png", headers=NO_STORE)


async def captcha_audio(request: web.Request) -> web.Response:
    """GET /captcha/{id}/audio: the WAV to play."""
    wav = await request.app[CAPTCHA].audio(request.match_info["captcha_id"])
    return web.Response(body=wav, content_type="audio/wav", headers=NO_STORE)


# --- register and the authenticated requests -----------------------------------------------
async def register(request: web.Request) -> web.Response:
    """POST /register (201): the captcha, ECDH key agreement, ID_A, first tuples.

    The key and the push information are checked before the captcha is used, and a captcha
    whose registration could not be stored is put back: a bad request spends nothing.
    """
    data = await read_json(
        request,
        frozenset({"captcha", "captchaId", "clientPublicECDHKey"}),
        frozenset({"pushInfo"}),
    )
    service = _service(request)
    spki = b64decode(data["clientPublicECDHKey"], "clientPublicECDHKey", None, max_size=512)
    keys = service.agree(spki)
    push = push_info(data.get("pushInfo"))
    gate = request.app[CAPTCHA]
    used = await gate.check(data["captchaId"], data["captcha"], _client(request))
    try:
        body = await service.register(keys, push)
    except BaseException:
        await gate.restore(used)
        raise
    return json_response(body, 201)


AUTH_FIELDS = frozenset({"ebid", "epochId", "time", "mac"})
STATUS_OPTIONAL = frozenset({"pushInfo"})


async def status(request: web.Request) -> web.Response:
    """POST /status: the exposure status and a fresh bundle of tuples, as the reference
    answers it (absent fields omitted, not null)."""
    service = _service(request)
    data = await read_json(request, AUTH_FIELDS, STATUS_OPTIONAL)
    answer = await service.status(data, push_info(data.get("pushInfo")))
    body: dict[str, Any] = {
        "riskLevel": answer.risk_level,
        "tuples": answer.tuples,
        "config": service.client_config(),
        "message": "at risk" if answer.at_risk else "no risk detected",
        "analyticsToken": answer.analytics_token,
    }
    if answer.last_contact_date is not None:
        body["lastContactDate"] = answer.last_contact_date
    if answer.last_risk_scoring_date is not None:
        body["lastRiskScoringDate"] = answer.last_risk_scoring_date
    if answer.declaration_token is not None:
        body["declarationToken"] = answer.declaration_token
    return json_response(body)


FAILED_CODES = web.AppKey("failed_codes", Buckets)
"""Failed submission codes per client (10 an hour, then one every 6 minutes): guessing a code
is hopeless anyway, and this keeps trying expensive."""

FAILED_CODES_LIMIT = Limit(burst=10, per_seconds=3600.0)


async def report(request: web.Request) -> web.StreamResponse:
    """POST /report: contacts of a person who tested positive, gated by a submission code.

    A token is taken from the client's bucket before the code is tried and given back unless
    the code failed: concurrent failures cannot all pass a check made before any is charged.
    """
    buckets = request.app[FAILED_CODES]
    client = _client(request)
    wait = buckets.take(client)
    if wait:
        raise TooManyRequests(
            "too many failed submission codes; retry later",
            "too_many_attempts",
            retry_after=int(wait) + 1,
        )
    try:
        answer = await _report(request)
    except HttpError as exc:
        if not (exc.code.startswith("code_") or exc.code == "bad_token"):
            buckets.give_back(client)
        raise
    except BaseException:
        buckets.give_back(client)
        raise
    buckets.give_back(client)
    return answer


async def _report(request: web.Request) -> web.Response:
    service = _service(request)
    data = await read_json(
        request,
        frozenset({"token", "contacts"}),
        frozenset({"contactsAsBinary"}),
        limit=service.settings.max_report_bytes,
    )
    if data.get("contactsAsBinary") is not None:
        raise errors.malformed("contactsAsBinary is not supported; send contacts")
    contacts = parse_contacts(data["contacts"])
    token = await service.report(data["token"], contacts)
    return json_response(
        {"success": True, "message": "report accepted", "reportValidationToken": token}
    )


async def unregister(request: web.Request) -> web.Response:
    """POST /unregister: forget this registration (and its push information)."""
    data = await read_json(request, AUTH_FIELDS, frozenset({"pushToken"}))
    if not isinstance(data.get("pushToken", ""), str):
        raise Malformed("pushToken must be a string")
    await _service(request).unregister(data)
    return json_response({"success": True})


async def delete_history(request: web.Request) -> web.Response:
    """POST /deleteExposureHistory: clear this registration's exposures."""
    await _service(request).delete_history(await read_json(request, AUTH_FIELDS))
    return json_response({"success": True})


async def clock(request: web.Request) -> web.Response:
    """GET /clock: service start date, server time and current epoch."""
    return json_response(_service(request).clock_info())


async def public_key(request: web.Request) -> web.Response:
    """GET /publicKey: the server's ECDH public key (base64 SubjectPublicKeyInfo): what the
    apps embed, for clients that fetch it (our phones, tests)."""
    return json_response({"publicKey": _service(request).keys.public_key_b64(), "curve": "P-256"})


async def jwks(request: web.Request) -> web.Response:
    """GET /.well-known/jwks.json: the public key of the tokens' signatures."""
    return json_response(_service(request).keys.jwks())


INDEX_LINKS = web.AppKey("index_links", list[tuple[str, str, str]])
"""(href, label, description) of what ``GET /`` links; services mounted beside ROBERT add
theirs."""


def default_links() -> list[tuple[str, str, str]]:
    """What the ROBERT server alone serves."""
    return [
        (f"{API}/clock", "ROBERT API", f"the phones' API under {API}/ (this link: the clock)"),
        ("/openapi.json", "API document", "OpenAPI 3 description of every endpoint"),
        (JWKS_PATH, "Token keys", "JWKS: the public key of the signed tokens (ES256)"),
        ("/health", "Health check", "200 when the store answers"),
        ("/metrics", "Metrics", "Prometheus text format"),
    ]


async def index(request: web.Request) -> web.Response:
    """GET /: a small page linking what this process serves."""
    links: list[tuple[str, str, str]] = request.app[INDEX_LINKS]
    return index_page(
        "ROBERT",
        "StopCovid's ROBERT proximity-tracing server and the services mounted beside it.",
        links,
    )


async def health(request: web.Request) -> web.Response:
    """GET /health: 200 when the store answers, 503 otherwise."""
    ok = await _service(request).store.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


async def version(request: web.Request) -> web.Response:
    """GET /version."""
    return json_response(
        {"version": VERSION, "protocol": "ROBERT 1.1", "api": API.rsplit("/", 1)[1]}
    )


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document shipped in the package (``server/openapi.json``)."""
    text = resources.files("server").joinpath("openapi.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    """Mount the API, each handler guarded (JSON errors, metrics)."""
    metrics = app[SERVICE].metrics
    for method, path, handler in (
        ("POST", f"{API}/captcha", captcha),
        ("GET", f"{API}/captcha/{{captcha_id}}/image", captcha_image),
        ("GET", f"{API}/captcha/{{captcha_id}}/audio", captcha_audio),
        ("POST", f"{API}/register", register),
        ("POST", f"{API}/status", status),
        ("POST", f"{API}/report", report),
        ("POST", f"{API}/unregister", unregister),
        ("POST", f"{API}/deleteExposureHistory", delete_history),
        ("GET", f"{API}/clock", clock),
        ("GET", f"{API}/publicKey", public_key),
        ("GET", JWKS_PATH, jwks),
        ("GET", "/", index),
        ("GET", "/health", health),
        ("GET", "/version", version),
        ("GET", "/metrics", metrics_handler),
        ("GET", "/openapi.json", openapi),
    ):
        add_route(app, method, path, handler, metrics, (errors.translate,))
