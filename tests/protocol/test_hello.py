"""HELLO messages: layout, MAC, time window, and properties over arbitrary inputs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.epochs import low16
from protocol.errors import BadLength, BadMac, ProtocolError, StaleTime
from protocol.hello import (
    HELLO_SIZE,
    Hello,
    build_hello,
    build_hellos,
    hello_mac,
    split_hellos,
    verify_hello,
)
from protocol.types import MacKey

KEY = MacKey(bytes(range(32)))
NOW = 3_900_000_000


def test_layout() -> None:
    hello = build_hello(KEY, b"\x21", bytes(range(8)), NOW)
    raw = hello.to_bytes()
    assert len(raw) == HELLO_SIZE
    assert raw[0:1] == b"\x21"
    assert raw[1:9] == bytes(range(8))
    assert int.from_bytes(raw[9:11], "big") == low16(NOW)
    assert raw[11:16] == hello_mac(KEY, b"\x21", bytes(range(8)), low16(NOW))


def test_verify_accepts_fresh_hello() -> None:
    verify_hello(KEY, build_hello(KEY, b"\x21", bytes(8), NOW), NOW + 179)


def test_replayed_outside_window_is_rejected() -> None:
    hello = build_hello(KEY, b"\x21", bytes(8), NOW)
    with pytest.raises(StaleTime):
        verify_hello(KEY, hello, NOW + 181)
    with pytest.raises(StaleTime):
        verify_hello(KEY, hello, NOW - 3600)


def test_time_window_wraps_around_16_bits() -> None:
    now = (NOW | 0xFFFF) - 10  # 10 s before the 16-bit counter wraps
    verify_hello(KEY, build_hello(KEY, b"\x21", bytes(8), now), now + 60)


def test_wrong_key_fails() -> None:
    with pytest.raises(BadMac):
        verify_hello(MacKey(bytes(32)), build_hello(KEY, b"\x21", bytes(8), NOW), NOW)


hellos = st.builds(
    Hello,
    ecc=st.binary(min_size=1, max_size=1),
    ebid=st.binary(min_size=8, max_size=8),
    time=st.integers(0, 0xFFFF),
    mac=st.binary(min_size=5, max_size=5),
)


@given(hellos)
def test_parse_build_round_trip(hello: Hello) -> None:
    assert Hello.parse(hello.to_bytes()) == hello


@given(st.binary(max_size=40))
def test_parser_raises_only_protocol_errors(data: bytes) -> None:
    try:
        Hello.parse(data)
    except ProtocolError:
        assert len(data) != HELLO_SIZE


@given(
    ecc=st.binary(min_size=1, max_size=1),
    ebid=st.binary(min_size=8, max_size=8),
    now=st.integers(0, 2**32 - 1),
    bit=st.integers(0, 8 * HELLO_SIZE - 1),
)
def test_any_single_bit_flip_fails_verification(
    ecc: bytes, ebid: bytes, now: int, bit: int
) -> None:
    raw = bytearray(build_hello(KEY, ecc, ebid, now).to_bytes())
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises((BadMac, StaleTime)):
        verify_hello(KEY, Hello.parse(bytes(raw)), now, tolerance=180)


def test_bad_field_sizes() -> None:
    with pytest.raises(BadLength):
        Hello(b"", bytes(8), 0, bytes(5))
    with pytest.raises(BadLength):
        Hello(b"\x00", bytes(8), 1 << 16, bytes(5))


hello_inputs = st.lists(
    st.tuples(
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=1, max_size=1),
        st.binary(min_size=8, max_size=8),
        st.integers(0, 2**32 - 1),
    ),
    max_size=20,
)


@given(hello_inputs)
def test_build_hellos_is_build_hello_for_each(
    inputs: list[tuple[bytes, bytes, bytes, int]],
) -> None:
    keys = [MacKey(k) for k, _, _, _ in inputs]
    eccs = b"".join(ecc for _, ecc, _, _ in inputs)
    ebids = b"".join(ebid for _, _, ebid, _ in inputs)
    times = np.array([t for _, _, _, t in inputs], dtype=np.int64)
    built = build_hellos(keys, eccs, ebids, times)
    assert built == b"".join(
        build_hello(MacKey(k), ecc, ebid, t).to_bytes() for k, ecc, ebid, t in inputs
    )
    assert split_hellos(built) == [Hello.parse(built[i : i + 16]) for i in range(0, len(built), 16)]


def test_batch_lengths_are_checked() -> None:
    with pytest.raises(BadLength):
        build_hellos([MacKey(bytes(32))], b"", bytes(8), np.zeros(1, dtype=np.int64))
    with pytest.raises(BadLength):
        split_hellos(bytes(17))
