"""The pages people use, under ``/codes/``: a lab technician issues and follows batches of
codes, a doctor gives one short code during a consultation, an administrator manages the
organisations (``codes.admin``).

People sign in with the kit (``kit.auth.people``): user name, password, then the six-digit code
of their authenticator app. A person acts for the organisation of their scope
(``org:<name>``), whose role must be theirs: a lab's technicians see only that lab's codes, a
doctor only issues short codes. Every page is the kit's layout, French first with English, dates
in the person's language and time zone; every form carries the session's CSRF token; every
issue, read of live codes, check, revocation and download is in the audit log, under the
person's name.

Handlers are thin: read the form, call the service, render or redirect (after a change:
POST, then a redirect, then GET, so that reloading never issues codes twice).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp_session
from aiohttp import web

from codes.errors import BadRequest, BadTestDate, Conflict, NotFound
from codes.export import checksum_line, codes_csv, sha256_hex
from codes.handout import Layout, Toolbar, handout_html, handout_pdf
from codes.model import CodeState, Organisation, Role
from codes.service import MAX_TEST_AGE_DAYS, IssuedCode
from codes.web import LIMITS, MAX_ISSUE_PER_REQUEST, PREFIX, client_of, service_of
from kit.audit import Actor
from kit.auth.people import Accounts, People, require_user
from kit.auth.sessions import SessionPolicy
from kit.auth.users import User
from kit.http import Forbidden, see_other
from kit.i18n import format_day, time_zone
from kit.metrics import HttpMetrics
from kit.web import (
    NavLink,
    Pages,
    add_page,
    flash,
    pages_of,
    render,
    secure_headers,
    setup_pages,
)
from protocol.codes import CodeKind, parse_code
from protocol.errors import BadFormat


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is defined (the catalog's extraction finds
    it); it is translated where it is shown."""
    return message


HERE = Path(__file__).resolve().parent
TITLE = "Codes TousAntiCovid"
ACCOUNTS = web.AppKey("codes_accounts", Accounts)

LAB, DOCTOR, ADMIN = f"{PREFIX}/lab", f"{PREFIX}/doctor", f"{PREFIX}/admin"
NAV = (
    NavLink(LAB, N_("Codes"), frozenset({Role.LAB.value})),
    NavLink(DOCTOR, N_("Code for a patient"), frozenset({Role.DOCTOR.value})),
    NavLink(ADMIN, N_("Organisations"), frozenset({Role.ADMIN.value})),
)
ROLE_NAMES = (N_("lab"), N_("doctor"), N_("admin"))
"""The roles as the header shows them (the kit translates ``doctor`` and ``admin``)."""
HOMES = {Role.LAB.value: LAB, Role.DOCTOR.value: DOCTOR, Role.ADMIN.value: ADMIN}

DOCTOR_CODE = "codes_doctor_code"
"""Session field: the doctor's current short code (the session is an encrypted cookie)."""
BATCH_ID = re.compile(r"[0-9a-f]{16}")
CSV_TYPE = "text/csv"


def install_pages(app: web.Application, accounts: Accounts, metrics: HttpMetrics) -> None:
    """The pages, sign-in and sessions of people on ``app`` (mounted at ``/codes``); the
    administrator's pages are ``codes.admin.install``'s."""
    app[ACCOUNTS] = accounts
    pages = Pages(
        TITLE, templates=HERE / "templates", locale=HERE / "locale", nav=NAV, home=f"{PREFIX}/"
    )
    setup_pages(app, pages)

    async def prefix(request: web.Request) -> dict[str, Any]:
        return {"prefix": PREFIX}

    pages.context_hooks.append(prefix)
    policy = SessionPolicy(cookie_name="codes_session", path=f"{PREFIX}/")
    People(
        accounts,
        policy=policy,
        home=f"{PREFIX}/",
        next_prefixes=(f"{PREFIX}/",),
        mounted_at=PREFIX,
    ).setup(app, pages)
    for method, path, handler in (
        ("GET", "/", home),
        ("GET", "/lab", lab_page),
        ("POST", "/lab/issue", lab_issue),
        ("POST", "/lab/verify", lab_verify),
        ("POST", "/lab/revoke", lab_revoke),
        ("GET", "/lab/batches/{batch}", batch_page),
        ("GET", "/lab/batches/{batch}/handout.pdf", batch_pdf),
        ("GET", "/lab/batches/{batch}/handout.html", batch_html),
        ("GET", "/lab/batches/{batch}/codes.csv", batch_csv),
        ("GET", "/lab/batches/{batch}/codes.csv.sha256", batch_checksum),
        ("GET", "/doctor", doctor_page),
        ("POST", "/doctor/new", doctor_new),
        ("GET", "/doctor/handout.pdf", doctor_pdf),
        ("GET", "/doctor/handout.html", doctor_html),
    ):
        add_page(app, method, path, handler, metrics)


