"""Authenticated requests: status, unregister, delete exposure history
[robert.md: Authenticated requests; the contract the real apps hold the server to].

The phone proves it holds K_A without revealing ID_A: it sends one of its EBIDs (the current
epoch's, or its last one when it holds none for now: the apps do), that EBID's epoch, the low
32 bits of its NTP time and
``mac = HMAC-SHA256(K_A, prefix || EBID || epochId (4 bytes) || time (4 bytes))``.
The prefix separates the three kinds of request from each other and from HELLOs. The server
accepts any EBID whose day key it still holds; freshness comes from ``time``.
"""

from __future__ import annotations

import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from protocol.epochs import low32, wrapped_distance
from protocol.errors import BadFormat, BadLength, BadMac, StaleTime
from protocol.types import EBID_SIZE, MacKey

REQUEST_MAC_SIZE = 32
REQUEST_TIME_SIZE = 4
CLOCK_TOLERANCE = 60
"""Seconds the phone's clock may differ from the server's (later reference: 60 s)."""


class RequestKind(IntEnum):
    """MAC prefixes (one byte) of the authenticated requests."""

    STATUS = 0x02
    UNREGISTER = 0x03
    DELETE_HISTORY = 0x04


def _b64(value: Any, name: str, size: int | None, max_size: int = 4096) -> bytes:
    if not isinstance(value, str) or len(value) > max_size * 4 // 3 + 4:
        raise BadFormat(f"{name} must be a base64 string")
    try:  # a str of anything but ASCII is a ValueError
        raw = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise BadFormat(f"{name} is not valid base64") from exc
    if size is None:
        return raw
    if len(raw) != size:
        raise BadLength(f"{name} must decode to {size} bytes, got {len(raw)}")
    return raw


def json_integer(value: Any) -> int | None:
    """A JSON number that is an integer, as JSON Schema's ``integer`` has it (``678.0`` is
    one: the reference's Jackson reads it into an int field too), else None (booleans,
    fractions, strings, infinities)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def b64encode(raw: bytes) -> str:
    """Standard base64 with padding, as every binary field of the API carries it."""
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def b64decode(value: Any, name: str, size: int | None, max_size: int = 4096) -> bytes:
    """Decode a base64 field of known ``size`` (or any size up to ``max_size``), raising only
    protocol errors."""
    return _b64(value, name, size, max_size)


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """The four fields shared by status, unregister and delete-history requests."""

    ebid: bytes
    epoch_id: int
    time: int
    mac: bytes

    def __post_init__(self) -> None:
        if len(self.ebid) != EBID_SIZE:
            raise BadLength(f"ebid must be {EBID_SIZE} bytes")
        if len(self.mac) != REQUEST_MAC_SIZE:
            raise BadLength(f"mac must be {REQUEST_MAC_SIZE} bytes")
        if not 0 <= self.epoch_id <= 0xFFFF_FFFF:
            raise BadFormat("epochId must be a 32-bit unsigned integer")
        if not 0 <= self.time <= 0xFFFF_FFFF:
            raise BadFormat("time must be a 32-bit unsigned integer")

    def to_fields(self) -> dict[str, Any]:
        """The JSON fields of the request body: ebid, epochId, time, mac."""
        return {
            "ebid": b64encode(self.ebid),
            "epochId": self.epoch_id,
            "time": b64encode(self.time.to_bytes(REQUEST_TIME_SIZE, "big")),
            "mac": b64encode(self.mac),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> AuthRequest:
        """Parse the JSON fields of a request body (extra fields are the caller's concern)."""
        epoch_id = json_integer(fields.get("epochId"))
        if epoch_id is None:
            raise BadFormat("epochId must be an integer")
        return cls(  # ebid, epoch_id, time, mac (positional: every status request comes here)
            _b64(fields.get("ebid"), "ebid", EBID_SIZE),
            epoch_id,
            int.from_bytes(_b64(fields.get("time"), "time", REQUEST_TIME_SIZE), "big"),
            _b64(fields.get("mac"), "mac", REQUEST_MAC_SIZE),
        )


def request_mac(k_a: MacKey, kind: RequestKind, ebid: bytes, epoch_id: int, time32: int) -> bytes:
    """HMAC-SHA256(K_A, prefix || EBID || epochId (4, big-endian) || time (4, big-endian))."""
    message = bytes((kind,)) + ebid + epoch_id.to_bytes(4, "big") + time32.to_bytes(4, "big")
    return hmac.digest(k_a.material, message, "sha256")


def build_request(
    k_a: MacKey, kind: RequestKind, ebid: bytes, epoch_id: int, now_ntp: int
) -> AuthRequest:
    """The authenticated request a phone sends at ``now_ntp`` with its current EBID."""
    time32 = low32(now_ntp)
    return AuthRequest(ebid, epoch_id, time32, request_mac(k_a, kind, ebid, epoch_id, time32))


def verify_request_mac(k_a: MacKey, kind: RequestKind, request: AuthRequest) -> None:
    """Raise BadMac unless the request's MAC verifies under K_A (constant-time compare)."""
    expected = request_mac(k_a, kind, request.ebid, request.epoch_id, request.time)
    if not hmac.compare_digest(expected, request.mac):
        raise BadMac("request MAC does not verify")


def check_request_time(time32: int, server_ntp: int, tolerance: int = CLOCK_TOLERANCE) -> None:
    """Raise StaleTime if the phone's clock is more than ``tolerance`` s from the server's."""
    if wrapped_distance(time32, low32(server_ntp), 32) > tolerance:
        raise StaleTime("request time outside tolerance")
