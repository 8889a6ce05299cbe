"""Cross-cutting HTTP concerns, written once: error mapping to JSON, metrics per endpoint,
wrapped around each route as it is mounted (``add_route``), with a JSON fallback route.

Every refusal is a 4xx JSON body ``{"success": false, "error": CODE, "message": TEXT}``;
nothing about the request (address, body, identifiers) is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from protocol.errors import ProtocolError
from server.api.appkeys import SERVICE
from server.errors import ApiError, from_protocol
from server.metrics import Metrics

log = logging.getLogger("robert.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: object, status: int = 200) -> web.Response:
    """A JSON answer serialised with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, headers=JSON_HEADERS)


def error_response(status: int, code: str, message: str) -> web.Response:
    """The JSON error envelope."""
    return json_response({"success": False, "error": code, "message": message}, status)


def guarded(endpoint: str, handler: Handler, metrics: Metrics) -> Handler:
    """``handler`` with every failure mapped to a JSON answer and every answer counted in
    ``metrics`` under ``endpoint``; 5xx only for the server's own faults.

    Applied to each route when it is added rather than as an aiohttp middleware: with any
    middleware, aiohttp also runs its own per-request wrapper, and the pair cost about 4.5 µs
    of the ~57 µs a status request took (``loadtest.bench``), for what one closure does here.
    """

    async def answer(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        reason = ""
        try:
            response = await handler(request)
        except ApiError as exc:
            response, reason = error_response(exc.status, exc.code, exc.message), exc.code
        except ProtocolError as exc:
            api = from_protocol(exc)
            response, reason = error_response(api.status, api.code, api.message), api.code
        except web.HTTPRequestEntityTooLarge:
            response = error_response(413, "too_large", "request body too large")
            reason = "too_large"
        except web.HTTPException as exc:
            reason = exc.reason.lower().replace(" ", "_")
            response = error_response(exc.status, reason, exc.reason)
            if "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        except Exception:
            log.exception("internal error on %s", endpoint)
            response, reason = error_response(500, "internal", "internal error"), "internal"
        metrics.observe(endpoint, response.status, time.perf_counter() - started, reason)
        return response

    return answer


def add_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Mount ``handler`` guarded (GET routes answer HEAD too, as aiohttp's ``add_get``)."""
    answer = guarded(path, handler, app[SERVICE].metrics)
    if method == "GET":
        app.router.add_get(path, answer)
    else:
        app.router.add_route(method, path, answer)


def add_fallback(app: web.Application) -> None:
    """The last route: a JSON 405 (with Allow) for a known path asked with another method, a
    JSON 404 for any other path. Added after every other route."""
    allowed: dict[str, set[str]] = {}
    for resource in app.router.resources():
        for route in resource:
            allowed.setdefault(resource.canonical, set()).add(route.method)

    async def fallback(request: web.Request) -> web.StreamResponse:
        methods = allowed.get(request.path)
        if methods:
            raise web.HTTPMethodNotAllowed(request.method, methods)
        raise web.HTTPNotFound()

    # [\s\S], not '.': a path with an encoded newline (/a%0Ab) must reach the fallback too.
    answer = guarded("unmatched", fallback, app[SERVICE].metrics)
    app.router.add_route("*", r"/{tail:[\s\S]*}", answer)