# --- who acts --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Acting:
    """A signed-in person and the organisation they act for."""

    user: User
    org: Organisation

    @property
    def actor(self) -> Actor:
        """How the audit log names them: their user name (not their organisation)."""
        return self.user.as_actor()

    def today(self, now: datetime) -> date:
        """Today in the person's time zone: a lab in Réunion has its own calendar."""
        return now.astimezone(time_zone(self.user.time_zone)).date()


async def acting(request: web.Request, role: Role) -> Acting:
    """The signed-in person of ``role`` and their organisation; a sign-in redirect, or 403
    for another role or an account whose scope names no organisation of that role."""
    user = await require_user(request, roles={role.value})
    org = await service_of(request).org_in_scope(user.role, user.scope)
    if org is None:
        raise Forbidden(
            N_("Your account belongs to no organisation of this kind. Ask your administrator.")
        )
    return Acting(user, org)


def accounts_of(request: web.Request) -> Accounts:
    """The service's people and keys."""
    return request.config_dict[ACCOUNTS]


def tr(request: web.Request, message: str, **values: object) -> str:
    """``message`` in the page's language, with ``%(name)s`` values filled in."""
    pages = pages_of(request)
    text = pages.gettext(pages.language(request), message)
    return text % values if values else text


def trn(request: web.Request, singular: str, plural: str, n: int, **values: object) -> str:
    """``singular`` or ``plural`` for ``n``, in the page's language; ``%(num)d`` is ``n``."""
    pages = pages_of(request)
    text = pages.translations(pages.language(request)).ngettext(singular, plural, n)
    return text % ({"num": n} | values)


def _day(request: web.Request, day: date) -> str:
    return format_day(day, pages_of(request).language(request))


async def home(request: web.Request) -> web.StreamResponse:
    """GET /codes/: each person to their page (signing in first)."""
    user = await require_user(request)
    target = HOMES.get(user.role)
    if target is None:
        raise Forbidden("your role does not give access to this page")
    return see_other(target)


# --- the lab ---------------------------------------------------------------------------------
def parse_day(text: str) -> str:
    """A date typed as the date field sends it (2026-03-01) or as people write it
    (01/03/2026) in ISO form; the text itself otherwise (the service then refuses it)."""
    match = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", text)
    if match:
        day, month, year = (int(g) for g in match.groups())
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            return text
    return text


async def _lab(
    request: web.Request,
    me: Acting,
    status: int = 200,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    verify: Mapping[str, str] | None = None,
    verified: CodeState | None = None,
) -> web.Response:
    service = service_of(request)
    today = me.today(service.now())
    return await render(
        request,
        "codes/lab.html",
        status,
        org=me.org,
        batches=await service.batches(me.org),
        form=form or {"count": "10", "test_date": today.isoformat()},
        errors=errors or {},
        verify=verify or {"code": "", "error": ""},
        verified=verified,
        max_count=MAX_ISSUE_PER_REQUEST,
        max_age=MAX_TEST_AGE_DAYS,
    )


async def lab_page(request: web.Request) -> web.StreamResponse:
    """GET /codes/lab: issue codes, check one, the latest batches."""
    return await _lab(request, await acting(request, Role.LAB))


async def lab_issue(request: web.Request) -> web.StreamResponse:
    """POST count, test_date: a new batch of long codes; on to its page."""
    me = await acting(request, Role.LAB)
    posted = await request.post()
    form = {
        "count": str(posted.get("count", "")).strip()[:12],
        "test_date": str(posted.get("test_date", "")).strip()[:32],
    }
    errors: dict[str, str] = {}
    raw = form["count"]  # "²".isdigit() is true, and int("²") raises
    count = int(raw) if raw.isascii() and raw.isdigit() else 0
    if not 1 <= count <= MAX_ISSUE_PER_REQUEST:
        errors["count"] = tr(
            request, "Type a number of codes from 1 to %(max)d.", max=MAX_ISSUE_PER_REQUEST
        )
    service = service_of(request)
    today = me.today(service.now())
    test_date = ""
    if not form["test_date"]:
        errors["test_date"] = tr(request, "Type the date of the test, for example 01/03/2026.")
    else:
        try:
            test_date = service.check_test_date(parse_day(form["test_date"]), today)
        except BadTestDate as exc:
            errors["test_date"] = _date_error(request, exc.reason, today)
    if errors:
        return await _lab(request, me, 422, form=form, errors=errors)
    issued = await service.issue(me.org, CodeKind.LONG, count, test_date, me.actor, today)
    await flash(
        request,
        trn(request, "%(num)d code issued.", "%(num)d codes issued.", len(issued)),
        "success",
    )
    return see_other(f"{LAB}/batches/{issued[0].record.batch}")


