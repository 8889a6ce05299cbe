"""The HTTP edge every service shares: one error hierarchy, one error guard, one JSON reader.

Every refusal is a 4xx JSON body ``{"success": false, "error": CODE, "message": TEXT}``
(a route may render its own protocol's error instead: an HL7 ACK, a FHIR OperationOutcome,
an HTML page); nothing about the request (address, body, identifiers) is logged, and a fault
of ours is a 500 with the same envelope, never a traceback.

The guard is wrapped around each route as it is mounted (``add_route``) rather than installed
as an aiohttp middleware: with any middleware, aiohttp also runs its own per-request wrapper,
which cost the ROBERT status path about 4.5 µs of the ~57 µs it took.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

import jinja2
import orjson
from aiohttp import web

log = logging.getLogger("kit.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_HEADERS = {"Content-Type": "application/json"}

SMALL_BODY = 16 * 1024
"""Default largest JSON body a reader accepts."""


# --- the error hierarchy -----------------------------------------------------------------------
class HttpError(Exception):
    """An answer other than success: HTTP status, a stable machine code, a human message.

    ``headers`` go out with the answer (``Retry-After``, ``Allow``...). Subclasses fix the
    status; any status can be raised directly (ROBERT's 430, for one).
    """

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers: dict[str, str] = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"

    def body(self) -> dict[str, object]:
        """The JSON answer: the error envelope (``error_body``). A refusal that says more
        (the candidates among which to choose, say) extends it."""
        return error_body(self.code, self.message)


class BadRequest(HttpError):
    """400: the request is not what the endpoint takes."""

    status, code = 400, "bad_request"


class Malformed(BadRequest):
    """400: the body is not the JSON the endpoint takes (wrong type, fields missing or extra)."""

    code = "malformed"


class Unauthorized(HttpError):
    """401: no credentials, or credentials that do not authenticate."""

    status, code = 401, "unauthorized"


class Forbidden(HttpError):
    """403: authenticated, but the role or scope does not allow the action."""

    status, code = 403, "forbidden"


class NotFound(HttpError):
    """404: no such resource (or not one the caller may see)."""

    status, code = 404, "not_found"


class MethodNotAllowed(HttpError):
    """405: the path exists, with other methods (listed in ``Allow``)."""

    status, code = 405, "method_not_allowed"


class Conflict(HttpError):
    """409: the request conflicts with the resource's state (exists already, replayed...)."""

    status, code = 409, "conflict"


class Gone(HttpError):
    """410: the resource existed and is no more (a used or expired one-time id)."""

    status, code = 410, "gone"


class PayloadTooLarge(HttpError):
    """413: the body is larger than the endpoint accepts."""

    status, code = 413, "too_large"

    def __init__(self, message: str = "request body too large", code: str | None = None) -> None:
        super().__init__(message, code)


class UnsupportedMediaType(HttpError):
    """415: the body's content type is not one the endpoint reads."""

    status, code = 415, "unsupported_media_type"


class Unprocessable(HttpError):
    """422: well-formed, but refused by a business rule."""

    status, code = 422, "unprocessable"


class TooManyRequests(HttpError):
    """429: a per-client limit; ``Retry-After`` says when to come back."""

    status, code = 429, "too_many_requests"

    def __init__(self, message: str, code: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message, code, headers={"Retry-After": str(max(1, int(retry_after)))})


class Unavailable(HttpError):
    """503: the service cannot take the request now (overloaded, a dependency down)."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, code: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message, code, headers={"Retry-After": str(max(1, int(retry_after)))})


# --- answers -----------------------------------------------------------------------------------
def json_response(body: object, status: int = 200) -> web.Response:
    """A JSON answer serialised with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, headers=JSON_HEADERS)


def error_body(code: str, message: str) -> dict[str, object]:
    """The JSON error envelope."""
    return {"success": False, "error": code, "message": message}


def error_response(error: HttpError) -> web.Response:
    """The JSON answer of an ``HttpError`` (its ``body``), with its headers."""
    response = json_response(error.body(), error.status)
    response.headers.update(error.headers)
    return response


OPEN_TO_ALL_SITES = {"Access-Control-Allow-Origin": "*"}
"""CORS of a public API without credentials: any site's page may read the answer."""


def open_error(request: web.Request, error: HttpError) -> web.Response:
    """An ``ErrorRenderer`` for a public API read by other sites' pages: the JSON error with
    ``OPEN_TO_ALL_SITES`` as the API's successes have, so that such a page can read why it
    was refused (a browser hides an answer without it)."""
    response = error_response(error)
    response.headers.update(OPEN_TO_ALL_SITES)
    return response


def see_other(location: str) -> web.Response:
    """A 303 redirect, returned rather than raised (a raised one would pass the guard)."""
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


# --- ids ---------------------------------------------------------------------------------------
ROW_ID_MAX = 2**31 - 1
"""The largest id a table holds (PostgreSQL's ``integer``): a larger one names nothing."""


