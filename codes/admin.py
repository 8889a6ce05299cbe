"""The administrator's pages, under ``/codes/admin``: the organisations that issue codes, their
people and their machines' API keys.

What the commands ``robert codes orgs ...``, ``users ...`` and ``apikeys ...`` do, on a page
behind the same two-factor sign-in: create an organisation (short name, role, full name and
address for the handouts), change its name and address, add its people (their role is the
organisation's, their scope ``org:<name>``; they set up their authenticator app at their first
sign-in), disable or enable them, reset a lost authenticator, make an API key (shown once) and
revoke one. Each change is audited under the administrator's name by the store that makes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import aiohttp_session
from aiohttp import web

from codes.errors import BadRequest, Conflict
from codes.model import (
    ADDRESS_LINES,
    ADDRESS_MAX,
    ORG_NAME,
    ORG_SCOPE_PREFIX,
    TITLE_MAX,
    Organisation,
    Role,
    check_address,
    check_title,
    org_scope,
)
from codes.pages import ADMIN, N_, Acting, accounts_of, acting, tr
from codes.web import service_of
from kit.auth.apikeys import ApiKey
from kit.auth.users import MIN_PASSWORD_LENGTH, AccountError, User, normalise_username
from kit.http import NotFound, see_other
from kit.i18n import is_time_zone
from kit.metrics import HttpMetrics
from kit.web import add_page, flash, render

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
"""The kit's rule for user names (``kit.auth.users``), checked here first so that the page
can say what to do in the person's language."""

TIME_ZONES = (
    ("Europe/Paris", N_("Metropolitan France, Corsica")),
    ("America/Guadeloupe", N_("Guadeloupe, Saint-Martin, Saint-Barthélemy")),
    ("America/Martinique", N_("Martinique")),
    ("America/Cayenne", N_("French Guiana")),
    ("Indian/Reunion", N_("Réunion")),
    ("Indian/Mayotte", N_("Mayotte")),
    ("America/Miquelon", N_("Saint-Pierre-et-Miquelon")),
    ("Pacific/Noumea", N_("New Caledonia")),
    ("Pacific/Tahiti", N_("French Polynesia")),
    ("Pacific/Wallis", N_("Wallis and Futuna")),
)
"""Where French labs and practices are: dates on their pages and handouts are in their time."""

USER_ACTIONS = ("disable", "enable", "reset-totp")
NEW_KEY = "codes_new_key"
"""Session field: an API key just made, until the page shows it."""


def install(app: web.Application, metrics: HttpMetrics) -> None:
    """The administrator's pages on ``app`` (mounted at ``/codes``)."""
    for method, path, handler in (
        ("GET", "/admin", admin_page),
        ("POST", "/admin/orgs", org_create),
        ("GET", "/admin/orgs/{org}", org_page),
        ("POST", "/admin/orgs/{org}", org_update),
        ("POST", "/admin/orgs/{org}/users", user_add),
        ("POST", "/admin/orgs/{org}/users/{username}/{action}", user_change),
        ("POST", "/admin/orgs/{org}/keys", key_add),
        ("POST", "/admin/keys/{key}/revoke", key_revoke),
    ):
        add_page(app, method, path, handler, metrics)


def _org_name(scope: str) -> str | None:
    return scope.removeprefix(ORG_SCOPE_PREFIX) if scope.startswith(ORG_SCOPE_PREFIX) else None


async def _admin(request: web.Request) -> Acting:
    return await acting(request, Role.ADMIN)


