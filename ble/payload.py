"""The StopCovid advertising format, encoded and decoded in one place [robert.md: Bluetooth format].

Legacy advertising data (at most 31 bytes) as the apps sent it::

    02 01 06                      flags: LE General Discoverable, BR/EDR not supported
    03 03 64 fd                   complete list of 16-bit service UUIDs: 0xFD64
    15 16 64 fd <18 bytes>        service data under 0xFD64

The 18 bytes are the 16-byte HELLO, a version byte and the sender's TX compensation gain as a
signed byte. The same 18 bytes are the value of the GATT characteristic that background iPhones
are read through. Background iPhones show the service only as one bit of Apple's "overflow
area" (manufacturer data of company 0x004C, type 0x01); see ``overflow_has_robert``.

Nothing here does I/O; every parser raises ``PayloadError`` (a ``ValueError``) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.hello import HELLO_SIZE

SERVICE_UUID16 = 0xFD64
SERVICE_UUID16_LE = SERVICE_UUID16.to_bytes(2, "little")
"""The UUID as it appears in advertising data (little-endian)."""
SERVICE_UUID = "0000fd64-0000-1000-8000-00805f9b34fb"
"""0xFD64 on the Bluetooth base UUID: the key bleak uses in ``service_data``."""
CHARACTERISTIC_UUID = "a8f12d00-ee67-478b-b95f-65d599407756"
"""GATT characteristic holding the payload, read from iPhones advertising in the background."""

PAYLOAD_VERSION = 1
"""Version byte we send (*choice*: receivers accept any value and report it)."""
SERVICE_DATA_SIZE = HELLO_SIZE + 2
LEGACY_ADV_MAX = 31

AD_FLAGS = 0x01
AD_INCOMPLETE_UUID16 = 0x02
AD_COMPLETE_UUID16 = 0x03
AD_SERVICE_DATA_UUID16 = 0x16
AD_MANUFACTURER_DATA = 0xFF
FLAGS_LE_GENERAL_NO_BREDR = 0x06

APPLE_COMPANY_ID = 0x004C
APPLE_OVERFLOW_TYPE = 0x01
OVERFLOW_BITMASK_SIZE = 16
OVERFLOW_ROBERT_BYTE = 10
OVERFLOW_ROBERT_MASK = 0x08
"""Where 0xFD64 lands in the overflow bitmask: byte 10 (counting from 0 after the type byte),
value 0x08, i.e. bit 84 counted from the most significant bit of the first bitmask byte.
The StopCovid/TousAntiCovid Android apps scanned for exactly this manufacturer data
(``01`` then 16 bytes, all zero except byte 10 = ``08``), observed from iPhones running the app
in the background. Apple's UUID-to-bit hash is undocumented, so the position is empirical."""


class PayloadError(ValueError):
    """Advertising data, service data or a GATT value that is not in the StopCovid format."""


@dataclass(frozen=True, slots=True)
class RobertPayload:
    """The 18 bytes under 0xFD64: HELLO, version, sender's TX compensation gain (dB)."""

    hello: bytes
    version: int = PAYLOAD_VERSION
    tx_gain: int = -30

    def __post_init__(self) -> None:
        if len(self.hello) != HELLO_SIZE:
            raise PayloadError(f"HELLO must be {HELLO_SIZE} bytes, got {len(self.hello)}")
        if not 0 <= self.version <= 0xFF:
            raise PayloadError("version is one unsigned byte")
        if not -128 <= self.tx_gain <= 127:
            raise PayloadError("TX gain is one signed byte")

    def to_service_data(self) -> bytes:
        """The 18 bytes sent as service data (and served over GATT)."""
        return (
            bytes(self.hello) + bytes([self.version]) + self.tx_gain.to_bytes(1, "big", signed=True)
        )


def decode_service_data(data: bytes) -> RobertPayload:
    """Parse the 18 bytes found under 0xFD64."""
    if len(data) != SERVICE_DATA_SIZE:
        raise PayloadError(f"service data must be {SERVICE_DATA_SIZE} bytes, got {len(data)}")
    return RobertPayload(
        bytes(data[:HELLO_SIZE]),
        data[HELLO_SIZE],
        int.from_bytes(data[HELLO_SIZE + 1 :], "big", signed=True),
    )


def decode_gatt_value(data: bytes, default_tx_gain: int) -> RobertPayload:
    """Parse a characteristic value: the 18-byte payload, or a bare 16-byte HELLO.

    A bare HELLO carries no TX gain, so the caller's default (the model table's) is used.
    """
    if len(data) == HELLO_SIZE:
        return RobertPayload(bytes(data), PAYLOAD_VERSION, default_tx_gain)
    return decode_service_data(data)


WRITE_SIZES = (SERVICE_DATA_SIZE, SERVICE_DATA_SIZE + 1)
"""Sizes a central may write to our characteristic: an iPhone writes its 18-byte payload, an
Android central 19 bytes (payload + the calibrated RSSI at which it heard us, signed)."""


@dataclass(frozen=True, slots=True)
class WrittenPayload:
    """A value written to our characteristic: the writer's payload, and the calibrated RSSI it
    measured of us when it wrote 19 bytes (None for 18)."""

    payload: RobertPayload
    rssi_calibrated: int | None = None

    def to_bytes(self) -> bytes:
        """The bytes a central writes (for simulated writers and docs)."""
        data = self.payload.to_service_data()
        if self.rssi_calibrated is None:
            return data
        return data + self.rssi_calibrated.to_bytes(1, "big", signed=True)


