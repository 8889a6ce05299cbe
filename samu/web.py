"""HTTP adapters of the board, mounted under ``/samu``: thin handlers that parse, call
``SamuService`` and format.

Machines authenticate with an API key (``Authorization: Bearer samu_...``, role ``board``
and a board scope), people with their session (password and TOTP, ``kit.auth``).

JSON API (``/samu/api/v1``): ``GET|POST events``, ``GET events/{id}`` (with the territory's
counts and bed tension), ``POST events/{id}/close``, ``GET events/{id}/log?after=``,
``POST events/{id}/log`` (``{text, to?, client_id?, annotates?}``: 201 stored, 200 a resend
of a stored ``client_id``), ``GET events/{id}/stream`` (server-sent events),
``GET|POST transfers``, ``GET transfers/{id}``, ``POST transfers/{id}/status``.
Pages: ``/samu/`` (events, or a hospital's transfers), ``/samu/events/{id}`` (the board:
live log, post form that keeps messages in the browser while offline), ``/samu/transfers``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from kit.audit import Actor
from kit.auth.apikeys import bearer_token, require_api_key
from kit.auth.people import require_user
from kit.http import (
    BadRequest,
    Handler,
    add_route,
    json_response,
    read_json,
    row_id,
    see_other,
)
from kit.metrics import HttpMetrics, metrics_handler, registry_of
from kit.web import add_page, flash, pages_of, render
from samu.access import BOARD_ROLES, HOSPITAL, PEOPLE_ROLES, TRANSFER_ROLES, Access
from samu.geo import departement_map
from samu.model import TRANSITIONS, Entry
from samu.scopes import departements, parse_scope
from samu.service import SamuService, entry_json, event_json, transfer_json
from samu.store import PAGE

PREFIX = "/samu"
API = "/api/v1"
TEMPLATES = Path(__file__).resolve().parent / "templates"

SERVICE = web.AppKey("samu_service", SamuService)
HEARTBEAT = web.AppKey("samu_heartbeat", float)


def install(
    app: web.Application, service: SamuService, metrics: HttpMetrics, heartbeat: float = 15.0
) -> None:
    """Add the board's routes to ``app`` (the application mounted at ``/samu``)."""
    app[SERVICE] = service
    app[HEARTBEAT] = heartbeat
    api: list[tuple[str, str, Handler]] = [
        ("GET", f"{API}/events", api_events),
        ("POST", f"{API}/events", api_open_event),
        ("GET", f"{API}/events/{{event}}", api_event),
        ("POST", f"{API}/events/{{event}}/close", api_close_event),
        ("GET", f"{API}/events/{{event}}/log", api_log),
        ("POST", f"{API}/events/{{event}}/log", api_post),
        ("GET", f"{API}/events/{{event}}/stream", stream),
        ("GET", f"{API}/transfers", api_transfers),
        ("POST", f"{API}/transfers", api_request_transfer),
        ("GET", f"{API}/transfers/{{transfer}}", api_transfer),
        ("POST", f"{API}/transfers/{{transfer}}/status", api_move_transfer),
        ("GET", "/health", health),
        ("GET", "/metrics", metrics_handler),
    ]
    for method, path, handler in api:
        add_route(app, method, path, handler, metrics)
    pages: list[tuple[str, str, Handler]] = [
        ("GET", "/", page_home),
        ("POST", "/events", page_open_event),
        ("GET", "/events/{event}", page_board),
        ("POST", "/events/{event}/log", page_post),
        ("GET", "/transfers", page_transfers),
        ("POST", "/transfers", page_request_transfer),
        ("POST", "/transfers/{transfer}/status", page_move_transfer),
    ]
    for method, path, handler in pages:
        add_page(app, method, path, handler, metrics)


def new_metrics(app: web.Application) -> HttpMetrics:
    """The board's request metrics, in the registry of ``app``."""
    return HttpMetrics("samu", registry_of(app))


def _service(request: web.Request) -> SamuService:
    return request.config_dict[SERVICE]


async def _caller(
    request: web.Request, roles: frozenset[str] | None = None
) -> tuple[Access, Actor]:
    """The caller's access and audit name: an API key if the request carries one, else the
    signed-in person (whose unsafe requests carry the session's CSRF token)."""
    if bearer_token(request) is not None:
        principal = await require_api_key(request, roles)
        return Access(principal.role, principal.scope), principal.as_actor()
    user = await require_user(request, roles)
    return Access(user.role, user.scope), user.as_actor()


