"""SI-DEP's machine API, mounted under ``/sidep`` (labs' systems, with an API key of role
``lab`` and scope ``finess:<lab>``, or ``admin``):

- ``POST /sidep/api/v1/hl7``: one HL7 v2 ORU^R01 message (or a FHS/BHS batch); the answer is
  an HL7 ACK (``AA``, ``AE`` with the reason, ``AR``), ``x-application/hl7-v2+er7``;
- ``POST /sidep/api/v1/fhir``: a FHIR R4 Bundle; ``OperationOutcome`` (information when
  stored, error with the reasons, HTTP 422, when refused);
- ``POST /sidep/api/v1/files?format=auto|hprim|csv|hl7|fhir``: an HPRIM Santé or CSV file;
  ``{"accepted", "duplicates", "rejected", "refusals": [{"where", "reason"}]}``;
- ``GET /sidep/api/v1/events``: the outbox feed (role ``event-reader``, ``kit.events``);
- ``GET /sidep/health``, ``GET /sidep/metrics``.

Every transport writes through the same ``Committer`` as the MLLP listener: the answer is
sent only after the commit.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from kit.audit import Actor
from kit.auth.apikeys import require_api_key
from kit.http import BadRequest, add_route, json_response, read_body
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from sidep.access import INTAKE_KEY_ROLES, Access
from sidep.ack import AckCode
from sidep.intake import Intake
from sidep.mllp import AckNumbers, Committer, StoreFailed, answer_message
from sidep.model import Parsed, Refusal, SourceFormat
from sidep.service import Counts, SidepService

PREFIX = "/sidep"
API = "/api/v1"
MAX_MESSAGE = 4 * 1024 * 1024
MAX_FILE = 32 * 1024 * 1024
HL7_TYPE = "x-application/hl7-v2+er7"
FHIR_TYPE = "application/fhir+json"

SERVICE = web.AppKey("sidep_service", SidepService)
INTAKE = web.AppKey("sidep_intake", Intake)
COMMITTER = web.AppKey("sidep_committer", Committer)
NUMBERS = web.AppKey("sidep_ack_numbers", AckNumbers)


def install(
    app: web.Application,
    service: SidepService,
    intake: Intake,
    committer: Committer,
    metrics: HttpMetrics,
) -> None:
    """Add the API's routes to ``app`` (the application mounted at ``/sidep``)."""
    app[SERVICE] = service
    app[INTAKE] = intake
    app[COMMITTER] = committer
    app[NUMBERS] = AckNumbers.of_process()
    for method, path, handler in (
        ("POST", f"{API}/hl7", api_hl7),
        ("POST", f"{API}/fhir", api_fhir),
        ("POST", f"{API}/files", api_files),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    ):
        add_route(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics, in the registry of ``app``."""
    return HttpMetrics("sidep", registry_of(app))


async def health(request: web.Request) -> web.Response:
    """GET /sidep/health: 200 when the database answers, 503 otherwise."""
    ok = await request.config_dict[SERVICE].store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


def scope_check(access: Access) -> Any:
    """A check refusing, whole, a message holding results of a lab the key may not send for."""

    def check(parsed: Parsed) -> Parsed:
        foreign = sorted({r.lab for r in parsed.results if not access.may_send_for(r.lab)})
        if not foreign:
            return parsed
        where = parsed.results[0].raw_ref or "message"
        reason = f"this key may not send results of lab {', '.join(foreign)}"
        return Parsed(refusals=(*parsed.refusals, Refusal(where, reason)))

    return check


async def _sender(request: web.Request) -> tuple[Access, Actor]:
    principal = await require_api_key(request, roles=INTAKE_KEY_ROLES)
    return Access(principal.role, principal.scope), principal.as_actor()


async def api_hl7(request: web.Request) -> web.Response:
    """POST an HL7 v2 message: its ACK."""
    access, actor = await _sender(request)
    data = await read_body(request, MAX_MESSAGE)
    ack, _code, _counts = await answer_message(
        data,
        request.config_dict[INTAKE],
        request.config_dict[COMMITTER],
        actor,
        request.config_dict[NUMBERS],
        "HTTP",
        scope_check(access),
    )
    return web.Response(body=ack, content_type=HL7_TYPE, charset="utf-8")


def outcome(severity: str, code: str, refusals: tuple[Refusal, ...], text: str = "") -> Any:
    """A FHIR R4 OperationOutcome."""
    issues = [
        {"severity": severity, "code": code, "diagnostics": r.reason, "expression": [r.where]}
        for r in refusals
    ] or [{"severity": severity, "code": code, "diagnostics": text}]
    return {"resourceType": "OperationOutcome", "issue": issues}


def _fhir(body: Any, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=FHIR_TYPE)


async def api_fhir(request: web.Request) -> web.Response:
    """POST a FHIR R4 Bundle: OperationOutcome."""
    access, actor = await _sender(request)
    data = await read_body(request, MAX_MESSAGE)
    parsed = request.config_dict[INTAKE].parse(data, "Bundle", SourceFormat.FHIR)
    parsed = scope_check(access)(parsed)
    try:
        counts = await _store(request, parsed, actor)
    except StoreFailed as exc:
        return _fhir(outcome("error", "transient", (), str(exc)), 503)
    if counts.refusals:
        return _fhir(outcome("error", "invalid", counts.refusals), 422)
    return _fhir(outcome("information", "informational", (), counts.line()), 200)


async def _store(request: web.Request, parsed: Parsed, actor: Actor) -> Counts:
    return await request.config_dict[COMMITTER].submit(parsed, actor)


FILE_FORMATS = {"auto": None, **{f.value: f for f in SourceFormat if f is not SourceFormat.FORM}}


async def api_files(request: web.Request) -> web.Response:
    """POST an HPRIM or CSV file (``?format=``): counts and refusals."""
    access, actor = await _sender(request)
    name = request.query.get("format", "auto")
    if name not in FILE_FORMATS:
        raise BadRequest(f"format must be one of {', '.join(FILE_FORMATS)}")
    data = await read_body(request, MAX_FILE)
    where = request.query.get("name", "file")[:100]
    parsed = request.config_dict[INTAKE].parse(data, where, FILE_FORMATS[name])
    parsed = scope_check(access)(parsed)
    try:
        counts = await _store(request, parsed, actor)
    except StoreFailed as exc:
        return json_response({"error": "unavailable", "message": str(exc)}, 503)
    body = {
        "accepted": counts.accepted,
        "duplicates": counts.duplicates,
        "rejected": counts.rejected,
        "refusals": [{"where": r.where, "reason": r.reason} for r in counts.refusals],
    }
    stored_nothing = counts.rejected and not (counts.accepted or counts.duplicates)
    return json_response(body, 422 if stored_nothing else 200)


__all__ = ["PREFIX", "AckCode", "install", "new_metrics"]