def _date_error(request: web.Request, reason: str, today: date) -> str:
    if reason == "future":
        return tr(
            request,
            "The date of the test cannot be after today (%(today)s). Check the date.",
            today=_day(request, today),
        )
    if reason == "too_old":
        earliest = today - timedelta(days=MAX_TEST_AGE_DAYS)
        return tr(
            request,
            "The test must be of the last %(days)d days: on %(earliest)s or after.",
            days=MAX_TEST_AGE_DAYS,
            earliest=_day(request, earliest),
        )
    return tr(request, "Type the date of the test, for example 01/03/2026.")


async def lab_verify(request: web.Request) -> web.StreamResponse:
    """POST code: the state of one of the lab's codes, not using it. Unknown codes count
    against the same limits as the API's checks (guessing is slowed down)."""
    me = await acting(request, Role.LAB)
    text = str((await request.post()).get("code", "")).strip()[:100]
    try:
        parse_code(text)
    except BadFormat:
        error = tr(
            request,
            "Type the code as printed: 36 characters, such as "
            "0f8fad5b-d9cb-469f-a165-70867728950e.",
        )
        return await _lab(request, me, 422, verify={"code": text, "error": error})
    limits = request.config_dict[LIMITS]
    client = client_of(request)
    if limits["verify_client"].take(client):
        error = tr(request, "Too many checks of unknown codes. Try again in an hour.")
        return await _lab(request, me, 429, verify={"code": text, "error": error})
    state = await service_of(request).check(text, me.org, me.actor)
    if state is not CodeState.UNKNOWN:
        limits["verify_client"].give_back(client)
    return await _lab(request, me, verify={"code": text, "error": ""}, verified=state)


async def lab_revoke(request: web.Request) -> web.StreamResponse:
    """POST code, batch: revoke one of the lab's unused codes (a result sent to the wrong
    person, a sheet lost); back to the batch."""
    me = await acting(request, Role.LAB)
    posted = await request.post()
    code = str(posted.get("code", "")).strip()[:100]
    batch = str(posted.get("batch", ""))
    back = f"{LAB}/batches/{batch}" if BATCH_ID.fullmatch(batch) else LAB
    try:
        record = await service_of(request).revoke(code, me.org, me.actor)
    except Conflict:
        message = tr(
            request, "The code %(code)s was used already: it cannot be revoked.", code=code
        )
        await flash(request, message, "error")
    except NotFound:
        await flash(request, tr(request, "This code is not one of your codes."), "error")
    else:
        message = tr(request, "Code %(code)s revoked: the app will refuse it.", code=record.code)
        await flash(request, message, "success")
    return see_other(back)


async def _batch(
    request: web.Request, me: Acting, export: bool
) -> tuple[str, list[tuple[IssuedCode, CodeState]]]:
    batch = request.match_info["batch"]
    if not BATCH_ID.fullmatch(batch):
        raise NotFound(N_("no such batch"))
    return batch, await service_of(request).batch(me.org, batch, me.actor, export)


def _file_name(org: Organisation, batch: str, suffix: str) -> str:
    return f"codes-{org.name}-{batch}{suffix}"


async def batch_page(request: web.Request) -> web.StreamResponse:
    """GET: a batch's codes with their state, the downloads, and revoke buttons."""
    me = await acting(request, Role.LAB)
    batch, found = await _batch(request, me, export=False)
    codes = [issued for issued, _ in found]
    data = codes_csv(codes)
    first = codes[0].record
    states = [state for _, state in found]
    return await render(
        request,
        "codes/batch.html",
        org=me.org,
        batch=batch,
        codes=found,
        first=first,
        counts={s.value: states.count(s) for s in CodeState},
        sha256=sha256_hex(data),
        csv_name=_file_name(me.org, batch, ".csv"),
        base=f"{LAB}/batches/{batch}",
    )


def _layout(request: web.Request) -> Layout:
    """The handouts' layout asked for (cards by default); 400 for one we do not have, rather
    than cards the person did not ask for."""
    try:
        return Layout(request.query.get("layout", Layout.GRID.value))
    except ValueError:
        raise BadRequest(
            N_("no such layout: page (one sheet per patient) or grid (8 cards a page)")
        ) from None


