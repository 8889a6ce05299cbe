"""Handlers of the ROBERT client API under ``/api/v6`` [robert.md: the contract the real apps
hold the server to].

Each handler validates its JSON at the edge (exact field set, types), calls ``RobertService``
(or the captcha gate) and formats the answer with the field names, types and status codes the
TousAntiCovid apps read; the kit's guard (``kit.http.guarded``) turns refusals into JSON
answers, protocol errors through ``server.errors.translate``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from kit.connections import Admission
from kit.http import (
    JSON_HEADERS,
    InFlight,
    Malformed,
    TooManyRequests,
    Unavailable,
    add_route,
    index_page,
    json_response,
    parse_json_object,
    read_body,
    read_json,
)
from kit.metrics import metrics_handler
from protocol.auth import b64decode
from server import errors
from server.api.appkeys import CAPTCHA, SERVICE
from server.limits import client_address
from server.service import StatusAnswer
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
    """The rate-limiting key of the client: its address (from the trusted proxies'
    ``X-Forwarded-For`` behind them), held in memory only, never logged nor stored."""
    return client_address(
        request.remote, request.headers.getall("X-Forwarded-For", ()), _service(request).trusted
    )


def _timeout(request: web.Request) -> float:
    """Seconds the client has to send its body."""
    timeout: float = _service(request).settings.body_timeout
    return timeout


PUSH_LIMITS = {"token": 512, "locale": 64, "timezone": 64}
"""Longest push token, locale and time zone taken (APNs tokens are 64 hex characters, FCM
tokens under 200 characters). Each is printable ASCII, as APNs and FCM tokens, locales (fr_FR)
and IANA time zones (Europe/Paris) are: what openapi.json's pattern says."""


def push_info(value: Any) -> PushInfo | None:
    """The ``pushInfo`` of a registration or status request ({token, locale, timezone}, as
    the iOS app sends it), or None if absent; 400 if it is anything else."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != set(PUSH_LIMITS):
        raise Malformed("pushInfo must be {token, locale, timezone}")
    for name, limit in PUSH_LIMITS.items():
        field = value[name]
        if (
            not isinstance(field, str)
            or len(field) > limit
            or not (field.isascii() and field.isprintable())
        ):
            raise Malformed(f"pushInfo.{name} must be printable ASCII of <= {limit} characters")
    return PushInfo(value["token"], value["locale"], value["timezone"])


# --- captcha -------------------------------------------------------------------------------
async def captcha(request: web.Request) -> web.Response:
    """POST /captcha {type: IMAGE|AUDIO|POW, locale} (201): a captcha id."""
    data = await read_json(
        request, frozenset({"type"}), frozenset({"locale"}), timeout=_timeout(request)
    )
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
        timeout=_timeout(request),
    )
    service = _service(request)
    registering = request.app[REGISTERING]
    if registering.busy >= registering.limit:
        raise registering_refusal()
    registering.busy += 1
    try:
        return await _register(request, service, data)
    finally:
        registering.busy -= 1


def registering_refusal() -> Unavailable:
    """The answer to a registration beyond the bound (here, or from its first bytes)."""
    return Unavailable("too many registrations at once; retry later", "overloaded")


async def _register(request: web.Request, service: Any, data: dict[str, Any]) -> web.Response:
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
    timeout = service.settings.body_timeout
    data = await read_json(request, AUTH_FIELDS, STATUS_OPTIONAL, timeout=timeout)
    push = push_info(data["pushInfo"]) if "pushInfo" in data else None
    answer = await service.status(data, push)
    return web.Response(body=status_json(answer, service.client_config_json), headers=JSON_HEADERS)


_RISK_HEAD = b'{"riskLevel":%d,"tuples":"'
_MESSAGES = {True: orjson.dumps("at risk"), False: orjson.dumps("no risk detected")}


def status_json(answer: StatusAnswer, config_json: bytes) -> bytes:
    """The status answer's JSON: the bytes ``orjson.dumps`` writes for {riskLevel, tuples,
    config, message, analyticsToken[, lastContactDate][, lastRiskScoringDate]
    [, declarationToken]}, put together without serialising the ~28 KB bundle again (it is
    base64 already: nothing in it needs escaping). ``config_json`` is the config list's JSON,
    the same for every answer."""
    parts = [
        _RISK_HEAD % answer.risk_level,
        *answer.tuples,
        b'","config":',
        config_json,
        b',"message":',
        _MESSAGES[answer.at_risk],
        b',"analyticsToken":',
        orjson.dumps(answer.analytics_token),
    ]
    if answer.last_contact_date is not None:
        parts += (b',"lastContactDate":', orjson.dumps(answer.last_contact_date))
    if answer.last_risk_scoring_date is not None:
        parts += (b',"lastRiskScoringDate":', orjson.dumps(answer.last_risk_scoring_date))
    if answer.declaration_token is not None:
        parts += (b',"declarationToken":', orjson.dumps(answer.declaration_token))
    parts.append(b"}")
    return b"".join(parts)


REPORT_FIELDS = frozenset({"token", "contacts"})
REPORT_OPTIONAL = frozenset({"contactsAsBinary"})
_TOKEN_FIRST = re.compile(rb'\A\s*\{\s*"token"\s*:\s*"([^"\\]{1,64})"\s*,')
_TOKEN_LAST = re.compile(rb',\s*"token"\s*:\s*"([^"\\]{1,64})"\s*\}\s*\Z')


def peek_token(body: bytes) -> str | None:
    """The report's token without parsing the body, when it is the first or the last member
    of the top-level object (as the apps send it), else None. A first member is the first
    ``"key": "value"`` after the opening brace; a last one is followed by the closing brace
    and nothing else, which a member of a nested object cannot be (its object's brace would
    be followed by another). The full parse later checks it is the token (duplicate keys)."""
    match = _TOKEN_FIRST.match(body[:128]) or _TOKEN_LAST.search(body[-128:])
    return match.group(1).decode("ascii", "replace") if match else None


async def report(request: web.Request) -> web.StreamResponse:
    """POST /report: contacts of a person who tested positive, gated by a submission code.

    A client refused for failed codes lately is refused again before its body is read. The
    token is read first when it opens or closes the body (``peek_token``, as the apps send
    it): then the code is checked before the body is parsed at all, and a junk upload with a
    wrong code costs no parsing. Otherwise the body is parsed first, off the event loop when
    large (``RobertService.offload``). Either way the code is checked before the contacts are
    parsed, under the limits of ``server.limits``.
    """
    service = _service(request)
    client = _client(request)
    wait = service.attempts.refused_for(client, service.clock())
    if wait > 0:
        raise TooManyRequests(
            "too many failed submission codes; retry later",
            "too_many_attempts",
            retry_after=math.ceil(wait),
        )
    body = await read_body(request, service.settings.max_report_bytes, _timeout(request))
    peeked = peek_token(body)
    parsed: dict[str, Any] | None = None

    async def contacts() -> Any:
        nonlocal parsed
        if parsed is None:
            parsed = await service.offload(
                len(body), parse_json_object, body, REPORT_FIELDS, REPORT_OPTIONAL
            )
        if peeked is not None and parsed["token"] != peeked:
            raise errors.malformed("token given twice")
        if parsed.get("contactsAsBinary") is not None:
            raise errors.malformed("contactsAsBinary is not supported; send contacts")
        return parsed["contacts"]

    if peeked is None:  # the token is somewhere inside: parse, check the shape, then the code
        await contacts()
        assert parsed is not None
    token = await service.report(
        peeked if parsed is None else parsed["token"], contacts, client, len(body)
    )
    return json_response(
        {"success": True, "message": "report accepted", "reportValidationToken": token}
    )


async def unregister(request: web.Request) -> web.Response:
    """POST /unregister: forget this registration (and its push information)."""
    data = await read_json(
        request, AUTH_FIELDS, frozenset({"pushToken"}), timeout=_timeout(request)
    )
    if not isinstance(data.get("pushToken", ""), str):
        raise Malformed("pushToken must be a string")
    await _service(request).unregister(data)
    return json_response({"success": True})


async def delete_history(request: web.Request) -> web.Response:
    """POST /deleteExposureHistory: clear this registration's exposures."""
    data = await read_json(request, AUTH_FIELDS, timeout=_timeout(request))
    await _service(request).delete_history(data)
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
        ("/health", "Health check", "200 when the store answers (readiness)"),
        ("/health/live", "Liveness", "200 while the process answers"),
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
    """GET /health and /health/ready (readiness): 200 when the store answers within the store
    wait, 503 with ``Retry-After`` otherwise (take this process out of rotation, do not kill
    it)."""
    service = _service(request)
    try:
        async with asyncio.timeout(service.settings.store_wait):
            ok = await service.store.ping()
    except TimeoutError:
        ok = False
    if ok:
        return json_response({"status": "ok"})
    response = json_response({"status": "unavailable"}, 503)
    response.headers["Retry-After"] = "1"
    return response