BOARD_ENTRIES = 200
"""Entries the board page shows at once (the latest; a link leads to the earlier ones)."""


def _int(request: web.Request, name: str) -> int:
    """The id in the path: 400 if it is not a number, 404 if no row can have it."""
    return row_id(request.match_info[name], name, "path")


def _entry_id(value: str | None, name: str) -> int:
    """An entry id given in a query or header (0 when absent): 400 if not one."""
    return row_id(value, name, "query", least=0) if value else 0


def _optional_id(value: object, name: str) -> int | None:
    """An id in a JSON body (None when absent): 400 unless a whole number in range."""
    return None if value is None else row_id(value, name, "body")


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{name} must be a number", "bad_position")
    try:
        return float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number", "bad_position") from None


def _text(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be text")
    return value


async def health(request: web.Request) -> web.Response:
    """GET /samu/health: 200 when the database answers, 503 otherwise."""
    ok = await _service(request).store.db.ping()
    return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)


# --- JSON API ----------------------------------------------------------------------------------
async def api_events(request: web.Request) -> web.Response:
    """GET: every event, open ones first."""
    access, _ = await _caller(request, BOARD_ROLES)
    events = await _service(request).events(access)
    return json_response({"events": [event_json(e) for e in events]})


async def api_open_event(request: web.Request) -> web.Response:
    """POST {title, kind?, departement, lat, lon}: open an event."""
    access, actor = await _caller(request, BOARD_ROLES)
    body = await read_json(
        request, frozenset({"title", "departement", "lat", "lon"}), frozenset({"kind"})
    )
    event = await _service(request).open_event(
        access, actor, _text(body, "title"), _text(body, "kind", "exceptional"),
        _text(body, "departement"), _number(body["lat"], "lat"), _number(body["lon"], "lon"),
    )  # fmt: skip
    return json_response(event_json(event), 201)


async def api_event(request: web.Request) -> web.Response:
    """GET: an event with its territory's counts (SI-VIC) and bed tension (beds), each null
    when not available."""
    access, _ = await _caller(request, BOARD_ROLES)
    board = await _service(request).board(access, _int(request, "event"))
    return json_response(
        {
            **event_json(board.event),
            "counts": board.counts,
            "tension": board.tension,
            "may_address": board.targets,
        }
    )


async def api_close_event(request: web.Request) -> web.Response:
    """POST: close an event."""
    access, actor = await _caller(request, BOARD_ROLES)
    event = await _service(request).close_event(access, actor, _int(request, "event"))
    return json_response(event_json(event))


async def api_log(request: web.Request) -> web.Response:
    """GET ?after=ID: a page of the event's log as the caller may see it, oldest first
    (``PAGE`` entries at most); ``next_after`` is the id to ask the next page after (null
    when this page was the last)."""
    access, _ = await _caller(request, BOARD_ROLES)
    after = _entry_id(request.query.get("after"), "after")
    entries = await _service(request).log(access, _int(request, "event"), after, PAGE)
    next_after = entries[-1].id if len(entries) == PAGE else None
    return json_response({"entries": [entry_json(e) for e in entries], "next_after": next_after})


async def api_post(request: web.Request) -> web.Response:
    """POST {text, to?, client_id?, annotates?}: 201 with the new entry, or 200 with the
    entry already stored under this ``client_id`` (a resend)."""
    access, actor = await _caller(request, BOARD_ROLES)
    body = await read_json(
        request, frozenset({"text"}), frozenset({"to", "client_id", "annotates"})
    )
    annotates = _optional_id(body.get("annotates"), "annotates")
    entry, new = await _service(request).post(
        access, actor, _int(request, "event"), _text(body, "text"),
        _text(body, "to") or None, body.get("client_id"), annotates,
    )  # fmt: skip
    return json_response(entry_json(entry), 201 if new else 200)


async def api_transfers(request: web.Request) -> web.Response:
    """GET: the transfer requests the caller may read (audited)."""
    access, actor = await _caller(request, TRANSFER_ROLES)
    found = await _service(request).transfers(access, actor)
    return json_response({"transfers": [transfer_json(t) for t in found]})