def _attachment(body: bytes, content_type: str, name: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


async def batch_pdf(request: web.Request) -> web.StreamResponse:
    """GET ?layout=page|grid: the batch's handouts as an A4 PDF."""
    me = await acting(request, Role.LAB)
    layout = _layout(request)  # before _batch, which records the export
    batch, found = await _batch(request, me, export=True)
    codes = [issued for issued, _ in found]
    pdf = await asyncio.to_thread(handout_pdf, me.org, codes, layout, me.user.time_zone)
    return _attachment(pdf, "application/pdf", _file_name(me.org, batch, f"-{layout}.pdf"))


async def batch_html(request: web.Request) -> web.StreamResponse:
    """GET ?layout=page|grid: the batch's handouts as a page to print."""
    me = await acting(request, Role.LAB)
    layout = _layout(request)
    batch, found = await _batch(request, me, export=True)
    return _handout_page(
        request, me, [issued for issued, _ in found], layout, f"{LAB}/batches/{batch}"
    )


def _handout_page(
    request: web.Request, me: Acting, codes: list[IssuedCode], layout: Layout, back: str
) -> web.Response:
    nonce = secrets.token_urlsafe(16)
    toolbar = Toolbar(tr(request, "Print"), tr(request, "Back"), back, nonce)
    html = handout_html(me.org, codes, layout, me.user.time_zone, toolbar)
    response = web.Response(text=html, content_type="text/html")
    secure_headers(response, nonce)
    return response


async def batch_csv(request: web.Request) -> web.StreamResponse:
    """GET: the batch as CSV, for the lab's own system."""
    me = await acting(request, Role.LAB)
    batch, found = await _batch(request, me, export=True)
    data = codes_csv([issued for issued, _ in found])
    return _attachment(data, CSV_TYPE, _file_name(me.org, batch, ".csv"))


async def batch_checksum(request: web.Request) -> web.StreamResponse:
    """GET: the CSV's SHA-256, in ``sha256sum -c`` format."""
    me = await acting(request, Role.LAB)
    batch, found = await _batch(request, me, export=False)
    data = codes_csv([issued for issued, _ in found])
    line = checksum_line(data, _file_name(me.org, batch, ".csv"))
    return _attachment(line.encode(), "text/plain", _file_name(me.org, batch, ".csv.sha256"))


# --- the doctor ------------------------------------------------------------------------------
async def _doctor_code(request: web.Request, me: Acting) -> tuple[IssuedCode, CodeState] | None:
    session = await aiohttp_session.get_session(request)
    code = session.get(DOCTOR_CODE)
    if not isinstance(code, str):
        return None
    return await service_of(request).own_code(me.org, code)


async def doctor_page(request: web.Request) -> web.StreamResponse:
    """GET /codes/doctor: the current code, large, with the time it has left."""
    me = await acting(request, Role.DOCTOR)
    current = await _doctor_code(request, me)
    remaining = 0
    if current is not None:
        left = current[0].record.expires_at - service_of(request).now()
        remaining = max(0, int(left.total_seconds()))
    return await render(
        request, "codes/doctor.html", org=me.org, current=current, remaining=remaining
    )


async def doctor_new(request: web.Request) -> web.StreamResponse:
    """POST: a new short code, dated today, for the patient in front of the doctor."""
    me = await acting(request, Role.DOCTOR)
    service = service_of(request)
    today = me.today(service.now())
    [issued] = await service.issue(me.org, CodeKind.SHORT, 1, None, me.actor, today)
    session = await aiohttp_session.get_session(request)
    session[DOCTOR_CODE] = issued.record.code
    return see_other(DOCTOR)


async def _doctor_handout(request: web.Request) -> tuple[Acting, IssuedCode] | None:
    me = await acting(request, Role.DOCTOR)
    current = await _doctor_code(request, me)
    return None if current is None else (me, current[0])


async def doctor_pdf(request: web.Request) -> web.StreamResponse:
    """GET: the current code's handout as a one-page PDF."""
    found = await _doctor_handout(request)
    if found is None:
        return see_other(DOCTOR)
    me, issued = found
    pdf = await asyncio.to_thread(handout_pdf, me.org, [issued], Layout.PAGE, me.user.time_zone)
    return _attachment(pdf, "application/pdf", f"code-{issued.record.code}.pdf")


async def doctor_html(request: web.Request) -> web.StreamResponse:
    """GET: the current code's handout as a page to print."""
    found = await _doctor_handout(request)
    if found is None:
        return see_other(DOCTOR)
    me, issued = found
    return _handout_page(request, me, [issued], Layout.PAGE, DOCTOR)


__all__ = ["ACCOUNTS", "Acting", "accounts_of", "acting", "install_pages", "parse_day"]
