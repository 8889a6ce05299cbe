"""HTTP adapters of the directory, under ``/citizens/directory/``.

Public: ``GET /citizens/directory/`` (filters and search), ``GET/POST
/citizens/directory/submit`` (a publisher's declaration: CSRF-protected, limited per client),
``GET /citizens/api/v1/directory`` (the published entries as JSON, same filters). Moderators
(role ``moderator``, password and TOTP code): ``GET /citizens/directory/moderation`` and
``POST /citizens/directory/moderation/{id}`` (publish or reject, audited).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from citizens.directory import (
    AUDIENCES,
    FEATURES,
    INSTALLATIONS,
    N_,
    REGIONS,
    SECURITY,
    Entry,
    InvalidDeclaration,
    parse_declaration,
)
from citizens.store import DirectoryFilter, DirectoryStore, NotPending
from kit.auth import check_csrf, optional_user, require_user
from kit.http import (
    OPEN_TO_ALL_SITES,
    BadRequest,
    NotFound,
    TooManyRequests,
    add_route,
    json_response,
    open_error,
    see_other,
)
from kit.metrics import HttpMetrics
from kit.ratelimit import Buckets, Limit
from kit.web import add_page, flash, pages_of, render

PREFIX = "/citizens"
MODERATOR = "moderator"
SUBMISSIONS_PER_CLIENT = Limit(burst=5, per_seconds=3600.0)

DIRECTORY = web.AppKey("citizens_directory", DirectoryStore)
SUBMIT_LIMIT = web.AppKey("citizens_submit_limit", Buckets)
TRUSTED_ORIGINS = web.AppKey("citizens_trusted_origins", frozenset)


def directory_of(request: web.Request) -> DirectoryStore:
    """The directory's store."""
    return request.config_dict[DIRECTORY]


def install(
    app: web.Application,
    store: DirectoryStore,
    metrics: HttpMetrics,
    trusted_origins: frozenset[str] = frozenset(),
) -> None:
    """Add the directory's routes to ``app`` (mounted at ``/citizens``); ``trusted_origins``
    are accepted by the form's CSRF check besides the request's own (behind a TLS proxy)."""
    app[DIRECTORY] = store
    app[TRUSTED_ORIGINS] = trusted_origins
    app[SUBMIT_LIMIT] = Buckets(SUBMISSIONS_PER_CLIENT)
    add_route(app, "GET", "/api/v1/directory", api_directory, metrics, render=open_error)

    async def to_directory(request: web.Request) -> web.Response:
        return see_other(f"{PREFIX}/directory/")

    add_route(app, "GET", "/directory", to_directory, metrics)
    for method, path, handler in (
        ("GET", "/directory/", directory_page),
        ("GET", "/directory/submit", submit_page),
        ("POST", "/directory/submit", submit_form),
        ("GET", "/directory/moderation", moderation_page),
        ("POST", "/directory/moderation/{entry_id:\\d+}", moderate),
    ):
        add_page(app, method, path, handler, metrics)


def _filter(query: Any) -> DirectoryFilter:
    def pick(name: str, allowed: dict[str, str]) -> str:
        value = str(query.get(name, ""))
        if value and value not in allowed:
            raise BadRequest(f"unknown {name} {value!r}", f"bad_{name}")
        return value

    return DirectoryFilter(
        query=str(query.get("q", ""))[:200],
        feature=pick("feature", FEATURES),
        audience=pick("audience", AUDIENCES),
        region=pick("region", REGIONS),
        installation=pick("installation", INSTALLATIONS),
        security=pick("security", SECURITY),
        free_only=str(query.get("free", "")) in ("1", "on", "true"),
    )


def entry_json(entry: Entry) -> dict[str, Any]:
    """A published entry as the API gives it (never the publisher's contact address)."""
    d = entry.declaration
    return {
        "id": entry.id,
        "name": d.name,
        "publisher": d.publisher,
        "url": d.url,
        "description": d.description,
        "features": sorted(d.features),
        "audiences": sorted(d.audiences),
        "regions": sorted(d.regions) or ["all"],
        "installation": d.installation,
        "security": sorted(d.security),
        "free": d.free,
        "published_at": entry.reviewed_at.isoformat() if entry.reviewed_at else None,
        "self_declared": True,
    }


API_PARAMETERS = ("q", "feature", "audience", "region", "installation", "security", "free")


