"""HTTP adapters of the citizen services, mounted under ``/citizens``: the index, Mes Conseils
Covid, the test-site pages and API (the directory's are in ``citizens.directory_web``).

Public and anonymous: ``GET /citizens/`` (index), ``/citizens/advice/`` (the advice page, all
computed in the browser), ``/citizens/api/v1/advice/rules`` and ``.../cases`` (the published
rules and their shared test cases), ``/citizens/sites/`` (search and map),
``/citizens/sites/embed`` (the same, for other sites' iframes: the only page whose CSP lets
other origins frame it), ``/citizens/api/v1/sites`` (the JSON API other services read) and
``/citizens/api/v1/sites/meta`` (which file is served), ``/citizens/health``,
``/citizens/metrics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

from citizens.advice import CASES, Rules
from citizens.directory import N_
from citizens.geo import FranceMap, valid_coordinates
from citizens.places import POSTCODE, Origin, Place, Places
from citizens.sitemap import render_map
from citizens.sites import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    OVERSEAS_REACH_KM,
    Found,
    Kind,
    SiteBook,
    SiteQuery,
    round_km,
)
from kit.http import (
    OPEN_TO_ALL_SITES,
    BadRequest,
    Handler,
    HttpError,
    add_route,
    json_response,
    open_error,
    see_other,
)
from kit.metrics import HttpMetrics, metrics_handler
from kit.web import add_page, pages_of, render

PREFIX = "/citizens"
"""Where the service is mounted, alone or beside the others."""
STATIC = Path(__file__).resolve().parent / "static"
ATTRIBUTION = (
    "Contours des départements : svg-maps (CC BY 4.0) ; communes : INSEE COG (Licence "
    "Ouverte) et GeoNames (CC BY 4.0). Lieux de test de démonstration : fictifs."
)


@dataclass(frozen=True, slots=True)
class Citizens:
    """What the handlers share: the sites being served, the places, the map, the rules."""

    book: SiteBook
    places: Places
    france: FranceMap
    rules: Rules
    embed_ancestors: str
    public_origin: str
    """The address people use behind a proxy, or empty (then the request's own)."""
    advice_script: str


STATE = web.AppKey("citizens_state", Citizens)


class NotLocated(HttpError):
    """404: the postcode or commune could not be placed."""

    status, code = 404, "unknown_place"


class AmbiguousCommune(HttpError):
    """400: several communes have this name; the answer lists them (with their postcodes)
    so that the person or the caller picks one by postcode."""

    status, code = 400, "ambiguous_commune"

    def __init__(self, name: str, candidates: list[Place]) -> None:
        listed = "; ".join(
            f"{p.name} ({p.departement}: {' '.join(p.postcodes)})" for p in candidates
        )
        super().__init__(
            f"{len(candidates)} communes are named {name!r}: give the postcode ({listed})"
        )
        self.candidates = candidates

    def body(self) -> dict[str, object]:
        """The JSON answer: the kit's error envelope and the candidates."""
        return super().body() | {
            "candidates": [
                {
                    "name": p.name,
                    "departement": p.departement,
                    "insee": p.insee,
                    "postcodes": list(p.postcodes),
                }
                for p in self.candidates
            ]
        }


def state_of(request: web.Request) -> Citizens:
    """The service's shared state."""
    return request.config_dict[STATE]


def install(app: web.Application, state: Citizens, metrics: HttpMetrics) -> None:
    """Add the public routes to ``app`` (the application mounted at ``/citizens``)."""
    app[STATE] = state
    add_route(app, "GET", "/api/v1/sites", api_sites, metrics, render=open_error)
    routes: tuple[tuple[str, str, Handler], ...] = (
        ("GET", "/api/v1/sites/meta", api_sites_meta),
        ("GET", "/api/v1/advice/rules", api_rules),
        ("GET", "/api/v1/advice/cases", api_cases),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    )
    for method, path, handler in routes:
        add_route(app, method, path, handler, metrics)
    for path, target in (("/advice", "/advice/"), ("/sites", "/sites/")):
        add_route(app, "GET", path, _redirect(PREFIX + target), metrics)
    pages: tuple[tuple[str, str, Handler], ...] = (
        ("GET", "/", index_page),
        ("GET", "/advice/", advice_page),
        ("GET", "/sites/", sites_page),
        ("GET", "/sites/embed", sites_embed_page),
    )
    for method, path, handler in pages:
        add_page(app, method, path, handler, metrics)


def _redirect(target: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        query = f"?{request.query_string}" if request.query_string else ""
        return see_other(target + query)

    return handler


async def health(request: web.Request) -> web.Response:
    """GET /citizens/health: 200 when sites are served and the database answers."""
    state = state_of(request)
    from citizens.directory_web import directory_of

    db_ok = await directory_of(request).db.ping()
    ok = db_ok and bool(state.book.current.sites)
    body = {"status": "ok" if ok else "unavailable", "sites": len(state.book.current.sites)}
    return json_response(body, 200 if ok else 503)


async def index_page(request: web.Request) -> web.StreamResponse:
    """The three services."""
    return await render(request, "citizens/index.html", prefix=PREFIX)


# --- advice ------------------------------------------------------------------------------------
def advice_ui(pages_gettext: Any, sites_url: str) -> dict[str, str]:
    """The page script's words, in the page's language."""
    _ = pages_gettext
    return {
        "required": _("Please answer this question."),
        "between": _("Give a whole number from {min} to {max}."),
        "errors_title": _("Some answers are missing or wrong"),
        "result_title": _("Your advice"),
        "computed": _("Computed on {date} in your browser, rules version {version}."),
        "source": _("Source:"),
        "assumption": _("to be checked"),
        "print": _("Print"),
        "save": _("Save on this device"),
        "filename": _("my-covid-advice.html"),
        "sites_link": _("Find a test site"),
        "sites_url": sites_url,
    }


async def advice_page(request: web.Request) -> web.StreamResponse:
    """The questions; the script computes the advice (no answer is ever sent)."""
    state = state_of(request)
    pages = pages_of(request)
    language = pages.language(request)

    def gettext(message: str) -> str:
        return pages.gettext(language, message)

    return await render(
        request,
        "citizens/advice.html",
        **advice_context(
            state.rules,
            state.france,
            state.advice_script,
            gettext,
            sites_url=f"{PREFIX}/sites/?lang={language}",
            rules_url=f"{PREFIX}/api/v1/advice/rules",
            cases_url=f"{PREFIX}/api/v1/advice/cases",
        ),
    )


def advice_context(
    rules: Rules,
    france: FranceMap,
    script: str,
    gettext: Any,
    *,
    sites_url: str,
    rules_url: str,
    cases_url: str,
) -> dict[str, Any]:
    """What the advice page shows, served (``advice_page``) or exported as a static file
    (``citizens.export``): the questions, the rules and the script, and where its links go."""
    departements = sorted(france.names.items(), key=lambda kv: kv[0].replace("2", "20", 1))
    return {
        "rules": rules,
        "questions": rules.document["questions"],
        "departements": departements,
        "ui": advice_ui(gettext, sites_url),
        "script": Markup(script),
        "rules_url": rules_url,
        "cases_url": cases_url,
    }


async def api_rules(request: web.Request) -> web.Response:
    """GET: the rules document, for anyone to reuse."""
    return json_response(state_of(request).rules.document)


async def api_cases(request: web.Request) -> web.Response:
    """GET: the shared test cases every implementation of the rules must pass."""
    return web.Response(body=CASES.read_bytes(), content_type="application/json")


# --- test sites --------------------------------------------------------------------------------
def _number(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"{name} must be a decimal number", "bad_coordinates") from None
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be a decimal number", "bad_coordinates")
    return value


def locate(
    places: Places,
    *,
    postcode: str = "",
    commune: str = "",
    lat: str = "",
    lon: str = "",
    position_label: str = "your position",
) -> Origin:
    """Where a search starts, from exactly one of: a postcode, a commune, coordinates."""
    given = [bool(postcode), bool(commune), bool(lat or lon)]
    if sum(given) != 1:
        raise BadRequest("give one of postcode, commune, or lat and lon", "missing_place")
    if lat or lon:
        la, lo = _number(lat, "lat"), _number(lon, "lon")
        if not valid_coordinates(la, lo):
            raise BadRequest("lat must be -90..90 and lon -180..180", "bad_coordinates")
        return Origin(position_label, la, lo, "position")
    if postcode:
        if not POSTCODE.match(postcode.strip().upper()):
            raise BadRequest("postcode must be 5 characters, like 75011", "bad_postcode")
        origin = places.locate_postcode(postcode)
        if origin is None:
            raise NotLocated(f"no commune or département known for postcode {postcode}")
        return origin
    if len(commune) > 80:
        raise BadRequest("commune is at most 80 characters", "bad_commune")
    namesakes = places.namesakes(commune)
    if len(namesakes) > 1:
        raise AmbiguousCommune(commune, namesakes)
    origin = places.locate_commune(commune)
    if origin is None:
        raise NotLocated(f"no commune named {commune!r} in the table")
    return origin


def reach_km(france: FranceMap, origin: Origin) -> float | None:
    """How far a search from ``origin`` looks: everywhere from metropolitan France, within
    ``OVERSEAS_REACH_KM`` from a place off its map (overseas)."""
    return None if france.on_map(origin.lat, origin.lon) else OVERSEAS_REACH_KM


def _kind(text: str) -> Kind | None:
    if not text:
        return None
    try:
        return Kind(text.upper())
    except ValueError:
        raise BadRequest("kind must be PCR or ANTIGEN", "bad_kind") from None


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "oui", "on")


def site_json(found: Found) -> dict[str, Any]:
    """One result as the contract gives it."""
    site = found.site
    return {
        "id": site.id,
        "name": site.name,
        "address": site.address,
        "postcode": site.postcode,
        "commune": site.commune,
        "lat": site.lat,
        "lon": site.lon,
        "kinds": sorted(k.value for k in site.kinds),
        "walk_in": site.walk_in,
        "appointment_url": site.appointment_url,
        "distance_km": round_km(found.distance_km),
        "phone": site.phone,
        "hours": site.hours,
        "public": site.public,
    }


async def api_sites(request: web.Request) -> web.Response:
    """GET ?postcode=|commune=|lat=&lon= [&kind=PCR|ANTIGEN] [&walk_in=1] [&limit=]: the
    nearest sites, nearest first: ``{"sites": [...], "origin": {...}}``."""
    state = state_of(request)
    q = request.query
    try:
        limit = int(q.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        raise BadRequest("limit must be a whole number", "bad_limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be 1 to {MAX_LIMIT}", "bad_limit")
    origin = locate(
        state.places,
        postcode=q.get("postcode", "").strip(),
        commune=q.get("commune", "").strip(),
        lat=q.get("lat", "").strip(),
        lon=q.get("lon", "").strip(),
    )
    query = SiteQuery(
        origin,
        _kind(q.get("kind", "")),
        _flag(q.get("walk_in", "")),
        limit,
        reach_km(state.france, origin),
    )
    found = state.book.current.search(query)
    response = json_response(
        {
            "sites": [site_json(f) for f in found],
            "origin": {
                "label": origin.label,
                "lat": origin.lat,
                "lon": origin.lon,
                "precision": origin.precision,
            },
        }
    )
    response.headers.update(OPEN_TO_ALL_SITES)  # public data, no credentials
    return response


async def api_sites_meta(request: web.Request) -> web.Response:
    """GET: the file being served: its SHA-256, when it was loaded, its sites and skipped
    rows, and the last reload error if the latest file was refused."""
    book = state_of(request).book
    index = book.current
    return json_response(
        {
            "version": index.version,
            "loaded_at": index.loaded_at,
            "sites": len(index.sites),
            "skipped_rows": [{"line": b.line, "reason": b.reason} for b in index.bad_rows[:100]],
            "last_error": book.last_error,
        }
    )


async def _sites_context(request: web.Request, *, embed: bool) -> tuple[int, dict[str, Any]]:
    """What both site pages show: the form as typed, the results or the error."""
    state = state_of(request)
    pages = pages_of(request)
    language = pages.language(request)
    q = request.query
    where = q.get("where", "").strip()[:80]
    form: dict[str, Any] = {
        "where": where,
        "lat": q.get("lat", "")[:20],
        "lon": q.get("lon", "")[:20],
        "kind": q.get("kind", "") if q.get("kind", "") in ("PCR", "ANTIGEN") else "",
        "walk_in": _flag(q.get("walk_in", "")),
    }
    context: dict[str, Any] = {
        "prefix": PREFIX,
        "form": form,
        "error": None,
        "found": [],
        "origin": None,
        "map_svg": Markup(""),
        "overseas": False,
        "candidates": [],
        "departement_names": state.france.names,
        "overseas_reach_km": int(OVERSEAS_REACH_KM),
        "attribution": ATTRIBUTION,
        "embed_url": f"{state.public_origin or request.url.origin()}{PREFIX}/sites/embed",
    }
    status = 200
    if where or form["lat"] or form["lon"]:
        is_postcode = bool(POSTCODE.match(where.upper()))
        try:
            origin = locate(
                state.places,
                postcode=where if is_postcode else "",
                commune="" if is_postcode else where,
                lat="" if where else form["lat"],
                lon="" if where else form["lon"],
                position_label=pages.gettext(language, "your position"),
            )
        except HttpError as exc:
            status = 422 if exc.status == 400 else exc.status
            message = (
                N_("We could not find this place. Type a postcode (like 75011) or a commune name.")
                if exc.status == 404
                else N_("Several communes have this name: choose one, or type its postcode.")
                if isinstance(exc, AmbiguousCommune)
                else N_("Type a postcode (like 75011) or a commune name.")
            )
            context["error"] = pages.gettext(language, message)
            if isinstance(exc, AmbiguousCommune):
                context["candidates"] = exc.candidates
            return status, context
        reach = reach_km(state.france, origin)
        query = SiteQuery(origin, _kind(form["kind"]), form["walk_in"], DEFAULT_LIMIT, reach)
        found = state.book.current.search(query)
        context["origin"] = origin
        context["found"] = found
        context["overseas"] = reach is not None
        if reach is None:  # the map draws metropolitan France only: overseas, the list alone
            context["map_svg"] = render_map(
                state.france,
                found,
                origin,
                title=pages.gettext(language, "Map of the test sites found"),
                origin_label=origin.label,
            )
    return status, context


async def sites_page(request: web.Request) -> web.StreamResponse:
    """GET ?where=&kind=&walk_in=: the search form, the map and the list."""
    status, context = await _sites_context(request, embed=False)
    return await render(request, "citizens/sites.html", status, **context)


async def sites_embed_page(request: web.Request) -> web.StreamResponse:
    """The same search for another site's iframe: the one page other origins may frame
    (``CITIZENS_EMBED_ANCESTORS``), without the service's header and footer."""
    status, context = await _sites_context(request, embed=True)
    response = await pages_of(request).render(
        request, "citizens/sites_embed.html", status, embeddable=True, **context
    )
    allow_framing(response, state_of(request).embed_ancestors)
    return response


def allow_framing(response: web.StreamResponse, ancestors: str) -> None:
    """Let ``ancestors`` frame this response: the kit's embeddable CSP allows only this
    origin (``frame-ancestors 'self'``); the embeddable page widens that one directive."""
    csp = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = csp.replace(
        "frame-ancestors 'self'", f"frame-ancestors {ancestors}"
    )
