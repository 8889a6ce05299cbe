"""Handlers of the ROBERT client API under ``/api/v1`` [robert.md: Endpoints].

Each handler validates its JSON at the edge (exact field set, types), calls ``RobertService``
and formats the answer; the kit's guard (``kit.http.guarded``) turns refusals into JSON answers,
protocol errors through ``server.errors.translate``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from aiohttp import web

from kit.http import HttpError, TooManyRequests, add_route, index_page, json_response, read_json
from kit.metrics import metrics_handler
from kit.ratelimit import Buckets, Limit
from protocol.auth import b64decode
from protocol.contacts import parse_contacts
from server import errors
from server.api.appkeys import CAPTCHA, SERVICE

API = "/api/v1"
VERSION = "0.1.0"


def _service(request: web.Request) -> Any:
    return request.app[SERVICE]


async def captcha(request: web.Request) -> web.Response:
    """POST /captcha: a proof-of-work challenge to solve before registering."""
    if request.can_read_body:
        await read_json(request, frozenset(), frozenset({"type", "locale"}))
    return json_response(request.app[CAPTCHA].challenge(), 200)


async def register(request: web.Request) -> web.Response:
    """POST /register (201): ECDH key agreement, ID_A, first tuples."""
    data = await read_json(
        request,
        frozenset({"captcha", "clientPublicECDHKey"}),
        frozenset({"captchaId", "pushInfo"}),
    )
    spki = b64decode(data["clientPublicECDHKey"], "clientPublicECDHKey", None, max_size=512)
    gate = request.app[CAPTCHA]
    if gate.difficulty and not gate.verify(data.get("captchaId"), data["captcha"]):
        raise errors.bad_captcha()
    return json_response(await _service(request).register(spki), 201)


AUTH_FIELDS = frozenset({"ebid", "epochId", "time", "mac"})


async def status(request: web.Request) -> web.Response:
    """POST /status: the exposure status, and fresh tuples when due."""
    service = _service(request)
    answer = await service.status(await read_json(request, AUTH_FIELDS, frozenset({"pushInfo"})))
    body: dict[str, Any] = {
        "atRisk": answer.at_risk,
        "riskLevel": answer.risk_level,
        "lastContactDate": answer.last_contact_date,
        "lastRiskScoringDate": answer.last_risk_scoring_date,
        "config": service.client_config(),
        "message": "at risk" if answer.at_risk else "no risk detected",
    }
    if answer.tuples is not None:
        body["tuples"] = answer.tuples
    return json_response(body)


FAILED_CODES = web.AppKey("failed_codes", Buckets)
"""Failed submission codes per client (10 an hour, then one every 6 minutes): guessing a code
is hopeless anyway, and this keeps trying expensive."""

FAILED_CODES_LIMIT = Limit(burst=10, per_seconds=3600.0)


def _client(request: web.Request) -> str:
    """The rate-limiting key of the client: its address, held in memory only, never logged."""
    return request.remote or "?"


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
    await service.report(data["token"], contacts)
    return json_response({"success": True, "message": "report accepted"})


async def unregister(request: web.Request) -> web.Response:
    """POST /unregister: forget this registration."""
    await _service(request).unregister(
        await read_json(request, AUTH_FIELDS, frozenset({"pushToken"}))
    )
    return json_response({"success": True, "message": "unregistered"})


async def delete_history(request: web.Request) -> web.Response:
    """POST /deleteExposureHistory: clear this registration's exposures."""
    await _service(request).delete_history(await read_json(request, AUTH_FIELDS))
    return json_response({"success": True, "message": "exposure history deleted"})


async def clock(request: web.Request) -> web.Response:
    """GET /clock: server time, service start and current epoch."""
    return json_response(_service(request).clock_info())


async def public_key(request: web.Request) -> web.Response:
    """GET /publicKey: the server's ECDH public key (base64 SubjectPublicKeyInfo)."""
    return json_response({"publicKey": _service(request).keys.public_key_b64(), "curve": "P-256"})


INDEX_LINKS = web.AppKey("index_links", list[tuple[str, str, str]])
"""(href, label, description) of what ``GET /`` links; services mounted beside ROBERT add
theirs."""


def default_links() -> list[tuple[str, str, str]]:
    """What the ROBERT server alone serves."""
    return [
        (f"{API}/clock", "ROBERT API", f"the phones' API under {API}/ (this link: the clock)"),
        ("/openapi.json", "API document", "OpenAPI 3 description of every endpoint"),
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
    return json_response({"version": VERSION, "protocol": "ROBERT 1.1", "api": "v1"})


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
        ("POST", f"{API}/register", register),
        ("POST", f"{API}/status", status),
        ("POST", f"{API}/report", report),
        ("POST", f"{API}/unregister", unregister),
        ("POST", f"{API}/deleteExposureHistory", delete_history),
        ("GET", f"{API}/clock", clock),
        ("GET", f"{API}/publicKey", public_key),
        ("GET", "/", index),
        ("GET", "/health", health),
        ("GET", "/version", version),
        ("GET", "/metrics", metrics_handler),
        ("GET", "/openapi.json", openapi),
    ):
        add_route(app, method, path, handler, metrics, (errors.translate,))