# --- the organisations -----------------------------------------------------------------------
async def _admin_page(
    request: web.Request,
    status: int = 200,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> web.Response:
    accounts = accounts_of(request)
    orgs = await service_of(request).organisations()
    users = await accounts.users.list()
    keys = await accounts.api_keys.list()
    people: dict[str | None, int] = {}
    for u in users:
        people[_org_name(u.scope)] = people.get(_org_name(u.scope), 0) + 1
    live: dict[str | None, int] = {}
    for k in keys:
        if k.revoked_at is None:
            live[_org_name(k.scope)] = live.get(_org_name(k.scope), 0) + 1
    return await render(
        request,
        "codes/admin.html",
        status,
        orgs=[(o, people.get(o.name, 0), live.get(o.name, 0)) for o in orgs],
        service_keys=[k for k in keys if _org_name(k.scope) is None],
        roles=_roles(request),
        form=form or {"name": "", "role": Role.LAB.value, "title": "", "address": ""},
        errors=errors or {},
        limits={"title": TITLE_MAX, "address": ADDRESS_MAX, "lines": ADDRESS_LINES},
    )


def _roles(request: web.Request) -> list[tuple[str, str]]:
    return [
        (Role.LAB.value, tr(request, "Laboratory: long codes, printed")),
        (Role.DOCTOR.value, tr(request, "Doctor: short codes, read out")),
        (Role.ADMIN.value, tr(request, "Administrator: manages the organisations")),
    ]


async def admin_page(request: web.Request) -> web.StreamResponse:
    """GET /codes/admin: every organisation, a form to add one, the services' keys."""
    await _admin(request)
    return await _admin_page(request)


def _details(request: web.Request, form: Mapping[str, str], errors: dict[str, str]) -> None:
    """Check an organisation's full name and address into ``errors``."""
    if not form["title"]:
        errors["title"] = tr(request, "Type the full name, as patients' handouts print it.")
    else:
        try:
            check_title(form["title"])
        except BadRequest:
            errors["title"] = tr(
                request, "Shorten the full name to one line of %(max)d characters.", max=TITLE_MAX
            )
    try:
        check_address(form["address"])
    except BadRequest:
        errors["address"] = tr(
            request,
            "Shorten the address to %(lines)d lines and %(max)d characters.",
            lines=ADDRESS_LINES,
            max=ADDRESS_MAX,
        )


async def org_create(request: web.Request) -> web.StreamResponse:
    """POST name, role, title, address: a new organisation; on to its page."""
    me = await _admin(request)
    posted = await request.post()
    form = {
        field: str(posted.get(field, "")).strip()[:1000]
        for field in ("name", "role", "title", "address")
    }
    errors: dict[str, str] = {}
    if not ORG_NAME.fullmatch(form["name"]):
        errors["name"] = tr(
            request,
            "Type a short name of 1 to 32 letters, digits, '-' or '_', without spaces "
            "or accents: LABO-BIOMED-11.",
        )
    if form["role"] not in {r.value for r in Role}:
        errors["role"] = tr(request, "Choose what the organisation does.")
    _details(request, form, errors)
    service = service_of(request)
    if not errors:
        try:
            org = await service.create_org(
                form["name"], Role(form["role"]), form["title"], form["address"], me.actor
            )
        except Conflict:
            errors["name"] = tr(request, "This short name is taken: choose another one.")
    if errors:
        return await _admin_page(request, 422, form, errors)
    message = tr(request, "Organisation %(name)s created. Add its first user.", name=org.name)
    await flash(request, message, "success")
    return see_other(f"{ADMIN}/orgs/{org.name}")


# --- one organisation ------------------------------------------------------------------------
async def _org(request: web.Request) -> Organisation:
    name = request.match_info["org"]
    org = await service_of(request).store.get_org(name) if ORG_NAME.fullmatch(name) else None
    if org is None:
        raise NotFound(N_("no such organisation"))
    return org


async def _org_page(
    request: web.Request,
    org: Organisation,
    me: Acting,
    status: int = 200,
    **forms: Any,
) -> web.Response:
    accounts = accounts_of(request)
    scope = org_scope(org.name)
    users: list[User] = [u for u in await accounts.users.list() if u.scope == scope]
    keys: list[ApiKey] = [k for k in await accounts.api_keys.list() if k.scope == scope]
    context: dict[str, Any] = {
        "details": {"title": org.title, "address": org.address},
        "details_errors": {},
        "person": {"username": "", "display_name": "", "time_zone": me.user.time_zone},
        "person_errors": {},
        "new_key": None,
    }
    context.update(forms)
    return await render(
        request,
        "codes/admin_org.html",
        status,
        org=org,
        me=me.user,
        users=users,
        keys=keys,
        time_zones=[(zone, tr(request, label)) for zone, label in TIME_ZONES],
        limits={"title": TITLE_MAX, "address": ADDRESS_MAX, "lines": ADDRESS_LINES},
        min_password=MIN_PASSWORD_LENGTH,
        roles=dict(_roles(request)),
        **context,
    )


async def org_page(request: web.Request) -> web.StreamResponse:
    """GET: an organisation's details, people and API keys (and a key just made, once)."""
    me = await _admin(request)
    org = await _org(request)
    session = await aiohttp_session.get_session(request)
    new_key = session.pop(NEW_KEY, None)
    return await _org_page(request, org, me, new_key=new_key)


async def org_update(request: web.Request) -> web.StreamResponse:
    """POST title, address: what the organisation's handouts print."""
    me = await _admin(request)
    org = await _org(request)
    posted = await request.post()
    form = {field: str(posted.get(field, "")).strip()[:1000] for field in ("title", "address")}
    errors: dict[str, str] = {}
    _details(request, form, errors)
    if errors:
        return await _org_page(request, org, me, 422, details=form, details_errors=errors)
    await service_of(request).update_org(org.name, form["title"], form["address"], me.actor)
    await flash(request, tr(request, "Name and address saved."), "success")
    return see_other(f"{ADMIN}/orgs/{org.name}")


async def user_add(request: web.Request) -> web.StreamResponse:
    """POST username, display_name, password, time_zone: a person of the organisation."""
    me = await _admin(request)
    org = await _org(request)
    posted = await request.post()
    form = {
        field: str(posted.get(field, "")).strip()[:300]
        for field in ("username", "display_name", "time_zone")
    }
    password = str(posted.get("password", ""))[:2000]
    errors: dict[str, str] = {}
    users = accounts_of(request).users
    username = normalise_username(form["username"])
    if not USERNAME.fullmatch(username):
        errors["username"] = tr(
            request,
            "Type a user name of 2 to 64 lower-case letters, digits, '.', '_' or '-': "
            "jeanne.dupont.",
        )
    elif await users.find(username) is not None:
        errors["username"] = tr(request, "This user name is taken: choose another one.")
    if not form["display_name"] or len(form["display_name"]) > 200:
        errors["display_name"] = tr(request, "Type the person's name, as pages show it.")
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = tr(
            request,
            "Type a password of at least %(min)d characters.",
            min=MIN_PASSWORD_LENGTH,
        )
    if not is_time_zone(form["time_zone"]):
        errors["time_zone"] = tr(request, "Choose where the person works.")
    if not errors:
        try:
            await users.create(
                username,
                display_name=form["display_name"],
                role=org.role.value,
                scope=org_scope(org.name),
                password=password,
                time_zone=form["time_zone"],
                by=me.actor,
            )
        except AccountError:  # created by someone else meanwhile
            errors["username"] = tr(request, "This user name is taken: choose another one.")
    if errors:
        return await _org_page(request, org, me, 422, person=form, person_errors=errors)
    message = tr(
        request,
        "%(user)s can sign in now; they will set up their authenticator app at their first "
        "sign-in. Give them their password by another way than their user name.",
        user=username,
    )
    await flash(request, message, "success")
    return see_other(f"{ADMIN}/orgs/{org.name}")


async def user_change(request: web.Request) -> web.StreamResponse:
    """POST: disable, enable, or reset the authenticator of one of the organisation's
    people (their open sessions end)."""
    me = await _admin(request)
    org = await _org(request)
    action = request.match_info["action"]
    users = accounts_of(request).users
    user = await users.find(request.match_info["username"])
    if action not in USER_ACTIONS or user is None or user.scope != org_scope(org.name):
        raise NotFound(N_("no such person in this organisation"))
    if user.id == me.user.id and action == "disable":
        await flash(request, tr(request, "You cannot disable your own account."), "error")
        return see_other(f"{ADMIN}/orgs/{org.name}")
    if action == "disable":
        await users.disable(user.username, by=me.actor)
        message = tr(request, "%(user)s can no longer sign in.", user=user.username)
    elif action == "enable":
        await users.enable(user.username, by=me.actor)
        message = tr(request, "%(user)s can sign in again.", user=user.username)
    else:
        await users.reset_totp(user.username, by=me.actor)
        message = tr(
            request,
            "%(user)s will set up a new authenticator app at their next sign-in.",
            user=user.username,
        )
    await flash(request, message, "success")
    return see_other(f"{ADMIN}/orgs/{org.name}")


async def key_add(request: web.Request) -> web.StreamResponse:
    """POST: a new API key for the organisation's system, shown once on the page the browser
    is sent to (kept meanwhile in the encrypted session cookie, and taken out of it there):
    reloading that page neither shows it again nor makes another."""
    me = await _admin(request)
    org = await _org(request)
    key = await service_of(request).new_key(org.name, me.actor)
    session = await aiohttp_session.get_session(request)
    session[NEW_KEY] = key
    return see_other(f"{ADMIN}/orgs/{org.name}")


async def key_revoke(request: web.Request) -> web.StreamResponse:
    """POST: revoke an API key for good (an organisation's, or a service's)."""
    me = await _admin(request)
    text = request.match_info["key"]
    keys = accounts_of(request).api_keys
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None
    found = [k for k in await keys.list() if k.id == number]
    if not found:
        raise NotFound(N_("no such API key"))
    org = _org_name(found[0].scope)
    back = f"{ADMIN}/orgs/{org}" if org else ADMIN
    try:
        await keys.revoke(found[0].id, by=me.actor)
    except ValueError:
        await flash(request, tr(request, "This key was revoked already."), "error")
    else:
        message = tr(
            request, "Key %(id)d revoked: the system using it is refused from now on.",
            id=found[0].id,
        )  # fmt: skip
        await flash(request, message, "success")
    return see_other(back)
