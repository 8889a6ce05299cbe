"""The over-the-air format: exact bytes, round trips, and only PayloadError on bad input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ble.payload import (
    APPLE_COMPANY_ID,
    LEGACY_ADV_MAX,
    OVERFLOW_ROBERT_BYTE,
    OVERFLOW_ROBERT_MASK,
    ROBERT_OVERFLOW,
    SERVICE_DATA_SIZE,
    SERVICE_UUID16,
    WRITE_SIZES,
    PayloadError,
    RobertPayload,
    WrittenPayload,
    decode_gatt_value,
    decode_service_data,
    decode_written_value,
    encode_advertising_data,
    encode_overflow_advertising_data,
    encode_uuid_only_advertising_data,
    overflow_area,
    overflow_has_robert,
    parse_advertising_data,
)

HELLO = bytes(range(16))

payloads = st.builds(
    RobertPayload,
    st.binary(min_size=16, max_size=16),
    st.integers(0, 255),
    st.integers(-128, 127),
)


def test_advertising_data_is_the_apps_layout() -> None:
    data = encode_advertising_data(RobertPayload(HELLO, 1, -30))
    assert data == (bytes.fromhex("020106030364fd151664fd") + HELLO + bytes([1]) + bytes([0xE2]))
    assert len(data) == 29 <= LEGACY_ADV_MAX


def test_service_data_is_hello_version_signed_gain() -> None:
    data = RobertPayload(HELLO, 7, -1).to_service_data()
    assert data == HELLO + b"\x07\xff"
    assert len(data) == SERVICE_DATA_SIZE


@given(payloads)
def test_service_data_round_trip(payload: RobertPayload) -> None:
    assert decode_service_data(payload.to_service_data()) == payload


@given(payloads)
def test_advertising_data_round_trip(payload: RobertPayload) -> None:
    fields = parse_advertising_data(encode_advertising_data(payload))
    assert fields.service_uuids16 == (SERVICE_UUID16,)
    assert decode_service_data(fields.service_data16[SERVICE_UUID16]) == payload


@given(payloads, st.integers(0, 10))
def test_zero_padding_after_data_is_ignored(payload: RobertPayload, pad: int) -> None:
    data = encode_advertising_data(payload) + bytes(pad)
    assert SERVICE_UUID16 in parse_advertising_data(data).service_data16


@given(st.binary(max_size=40))
def test_any_bytes_parse_or_raise_payload_error_only(data: bytes) -> None:
    for parse in (decode_service_data, parse_advertising_data, lambda d: decode_gatt_value(d, -30)):
        with contextlib.suppress(PayloadError):
            parse(data)


@pytest.mark.parametrize(
    "data",
    [b"", bytes(17), bytes(19)],
)
def test_wrong_service_data_length_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(PayloadError, match="18 bytes"):
        decode_service_data(data)


def test_truncated_ad_structure_is_a_clear_error() -> None:
    with pytest.raises(PayloadError, match="runs past the end"):
        parse_advertising_data(bytes.fromhex("151664fd0102"))


def test_payload_fields_are_checked() -> None:
    with pytest.raises(PayloadError):
        RobertPayload(bytes(15))
    with pytest.raises(PayloadError):
        RobertPayload(HELLO, tx_gain=200)


def test_gatt_value_may_be_a_bare_hello() -> None:
    assert decode_gatt_value(HELLO, -25) == RobertPayload(HELLO, 1, -25)
    assert decode_gatt_value(HELLO + b"\x02\xf0", -25) == RobertPayload(HELLO, 2, -16)


def test_overflow_bit_of_fd64() -> None:
    # The manufacturer data the StopCovid Android apps filtered on: 01, then byte 10 = 08.
    assert bytes.fromhex("0100000000000000000000080000000000") == ROBERT_OVERFLOW
    assert overflow_has_robert(ROBERT_OVERFLOW)
    # other apps' bits around ours do not matter
    crowded = overflow_area((0, 0xFF), (OVERFLOW_ROBERT_BYTE, 0xFF), (15, 0x01))
    assert overflow_has_robert(crowded)


@pytest.mark.parametrize(
    "data",
    [
        None,
        b"",
        overflow_area((OVERFLOW_ROBERT_BYTE, 0xFF ^ OVERFLOW_ROBERT_MASK), (3, 0x08)),
        b"\x02" + ROBERT_OVERFLOW[1:],  # type 0x02 (iBeacon), not the overflow area
        ROBERT_OVERFLOW[:11],  # truncated before our byte
    ],
)
def test_overflow_without_our_bit(data: bytes | None) -> None:
    assert not overflow_has_robert(data)


def test_manufacturer_data_is_parsed_by_company() -> None:
    raw = bytes([2 + len(ROBERT_OVERFLOW) + 1, 0xFF]) + b"\x4c\x00" + ROBERT_OVERFLOW
    fields = parse_advertising_data(bytes.fromhex("02011a") + raw)
    assert fields.manufacturer_data[APPLE_COMPANY_ID] == ROBERT_OVERFLOW


def test_written_values_are_payload_then_signed_rssi() -> None:
    payload = RobertPayload(HELLO, 1, -12)
    assert decode_written_value(payload.to_service_data()) == WrittenPayload(payload)
    assert decode_written_value(payload.to_service_data() + b"\xc6") == WrittenPayload(payload, -58)
    assert WrittenPayload(payload, -58).to_bytes() == payload.to_service_data() + b"\xc6"
    assert WRITE_SIZES == (18, 19)


@given(st.binary(max_size=40))
def test_any_written_bytes_decode_or_raise_payload_error_only(data: bytes) -> None:
    try:
        written = decode_written_value(data)
    except PayloadError:
        assert len(data) not in WRITE_SIZES
    else:
        assert written.to_bytes() == data


def test_iphone_advertisements_carry_no_service_data() -> None:
    foreground = parse_advertising_data(encode_uuid_only_advertising_data())
    assert foreground.service_uuids16 == (SERVICE_UUID16,) and not foreground.service_data16
    background = parse_advertising_data(encode_overflow_advertising_data())
    assert not background.service_uuids16 and not background.service_data16
    assert overflow_has_robert(background.manufacturer_data[APPLE_COMPANY_ID])
