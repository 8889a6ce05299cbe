"""Errors of the code service: each is a ``kit.http.HttpError``, so the HTTP adapters need no
mapping and the command line prints its message in one line."""

from __future__ import annotations

from kit.http import HttpError


class CodesError(HttpError):
    """Base class of the code service's refusals."""

    status, code = 400, "codes_error"


class BadRequest(CodesError):
    """A malformed or out-of-range input (kind, date, count, organisation name)."""

    code = "bad_request"


class BadTestDate(BadRequest):
    """A test date that is not a date, is after today, or is too old; ``reason`` says which
    (``format``, ``future``, ``too_old``), so that a page can say what to do in its language."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthFailed(CodesError):
    """No API key, or one that matches no organisation."""

    status, code = 401, "bad_api_key"


class Forbidden(CodesError):
    """The organisation's role does not allow the action."""

    status, code = 403, "forbidden"


class NotFound(CodesError):
    """No such code (or not one the caller may see), or no such organisation."""

    status, code = 404, "not_found"


class Conflict(CodesError):
    """The organisation exists already, or the code cannot be revoked."""

    status, code = 409, "conflict"


class TooManyAttempts(CodesError):
    """A rate limit on failed verifications was reached; ``Retry-After`` says when to retry."""

    status, code = 429, "too_many_attempts"

    def __init__(self, message: str, retry_after: int = 60) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