async def api_directory(request: web.Request) -> web.Response:
    """GET ?q=&feature=&audience=&region=&installation=&security=&free=1: published entries.
    Any other parameter is refused (400 ``unknown_parameter`` naming it): a misspelt filter
    (``?regions=53``) would otherwise answer the whole directory as if it had filtered."""
    unknown = sorted(set(request.query) - set(API_PARAMETERS))
    if unknown:
        raise BadRequest(
            f"unknown parameter(s): {', '.join(unknown)} (known: {', '.join(API_PARAMETERS)})",
            "unknown_parameter",
        )
    entries = await directory_of(request).published(_filter(request.query))
    response = json_response({"services": [entry_json(e) for e in entries]})
    response.headers.update(OPEN_TO_ALL_SITES)
    return response


def _choices() -> dict[str, Any]:
    return {
        "features": FEATURES,
        "audiences": AUDIENCES,
        "regions": REGIONS,
        "installations": INSTALLATIONS,
        "security_criteria": SECURITY,
    }


async def directory_page(request: web.Request) -> web.StreamResponse:
    """The published entries, filtered and searched (a signed-in moderator also sees the
    header with their name and the way back to moderation)."""
    await optional_user(request)
    try:
        wanted = _filter(request.query)
    except BadRequest:
        wanted = DirectoryFilter()
    entries = await directory_of(request).published(wanted)
    return await render(
        request, "citizens/directory.html", prefix=PREFIX, entries=entries, wanted=wanted,
        **_choices(),
    )  # fmt: skip


async def submit_page(request: web.Request) -> web.StreamResponse:
    """The declaration form."""
    return await _submit_form(request, 200, {}, {})


async def _submit_form(
    request: web.Request, status: int, form: dict[str, Any], errors: dict[str, str]
) -> web.Response:
    pages = pages_of(request)
    language = pages.language(request)
    translated = {k: pages.gettext(language, v) for k, v in errors.items()}
    return await render(
        request, "citizens/directory_submit.html", status, prefix=PREFIX, form=form,
        errors=translated, **_choices(),
    )  # fmt: skip


async def submit_form(request: web.Request) -> web.StreamResponse:
    """POST: keep the declaration for moderation, or show the form again with its errors."""
    await check_csrf(request, request.config_dict[TRUSTED_ORIGINS])
    posted = await request.post()
    form: dict[str, Any] = {
        key: posted.getall(key, []) if key in ("features", "audiences", "regions", "security")
        else str(posted.get(key, ""))
        for key in ("name", "publisher", "url", "description", "contact_email", "installation",
                    "free", "features", "audiences", "regions", "security")
    }  # fmt: skip
    form = {k: ([str(v) for v in val] if isinstance(val, list) else val) for k, val in form.items()}
    try:
        declaration = parse_declaration(form)
    except InvalidDeclaration as exc:
        return await _submit_form(request, 422, form, exc.errors)
    client = request.remote or "?"
    if request.config_dict[SUBMIT_LIMIT].take(client):
        raise TooManyRequests("too many declarations from here; retry later")
    entry_id = await directory_of(request).submit(declaration)
    pages = pages_of(request)
    await flash(
        request,
        pages.gettext(
            pages.language(request),
            "Thank you. Your declaration will be published once a moderator has reviewed it.",
        ),
        "success",
    )
    return see_other(f"{PREFIX}/directory/submit?sent={entry_id}")


async def moderation_page(request: web.Request) -> web.StreamResponse:
    """Moderators: the declarations awaiting review."""
    await require_user(request, roles={MODERATOR})
    entries = await directory_of(request).pending()
    return await render(
        request, "citizens/directory_moderation.html", prefix=PREFIX, entries=entries,
        **_choices(),
    )  # fmt: skip


async def moderate(request: web.Request) -> web.StreamResponse:
    """Moderators: POST decision=publish|reject, note: review one declaration."""
    user = await require_user(request, roles={MODERATOR})
    posted = await request.post()
    decision = str(posted.get("decision", ""))
    if decision not in ("publish", "reject"):
        raise BadRequest("decision must be publish or reject")
    entry_id = int(request.match_info["entry_id"])
    try:
        entry = await directory_of(request).review(
            entry_id, decision == "publish", moderator=user.username, role=user.role,
            note=str(posted.get("note", ""))[:500],
        )  # fmt: skip
    except NotPending:
        raise NotFound("this declaration is not awaiting review") from None
    pages = pages_of(request)
    language = pages.language(request)
    message = (
        N_("“%(name)s” is published.") if decision == "publish" else N_("“%(name)s” is rejected.")
    )
    await flash(request, pages.gettext(language, message) % {"name": entry.declaration.name})
    return see_other(f"{PREFIX}/directory/moderation")