def row_id(
    value: object,
    name: str,
    where: Literal["path", "query", "body"],
    *,
    least: int = 1,
    missing: str | None = None,
) -> int:
    """A row's id taken from a request, one rule for every service.

    In a ``path`` or ``query`` it is text of ASCII digits, in a ``body`` a JSON whole number
    (not a boolean); anything else is a 400 "``name`` must be a number". A number no row can
    have (below ``least``, above ``ROW_ID_MAX``, which would overflow the database's integer)
    is a 404 in a path (no such resource; ``missing`` is its error code, the one the service
    gives an id that names nothing) and a 400 in a query or body (the request is wrong).
    """
    if where == "body":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{name} must be a number")
        found = value
    else:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise BadRequest(f"{name} must be a number")
        digits = value.lstrip("0")  # int() of a long text is slow, of 4,300 digits refused
        found = ROW_ID_MAX + 1 if len(digits) > len(str(ROW_ID_MAX)) else int(value)
    if least <= found <= ROW_ID_MAX:
        return found
    if where == "path":
        raise NotFound(f"no such {name}", missing)
    raise BadRequest(f"{name} must be an id from {least} to {ROW_ID_MAX}")


# --- the JSON reader ---------------------------------------------------------------------------
class RequestTimeout(HttpError):
    """408: the client did not send its request in time."""

    status, code = 408, "request_timeout"


async def read_body(request: web.Request, limit: int, timeout: float | None = None) -> bytes:
    """The request body, refusing more than ``limit`` bytes with 413 (before reading it all
    when the client announced its length) and, with ``timeout``, a body that has not fully
    arrived after that many seconds with 408 (a body already received costs no timer)."""
    content = request.content
    if content.is_eof() and not content.at_eof():
        # All of it has arrived and nothing read it yet (the usual case): taken as it lies,
        # without an await and a copy, and measured below. (Read before, by a middleware:
        # request.read() has it.)
        body = content.read_nowait()
    elif (length := request.content_length) is not None and length > limit:
        raise PayloadTooLarge()  # refused before the rest of it is waited for
    elif timeout is None:
        body = await request.read()
    else:
        try:
            async with asyncio.timeout(timeout):
                body = await request.read()
        except TimeoutError:
            raise RequestTimeout("request body too slow") from None
    if len(body) > limit:
        raise PayloadTooLarge()
    return body


