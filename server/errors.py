"""ROBERT's refusals, and the one place where protocol errors become HTTP answers.

Status codes follow robert.md (the contract the real apps hold the server to): 400 malformed
(an EBID that does not decrypt to its epoch included, as the reference), 401 failed
authentication (bad MAC, bad captcha or submission code), 409 replayed request, 410
captcha used or expired, 413 body too large, 429 status asked too soon, 430 no server key for
that EBID any more or no such registration (register again: the only code the apps act on).

Every refusal is a fresh exception: a module-level instance raised again and again keeps a
traceback that grows with each raise and holds every caller's frame (and the registration
keys in them) alive.
"""

from __future__ import annotations

import sqlite3

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError as RedisResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from kit.http import (
    Conflict,
    HttpError,
    Malformed,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from protocol import errors as pe
from server.store.base import StoreUnavailable

_PROTOCOL_STATUS: list[tuple[type[pe.ProtocolError], int, str]] = [
    (pe.KeyUnavailable, 430, "key_unavailable"),
    (pe.BadMac, 401, "bad_mac"),
    (pe.EpochMismatch, 400, "bad_ebid"),
    (pe.StaleTime, 400, "clock_skew"),
    (pe.UnknownCountry, 400, "unknown_country"),
    (pe.BadLength, 400, "bad_length"),
    (pe.BadFormat, 400, "bad_format"),
]


def from_protocol(error: pe.ProtocolError) -> HttpError:
    """The HTTP answer for a protocol error (the message never echoes secrets or inputs)."""
    for kind, status, code in _PROTOCOL_STATUS:
        if isinstance(error, kind):
            return HttpError(str(error), code, status=status)
    return HttpError(str(error), "bad_request", status=400)


STORE_BUSY = (RedisConnectionError, RedisTimeoutError, StoreUnavailable, sqlite3.OperationalError)
"""Store failures that say "not now" (no connection free within the wait, Redis unreachable
or loading, the SQLite file locked past its busy timeout): 503 with ``Retry-After``, the
request changed nothing the client relies on."""


def translate(error: Exception) -> HttpError | None:
    """The guard's translator: protocol errors to HTTP answers, a store that cannot serve now
    to 503, anything else not ours."""
    if isinstance(error, pe.ProtocolError):
        return from_protocol(error)
    if isinstance(error, STORE_BUSY) or (
        isinstance(error, RedisResponseError) and str(error).startswith(("LOADING", "BUSY"))
    ):
        return Unavailable("the store is busy; retry later", "store_unavailable", retry_after=1)
    return None


def malformed(message: str) -> HttpError:
    """400 for a body that is not what the endpoint takes."""
    return Malformed(message)


def unknown_registration() -> HttpError:
    """430: the EBID decrypts to no registration (unknown, or unregistered). The apps register
    again on 430 only, as when the EBID's key is gone [robert.md: the contract]."""
    return HttpError("no such registration: register again", "unknown_registration", status=430)


def too_soon() -> HttpError:
    """429: a status request within the minimum interval of the last one."""
    return TooManyRequests("status already checked recently", "too_soon")


def replayed() -> HttpError:
    """409: the same authenticated request seen before."""
    return Conflict("request already seen", "replayed")


def bad_captcha() -> HttpError:
    """401: the registration gate refused the answer."""
    return Unauthorized("captcha answer refused", "bad_captcha")
