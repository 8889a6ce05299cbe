"""HTTP adapters of the bed service, mounted under ``/beds``: thin handlers that parse, call
``BedService`` and format.

Machines authenticate with an API key (``Authorization: Bearer beds_...``), people with their
session (password and TOTP, ``kit.auth``); both become an ``Access`` (role, scope).

JSON API (``/beds/api/v1``): ``GET tension?territory=`` (the SAMU board's contract),
``GET dashboard?territory=``, ``GET establishments/{finess}/units``,
``POST units/{id}/counts``, ``GET units/{id}/history``, ``POST updates`` (a CSV file),
``GET nearest?kind=&postcode=|lat=&lon=``, ``GET critical-care?territory=`` (per
establishment, for the drug service's allocation key).
FHIR (``/beds/fhir``): ``GET Location?address-postalcode=&identifier=&_lastUpdated=``,
``GET Location/{id}``, ``PUT Location/{id}``. Refusals there are ``OperationOutcome``.
Pages: ``/beds/`` (by role), ``/beds/establishments/{finess}`` (the staff's one-screen form
and file upload), ``/beds/dashboard``, ``/beds/find``, ``/beds/bulletin.csv|pdf``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from beds import bulletin, fhir
from beds.access import DASHBOARD_ROLES, FIND_ROLES, PEOPLE_ROLES, STAFF, Access
from beds.model import BedKind, Counts, Source
from beds.service import BedService, Dashboard, iso_utc, tension_json
from beds.territory import FRANCE, parse_territory
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
    see_other,
)
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from kit.web import add_page, flash, pages_of, render

PREFIX = "/beds"
API = "/api/v1"
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_FILE = 2 * 1024 * 1024
COUNT_FIELDS = ("installed", "surge", "occupied", "available", "covid")

SERVICE = web.AppKey("beds_service", BedService)


def install(app: web.Application, service: BedService, metrics: HttpMetrics) -> None:
    """Add the service's routes to ``app`` (the application mounted at ``/beds``)."""
    app[SERVICE] = service
    api: list[tuple[str, str, Handler]] = [
        ("GET", f"{API}/tension", api_tension),
        ("GET", f"{API}/dashboard", api_dashboard),
        ("GET", f"{API}/establishments/{{finess}}/units", api_units),
        ("POST", f"{API}/units/{{unit}}/counts", api_update),
        ("GET", f"{API}/units/{{unit}}/history", api_history),
        ("POST", f"{API}/updates", api_file),
        ("GET", f"{API}/nearest", api_nearest),
        ("GET", f"{API}/critical-care", api_critical_care),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    ]
    for method, path, handler in api:
        add_route(app, method, path, handler, metrics)
    resources: list[tuple[str, str, Handler]] = [
        ("GET", "/fhir/Location", fhir_search),
        ("GET", "/fhir/Location/{unit}", fhir_read),
        ("PUT", "/fhir/Location/{unit}", fhir_update),
    ]
    for method, path, handler in resources:
        add_route(app, method, path, handler, metrics, render=_outcome)
    pages: list[tuple[str, str, Handler]] = [
        ("GET", "/", page_home),
        ("GET", "/establishments/{finess}", page_establishment),
        ("POST", "/establishments/{finess}", page_save),
        ("POST", "/establishments/{finess}/file", page_upload),
        ("GET", "/dashboard", page_dashboard),
        ("GET", "/find", page_find),
        ("GET", "/bulletin.csv", page_bulletin_csv),
        ("GET", "/bulletin.pdf", page_bulletin_pdf),
    ]
    for method, path, handler in pages:
        add_page(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics, in the registry of ``app``."""
    return HttpMetrics("beds", registry_of(app))


def _service(request: web.Request) -> BedService:
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
    """GET /beds/health: 200 when the database answers, 503 otherwise."""
    ok = await _service(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


def _int(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None


def _counts_of(body: dict[str, Any]) -> Counts:
    values = [body[f] for f in COUNT_FIELDS]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise BadRequest("counts must be whole numbers", "bad_counts")
    return Counts(*values)


def _time_of(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("updated_at must be an ISO 8601 string")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest("updated_at must be ISO 8601") from None


def state_json(service: BedService, s: Any) -> dict[str, object]:
    """A unit with its counts, as the JSON API gives it."""
    return {
        "id": s.unit.id,
        "finess": s.unit.finess,
        "code": s.unit.code,
        "name": s.unit.name,
        "kind": s.unit.kind.value,
        "initial": s.unit.initial,
        "counts": None if s.counts is None else {f: getattr(s.counts, f) for f in COUNT_FIELDS},
        "updated_at": None if s.updated_at is None else iso_utc(s.updated_at),
        "source": s.source,
        "stale": service.is_stale(s),
    }


def _update_json(update: Any) -> dict[str, object]:
    return {
        "id": update.id,
        "unit": update.unit_id,
        "at": iso_utc(update.at),
        "source": update.source,
        "actor": update.actor,
        **{f: getattr(update.counts, f) for f in COUNT_FIELDS},
    }


# --- JSON API ----------------------------------------------------------------------------------
async def api_tension(request: web.Request) -> web.Response:
    """GET ?territory=fr|reg:NN|dep:NN: the tension figures (the SAMU board's contract)."""
    access, _ = await _caller(request, DASHBOARD_ROLES)
    territory = request.query.get("territory", FRANCE)
    return json_response(await _service(request).tension(access, territory))


def dashboard_json(board: Dashboard) -> dict[str, object]:
    """A dashboard as JSON: the total, each part, the 7-day series."""
    return {
        **tension_json(board.territory, board.total, board.as_of),
        "name": board.territory.name,
        "days": board.days,
        "series": board.series,
        "parts": [
            {
                **tension_json(parse_territory(_part_code(board, r.code)), r.tension, board.as_of),
                "name": r.name,
                "series": r.series,
                "occupancy": r.tension.occupancy,
            }
            for r in board.rows
        ],
    }


def _part_code(board: Dashboard, code: str) -> str:
    return f"reg:{code}" if board.territory.level == "fr" else f"dep:{code}"


async def api_dashboard(request: web.Request) -> web.Response:
    """GET ?territory=: the figures by part with 7 days of tension rates."""
    access, _ = await _caller(request, DASHBOARD_ROLES)
    board = await _service(request).dashboard(access, request.query.get("territory", FRANCE))
    return json_response(dashboard_json(board))


async def api_units(request: web.Request) -> web.Response:
    """GET: an establishment's units and their latest counts."""
    access, _ = await _caller(request)
    service = _service(request)
    states = await service.units_of(access, request.match_info["finess"])
    return json_response({"units": [state_json(service, s) for s in states]})


async def api_update(request: web.Request) -> web.Response:
    """POST {installed, surge, occupied, available, covid, updated_at?}: a unit's new counts."""
    access, actor = await _caller(request)
    body = await read_json(request, frozenset(COUNT_FIELDS), frozenset({"updated_at"}))
    update = await _service(request).update(
        access,
        actor,
        _int(request, "unit"),
        _counts_of(body),
        Source.API,
        _time_of(body.get("updated_at")),
    )
    return json_response({"success": True, "update": _update_json(update)})


async def api_history(request: web.Request) -> web.Response:
    """GET ?limit=: a unit's updates, newest first."""
    access, _ = await _caller(request)
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise BadRequest("limit must be a number") from None
    updates = await _service(request).history(access, _int(request, "unit"), limit)
    return json_response({"updates": [_update_json(u) for u in updates]})


async def api_file(request: web.Request) -> web.Response:
    """POST a CSV file (text/csv): every line recorded, or none."""
    access, actor = await _caller(request)
    text = _decode(await read_body(request, MAX_FILE))
    recorded = await _service(request).import_file(access, actor, text)
    return json_response({"success": True, "recorded": len(recorded)})


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


async def _origin(request: web.Request) -> tuple[float, float]:
    query = request.query
    if query.get("postcode"):
        return await _service(request).origin_of_postcode(query["postcode"].strip())
    try:
        return float(query["lat"]), float(query["lon"])
    except (KeyError, ValueError):
        raise BadRequest("give a postcode, or lat and lon", "bad_origin") from None


def _kind(value: str | None) -> BedKind:
    try:
        return BedKind(value or "rea")
    except ValueError:
        raise BadRequest("kind must be rea, si or sc", "bad_kind") from None


async def api_nearest(request: web.Request) -> web.Response:
    """GET ?kind=rea&postcode=75013 (or lat=&lon=)&limit=5: the nearest free beds."""
    access, _ = await _caller(request, FIND_ROLES)
    lat, lon = await _origin(request)
    try:
        limit = int(request.query.get("limit", "5"))
    except ValueError:
        raise BadRequest("limit must be a number") from None
    found = await _service(request).nearest(
        access, _kind(request.query.get("kind")), lat, lon, limit
    )
    service = _service(request)
    return json_response(
        {
            "origin": {"lat": lat, "lon": lon},
            "distance": "straight line (great circle), km",
            "units": [
                {
                    **state_json(service, n.state),
                    "km": n.km,
                    "establishment": n.state.establishment.name,
                    "postcode": n.state.establishment.postcode,
                }
                for n in found
            ],
        }
    )


async def api_critical_care(request: web.Request) -> web.Response:
    """GET ?territory=: COVID and other patients in critical care per establishment (the drug
    service's allocation inputs)."""
    access, _ = await _caller(request, DASHBOARD_ROLES)
    rows = await _service(request).critical_care(access, request.query.get("territory", FRANCE))
    return json_response({"establishments": [r.as_json() for r in rows]})


# --- FHIR --------------------------------------------------------------------------------------
FHIR_JSON = "application/fhir+json"


def _fhir_response(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type=FHIR_JSON)


def _outcome(request: web.Request, error: HttpError) -> web.StreamResponse:
    code = {401: "login", 403: "forbidden", 404: "not-found", 422: "business-rule"}.get(
        error.status, "invalid" if error.status < 500 else "exception"
    )
    response = _fhir_response(fhir.operation_outcome(error.message, code), error.status)
    response.headers.update(error.headers)
    return response


async def fhir_search(request: web.Request) -> web.Response:
    """GET Location?address-postalcode=35,22&identifier=..&_lastUpdated=ge...: a searchset."""
    access, _ = await _caller(request)
    query = request.query
    unknown = set(query) - {"address-postalcode", "identifier", "_lastUpdated", "_format"}
    if unknown:
        raise BadRequest(f"unsupported search parameters: {', '.join(sorted(unknown))}")
    postcodes = _list(query.get("address-postalcode"))
    if postcodes is not None and not all(p.isdigit() and 1 <= len(p) <= 5 for p in postcodes):
        raise BadRequest("address-postalcode takes digits (a postcode or its prefix)")
    identifiers = _list(query.get("identifier"))
    if identifiers is not None:
        identifiers = [i.split("|", 1)[-1] for i in identifiers]
    since = None
    if "_lastUpdated" in query:
        try:
            since = fhir.parse_last_updated(query["_lastUpdated"])
        except fhir.FhirInputError as exc:
            raise BadRequest(str(exc)) from None
    states = await _service(request).search(
        access, postcodes=postcodes, identifiers=identifiers, since=since
    )
    base = f"{request.scheme}://{request.host}{PREFIX}/fhir"
    return _fhir_response(fhir.searchset(states, base))


def _list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


async def fhir_read(request: web.Request) -> web.Response:
    """GET Location/{id}: a unit with its capacity records."""
    access, _ = await _caller(request)
    state = await _service(request).unit_state(access, _int(request, "unit"))
    return _fhir_response(fhir.location_json(state))


async def fhir_update(request: web.Request) -> web.Response:
    """PUT Location/{id} with the capacity extension: the unit's new counts."""
    access, actor = await _caller(request)
    unit_id = _int(request, "unit")
    try:
        counts, at = fhir.parse_capacity(await read_body(request, 64 * 1024))
    except fhir.FhirInputError as exc:
        raise BadRequest(str(exc), "invalid") from None
    service = _service(request)
    await service.update(access, actor, unit_id, counts, Source.FHIR, at)
    state = await service.unit_state(access, unit_id)
    return _fhir_response(fhir.location_json(state))


# --- pages -------------------------------------------------------------------------------------
async def page_home(request: web.Request) -> web.StreamResponse:
    """Where each role starts: staff on their establishment, others on their dashboard."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    if user.role == STAFF and access.finess:
        return see_other(f"{PREFIX}/establishments/{access.finess}")
    territory = access.territory
    return see_other(f"{PREFIX}/dashboard?territory={territory.code if territory else FRANCE}")


async def _establishment_page(
    request: web.Request, access: Access, finess: str, status: int = 200, **extra: Any
) -> web.Response:
    service = _service(request)
    place = await service.establishment(access, finess)
    states = await service.store.states(finess=finess)
    rows = [
        {
            "state": s,
            "stale": service.is_stale(s),
            "counts": s.counts or Counts(s.unit.initial, 0, 0, s.unit.initial, 0),
        }
        for s in states
    ]
    context: dict[str, Any] = {
        "place": place,
        "rows": rows,
        "editable": access.may_edit(finess),
        "prefix": PREFIX,
        "errors": {},
        "stale_minutes": round(service.stale_after / 60),
    }
    context.update(extra)
    return await render(request, "beds/establishment.html", status, **context)


async def page_establishment(request: web.Request) -> web.StreamResponse:
    """The one-screen form: every unit of the establishment, − and + beside each count."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    finess = request.match_info["finess"]
    response = await _establishment_page(request, access, finess)
    await _service(request).store.audit.append(
        _service(request).store.db,
        actor=user.actor,
        role=user.role,
        action="read",
        object_type="establishment",
        object_id=finess,
    )
    return response


async def page_save(request: web.Request) -> web.StreamResponse:
    """POST the form: the units whose counts changed are updated (one history entry each)."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    finess = request.match_info["finess"]
    service = _service(request)
    form = await request.post()
    states = await service.units_of(access, finess)
    changed, errors = [], {}
    for s in states:
        try:
            counts = Counts(
                *(int(str(form.get(f"u{s.unit.id}-{f}", "")).strip()) for f in COUNT_FIELDS)
            )
        except ValueError:
            errors[s.unit.id] = [_t(request, "Counts must be whole numbers.")]
            continue
        problems = counts.problems()
        if problems:  # the rules' English sentences, in the reader's language
            errors[s.unit.id] = [_t(request, problem) for problem in problems]
        elif counts != s.counts:
            changed.append((s.unit.id, counts))
    if errors:
        return await _establishment_page(request, access, finess, 422, errors=errors, form=form)
    for unit_id, counts in changed:
        await service.update(access, user.as_actor(), unit_id, counts, Source.FORM)
    message = _t(request, "Saved.") if changed else _t(request, "Nothing changed.")
    await flash(request, message, "success")
    return see_other(f"{PREFIX}/establishments/{finess}")


async def page_upload(request: web.Request) -> web.StreamResponse:
    """POST a file of counts (CSV) from the establishment's page."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    finess = request.match_info["finess"]
    form = await request.post()
    upload = form.get("file")
    data = upload.file.read(MAX_FILE + 1) if isinstance(upload, web.FileField) else b""
    try:
        if len(data) > MAX_FILE:
            raise BadRequest("the file is larger than 2 MB")
        recorded = await _service(request).import_file(access, user.as_actor(), _decode(data))
    except HttpError as exc:
        return await _establishment_page(
            request, access, finess, exc.status, file_error=exc.message
        )
    await flash(
        request, _t(request, "File recorded: {n} update(s).").format(n=len(recorded)), "success"
    )
    return see_other(f"{PREFIX}/establishments/{finess}")


def _t(request: web.Request, message: str) -> str:
    pages = pages_of(request)
    return pages.gettext(pages.language(request), message)


async def page_dashboard(request: web.Request) -> web.StreamResponse:
    """The tension of a territory: map, table and 7-day curves."""
    user = await require_user(request, DASHBOARD_ROLES)
    access = Access(user.role, user.scope)
    service = _service(request)
    default = access.territory.code if access.territory else FRANCE
    board = await service.dashboard(access, request.query.get("territory", default))
    from beds import charts

    return await render(
        request,
        "beds/dashboard.html",
        board=board,
        prefix=PREFIX,
        thresholds=service.thresholds,
        map_svg=charts.tension_map(board, service.thresholds, lambda m: _t(request, m)),
        curve_svg=charts.curve(
            board.days, board.series, service.thresholds, lambda m: _t(request, m)
        ),
        sparkline=charts.sparkline,
        level=service.thresholds.level,
        part_level="reg" if board.territory.level == "fr" else "dep",
    )


async def page_find(request: web.Request) -> web.StreamResponse:
    """The regulator's search: nearest free beds of a kind from a postcode or coordinates."""
    user = await require_user(request, FIND_ROLES)
    access = Access(user.role, user.scope)
    query = request.query
    results, error = None, None
    if "kind" in query:
        try:
            lat, lon = await _origin(request)
            results = await _service(request).nearest(
                access, _kind(query.get("kind")), lat, lon, 10
            )
        except HttpError as exc:
            error = exc.message
    return await render(
        request,
        "beds/find.html",
        kinds=list(BedKind),
        query=query,
        results=results,
        error=error,
        prefix=PREFIX,
        status=422 if error else 200,
    )


async def _bulletin(request: web.Request) -> bulletin.Bulletin:
    user = await require_user(request, DASHBOARD_ROLES)
    access = Access(user.role, user.scope)
    service = _service(request)
    board = await service.dashboard(access, FRANCE)
    by_dep = await service.dashboard(access, FRANCE, departement_parts=True)
    await service.store.audit.append(
        service.store.db,
        actor=user.actor,
        role=user.role,
        action="export",
        object_type="bulletin",
        object_id=board.as_of.date().isoformat(),
    )
    return bulletin.Bulletin(board, by_dep, service.thresholds)


async def page_bulletin_csv(request: web.Request) -> web.StreamResponse:
    """The daily national bulletin as CSV (France, regions, départements)."""
    report = await _bulletin(request)
    return web.Response(
        body=report.csv().encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report.filename}.csv"'},
    )


async def page_bulletin_pdf(request: web.Request) -> web.StreamResponse:
    """The daily national bulletin as PDF."""
    report = await _bulletin(request)
    return web.Response(
        body=report.pdf(),
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{report.filename}.pdf"'},
    )