async def live(request: web.Request) -> web.Response:
    """GET /health/live (liveness): 200 while the event loop answers, whatever the store and
    the load (restart the process only if this fails)."""
    return json_response({"status": "alive"})


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
    """Mount the API, each handler guarded (JSON errors, metrics); the API's handlers share
    one bound on requests in flight (``max_in_flight``), health and metrics stay outside it."""
    service = app[SERVICE]
    metrics = service.metrics
    gate = InFlight(service.settings.max_in_flight)
    app[IN_FLIGHT] = gate
    app[REGISTERING] = InFlight(service.settings.max_registering)
    limit = service.settings.max_registering
    register_path = f"{API}/register"
    app[ADMISSIONS] = (Admission("POST", register_path, limit, registering_refusal(), metrics),)
    unbounded = {"/health", "/health/ready", "/health/live", "/metrics", "/version"}
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
        ("GET", "/health/ready", health),
        ("GET", "/health/live", live),
        ("GET", "/version", version),
        ("GET", "/metrics", metrics_handler),
        ("GET", "/openapi.json", openapi),
    ):
        bound = None if path in unbounded else gate
        add_route(app, method, path, handler, metrics, (errors.translate,), gate=bound)


IN_FLIGHT = web.AppKey("in_flight", InFlight)
"""The process's bound on API requests in flight (its ``busy`` count is a gauge)."""
ADMISSIONS = web.AppKey("admissions", tuple[Admission, ...])
"""The bounds the connection layer takes from requests' first bytes (``kit.connections``,
which ``robert serve`` runs on): registrations, refused beyond ``max_registering`` before
aiohttp parses them, so that a launch burst's refusals cost little and the accepted
registrations are not queued behind them. The handler keeps its own bound (``REGISTERING``)
for requests that arrive otherwise (test clients, a body in a later packet)."""
REGISTERING = web.AppKey("registering", InFlight)
"""The tighter bound on registrations in flight (the costliest request): the accepted ones of
a launch burst answer within about a second, the rest are told to come back."""