async def api_request_transfer(request: web.Request) -> web.Response:
    """POST {patient, from_finess, to_finess, departement, reason?, event?}."""
    access, actor = await _caller(request, TRANSFER_ROLES)
    body = await read_json(
        request,
        frozenset({"patient", "from_finess", "to_finess", "departement"}),
        frozenset({"reason", "event"}),
    )
    event = _optional_id(body.get("event"), "event")
    transfer = await _service(request).request_transfer(
        access, actor, _text(body, "patient"), _text(body, "from_finess"),
        _text(body, "to_finess"), _text(body, "departement"), _text(body, "reason"), event,
    )  # fmt: skip
    return json_response(transfer_json(transfer), 201)


async def api_transfer(request: web.Request) -> web.Response:
    """GET: one transfer request (audited)."""
    access, actor = await _caller(request, TRANSFER_ROLES)
    found = await _service(request).transfer(access, actor, _int(request, "transfer"))
    return json_response(transfer_json(found))


async def api_move_transfer(request: web.Request) -> web.Response:
    """POST {status}: move a transfer request."""
    access, actor = await _caller(request, TRANSFER_ROLES)
    body = await read_json(request, frozenset({"status"}))
    moved = await _service(request).move_transfer(
        access, actor, _int(request, "transfer"), _text(body, "status")
    )
    return json_response(transfer_json(moved))


# --- the live feed -----------------------------------------------------------------------------
SENT_KEPT = 1024
"""The ids a stream remembers having sent (the latest), to skip an entry queued meanwhile:
four times the queue a stream may hold (256) before it is dropped."""


class RecentIds:
    """The last ``size`` ids added, for ``in``: a board open for days does not grow it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._order: deque[int] = deque()
        self._ids: set[int] = set()

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, entry_id: int) -> None:
        if entry_id in self._ids:
            return
        self._order.append(entry_id)
        self._ids.add(entry_id)
        if len(self._order) > self.size:
            self._ids.discard(self._order.popleft())


def sse_frame(entry: Entry) -> bytes:
    """One server-sent event: its id (for ``Last-Event-ID``) and the entry as JSON."""
    return b"id: %d\ndata: %s\n\n" % (entry.id, orjson.dumps(entry_json(entry)))


async def stream(request: web.Request) -> web.StreamResponse:
    """GET: the event's new log entries as server-sent events, as the caller may see them.
    The entries after ``Last-Event-ID`` (or ``?after=``) come first, then each new one as it
    is posted; a comment line every ``heartbeat`` seconds keeps proxies from closing it."""
    access, _ = await _caller(request, BOARD_ROLES)
    service = _service(request)
    event_id = _int(request, "event")
    await service.event(access, event_id)
    scope = access.scope
    assert scope is not None
    last = _entry_id(
        request.headers.get("Last-Event-ID") or request.query.get("after"), "Last-Event-ID"
    )
    # Subscribed before the backlog is read: nothing posted in between is missed.
    subscriber = service.live.subscribe(event_id, scope)
    heartbeat = request.config_dict[HEARTBEAT]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: do not buffer this answer
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        # The backlog, page by page until none is left; its ids are kept so that the same
        # entries, queued meanwhile, are not sent twice. Ids, not the highest id: with several
        # processes, an entry committed later may have a lower id than one already sent. The
        # latest SENT_KEPT only: what is queued came after the subscription, near the end.
        sent = RecentIds(SENT_KEPT)
        async for page in service.log_pages(access, event_id, last):
            for entry in page:
                await response.write(sse_frame(entry))
                sent.add(entry.id)
        while not subscriber.dropped:
            try:
                item = await asyncio.wait_for(subscriber.queue.get(), heartbeat)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is None:
                break
            if item.id not in sent:
                await response.write(sse_frame(item))
                sent.add(item.id)
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    finally:
        service.live.unsubscribe(subscriber)
    return response


# --- pages -------------------------------------------------------------------------------------
def _with_connect(response: web.Response) -> web.Response:
    """The kit's page policy, opened to this origin's ``fetch`` and ``EventSource``."""
    policy = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = policy.replace(
        "default-src 'none'", "default-src 'none'; connect-src 'self'"
    )
    return response


async def page_home(request: web.Request) -> web.StreamResponse:
    """The events (and the form opening one), or a hospital's transfers."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    if user.role == HOSPITAL:
        return see_other(f"{PREFIX}/transfers")
    service = _service(request)
    return await render(
        request, "samu/events.html", events=await service.events(access), prefix=PREFIX,
        may_open=access.may_open_events, errors={}, form={},
    )  # fmt: skip