def decode_written_value(data: bytes) -> WrittenPayload:
    """Parse a write to our characteristic: 18 bytes (payload) or 19 (payload + RSSI byte)."""
    if len(data) not in WRITE_SIZES:
        raise PayloadError(
            f"a written value must be {' or '.join(map(str, WRITE_SIZES))} bytes, got {len(data)}"
        )
    payload = decode_service_data(bytes(data[:SERVICE_DATA_SIZE]))
    if len(data) == SERVICE_DATA_SIZE:
        return WrittenPayload(payload)
    return WrittenPayload(payload, int.from_bytes(data[SERVICE_DATA_SIZE:], "big", signed=True))


def encode_advertising_data(payload: RobertPayload) -> bytes:
    """Legacy advertising data: flags, UUID list [0xFD64], service data (29 of 31 bytes)."""
    uuid = SERVICE_UUID16_LE
    service_data = payload.to_service_data()
    data = (
        bytes([2, AD_FLAGS, FLAGS_LE_GENERAL_NO_BREDR])
        + bytes([3, AD_COMPLETE_UUID16])
        + uuid
        + bytes([3 + len(service_data), AD_SERVICE_DATA_UUID16])
        + uuid
        + service_data
    )
    assert len(data) <= LEGACY_ADV_MAX  # 29 bytes by construction
    return data


@dataclass(frozen=True, slots=True)
class AdvertisingFields:
    """The AD structures of one advertisement that matter here, keyed like bleak's."""

    service_uuids16: tuple[int, ...] = ()
    service_data16: Mapping[int, bytes] = field(default_factory=dict)
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)


def split_ad_structures(data: bytes) -> list[tuple[int, bytes]]:
    """Split advertising data into (AD type, value) pairs; a zero length ends the data."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        length = data[i]
        if length == 0:  # padding: controllers zero-fill up to 31 bytes
            break
        if i + 1 + length > len(data):
            raise PayloadError(f"AD structure at offset {i} runs past the end")
        out.append((data[i + 1], bytes(data[i + 2 : i + 1 + length])))
        i += 1 + length
    return out


def parse_advertising_data(data: bytes) -> AdvertisingFields:
    """Extract 16-bit UUIDs, 16-bit service data and manufacturer data from raw AD bytes."""
    uuids: list[int] = []
    service_data: dict[int, bytes] = {}
    manufacturer: dict[int, bytes] = {}
    for ad_type, value in split_ad_structures(data):
        if ad_type in (AD_COMPLETE_UUID16, AD_INCOMPLETE_UUID16):
            if len(value) % 2:
                raise PayloadError("16-bit UUID list of odd length")
            uuids.extend(
                int.from_bytes(value[j : j + 2], "little") for j in range(0, len(value), 2)
            )
        elif ad_type == AD_SERVICE_DATA_UUID16:
            if len(value) < 2:
                raise PayloadError("service data shorter than its UUID")
            service_data[int.from_bytes(value[:2], "little")] = value[2:]
        elif ad_type == AD_MANUFACTURER_DATA:
            if len(value) < 2:
                raise PayloadError("manufacturer data shorter than its company id")
            manufacturer[int.from_bytes(value[:2], "little")] = value[2:]
    return AdvertisingFields(tuple(uuids), service_data, manufacturer)


def encode_uuid_only_advertising_data() -> bytes:
    """What an iPhone with the app in the foreground sends: flags and 0xFD64, no service data."""
    return (
        bytes([2, AD_FLAGS, FLAGS_LE_GENERAL_NO_BREDR, 3, AD_COMPLETE_UUID16]) + SERVICE_UUID16_LE
    )


def encode_overflow_advertising_data() -> bytes:
    """What an iPhone with the app in the background sends: flags and Apple's overflow area."""
    apple = APPLE_COMPANY_ID.to_bytes(2, "little") + ROBERT_OVERFLOW
    return bytes([2, AD_FLAGS, FLAGS_LE_GENERAL_NO_BREDR, 1 + len(apple), AD_MANUFACTURER_DATA]) + (
        apple
    )


def robert_payload_of(service_data: bytes | None) -> RobertPayload | None:
    """The payload if service data under 0xFD64 is present, else None; malformed raises."""
    return None if service_data is None else decode_service_data(service_data)


def overflow_has_robert(apple_data: bytes | None) -> bool:
    """True if Apple manufacturer data (after the company id) is an overflow area with 0xFD64.

    We test only our bit: other apps set other bits in the same 16-byte mask.
    """
    if apple_data is None or len(apple_data) < 1 + OVERFLOW_BITMASK_SIZE:
        return False
    if apple_data[0] != APPLE_OVERFLOW_TYPE:
        return False
    return bool(apple_data[1 + OVERFLOW_ROBERT_BYTE] & OVERFLOW_ROBERT_MASK)


def overflow_area(*bytes_with_bits: tuple[int, int]) -> bytes:
    """Build Apple overflow manufacturer data (after the company id): for tests and docs."""
    mask = bytearray(OVERFLOW_BITMASK_SIZE)
    for index, bits in bytes_with_bits:
        mask[index] |= bits
    return bytes([APPLE_OVERFLOW_TYPE]) + bytes(mask)


ROBERT_OVERFLOW = overflow_area((OVERFLOW_ROBERT_BYTE, OVERFLOW_ROBERT_MASK))
"""What an iPhone with the app in the background sends under company 0x004C."""
