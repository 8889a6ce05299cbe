"""HTTP adapters of Contact Covid, mounted under ``/contact``: thin handlers that parse,
call ``ContactService`` and format.

Machines authenticate with an API key (``Authorization: Bearer contact_...``), people with
their session (password and TOTP, ``kit.auth``); both become an ``Access``.

JSON API (``/contact/api/v1``): ``POST cases``, ``GET cases`` (the caller's queue),
``GET cases/{id}``, ``POST cases/{id}/contacts``, ``POST cases/{id}/status``,
``POST cases/{id}/level``, ``POST cases/{id}/assignment`` (take, release),
``POST cases/{id}/notify``, ``POST contacts/{id}/calls``,
``GET search?q=``, ``GET clusters``, ``GET prescriptions/{code}``,
``POST prescriptions/{code}/consume``, ``GET export`` (pseudonymised CSV).
Pages: ``/contact/`` (by role), ``cases``, ``cases/new``, ``cases/{id}``,
``contacts/{id}`` (the call screen), ``clusters``, ``prescriptions`` (check and consume).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from contact import rules
from contact.access import (
    ARS_AGENT,
    CASE_ROLES,
    CHECK_ROLES,
    CPAM,
    DOCTOR,
    EXPORT_ROLES,
    RELATION_LABELS,
    Access,
)
from contact.model import ContactKind, Outcome, PersonInput, PrescriptionKind
from contact.rules import Level, Status
from contact.service import (
    MAX_PAGE,
    RELATIONS,
    CaseInput,
    CaseView,
    ContactInput,
    ContactService,
    ContactView,
    FieldError,
    PrescriptionCheck,
    QueueItem,
)
from kit.auth.apikeys import bearer_token, require_api_key
from kit.auth.people import require_user
from kit.http import (
    BadRequest,
    Handler,
    HttpError,
    add_route,
    json_response,
    read_json,
    row_id,
    see_other,
)
from kit.identity import normalise_name
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from kit.web import add_page, flash, pages_of, render

PREFIX = "/contact"
API = "/api/v1"

SERVICE = web.AppKey("contact_service", ContactService)

PERSON_FIELDS = frozenset({"last_name", "first_name"})
PERSON_OPTIONAL = frozenset(
    {"birth_date", "sex", "nir", "phone", "email", "address", "postcode", "department"}
)


def install(app: web.Application, service: ContactService, metrics: HttpMetrics) -> None:
    """Add the service's routes to ``app`` (the application mounted at ``/contact``)."""
    app[SERVICE] = service
    api: list[tuple[str, str, Handler]] = [
        ("POST", f"{API}/cases", api_open_case),
        ("GET", f"{API}/cases", api_queue),
        ("GET", f"{API}/cases/{{case}}", api_case),
        ("POST", f"{API}/cases/{{case}}/reveal", api_reveal),
        ("POST", f"{API}/cases/{{case}}/contacts", api_add_contact),
        ("POST", f"{API}/cases/{{case}}/status", api_status),
        ("POST", f"{API}/cases/{{case}}/level", api_level),
        ("POST", f"{API}/cases/{{case}}/assignment", api_assignment),
        ("POST", f"{API}/cases/{{case}}/notify", api_notify),
        ("POST", f"{API}/contacts/{{contact}}/calls", api_call),
        ("GET", f"{API}/search", api_search),
        ("GET", f"{API}/clusters", api_clusters),
        ("GET", f"{API}/prescriptions/{{code}}", api_check),
        ("POST", f"{API}/prescriptions/{{code}}/consume", api_consume),
        ("GET", f"{API}/export", api_export),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    ]
    for method, path, handler in api:
        add_route(app, method, path, handler, metrics)
    pages: list[tuple[str, str, Handler]] = [
        ("GET", "/", page_home),
        ("GET", "/cases", page_cases),
        ("GET", "/cases/new", page_new_case),
        ("POST", "/cases/new", page_create_case),
        ("GET", "/cases/{case}", page_case),
        ("POST", "/cases/{case}/contacts", page_add_contact),
        ("POST", "/cases/{case}/action", page_case_action),
        ("POST", "/cases/{case}/reveal", page_reveal),
        ("GET", "/contacts/{contact}", page_contact),
        ("POST", "/contacts/{contact}/call", page_call),
        ("GET", "/clusters", page_clusters),
        ("GET", "/prescriptions", page_prescriptions),
        ("POST", "/prescriptions", page_consume),
    ]
    for method, path, handler in pages:
        add_page(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics, in the registry of ``app``."""
    return HttpMetrics("contact", registry_of(app))


def _service(request: web.Request) -> ContactService:
    return request.config_dict[SERVICE]


async def _caller(request: web.Request, roles: frozenset[str] | None = None) -> Access:
    """The caller: an API key if the request carries one, else the signed-in person."""
    if bearer_token(request) is not None:
        principal = await require_api_key(request, roles)
        return Access(principal.actor, principal.role, principal.scope)
    user = await require_user(request, roles)
    return Access(user.username, user.role, user.scope)


async def health(request: web.Request) -> web.Response:
    """GET /contact/health: 200 when the database answers, 503 otherwise."""
    ok = await _service(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


# --- parsing ---------------------------------------------------------------------------------
def _int(request: web.Request, name: str) -> int:
    """A record id of the path: 400 when not a number, 404 beyond any id (``kit.http.row_id``)."""
    return row_id(request.match_info[name], name, "path", missing=f"no_{name}")


def _page(request: web.Request) -> int:
    """The ``page`` query parameter (1 when absent)."""
    raw = request.query.get("page", "1")
    # "²".isdigit() is true and int("²") raises; int() refuses 4,300 digits: ASCII, short
    short = raw.isascii() and raw.isdigit() and len(raw.lstrip("0")) <= len(str(MAX_PAGE))
    if not short or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"page is a number from 1 to {MAX_PAGE}", "bad_page")
    return int(raw)


def _text(value: object, name: str, limit: int = 150) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"{name} is a text of at most {limit} characters", "bad_field")
    return value.strip()


def _date(value: object, name: str, required: bool = False) -> date | None:
    if value in (None, ""):
        if required:
            raise BadRequest(f"{name} is required (YYYY-MM-DD)", "bad_date")
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{name} is a date (YYYY-MM-DD)", "bad_date") from None


def person_of(data: Any) -> PersonInput:
    """A person from a JSON object or a form (the same field names)."""
    last, first = (
        _text(data.get("last_name"), "last_name"),
        _text(data.get("first_name"), "first_name"),
    )
    if not normalise_name(last):
        raise FieldError("last_name", "give the last name (letters)", "no_name")
    if not normalise_name(first):
        raise FieldError("first_name", "give the first name (letters)", "no_name")
    sex = _text(data.get("sex"), "sex") or "U"
    if sex not in ("M", "F", "U"):
        raise BadRequest("sex is M, F or U", "bad_sex")
    try:
        nir = rules.clean_nir(_text(data.get("nir"), "nir", 30))
        phone = rules.normalise_phone(_text(data.get("phone"), "phone", 30))
    except ValueError as exc:
        raise BadRequest(str(exc), "bad_identity") from None
    email = _text(data.get("email"), "email", 254) or None
    if email is not None and "@" not in email:
        raise BadRequest("an e-mail address has an @", "bad_email")
    postcode = _text(data.get("postcode"), "postcode", 5)
    if postcode and not rules.department_of(postcode):
        raise FieldError(
            "postcode", "a postcode is five digits (75011, 20090, 97400)", "bad_postcode"
        )
    try:
        department = rules.clean_department(_text(data.get("department"), "department", 3))
    except ValueError as exc:
        raise FieldError("postcode", str(exc), "bad_department") from None
    department = department or rules.department_of(postcode)
    return PersonInput(
        last_name=last,
        first_name=first,
        birth_date=_date(data.get("birth_date"), "birth_date"),
        sex=sex,
        nir=nir,
        phone=phone,
        email=email,
        address=_text(data.get("address"), "address", 300),
        postcode=postcode,
        department=department,
    )


def case_input_of(data: Any, exposures: list[tuple[str, str, date]]) -> CaseInput:
    """A patient-zero record from a JSON object or a form."""
    consent = data.get("consent_disclose")
    return CaseInput(
        person=person_of(data),
        diagnosis_date=_date(data.get("diagnosis_date"), "diagnosis_date", True) or date.min,
        onset_date=_date(data.get("onset_date"), "onset_date"),
        sampled_date=_date(data.get("sampled_date"), "sampled_date"),
        consent_disclose=consent in (True, "on", "yes", "true"),
        exposures=exposures,
    )


def contact_input_of(data: Any) -> ContactInput:
    """A contact from a JSON object or a form."""
    kind = _text(data.get("kind"), "kind") or "contact"
    try:
        contact_kind = ContactKind(kind)
    except ValueError:
        raise BadRequest("kind is contact or co_exposed", "bad_kind") from None
    return ContactInput(
        person=person_of(data),
        last_contact=_date(data.get("last_contact"), "last_contact", True) or date.min,
        relation=_text(data.get("relation"), "relation") or "other",
        kind=contact_kind,
        household=data.get("household") in (True, "on", "yes", "true"),
        doctor_will_call=data.get("doctor_will_call") in (True, "on", "yes", "true"),
    )


# --- JSON --------------------------------------------------------------------------------------
def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def person_json(person: Any) -> dict[str, object] | None:
    """A person's identity and contact details (None when the reader sees no names)."""
    if person is None:
        return None
    return {
        "id": person.id,
        "last_name": person.last_name,
        "first_name": person.first_name,
        "birth_date": _iso(person.birth_date),
        "sex": person.sex,
        "nir": person.nir,
        "phone": person.phone,
        "email": person.email,
        "postcode": person.postcode,
        "department": person.department,
        "purged": person.purged_at is not None,
    }


def _prescription_json(p: Any) -> dict[str, object]:
    return {
        "kind": p.kind.value,
        "code": rules.show_code(p.code),
        "issued_at": _iso(p.issued_at),
        "consumed_at": _iso(p.consumed_at),
    }


def contact_json(c: ContactView) -> dict[str, object]:
    """A contact with its prescriptions and calls."""
    link = c.link
    return {
        "id": link.id,
        "kind": link.kind.value,
        "relation": link.relation,
        "household": link.household,
        "last_contact": _iso(link.last_contact),
        "isolation_until": _iso(link.isolation_until),
        "test_on": _iso(link.test_on),
        "notified_at": _iso(link.notified_at),
        "channel": link.channel,
        "person": person_json(c.person),
        "other_cases": c.other_cases,
        "prescriptions": [_prescription_json(p) for p in c.prescriptions],
        "calls": [{"at": _iso(k.at), "outcome": k.outcome.value} for k in c.calls],
    }


def case_json(case: Any) -> dict[str, object]:
    """A case's own fields."""
    return {
        "id": case.id,
        "record": case.record,
        "level": int(case.level),
        "status": case.status.value,
        "opened_by": case.opened_by.value,
        "diagnosis_date": _iso(case.diagnosis_date),
        "onset_date": _iso(case.onset_date),
        "sampled_date": _iso(case.sampled_date),
        "consent_disclose": case.consent_disclose,
        "department": case.department,
        "opened_at": _iso(case.opened_at),
        "sla_due_at": _iso(case.sla_due_at),
        "result_withdrawn": case.result_withdrawn,
        "assigned_to": case.assigned_to,
    }


def view_json(view: CaseView) -> dict[str, object]:
    """A case with its person, settings and contacts."""
    return {
        **case_json(view.case),
        "overdue": view.overdue,
        "person": person_json(view.person),
        "exposures": [
            {"kind": e.kind, "place": e.place, "day": _iso(e.day)} for e in view.exposures
        ],
        "contacts": [contact_json(c) for c in view.contacts],
    }


def item_json(item: QueueItem) -> dict[str, object]:
    """A line of a queue."""
    return {
        **case_json(item.case),
        "overdue": item.overdue,
        "person": person_json(item.person),
        "contacts": item.contacts,
        "to_notify": item.to_notify,
    }


def _exposures_of(body: dict[str, Any]) -> list[tuple[str, str, date]]:
    raw = body.get("exposures") or []
    if not isinstance(raw, list) or len(raw) > 20:
        raise BadRequest("exposures is a list of at most 20 settings", "bad_exposure")
    found = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest("an exposure is {kind, place, day}", "bad_exposure")
        found.append(
            (
                _text(item.get("kind"), "kind"),
                _text(item.get("place"), "place", 200),
                _date(item.get("day"), "day", True) or date.min,
            )
        )
    return found


CASE_FIELDS = PERSON_OPTIONAL | {
    "onset_date",
    "sampled_date",
    "consent_disclose",
    "exposures",
}


async def api_open_case(request: web.Request) -> web.Response:
    """POST a patient-zero record: 201 with the case."""
    access = await _caller(request, frozenset({DOCTOR, *CPAM, ARS_AGENT}))
    body = await read_json(request, PERSON_FIELDS | {"diagnosis_date"}, CASE_FIELDS)
    case = await _service(request).open_case(access, case_input_of(body, _exposures_of(body)))
    return json_response(case_json(case), 201)


async def api_queue(request: web.Request) -> web.Response:
    """GET: the caller's work queue, overdue first."""
    access = await _caller(request, CASE_ROLES)
    found = await _service(request).queue_page(
        access, request.query.get("closed") == "1", _page(request),
        mine=request.query.get("mine") == "1",
    )  # fmt: skip
    return json_response(
        {"cases": [item_json(i) for i in found.items], "page": found.page,
         "next": found.next_page}
    )  # fmt: skip


async def api_case(request: web.Request) -> web.Response:
    """GET a case with its contacts."""
    access = await _caller(request, CASE_ROLES)
    return json_response(
        view_json(await _service(request).case_view(access, _int(request, "case")))
    )


async def api_reveal(request: web.Request) -> web.Response:
    """POST {"reason": "..."}: a level-3 agent's one read of a case with its names (the
    reason kept in the audit log)."""
    access = await _caller(request, CASE_ROLES)
    body = await read_json(request, frozenset({"reason"}))
    if not isinstance(body["reason"], str):
        raise BadRequest("reason must be a string", "bad_reason")
    view = await _service(request).case_view(access, _int(request, "case"), body["reason"])
    return json_response(view_json(view))


async def api_add_contact(request: web.Request) -> web.Response:
    """POST a contact: 201 with its prescriptions."""
    access = await _caller(request, CASE_ROLES)
    body = await read_json(
        request,
        PERSON_FIELDS | {"last_contact"},
        PERSON_OPTIONAL | {"relation", "kind", "household", "doctor_will_call"},
    )
    added = await _service(request).add_contact(
        access, _int(request, "case"), contact_input_of(body)
    )
    return json_response(contact_json(added), 201)


async def api_status(request: web.Request) -> web.Response:
    """POST {"status": "validated"|"closed"}."""
    access = await _caller(request, CASE_ROLES)
    body = await read_json(request, frozenset({"status"}))
    try:
        target = Status(body["status"])
    except ValueError:
        raise BadRequest("status is validated or closed", "bad_status") from None
    case = await _service(request).transition(access, _int(request, "case"), target)
    return json_response(case_json(case))


async def api_level(request: web.Request) -> web.Response:
    """POST {"level": 2|3}: hand the case over."""
    access = await _caller(request, CASE_ROLES)
    body = await read_json(request, frozenset({"level"}))
    try:
        target = Level(body["level"])
    except (ValueError, TypeError):
        raise BadRequest("level is 2 or 3", "bad_level") from None
    case = await _service(request).raise_level(access, _int(request, "case"), target)
    return json_response(case_json(case))


async def api_assignment(request: web.Request) -> web.Response:
    """POST {"action": "take"|"release"}: the case into or out of the caller's task list."""
    access = await _caller(request, CASE_ROLES)
    body = await read_json(request, frozenset({"action"}))
    if body["action"] not in ("take", "release"):
        raise BadRequest("action is take or release", "bad_action")
    case = await _service(request).assign(access, _int(request, "case"), body["action"] == "take")
    return json_response(case_json(case))


async def api_notify(request: web.Request) -> web.Response:
    """POST: message every contact not yet notified."""
    access = await _caller(request, CASE_ROLES)
    sent = await _service(request).notify_contacts(access, _int(request, "case"))
    return json_response({"notified": sent})


async def api_call(request: web.Request) -> web.Response:
    """POST {"outcome": ...}: a call's outcome."""
    access = await _caller(request, CASE_ROLES)
    body = await read_json(request, frozenset({"outcome"}))
    try:
        outcome = Outcome(body["outcome"])
    except ValueError:
        names = ", ".join(o.value for o in Outcome)
        raise BadRequest(f"outcome is one of {names}", "bad_outcome") from None
    call = await _service(request).record_call(access, _int(request, "contact"), outcome)
    return json_response({"id": call.id, "at": _iso(call.at), "outcome": call.outcome.value}, 201)


async def api_search(request: web.Request) -> web.Response:
    """GET ?q=name, NIR, phone or record number."""
    access = await _caller(request, CASE_ROLES)
    items = await _service(request).search(access, request.query.get("q", ""))
    return json_response({"cases": [item_json(i) for i in items]})


async def api_clusters(request: web.Request) -> web.Response:
    """GET: settings shared by several recent cases."""
    access = await _caller(request, frozenset({*CPAM, ARS_AGENT}))
    found = await _service(request).clusters(access)
    return json_response(
        {
            "clusters": [
                {
                    "setting": c.setting,
                    "records": [rules.record_number(i) for i in c.case_ids],
                    "first": _iso(c.first),
                    "last": _iso(c.last),
                }
                for c in found
            ]
        }
    )


def check_json(check: PrescriptionCheck) -> dict[str, object]:
    """What a pharmacist or a lab reads of a code."""
    return {
        **_prescription_json(check.prescription),
        "used": check.prescription.consumed_at is not None,
        "last_name": check.last_name,
        "first_name": check.first_name,
        "birth_date": _iso(check.birth_date),
        "may_consume": check.may_consume,
    }


async def api_check(request: web.Request) -> web.Response:
    """GET a prescription by code."""
    access = await _caller(request, CHECK_ROLES)
    check = await _service(request).check_prescription(access, request.match_info["code"])
    return json_response(check_json(check))


async def api_consume(request: web.Request) -> web.Response:
    """POST: mark a prescription used (409 when it already was)."""
    access = await _caller(request, CHECK_ROLES)
    used = await _service(request).consume_prescription(access, request.match_info["code"])
    return json_response({**_prescription_json(used), "used": True})


async def api_export(request: web.Request) -> web.Response:
    """GET the pseudonymised export (CSV) for Santé publique France."""
    access = await _caller(request, EXPORT_ROLES)
    text = await _service(request).export_pseudonymised(access)
    return web.Response(
        body=text.encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="contact-covid-pseudo.csv"'},
    )


# --- pages -------------------------------------------------------------------------------------
def _t(request: web.Request, message: str) -> str:
    pages = pages_of(request)
    return pages.gettext(pages.language(request), message)


async def _user_access(request: web.Request, roles: frozenset[str]) -> Access:
    user = await require_user(request, roles)
    return Access(user.username, user.role, user.scope)


def _context(**extra: Any) -> dict[str, Any]:
    return {
        "prefix": PREFIX,
        "show_code": rules.show_code,
        "record_number": rules.record_number,
        "relations": [(r, RELATION_LABELS[r]) for r in RELATIONS],
        "outcomes": [o.value for o in Outcome],
        "kinds": PrescriptionKind,
        "settings_kinds": rules.SETTING_KINDS,
        "field": None,
        **extra,
    }


async def page_home(request: web.Request) -> web.StreamResponse:
    """Where each role starts: case roles on their queue, labs and pharmacies on the check."""
    user = await require_user(request)
    if user.role in CASE_ROLES:
        return see_other(f"{PREFIX}/cases")
    if user.role in CHECK_ROLES:
        return see_other(f"{PREFIX}/prescriptions")
    return await render(request, "contact/other.html", **_context(role=user.role))


async def page_cases(request: web.Request) -> web.StreamResponse:
    """The queue (overdue first) and the search."""
    access = await _user_access(request, CASE_ROLES)
    service = _service(request)
    query = request.query.get("q", "").strip()
    mine = request.query.get("mine") == "1" and access.role != DOCTOR
    error = None
    items: list[QueueItem] = []
    page, next_page = 1, None
    if query:
        try:
            items = await service.search(access, query)
        except HttpError as exc:
            error = exc.message
    else:
        found = await service.queue_page(access, page=_page(request), mine=mine)
        items, page, next_page = found.items, found.page, found.next_page
    return await render(
        request,
        "contact/cases.html",
        422 if error else 200,
        **_context(items=items, query=query, error=error, access=access, page=page,
                   next_page=next_page, mine=mine),
    )  # fmt: skip


async def page_new_case(request: web.Request) -> web.StreamResponse:
    """The patient-zero form."""
    await _user_access(request, frozenset({DOCTOR, *CPAM}))
    return await render(request, "contact/new_case.html", **_context(form={}, error=None))


async def page_create_case(request: web.Request) -> web.StreamResponse:
    """POST the patient-zero form."""
    access = await _user_access(request, frozenset({DOCTOR, *CPAM}))
    form = await request.post()
    try:
        exposures = []
        if str(form.get("exposure_kind", "")) and str(form.get("exposure_place", "")).strip():
            exposures.append(
                (
                    str(form["exposure_kind"]),
                    str(form["exposure_place"]),
                    _date(form.get("exposure_day"), "exposure_day", True) or date.min,
                )
            )
        case = await _service(request).open_case(access, case_input_of(form, exposures))
    except HttpError as exc:
        return await render(
            request, "contact/new_case.html", exc.status,
            **_context(form=form, error=exc.message, field=getattr(exc, "field", None)),
        )  # fmt: skip
    await flash(
        request, _t(request, "Case opened: {record}.").format(record=case.record), "success"
    )
    return see_other(f"{PREFIX}/cases/{case.id}")


async def _case_page(
    request: web.Request,
    access: Access,
    case_id: int,
    status: int = 200,
    reveal: str | None = None,
    **extra: Any,
) -> web.Response:
    view = await _service(request).case_view(access, case_id, reveal)
    context = _context(view=view, access=access, editable=access.may_edit(view.case),
                       form={}, error=None)  # fmt: skip
    context.update(extra)
    return await render(request, "contact/case.html", status, **context)


async def page_case(request: web.Request) -> web.StreamResponse:
    """A case with its contacts and the actions of its level."""
    access = await _user_access(request, CASE_ROLES)
    return await _case_page(request, access, _int(request, "case"))


async def page_reveal(request: web.Request) -> web.StreamResponse:
    """POST the reason of a level-3 agent who needs the names: the case page, this once, with
    them (nothing remembered; the reason is in the audit log)."""
    access = await _user_access(request, CASE_ROLES)
    case_id = _int(request, "case")
    form = await request.post()
    try:
        return await _case_page(request, access, case_id, reveal=str(form.get("reason", "")))
    except HttpError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _case_page(request, access, case_id, exc.status, form=form,
                                error=exc.message, field=getattr(exc, "field", None))  # fmt: skip


async def page_add_contact(request: web.Request) -> web.StreamResponse:
    """POST the contact form of a case's page."""
    access = await _user_access(request, CASE_ROLES)
    case_id = _int(request, "case")
    form = await request.post()
    try:
        added = await _service(request).add_contact(access, case_id, contact_input_of(form))
    except HttpError as exc:
        if exc.status in (401, 403, 404):
            raise
        return await _case_page(request, access, case_id, exc.status, form=form,
                                error=exc.message, field=getattr(exc, "field", None))  # fmt: skip
    message = _t(request, "Contact added; prescriptions issued.")
    if added.other_cases:
        message += " " + _t(request, "This person is already a contact of another case.")
    await flash(request, message, "success")
    return see_other(f"{PREFIX}/cases/{case_id}")


async def page_case_action(request: web.Request) -> web.StreamResponse:
    """POST a case action: validate, close, hand to level 2 or 3, notify the contacts."""
    access = await _user_access(request, CASE_ROLES)
    case_id = _int(request, "case")
    form = await request.post()
    action = str(form.get("action", ""))
    service = _service(request)
    try:
        if action == "validate":
            await service.transition(access, case_id, Status.VALIDATED)
            message = _t(request, "Case validated.")
        elif action == "close":
            await service.transition(access, case_id, Status.CLOSED)
            message = _t(request, "Case closed.")
        elif action in ("level2", "level3"):
            await service.raise_level(access, case_id, Level(int(action[-1])))
            message = _t(request, "Case handed over.")
        elif action == "notify":
            sent = await service.notify_contacts(access, case_id)
            message = _t(request, "{n} contact(s) notified.").format(n=sent)
        elif action in ("take", "release"):
            await service.assign(access, case_id, action == "take")
            if action == "take":
                message = _t(request, "Case taken.")
            else:
                message = _t(request, "Case released.")
        else:
            raise BadRequest("unknown action")
    except HttpError as exc:
        if exc.status in (401, 404):
            raise
        await flash(request, _t(request, exc.message), "error")
        return see_other(f"{PREFIX}/cases/{case_id}")
    await flash(request, message, "success")
    if action in ("level2", "level3") and access.role == DOCTOR:
        return see_other(f"{PREFIX}/cases")
    return see_other(f"{PREFIX}/cases/{case_id}")


async def page_contact(request: web.Request) -> web.StreamResponse:
    """The call screen: who to call, what to tell them, the outcome."""
    access = await _user_access(request, CASE_ROLES)
    view, contact = await _service(request).contact_view(access, _int(request, "contact"))
    return await render(
        request,
        "contact/contact.html",
        **_context(view=view, contact=contact, access=access, editable=access.may_edit(view.case)),
    )


async def page_call(request: web.Request) -> web.StreamResponse:
    """POST a call's outcome."""
    access = await _user_access(request, CASE_ROLES)
    link_id = _int(request, "contact")
    form = await request.post()
    try:
        outcome = Outcome(str(form.get("outcome", "")))
    except ValueError:
        raise BadRequest("choose how the call ended") from None
    await _service(request).record_call(access, link_id, outcome)
    await flash(request, _t(request, "Call recorded."), "success")
    return see_other(f"{PREFIX}/contacts/{link_id}")


async def page_clusters(request: web.Request) -> web.StreamResponse:
    """Settings shared by several recent cases."""
    access = await _user_access(request, frozenset({*CPAM, ARS_AGENT}))
    found = await _service(request).clusters(access)
    return await render(request, "contact/clusters.html", **_context(clusters=found))


async def page_prescriptions(request: web.Request) -> web.StreamResponse:
    """The check page: type a code, see what it prescribes and for whom."""
    access = await _user_access(request, CHECK_ROLES)
    typed = request.query.get("code", "").strip()
    check, error, status = None, None, 200
    if typed:
        try:
            check = await _service(request).check_prescription(access, typed)
        except HttpError as exc:
            error, status = exc.message, exc.status
    return await render(
        request, "contact/prescriptions.html", status,
        **_context(check=check, typed=typed, error=error),
    )  # fmt: skip


async def page_consume(request: web.Request) -> web.StreamResponse:
    """POST: mark the checked code used."""
    access = await _user_access(request, CHECK_ROLES)
    form = await request.post()
    typed = str(form.get("code", ""))
    try:
        await _service(request).consume_prescription(access, typed)
    except HttpError as exc:
        if exc.status in (401,):
            raise
        await flash(request, _t(request, exc.message), "error")
        return see_other(f"{PREFIX}/prescriptions?code={rules.normalise_code(typed) or ''}")
    await flash(request, _t(request, "Marked as delivered."), "success")
    return see_other(f"{PREFIX}/prescriptions?code={rules.normalise_code(typed) or ''}")