async def page_open_event(request: web.Request) -> web.StreamResponse:
    """The form opening an event."""
    user = await require_user(request, PEOPLE_ROLES)
    access = Access(user.role, user.scope)
    form = await request.post()
    service = _service(request)
    try:
        event = await service.open_event(
            access, user.as_actor(), str(form.get("title", "")), str(form.get("kind", "")),
            str(form.get("departement", "")).strip(), _number(form.get("lat", ""), "lat"),
            _number(form.get("lon", ""), "lon"),
        )  # fmt: skip
    except BadRequest as exc:
        return await render(
            request, "samu/events.html", 400, events=await service.events(access),
            prefix=PREFIX, may_open=access.may_open_events, errors={"form": exc.message},
            form=dict(form),
        )  # fmt: skip
    return see_other(f"{PREFIX}/events/{event.id}")


async def page_board(request: web.Request) -> web.StreamResponse:
    """The board of an event: its place, its territory's figures, the live log, the form."""
    user = await require_user(request, BOARD_ROLES)
    access = Access(user.role, user.scope)
    service = _service(request)
    board = await service.board(access, _int(request, "event"))
    before = _entry_id(request.query.get("before"), "before") or None
    entries, earlier = await service.log_latest(access, board.event.id, BOARD_ENTRIES, before)
    response = await render(
        request, "samu/board.html", board=board, entries=entries, prefix=PREFIX,
        scope=access.scope, last_id=entries[-1].id if entries else 0, earlier=earlier,
        before=before,
        map=departement_map(
            board.event.departement,
            f"{departements()[board.event.departement][0]} ({board.event.departement})",
        ),
        scope_names={t: parse_scope(t).name for t in board.targets},
    )  # fmt: skip
    return _with_connect(response)


async def page_post(request: web.Request) -> web.StreamResponse:
    """The post form without JavaScript: post, then back to the board."""
    user = await require_user(request, BOARD_ROLES)
    form = await request.post()
    event_id = _int(request, "event")
    try:
        await _service(request).post(
            Access(user.role, user.scope), user.as_actor(), event_id,
            str(form.get("text", "")), str(form.get("to", "")) or None,
            form.get("client_id") or None,
        )  # fmt: skip
    except BadRequest as exc:
        await flash(request, exc.message, "error")
    return see_other(f"{PREFIX}/events/{event_id}")


async def page_transfers(request: web.Request) -> web.StreamResponse:
    """The transfer requests the person may read (audited), and the request form."""
    user = await require_user(request, TRANSFER_ROLES)
    access = Access(user.role, user.scope)
    found = await _service(request).transfers(access, user.as_actor())
    return await render(
        request, "samu/transfers.html", transfers=found, prefix=PREFIX, access=access,
        transitions=TRANSITIONS,
    )  # fmt: skip


async def page_request_transfer(request: web.Request) -> web.StreamResponse:
    """The form requesting a transfer."""
    user = await require_user(request, TRANSFER_ROLES)
    form = await request.post()
    try:
        await _service(request).request_transfer(
            Access(user.role, user.scope), user.as_actor(), str(form.get("patient", "")),
            str(form.get("from_finess", "")), str(form.get("to_finess", "")),
            str(form.get("departement", "")).strip(), str(form.get("reason", "")),
        )  # fmt: skip
        await flash(request, _text_for(request, "Transfer requested."), "success")
    except BadRequest as exc:
        await flash(request, exc.message, "error")
    return see_other(f"{PREFIX}/transfers")


def _text_for(request: web.Request, message: str) -> str:
    """``message`` in the page's language."""
    pages = pages_of(request)
    return pages.gettext(pages.language(request), message)


async def page_move_transfer(request: web.Request) -> web.StreamResponse:
    """The buttons moving a transfer request."""
    user = await require_user(request, TRANSFER_ROLES)
    form = await request.post()
    await _service(request).move_transfer(
        Access(user.role, user.scope), user.as_actor(), _int(request, "transfer"),
        str(form.get("status", "")),
    )  # fmt: skip
    return see_other(f"{PREFIX}/transfers")