def parse_json_object(
    body: bytes, required: frozenset[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``body`` as a JSON object with exactly the allowed fields, or ``Malformed``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("body is not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("body must be a JSON object")
    if data.keys() == required:  # the usual case, one comparison
        return data
    missing = required - data.keys()
    if missing:
        raise Malformed(f"missing fields: {', '.join(sorted(missing))}")
    unknown = data.keys() - required - optional
    if unknown:
        raise Malformed(f"unknown fields: {', '.join(sorted(map(str, unknown)))[:200]}")
    return data


async def read_json(
    request: web.Request,
    required: frozenset[str],
    optional: frozenset[str] = frozenset(),
    limit: int = SMALL_BODY,
    timeout: float | None = None,
) -> dict[str, Any]:
    """The request's JSON object with exactly the allowed fields, or a 4xx."""
    return parse_json_object(await read_body(request, limit, timeout), required, optional)


# --- the guard ---------------------------------------------------------------------------------
class RequestObserver(Protocol):
    """What the guard reports each answered request to (``kit.metrics.HttpMetrics``)."""

    def observe(self, endpoint: str, status: int, seconds: float, reason: str) -> None:
        """Count one answered request; ``reason`` is the error code of a refusal, else ''."""


Translator = Callable[[Exception], HttpError | None]
"""Maps a domain exception to the HTTP error it means, or None if it is not one of its own."""

ErrorRenderer = Callable[[web.Request, HttpError], web.StreamResponse]
"""Renders a refusal in a route's own protocol (HL7 ACK, FHIR OperationOutcome, HTML)."""


class _NoMetrics:
    def observe(self, endpoint: str, status: int, seconds: float, reason: str) -> None:
        return None


NO_METRICS: RequestObserver = _NoMetrics()


class InFlight:
    """A bound on the requests one process works on at once: past ``limit``, the guard
    answers 503 with ``Retry-After`` at once instead of queueing (the accepted ones keep their
    latency, the excess is refused quickly and can come back)."""

    __slots__ = ("busy", "limit", "retry_after", "seen")

    def __init__(self, limit: int, retry_after: int = 1) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.busy = 0
        self.seen = 0
        """Requests that reached the guard, refused ones included (an activity count, e.g.
        for :class:`kit.memory.IdleTrimmer`)."""


_CLIENT_GONE = (ConnectionResetError,)


def _as_http_error(exc: BaseException, translators: Iterable[Translator]) -> HttpError | None:
    if isinstance(exc, HttpError):
        return exc
    for translate in translators:
        mapped = translate(exc)  # type: ignore[arg-type]
        if mapped is not None:
            return mapped
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge()
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        error = HttpError(exc.reason, exc.reason.lower().replace(" ", "_"), status=exc.status)
        if "Allow" in exc.headers:
            error.headers["Allow"] = exc.headers["Allow"]
        return error
    return None


def guarded(
    endpoint: str,
    handler: Handler,
    metrics: RequestObserver = NO_METRICS,
    translators: Iterable[Translator] = (),
    render: ErrorRenderer | None = None,
    gate: InFlight | None = None,
) -> Handler:
    """``handler`` with every failure mapped to an answer (JSON, or ``render``'s) and every
    answer counted in ``metrics`` under ``endpoint``; 5xx only for the server's own faults.
    With ``gate``, a request beyond its limit is answered 503 with ``Retry-After`` unworked.

    A client that goes away mid-request (its upload cut short included) is not a fault of
    ours: it is counted under the reason ``client_gone`` and nothing is logged.
    """
    translators = tuple(translators)

    async def answer(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        reason = ""
        if gate is not None:
            gate.seen += 1
        if gate is not None and gate.busy >= gate.limit:
            busy = Unavailable("busy; retry later", "overloaded", retry_after=gate.retry_after)
            response = render(request, busy) if render else error_response(busy)
            metrics.observe(endpoint, response.status, time.perf_counter() - started, busy.code)
            return response
        if gate is not None:
            gate.busy += 1
        try:
            response = await handler(request)
        except Exception as exc:
            error = _as_http_error(exc, translators)
            if error is None:
                if isinstance(exc, _CLIENT_GONE) or _client_gone(request):
                    error = HttpError("client went away", "client_gone", status=400)
                else:
                    log.exception("internal error on %s", endpoint)
                    error = HttpError("internal error", "internal", status=500)
            reason = error.code
            response = render(request, error) if render else error_response(error)
        finally:
            if gate is not None:
                gate.busy -= 1
        metrics.observe(endpoint, response.status, time.perf_counter() - started, reason)
        return response

    return answer


def _client_gone(request: web.Request) -> bool:
    """True if the client's connection is closed (its upload was cut short, say)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    metrics: RequestObserver = NO_METRICS,
    translators: Iterable[Translator] = (),
    render: ErrorRenderer | None = None,
    name: str | None = None,
    gate: InFlight | None = None,
) -> None:
    """Mount ``handler`` guarded (GET routes answer HEAD too, as aiohttp's ``add_get``)."""
    answer = guarded(path, handler, metrics, translators, render, gate)
    if method == "GET":
        app.router.add_get(path, answer, name=name)
    else:
        app.router.add_route(method, path, answer, name=name)


def add_fallback(app: web.Application, metrics: RequestObserver = NO_METRICS) -> None:
    """The last route: a JSON 405 (with Allow) for a known path asked with another method, a
    JSON 404 for any other path. Added after every other route of ``app``."""
    allowed: dict[str, set[str]] = {}
    for resource in app.router.resources():
        for route in resource:
            allowed.setdefault(resource.canonical, set()).add(route.method)

    async def fallback(request: web.Request) -> web.StreamResponse:
        methods = allowed.get(request.path)
        if methods:
            raise MethodNotAllowed(
                f"{request.method} is not allowed here",
                headers={"Allow": ",".join(sorted(methods))},
            )
        raise NotFound("no such path")

    # [\s\S], not '.': a path with an encoded newline (/a%0Ab) must reach the fallback too.
    app.router.add_route("*", r"/{tail:[\s\S]*}", guarded("unmatched", fallback, metrics))


# --- the index page ----------------------------------------------------------------------------
_INDEX = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b}
h1{font-size:1.5rem} a{color:#0a4fa3} li{margin:.4rem 0} .what{color:#444}
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ intro }}</p>
<ul>{% for href, label, what in links %}
<li><a href="{{ href }}">{{ label }}</a> <span class="what">{{ what }}</span></li>
{% endfor %}</ul>
</body></html>
"""
)


def index_page(title: str, intro: str, links: Iterable[tuple[str, str, str]]) -> web.Response:
    """A small HTML page linking what a process serves: (href, label, description) each."""
    html = _INDEX.render(title=title, intro=intro, links=list(links))
    response = web.Response(text=html, content_type="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
    )
    return response


def mount_service(parent: web.Application, prefix: str, app: web.Application) -> None:
    """Mount a service's application at ``prefix`` of ``parent`` (``prefix`` without its slash
    redirects to ``prefix/``): how every service sits in ``robert dev`` and alone."""

    async def redirect(request: web.Request) -> web.Response:
        return see_other(f"{prefix}/")

    parent.router.add_get(prefix, redirect)
    parent.add_subapp(prefix, app)


def standalone(prefix: str, app: web.Application) -> web.Application:
    """A service's application alone on its port: mounted at ``prefix``, ``/`` redirecting to
    its home page, JSON 404/405 for anything else."""
    root = web.Application()

    async def index(request: web.Request) -> web.Response:
        return see_other(f"{prefix}/")

    root.router.add_get("/", index)
    mount_service(root, prefix, app)
    add_fallback(root)
    return root
