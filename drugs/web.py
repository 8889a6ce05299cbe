"""HTTP adapters of the drug service, mounted under ``/drugs``.

JSON API (``/drugs/api/v1``; an API key ``drugs_...`` or a signed-in person):
``GET stocks?finess=`` or ``?region=``, ``POST stocks`` {finess, drug, on_hand, daily_use},
``POST stocks/file?finess=`` (a pharmacy export, CSV), ``GET redeployment?region=&drug=``,
``POST allocations`` {drug, quota, formula?} (national staff). Pages: ``/drugs/`` (by role),
``/drugs/establishments/{finess}`` (the pharmacist's form and upload),
``/drugs/regions/{code}`` (the ARS's alerts and redeployment suggestions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from drugs import allocation
from drugs.catalogue import catalogue
from drugs.redeploy import Plan
from drugs.service import ARS, NATIONAL, PHARMACIST, Access, DrugService, Refusal, StockLine
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

PREFIX = "/drugs"
API = "/api/v1"
TEMPLATES = Path(__file__).resolve().parent / "templates"
SERVICE = web.AppKey("drugs_service", DrugService)
PEOPLE_ROLES = frozenset({PHARMACIST, ARS, NATIONAL})
FORMULAS: dict[str, allocation.Formula] = {
    "cover-shortfall": allocation.CoverShortfall(),
    "patient-share": allocation.PatientShare(),
}


def install(app: web.Application, service: DrugService, metrics: HttpMetrics) -> None:
    """Add the service's routes to ``app`` (mounted at ``/drugs``)."""
    app[SERVICE] = service
    api: list[tuple[str, str, Handler]] = [
        ("GET", f"{API}/stocks", api_stocks),
        ("POST", f"{API}/stocks", api_report),
        ("POST", f"{API}/stocks/file", api_file),
        ("GET", f"{API}/redeployment", api_redeployment),
        ("POST", f"{API}/allocations", api_allocate),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    ]
    for method, path, handler in api:
        add_route(app, method, path, handler, metrics)
    pages: list[tuple[str, str, Handler]] = [
        ("GET", "/", page_home),
        ("GET", "/establishments/{finess}", page_establishment),
        ("POST", "/establishments/{finess}", page_save),
        ("POST", "/establishments/{finess}/file", page_upload),
        ("GET", "/regions/{region}", page_region),
    ]
    for method, path, handler in pages:
        add_page(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The service's request metrics."""
    return HttpMetrics("drugs", registry_of(app))


def _service(request: web.Request) -> DrugService:
    return request.config_dict[SERVICE]


async def _caller(request: web.Request) -> tuple[Access, Actor]:
    if bearer_token(request) is not None:
        principal = await require_api_key(request, PEOPLE_ROLES)
        return Access(principal.role, principal.scope), principal.as_actor()
    user = await require_user(request, PEOPLE_ROLES)
    return Access(user.role, user.scope), user.as_actor()


async def health(request: web.Request) -> web.Response:
    """GET /drugs/health."""
    ok = await _service(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


def line_json(s: StockLine) -> dict[str, object]:
    """A stock line as JSON."""
    return {
        "finess": s.place.finess,
        "drug": s.drug.code,
        "label": s.drug.label,
        "on_hand": s.on_hand,
        "daily_use": s.daily_use,
        "days_of_cover": None if s.days is None else round(s.days, 1),
        "alert": s.alert.value,
        "reported_at": None if s.reported_at is None else s.reported_at.isoformat(),
    }


def plan_json(plan: Plan) -> dict[str, object]:
    """A redeployment plan as JSON."""
    return {
        "moves": [
            {"from": m.source, "to": m.destination, "units": m.units, "why": m.why}
            for m in plan.moves
        ],
        "unmet": plan.unmet,
        "objective": plan.objective,
    }


async def api_stocks(request: web.Request) -> web.Response:
    """GET ?finess= (one establishment) or ?region= (a region, alerts first)."""
    access, _ = await _caller(request)
    service = _service(request)
    if "finess" in request.query:
        lines = await service.stocks(access, request.query["finess"])
    elif "region" in request.query:
        lines = await service.region_stocks(access, request.query["region"])
    else:
        raise BadRequest("give finess or region")
    return json_response({"stocks": [line_json(s) for s in lines]})


async def api_report(request: web.Request) -> web.Response:
    """POST {finess, drug, on_hand, daily_use}: one drug's stock."""
    access, actor = await _caller(request)
    body = await read_json(request, frozenset({"finess", "drug", "on_hand", "daily_use"}))
    report_id = await _service(request).report(
        access, actor, str(body["finess"]), str(body["drug"]), body["on_hand"], body["daily_use"]
    )
    return json_response({"success": True, "report": report_id})


async def api_file(request: web.Request) -> web.Response:
    """POST ?finess=: a pharmacy software's CSV export."""
    access, actor = await _caller(request)
    data = await read_body(request, 1024 * 1024)
    count = await _service(request).import_export(
        access, actor, request.query.get("finess", ""), data.decode("utf-8-sig", errors="replace")
    )
    return json_response({"success": True, "drugs": count})


def _float(request: web.Request, name: str, default: float) -> float:
    try:
        return float(request.query.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be a number") from None


async def api_redeployment(request: web.Request) -> web.Response:
    """GET ?region=&drug=&target=14&keep=21: the optimal moves."""
    access, _ = await _caller(request)
    plan = await _service(request).redeployment(
        access,
        request.query.get("region", ""),
        request.query.get("drug", ""),
        _float(request, "target", 14.0),
        _float(request, "keep", 21.0),
    )
    return json_response(plan_json(plan))


async def api_allocate(request: web.Request) -> web.Response:
    """POST {drug, quota, formula?}: the week's split, with every step."""
    access, actor = await _caller(request)
    body = await read_json(request, frozenset({"drug", "quota"}), frozenset({"formula"}))
    formula = FORMULAS.get(str(body.get("formula", "cover-shortfall")))
    if formula is None:
        raise BadRequest(f"formula must be one of {', '.join(FORMULAS)}")
    result = await _service(request).allocate(
        access, actor, str(body["drug"]), body["quota"], formula
    )
    return json_response(
        {
            "quota": result.quota,
            "formula": formula.name,
            "regions": result.regions,
            "establishments": result.establishments,
            "steps": [{"title": t, "lines": lines} for t, lines in result.trace.steps],
        }
    )


# --- pages -------------------------------------------------------------------------------------
def _t(request: web.Request, message: str) -> str:
    pages = pages_of(request)
    return pages.gettext(pages.language(request), message)


async def page_home(request: web.Request) -> web.StreamResponse:
    """Pharmacists to their establishment, ARS to their region."""
    user = await require_user(request, PEOPLE_ROLES)
    if user.role == PHARMACIST and user.scope.startswith("finess:"):
        return see_other(f"{PREFIX}/establishments/{user.scope.removeprefix('finess:')}")
    if user.role == ARS and user.scope.startswith("reg:"):
        return see_other(f"{PREFIX}/regions/{user.scope.removeprefix('reg:')}")
    return see_other(f"{PREFIX}/regions/11")


async def _form(
    request: web.Request, access: Access, finess: str, status: int = 200, **extra: Any
) -> web.Response:
    lines = await _service(request).stocks(access, finess)
    context: dict[str, Any] = {
        "lines": lines,
        "place": lines[0].place if lines else None,
        "prefix": PREFIX,
        "error": None,
        "form": None,
    }
    context.update(extra)
    return await render(request, "drugs/establishment.html", status, **context)


def _say(request: web.Request, exc: HttpError) -> str:
    """A refusal of the service in the reader's language (its English message if the
    translations lack it)."""
    if isinstance(exc, Refusal):
        return _t(request, exc.template).format(**exc.values)
    return _t(request, exc.message)


async def page_establishment(request: web.Request) -> web.StreamResponse:
    """The pharmacist's form: stock and average daily use of every virtual drug."""
    user = await require_user(request, PEOPLE_ROLES)
    return await _form(request, Access(user.role, user.scope), request.match_info["finess"])


async def page_save(request: web.Request) -> web.StreamResponse:
    """POST the form: the drugs whose fields are filled are reported."""
    user = await require_user(request, PEOPLE_ROLES)
    access, finess = Access(user.role, user.scope), request.match_info["finess"]
    form = await request.post()
    lines = []
    try:
        for code in catalogue():
            stock = str(form.get(f"{code}-stock", "")).strip()
            use = str(form.get(f"{code}-use", "")).strip().replace(",", ".")
            if stock or use:
                lines.append((code, int(stock), float(use)))
        count = await _service(request).report_many(access, user.as_actor(), finess, lines, "form")
    except ValueError:
        error = _t(request, "Stock is a whole number and daily use a number.")
        return await _form(request, access, finess, 422, error=error, form=form)
    except HttpError as exc:
        if exc.status == 404:
            raise
        return await _form(request, access, finess, exc.status, error=_say(request, exc), form=form)
    await flash(request, _t(request, "Saved: {n} drug(s).").format(n=count), "success")
    return see_other(f"{PREFIX}/establishments/{finess}")


async def page_upload(request: web.Request) -> web.StreamResponse:
    """POST a pharmacy export from the establishment's page."""
    user = await require_user(request, PEOPLE_ROLES)
    access, finess = Access(user.role, user.scope), request.match_info["finess"]
    form = await request.post()
    upload = form.get("file")
    data = upload.file.read(1024 * 1024) if isinstance(upload, web.FileField) else b""
    try:
        count = await _service(request).import_export(
            access, user.as_actor(), finess, data.decode("utf-8-sig", errors="replace")
        )
    except HttpError as exc:
        if exc.status == 404:
            raise
        return await _form(request, access, finess, exc.status, error=_say(request, exc))
    await flash(request, _t(request, "Saved: {n} drug(s).").format(n=count), "success")
    return see_other(f"{PREFIX}/establishments/{finess}")


async def page_region(request: web.Request) -> web.StreamResponse:
    """The ARS's page: stocks with alerts first, and redeployment suggestions per drug."""
    user = await require_user(request, frozenset({ARS, NATIONAL}))
    access, region = Access(user.role, user.scope), request.match_info["region"]
    service = _service(request)
    lines = await service.region_stocks(access, region)
    plans = {}
    for code in sorted({line.drug.code for line in lines}):
        plan = await service.redeployment(access, region, code)
        if plan.moves or plan.unmet:
            plans[code] = plan
    return await render(
        request,
        "drugs/region.html",
        region=region,
        lines=lines,
        plans=plans,
        names={line.place.finess: line.place.name for line in lines},
        drugs=catalogue(),
        prefix=PREFIX,
    )
