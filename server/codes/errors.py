"""Errors of the code service, each carrying the HTTP status and code the adapters answer."""

from __future__ import annotations


class CodesError(Exception):
    """Base class: ``status`` and ``code`` say how the HTTP layer reports it."""

    status = 400
    code = "codes_error"


class BadRequest(CodesError):
    """A malformed or out-of-range input (kind, date, count, organisation name)."""

    code = "bad_request"


class AuthFailed(CodesError):
    """No API key, or one that matches no organisation."""

    status = 401
    code = "bad_api_key"


class Forbidden(CodesError):
    """The organisation's role does not allow the action."""

    status = 403
    code = "forbidden"


class NotFound(CodesError):
    """No such code (or not one the caller may see), or no such organisation."""

    status = 404
    code = "not_found"


class Conflict(CodesError):
    """The organisation exists already, or the code cannot be revoked."""

    status = 409
    code = "conflict"


class TooManyAttempts(CodesError):
    """A rate limit on failed verifications was reached."""

    status = 429
    code = "too_many_attempts"
