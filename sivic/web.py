"""HTTP adapters of SI-VIC, mounted under ``/sivic``: thin handlers that parse, call
``SivicService`` and format.

Machines authenticate with an API key (``Authorization: Bearer sivic_...``), people with their
session (password and TOTP, ``kit.auth``); both become an ``Access`` (role, scope).

JSON API (``/sivic/api/v1``): ``GET counts?dep=|region=`` (the SAMU board's contract),
``GET|POST events``, ``POST patients`` (register, transfer, discharge: a patient's current
state), ``GET patients/{id}``, ``GET establishments/{finess}/patients``, ``POST import`` (an
intake file as the body). Pages: ``/sivic/`` (by role), ``/sivic/establishments/{finess}``
(the patients lying there, the registration form, the file upload), ``/sivic/patients/{id}``
(record, history, transfer or discharge), ``/sivic/events``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kit.audit import Actor
from kit.auth.apikeys import bearer_token, require_api_key
from kit.auth.people import require_user
from kit.http import (
    BadRequest,
    Handler,
    HttpError,
    add_route,
    json_response,
    read_body,
    read_json,
    row_id,
    see_other,
)
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from kit.web import add_page, flash, pages_of, render
from sivic import intake
from sivic.access import (
    ADMIN,
    COUNT_ROLES,
    EVENT_ROLES,
    PATIENT_ROLES,
    PEOPLE_ROLES,
    STAFF,
    WRITE_ROLES,
    Access,
)
from sivic.model import (
    N_,
    Covid,
    EventKind,
    HistoryEntry,
    Outcome,
    Patient,
    Registration,
    Sex,
    Source,
    Status,
    UnitKind,
)
from sivic.opendata import iso_utc
from sivic.service import SivicService
from sivic.store import Result

PREFIX = "/sivic"
API = "/api/v1"
MAX_FILE = 8 * 1024 * 1024

SERVICE = web.AppKey("sivic_service", SivicService)


def install(app: web.Application, service: SivicService, metrics: HttpMetrics) -> None:
    """Add the service's routes to ``app`` (the application mounted at ``/sivic``)."""
    app[SERVICE] = service
    api: list[tuple[str, str, Handler]] = [
        ("GET", f"{API}/counts", api_counts),
        ("GET", f"{API}/events", api_events),
        ("POST", f"{API}/events", api_create_event),
        ("POST", f"{API}/events/{{event}}/close", api_close_event),
        ("POST", f"{API}/patients", api_register),
        ("GET", f"{API}/patients/{{patient}}", api_patient),
        ("GET", f"{API}/establishments/{{finess}}/patients", api_patients_at),
        ("POST", f"{API}/import", api_import),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    ]
    for method, path, handler in api:
        add_route(app, method, path, handler, metrics)
    pages: list[tuple[str, str, Handler]] = [
        ("GET", "/", page_home),
        ("GET", "/establishments/{finess}", page_establishment),
        ("POST", "/establishments/{finess}/register", page_register),
        ("POST", "/establishments/{finess}/file", page_upload),
        ("GET", "/patients/{patient}", page_patient),
        ("POST", "/patients/{patient}", page_change),
        ("GET", "/events", page_events),
        ("GET", "/counts", page_counts),
        ("POST", "/events", page_create_event),
    ]
    for method, path, handler in pages:
        add_page(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics, in the registry of ``app``."""
    return HttpMetrics("sivic", registry_of(app))


def _service(request: web.Request) -> SivicService:
    return request.config_dict[SERVICE]


async def _caller(
    request: web.Request, roles: frozenset[str] | None = None
) -> tuple[Access, Actor]:
    """The caller's access and audit name: an API key if the request carries one, else the
    signed-in person."""
    if bearer_token(request) is not None:
        principal = await require_api_key(request, roles)
        return Access(principal.role, principal.scope), principal.as_actor()
    user = await require_user(request, roles)
    return Access(user.role, user.scope), user.as_actor()


async def health(request: web.Request) -> web.Response:
    """GET /sivic/health: 200 when the database answers, 503 otherwise."""
    ok = await _service(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


def _int(value: str, name: str) -> int:
    """An id in the path: 400 if not a number, 404 if no row can have it (``kit.http.row_id``;
    beyond the tables' integers it was an OverflowError, a 500)."""
    return row_id(value, name, "path")


def _event_id(request: web.Request) -> int | None:
    value = request.query.get("event")
    return None if value in (None, "") else row_id(value, "event", "query")


def patient_json(patient: Patient) -> dict[str, object]:
    """A patient as the JSON API gives it (identity and episode, no medical data)."""
    i, e = patient.identity, patient.episode
    return {
        "id": patient.id,
        "event": patient.event_id,
        "ins": i.ins,
        "patient_ref": i.patient_ref,
        "last_name": i.last_name,
        "first_name": i.first_name,
        "birth_date": i.birth_date.isoformat(),
        "sex": i.sex.value,
        "finess": e.finess,
        "dep": e.dep,
        "unit": e.unit.value,
        "status": e.status.value,
        "status_date": e.status_date.isoformat(),
        "covid": e.covid.value,
        "updated_at": iso_utc(patient.updated_at),
    }


def _history_json(entry: HistoryEntry) -> dict[str, object]:
    e, m = entry.episode, entry.movement
    return {
        "finess": e.finess,
        "dep": e.dep,
        "unit": e.unit.value,
        "status": e.status.value,
        "status_date": e.status_date.isoformat(),
        "covid": e.covid.value,
        "admitted": m.admitted,
        "to_critical": m.to_critical,
        "to_home": m.to_home,
        "to_death": m.to_death,
        "recorded_at": iso_utc(entry.recorded_at),
        "source": entry.source,
        "actor": entry.actor,
    }


def _result_json(result: Result) -> dict[str, object]:
    return {"outcome": result.outcome.value, "reason": result.reason, "patient": result.patient_id}


# --- JSON API ----------------------------------------------------------------------------------
async def api_counts(request: web.Request) -> web.Response:
    """GET ?dep=75 | ?region=11 | nothing (France): the current counts (the SAMU board)."""
    access, _ = await _caller(request, COUNT_ROLES)
    query = request.query
    unknown = set(query) - {"dep", "region"}
    if unknown:
        raise BadRequest(f"unknown parameters: {', '.join(sorted(unknown))}")
    return json_response(
        await _service(request).counts(access, query.get("dep"), query.get("region"))
    )


def _event_json(event: Any) -> dict[str, object]:
    return {
        "id": event.id,
        "kind": event.kind.value,
        "name": event.name,
        "opened_at": iso_utc(event.opened_at),
        "closed_at": None if event.closed_at is None else iso_utc(event.closed_at),
    }


async def api_events(request: web.Request) -> web.Response:
    """GET: every event, newest first."""
    await _caller(request, PATIENT_ROLES | COUNT_ROLES)
    return json_response({"events": [_event_json(e) for e in await _service(request).events()]})


async def api_create_event(request: web.Request) -> web.Response:
    """POST {kind, name}: open an event (national crisis centre, admin)."""
    access, actor = await _caller(request, EVENT_ROLES)
    body = await read_json(request, frozenset({"kind", "name"}))
    if not isinstance(body["kind"], str) or not isinstance(body["name"], str):
        raise BadRequest("kind and name are strings")
    event = await _service(request).create_event(access, actor, body["kind"], body["name"])
    return json_response(_event_json(event), 201)


async def api_close_event(request: web.Request) -> web.Response:
    """POST: close an event (national crisis centre, admin); 409 if already closed."""
    access, actor = await _caller(request, EVENT_ROLES)
    event_id = _int(request.match_info["event"], "event")
    return json_response(_event_json(await _service(request).close_event(access, actor, event_id)))


def _registration(values: dict[str, Any], service: SivicService) -> Registration:
    try:
        return intake.parse_form(values, service.today())
    except ValueError as exc:
        raise BadRequest(str(exc), "bad_registration") from None


async def api_register(request: web.Request) -> web.Response:
    """POST a patient's current state: {finess, dep, birth_date, sex, unit, status,
    status_date, covid} and an identity (ins, patient_ref, last_name + first_name)."""
    access, actor = await _caller(request, WRITE_ROLES)
    optional = frozenset({*intake.IDENTITY_FIELDS, "event"})
    body = await read_json(request, frozenset(intake.FORM_FIELDS), optional)
    event = None if body.get("event") is None else row_id(body["event"], "event", "body")
    service = _service(request)
    result = await service.register(access, actor, _registration(body, service), Source.API, event)
    if result.outcome == Outcome.REFUSED:
        return json_response({"success": False, **_result_json(result)}, 409)
    status = 201 if result.outcome == Outcome.CREATED else 200
    return json_response({"success": True, **_result_json(result)}, status)


async def api_patient(request: web.Request) -> web.Response:
    """GET: a patient's record and history (the read is audited)."""
    access, actor = await _caller(request, PATIENT_ROLES)
    patient_id = _int(request.match_info["patient"], "patient")
    patient, entries = await _service(request).patient(access, actor, patient_id)
    return json_response({**patient_json(patient), "history": [_history_json(h) for h in entries]})


async def api_patients_at(request: web.Request) -> web.Response:
    """GET ?event=&all=1: the patients lying at an establishment (all: every status)."""
    access, actor = await _caller(request, PATIENT_ROLES)
    found = await _service(request).patients_at(
        access,
        actor,
        request.match_info["finess"],
        _event_id(request),
        present_only=request.query.get("all") != "1",
    )
    return json_response({"patients": [patient_json(p) for p in found]})


async def api_import(request: web.Request) -> web.Response:
    """POST an intake file (text/csv, UTF-8) as the body, ?event=: the good lines applied,
    the refused ones listed with their number and reason."""
    access, actor = await _caller(request, WRITE_ROLES)
    text = _decode(await read_body(request, MAX_FILE))
    report = await _service(request).import_text(access, actor, text, _event_id(request))
    return json_response({"success": not report.refused, **report.as_json()})


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the file must be UTF-8", "bad_encoding") from None


# --- pages -------------------------------------------------------------------------------------
def _choices() -> dict[str, Any]:
    return {
        "sexes": [(s.value, s.value) for s in Sex],
        "units": [(u.value, u.label) for u in UnitKind],
        "statuses": [(s.value, s.label) for s in Status],
        "reasons": [(c.value, c.value) for c in Covid],
        "kinds": [(k.value, k.label) for k in EventKind],
    }


async def page_home(request: web.Request) -> web.StreamResponse:
    """Where each role starts: staff on their establishment, others on the events."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    if user.role == STAFF and access.finess:
        return see_other(f"{PREFIX}/establishments/{access.finess}")
    return see_other(f"{PREFIX}/counts")


async def page_counts(request: web.Request) -> web.StreamResponse:
    """Today's counts of each département of the caller's territory."""
    user = await require_user(request, COUNT_ROLES)
    service = _service(request)
    rows = await service.territory_rows(Access(user.role, user.scope))
    return await render(
        request, "sivic/counts.html", rows=rows, today=service.today(), prefix=PREFIX
    )


async def _establishment_page(
    request: web.Request,
    access: Access,
    actor: Actor,
    finess: str,
    status: int = 200,
    **extra: Any,
) -> web.Response:
    service = _service(request)
    event = await service.covid_event()
    patients = await service.patients_at(access, actor, finess, event.id)
    context: dict[str, Any] = {
        "finess": finess,
        "event": event,
        "patients": patients,
        "writable": access.may_write(finess),
        "prefix": PREFIX,
        "form": {},
        "error": None,
        "today": service.today().isoformat(),
        **_choices(),
    }
    context.update(extra)
    return await render(request, "sivic/establishment.html", status, **context)


async def page_establishment(request: web.Request) -> web.StreamResponse:
    """The patients hospitalised at an establishment, the registration form, the upload."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    return await _establishment_page(request, access, user.as_actor(), request.match_info["finess"])


async def page_register(request: web.Request) -> web.StreamResponse:
    """POST the registration form (a new patient, or one arriving by transfer)."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    finess = request.match_info["finess"]
    service = _service(request)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf_token"}
    values = {**form, "finess": finess}
    try:
        registration = intake.parse_form(values, service.today())
        result = await service.register(access, user.as_actor(), registration, Source.FORM)
        if result.outcome == Outcome.REFUSED:
            raise BadRequest(result.reason)
    except (ValueError, HttpError) as exc:
        message = exc.message if isinstance(exc, HttpError) else str(exc)
        status = exc.status if isinstance(exc, HttpError) else 422
        return await _establishment_page(
            request, access, user.as_actor(), finess, status, form=form, error=message
        )
    await flash(request, _outcome_message(request, result), "success")
    return see_other(f"{PREFIX}/establishments/{finess}")


def _outcome_message(request: web.Request, result: Result) -> str:
    return _t(
        request,
        {
            Outcome.CREATED: N_("Patient registered."),
            Outcome.UPDATED: N_("Patient updated."),
            Outcome.UNCHANGED: N_("Nothing changed."),
            Outcome.REFUSED: N_("Refused."),
        }[result.outcome],
    )


def _t(request: web.Request, message: str) -> str:
    pages = pages_of(request)
    return pages.gettext(pages.language(request), message)


async def page_upload(request: web.Request) -> web.StreamResponse:
    """POST an intake file from the establishment's page."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    finess = request.match_info["finess"]
    form = await request.post()
    upload = form.get("file")
    data = upload.file.read(MAX_FILE + 1) if isinstance(upload, web.FileField) else b""
    try:
        if len(data) > MAX_FILE:
            raise BadRequest("the file is larger than 8 MB")
        report = await _service(request).import_text(access, user.as_actor(), _decode(data))
    except HttpError as exc:
        return await _establishment_page(
            request, access, user.as_actor(), finess, exc.status, file_error=exc.message
        )
    if report.refused:
        return await _establishment_page(
            request, access, user.as_actor(), finess, 422, report=report
        )
    message = _t(
        request, "File applied: {created} created, {updated} updated, {unchanged} unchanged."
    )
    await flash(
        request,
        message.format(created=report.created, updated=report.updated, unchanged=report.unchanged),
        "success",
    )
    return see_other(f"{PREFIX}/establishments/{finess}")


async def _patient_page(
    request: web.Request, access: Access, actor: Actor, patient_id: int, status: int = 200,
    **extra: Any,
) -> web.Response:  # fmt: skip
    patient, entries = await _service(request).patient(access, actor, patient_id)
    context: dict[str, Any] = {
        "patient": patient,
        "entries": entries,
        "writable": access.may_write(patient.episode.finess),
        "prefix": PREFIX,
        "error": None,
        "today": _service(request).today().isoformat(),
        **_choices(),
    }
    context.update(extra)
    return await render(request, "sivic/patient.html", status, **context)


async def page_patient(request: web.Request) -> web.StreamResponse:
    """A patient's record and history (the read is audited), with the change form."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    patient_id = _int(request.match_info["patient"], "patient")
    return await _patient_page(request, access, user.as_actor(), patient_id)


async def page_change(request: web.Request) -> web.StreamResponse:
    """POST a new status of a patient at the same establishment: moved to another unit,
    transferred out, returned home, deceased."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    actor = user.as_actor()
    patient_id = _int(request.match_info["patient"], "patient")
    service = _service(request)
    patient, _ = await service.patient(access, actor, patient_id)
    form = {k: str(v) for k, v in (await request.post()).items() if k != "csrf_token"}
    i, e = patient.identity, patient.episode
    values = {
        "finess": e.finess,
        "dep": e.dep,
        "birth_date": i.birth_date.isoformat(),
        "sex": i.sex.value,
        "unit": form.get("unit", e.unit.value),
        "status": form.get("status", ""),
        "status_date": form.get("status_date", ""),
        "covid": form.get("covid", e.covid.value),
        "ins": i.ins or "",
        "patient_ref": i.patient_ref or "",
        "last_name": i.last_name or "",
        "first_name": i.first_name or "",
    }
    try:
        registration = intake.parse_form(values, service.today())
        result = await service.register(access, actor, registration, Source.FORM, patient.event_id)
        if result.outcome == Outcome.REFUSED:
            raise BadRequest(result.reason)
    except (ValueError, HttpError) as exc:
        message = exc.message if isinstance(exc, HttpError) else str(exc)
        return await _patient_page(request, access, actor, patient_id, 422, error=message)
    await flash(request, _outcome_message(request, result), "success")
    return see_other(f"{PREFIX}/patients/{patient_id}")


async def page_events(request: web.Request) -> web.StreamResponse:
    """The events SI-VIC is open for; the national crisis centre opens new ones."""
    user = await require_user(request, PEOPLE_ROLES)
    events = await _service(request).events()
    return await render(
        request,
        "sivic/events.html",
        events=events,
        may_open=user.role in EVENT_ROLES,
        prefix=PREFIX,
        error=None,
        **_choices(),
    )


async def page_create_event(request: web.Request) -> web.StreamResponse:
    """POST the new-event form."""
    user = await require_user(request, EVENT_ROLES | {ADMIN})
    form = await request.post()
    service = _service(request)
    try:
        await service.create_event(
            Access(user.role, user.scope),
            user.as_actor(),
            str(form.get("kind", "")),
            str(form.get("name", "")),
        )
    except HttpError as exc:
        return await render(
            request,
            "sivic/events.html",
            exc.status,
            events=await service.events(),
            may_open=True,
            prefix=PREFIX,
            error=exc.message,
            **_choices(),
        )
    await flash(request, _t(request, "Event opened."), "success")
    return see_other(f"{PREFIX}/events")
