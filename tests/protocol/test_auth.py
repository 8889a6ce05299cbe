"""Authenticated requests (status, unregister, delete history): MACs, prefixes, parsing."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.auth import (
    AuthRequest,
    RequestKind,
    build_request,
    check_request_time,
    request_mac,
    verify_request_mac,
)
from protocol.errors import BadMac, ProtocolError, StaleTime
from protocol.types import MacKey

KEY = MacKey(bytes(range(32)))
NOW = 3_900_000_000


def test_mac_layout() -> None:
    import hashlib
    import hmac

    expected = hmac.new(
        KEY.material,
        b"\x02" + bytes(8) + (7).to_bytes(4, "big") + NOW.to_bytes(4, "big"),
        hashlib.sha256,
    ).digest()
    assert request_mac(KEY, RequestKind.STATUS, bytes(8), 7, NOW) == expected


def test_prefixes_separate_the_requests() -> None:
    request = build_request(KEY, RequestKind.STATUS, bytes(8), 7, NOW)
    verify_request_mac(KEY, RequestKind.STATUS, request)
    for kind in (RequestKind.UNREGISTER, RequestKind.DELETE_HISTORY):
        with pytest.raises(BadMac):
            verify_request_mac(KEY, kind, request)


def test_clock_tolerance() -> None:
    check_request_time(NOW, NOW + 60)
    with pytest.raises(StaleTime):
        check_request_time(NOW, NOW + 61)


requests = st.builds(
    AuthRequest,
    ebid=st.binary(min_size=8, max_size=8),
    epoch_id=st.integers(0, 2**32 - 1),
    time=st.integers(0, 2**32 - 1),
    mac=st.binary(min_size=32, max_size=32),
)


@given(requests)
def test_fields_round_trip(request: AuthRequest) -> None:
    assert AuthRequest.from_fields(request.to_fields()) == request


@given(
    kind=st.sampled_from(list(RequestKind)),
    ebid=st.binary(min_size=8, max_size=8),
    epoch=st.integers(0, 2**24 - 1),
    now=st.integers(0, 2**32 - 1),
    bit=st.integers(0, 8 * (8 + 4 + 4 + 32) - 1),
)
def test_any_single_bit_flip_fails(
    kind: RequestKind, ebid: bytes, epoch: int, now: int, bit: int
) -> None:
    request = build_request(KEY, kind, ebid, epoch, now)
    raw = bytearray(
        request.ebid
        + request.epoch_id.to_bytes(4, "big")
        + request.time.to_bytes(4, "big")
        + request.mac
    )
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    flipped = AuthRequest(
        bytes(raw[0:8]),
        int.from_bytes(raw[8:12], "big"),
        int.from_bytes(raw[12:16], "big"),
        bytes(raw[16:48]),
    )
    with pytest.raises(BadMac):
        verify_request_mac(KEY, kind, flipped)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["ebid", "epochId", "time", "mac", "x"]), json_values))
def test_from_fields_raises_only_protocol_errors(fields: dict[str, object]) -> None:
    with contextlib.suppress(ProtocolError):
        AuthRequest.from_fields(fields)


@given(st.text(max_size=60), st.binary(max_size=60))
def test_base64_garbage(text: str, raw: bytes) -> None:
    for value in (text, raw.decode("latin-1")):
        with contextlib.suppress(ProtocolError):
            AuthRequest.from_fields({"ebid": value, "epochId": 1, "time": value, "mac": value})
