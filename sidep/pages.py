"""SI-DEP's pages for people (two factors, ``kit.auth``), mounted under ``/sidep``:

- ``/``: what the signed-in person may do;
- ``/results``: the results search (agents, doctors, biologists of their lab, analysts who see
  pseudonyms only); every search audited;
- ``/antigen``: a pharmacist's or nurse's antigen test result, entered by hand, stored like a
  lab's message (same committer, events and notice);
- ``/results/{id}/notice.pdf``: the result notice of a positive (the tester or lab prints it).
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from aiohttp import web

from kit.auth.people import require_user
from kit.http import BadRequest, HttpError, NotFound, see_other
from kit.identity import is_valid_nir
from kit.metrics import HttpMetrics
from kit.web import NavLink, add_page, flash, pages_of, render
from sidep.access import FORM_ROLES, PEOPLE_ROLES, SEARCH_ROLES, Access
from sidep.dashboard import (
    SERIES,
    Dashboard,
    curve,
    departement_names,
    incidence_map,
    legend,
)
from sidep.mllp import StoreFailed
from sidep.model import LabResult, Method, Parsed, Patient, Result, Sex, SourceFormat, Status
from sidep.territory import regions
from sidep.web import COMMITTER, PREFIX, SERVICE

HERE = Path(__file__).resolve().parent
ANTIGEN_LOINC = "94558-4"
"""SARS-CoV-2 (COVID-19) Ag [Presence] in Respiratory specimen by Rapid immunoassay."""

DASHBOARD = web.AppKey("sidep_dashboard", Dashboard)

NAV = [
    NavLink(f"{PREFIX}/dashboard", "Indicators", PEOPLE_ROLES),
    NavLink(f"{PREFIX}/results", "Results", SEARCH_ROLES),
    NavLink(f"{PREFIX}/antigen", "Antigen test", FORM_ROLES),
]


def install_pages(app: web.Application, metrics: HttpMetrics) -> None:
    for method, path, handler in (
        ("GET", "/", home),
        ("GET", "/results", results_page),
        ("GET", "/results/{id}/notice.pdf", notice_pdf),
        ("GET", "/dashboard", dashboard_page),
        ("GET", "/antigen", antigen_page),
        ("POST", "/antigen", antigen_submit),
    ):
        add_page(app, method, path, handler, metrics)


async def home(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, PEOPLE_ROLES)
    return await render(request, "sidep/home.html", user_role=user.role, prefix=PREFIX)


async def dashboard_page(request: web.Request) -> web.StreamResponse:
    """The map of incidence by département and the curves of one territory."""
    user = await require_user(request, PEOPLE_ROLES)
    figures = await request.config_dict[DASHBOARD].figures(user.as_actor())
    zones = [("FR", "France")]
    zones += [(f"reg:{code}", name) for code, name in sorted(regions().items())]
    zones += [(code, f"{code} {name}") for code, name in sorted(departement_names().items())]
    zone = request.query.get("zone", "FR")
    if zone not in dict(zones):
        zone = "FR"
    series = figures.rates.get(zone, [])
    day = figures.last_day
    curves = []
    for i, (_name, label) in enumerate(SERIES):
        points = [(r[0], cast(float | None, r[i + 1])) for r in series]
        curves.append((label, curve(points, label), points[-1][1] if points else None))
    return await render(
        request,
        "sidep/dashboard.html",
        prefix=PREFIX,
        day=day,
        zone=zone,
        zones=zones,
        zone_name=dict(zones)[zone],
        map=incidence_map(figures, day, f"{PREFIX}/dashboard?zone={{dep}}"),
        legend=legend(),
        curves=curves,
    )


def _day(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest("dates are YYYY-MM-DD") from None


async def results_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, SEARCH_ROLES)
    access = Access(user.role, user.scope)
    q = request.query
    nir = q.get("nir", "").replace(" ", "")[:15]
    last = q.get("last_name", "").strip()[:100]
    searched = any(q.get(k) for k in ("nir", "last_name", "birth_date", "lab", "positive", "go"))
    rows: list[Any] | None = None
    error = None
    if searched:
        try:
            rows = await request.config_dict[SERVICE].results(
                access,
                user.as_actor(),
                nir=nir or None,
                last_name=last or None,
                birth_date=_day(q.get("birth_date", "")),
                lab=q.get("lab", "").strip()[:9] or None,
                positive_only=q.get("positive") == "1",
                limit=200,
                newest_first=True,
            )
        except HttpError as exc:
            if exc.status != 400:
                raise
            error, rows = exc.message, None
    return await render(
        request,
        "sidep/results.html",
        prefix=PREFIX,
        query=q,
        rows=rows,
        error=error,
        identifying=access.identifying,
        may_print=user.role in FORM_ROLES,
    )


async def notice_pdf(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, FORM_ROLES)
    access = Access(user.role, user.scope)
    try:
        result_id = int(request.match_info["id"])
    except ValueError:
        raise NotFound("no such result") from None
    service = request.config_dict[SERVICE]
    found = await service.result_by_id(result_id)
    if found is None or not access.may_send_for(found.lab):
        raise NotFound("no such result")
    pdf = await service.notice_pdf(result_id)
    if pdf is None:
        raise NotFound("no notice for this result (not positive, not yet made, or purged)")
    await service.audit.append(
        service.store.db, actor=user.username, role=user.role, action="read",
        object_type="result_notice", object_id=result_id,
    )  # fmt: skip
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="notice-{result_id}.pdf"'},
    )


FORM_FIELDS = (
    "lab",
    "sample_id",
    "nir",
    "last_name",
    "first_name",
    "birth_date",
    "sex",
    "postcode",
    "phone",
    "email",
    "sampled_at",
    "result",
)


async def antigen_page(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, FORM_ROLES)
    access = Access(user.role, user.scope)
    now = datetime.now(ZoneInfo(user.time_zone)).strftime("%Y-%m-%dT%H:%M")
    values = {"lab": access.finess or "", "sampled_at": now, "sex": "U", "result": "N"}
    notice = request.query.get("notice", "")
    return await _form(request, values, {}, 200, notice if notice.isdigit() else "")


async def _form(
    request: web.Request,
    values: dict[str, str],
    errors: dict[str, str],
    status: int,
    notice: str = "",
) -> web.StreamResponse:
    return await render(
        request,
        "sidep/antigen.html",
        status,
        prefix=PREFIX,
        values=values,
        errors=errors,
        notice=notice,
    )


def departement(postcode: str) -> str | None:
    """The département of a French postcode (Corsica 2A/2B, overseas 971-976)."""
    if len(postcode) != 5 or not postcode.isdigit():
        return None
    if postcode.startswith("97"):
        return postcode[:3]
    if postcode.startswith("20"):
        return "2A" if postcode < "20200" else "2B"
    return postcode[:2]


async def antigen_submit(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, FORM_ROLES)
    access = Access(user.role, user.scope)
    form = await request.post()
    values = {k: str(form.get(k, "")).strip()[:200] for k in FORM_FIELDS}
    if access.finess:
        values["lab"] = access.finess
    errors = antigen_errors(values, access)
    if errors:
        return await _form(request, values, errors, 422)
    zone = ZoneInfo(user.time_zone)
    sampled = datetime.fromisoformat(values["sampled_at"]).replace(tzinfo=zone).astimezone(UTC)
    nir = values["nir"].replace(" ", "") or None
    result = LabResult(
        lab=values["lab"],
        sample_id=values["sample_id"] or f"AG-{secrets.token_hex(6).upper()}",
        loinc=ANTIGEN_LOINC,
        method=Method.ANTIGEN,
        result=Result(values["result"]),
        sampled_at=sampled,
        validated_at=datetime.now(UTC),
        status=Status.FINAL,
        patient=Patient(
            nir=nir,
            nir_valid=is_valid_nir(nir) if nir else None,
            last_name=values["last_name"],
            first_name=values["first_name"],
            birth_date=date.fromisoformat(values["birth_date"]),
            sex=Sex(values["sex"]),
            postcode=values["postcode"],
            phone=values["phone"] or None,
            email=values["email"] or None,
        ),
        source=SourceFormat.FORM,
        dep=departement(values["postcode"]),
        raw_ref=f"form {user.username}",
    )
    service = request.config_dict[SERVICE]
    try:
        counts = await request.config_dict[COMMITTER].submit(
            Parsed(results=(result,)), user.as_actor()
        )
    except StoreFailed:
        errors["form"] = "The result could not be stored; try again."
        return await _form(request, values, errors, 503)
    if counts.duplicates:
        await flash(request, _t(request, "This sample was recorded already."), "info")
        return see_other(f"{PREFIX}/antigen")
    stored = await service.result_by_key(result.key)
    if stored is not None:
        await service.process_notices(result_id=stored)  # this patient's, now
    if result.result is Result.POSITIVE and stored is not None:
        await flash(request, _t(request, "Positive result recorded."), "success")
        if await service.notice_pdf(stored) is not None:
            return see_other(f"{PREFIX}/antigen?notice={stored}")
        later = "The patient's notice will be made as soon as the code service answers."
        await flash(request, _t(request, later), "info")
    await flash(request, _t(request, "Result recorded."), "success")
    return see_other(f"{PREFIX}/antigen")


def _t(request: web.Request, message: str) -> str:
    pages = pages_of(request)
    return pages.gettext(pages.language(request), message)


def antigen_errors(values: dict[str, str], access: Access) -> dict[str, str]:
    """What is wrong with an antigen form, by field."""
    errors: dict[str, str] = {}
    if not (len(values["lab"]) == 9 and values["lab"].isalnum()):
        errors["lab"] = "The FINESS of the site has 9 characters."
    elif not access.may_send_for(values["lab"]):
        errors["lab"] = "You may not enter results for this site."
    if len(values["sample_id"]) > 64:
        errors["sample_id"] = "At most 64 characters."
    nir = values["nir"].replace(" ", "")
    if nir and not is_valid_nir(nir):
        errors["nir"] = "This NIR's key does not check: copy it again from the card."
    for name in ("last_name", "first_name"):
        if not values[name]:
            errors[name] = "Required."
    try:
        born = date.fromisoformat(values["birth_date"])
        if not date(1900, 1, 1) <= born <= date.today():
            errors["birth_date"] = "A birth date between 1900 and today."
    except ValueError:
        errors["birth_date"] = "A date: YYYY-MM-DD."
    if values["sex"] not in ("M", "F", "U"):
        errors["sex"] = "M, F or U."
    if departement(values["postcode"]) is None:
        errors["postcode"] = "A French postcode of 5 digits."
    try:
        datetime.fromisoformat(values["sampled_at"])
    except ValueError:
        errors["sampled_at"] = "The date and time of the swab."
    if values["result"] not in ("P", "N", "I"):
        errors["result"] = "Positive, negative or invalid."
    if values["email"] and "@" not in values["email"]:
        errors["email"] = "An e-mail address."
    return errors
