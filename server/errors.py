"""HTTP errors of the API, and the one place where protocol errors become HTTP answers.

Status codes follow robert.md: 400 malformed, 401 failed authentication (bad MAC, unknown
registration, bad captcha or submission code), 409 replayed request, 413 body too large,
429 status asked too soon, 430 no server key for that EBID any more (register again).
"""

from __future__ import annotations

from protocol import errors as pe


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable machine code, a human message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


_PROTOCOL_STATUS: list[tuple[type[pe.ProtocolError], int, str]] = [
    (pe.KeyUnavailable, 430, "key_unavailable"),
    (pe.BadMac, 401, "bad_mac"),
    (pe.EpochMismatch, 401, "bad_ebid"),
    (pe.StaleTime, 400, "clock_skew"),
    (pe.UnknownCountry, 400, "unknown_country"),
    (pe.BadLength, 400, "bad_length"),
    (pe.BadFormat, 400, "bad_format"),
]


def from_protocol(error: pe.ProtocolError) -> ApiError:
    """The HTTP answer for a protocol error (the message never echoes secrets or inputs)."""
    for kind, status, code in _PROTOCOL_STATUS:
        if isinstance(error, kind):
            return ApiError(status, code, str(error))
    return ApiError(400, "bad_request", str(error))


def malformed(message: str) -> ApiError:
    """400 for a body that is not what the endpoint takes."""
    return ApiError(400, "malformed", message)


UNKNOWN_REGISTRATION = ApiError(401, "unknown_registration", "no such registration")
TOO_SOON = ApiError(429, "too_soon", "status already checked recently")
REPLAYED = ApiError(409, "replayed", "request already seen")
BAD_CAPTCHA = ApiError(401, "bad_captcha", "captcha answer refused")
