"""Cross-cutting HTTP concerns, written once: error mapping to JSON, metrics per endpoint.

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

log = logging.getLogger("robert.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


JSON_HEADERS = {"Content-Type": "application/json"}


def json_response(body: object, status: int = 200) -> web.Response:
    """A JSON answer serialised with orjson."""
    return web.Response(body=orjson.dumps(body), status=status, headers=JSON_HEADERS)


def error_response(status: int, code: str, message: str) -> web.Response:
    """The JSON error envelope."""
    return json_response({"success": False, "error": code, "message": message}, status)


def _endpoint(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a JSON answer and count it; 5xx only for the server's own faults."""
    metrics = request.app[SERVICE].metrics
    endpoint = _endpoint(request)
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
        response, reason = error_response(413, "too_large", "request body too large"), "too_large"
    except web.HTTPException as exc:
        reason = exc.reason.lower().replace(" ", "_")
        response = error_response(exc.status, reason, exc.reason)
    except Exception:
        log.exception("internal error on %s", endpoint)
        response, reason = error_response(500, "internal", "internal error"), "internal"
    metrics.observe(endpoint, response.status, time.perf_counter() - started, reason)
    return response
