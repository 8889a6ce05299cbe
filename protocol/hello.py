"""The HELLO message phones broadcast over Bluetooth [robert.md: HELLO message].

16 bytes: ECC (1) || EBID (8) || time (2: low 16 bits of the sender's NTP seconds) || MAC (5:
``HMAC-SHA256(K_A, 0x01 || ECC || EBID || time)`` truncated). A receiver checks the time field
against its own clock at reception, within a tolerance (the reference allows 180 s).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protocol.epochs import low16, wrapped_distance
from protocol.errors import BadLength, BadMac, StaleTime
from protocol.types import EBID_SIZE, ECC_SIZE, MacKey

HELLO_SIZE = 16
HELLO_MAC_SIZE = 5
HELLO_PREFIX = b"\x01"
"""Domain separation byte of HELLO MACs; requests use 0x02-0x04 (see ``protocol.auth``)."""

DEFAULT_TOLERANCE = 180
"""Seconds a HELLO's time field may differ from the time it was received."""


@dataclass(frozen=True, slots=True)
class Hello:
    """A parsed HELLO: its four fields, unverified."""

    ecc: bytes
    ebid: bytes
    time: int
    mac: bytes

    def __post_init__(self) -> None:
        if len(self.ecc) != ECC_SIZE or len(self.ebid) != EBID_SIZE:
            raise BadLength("HELLO needs a 1-byte ECC and an 8-byte EBID")
        if len(self.mac) != HELLO_MAC_SIZE:
            raise BadLength(f"HELLO MAC must be {HELLO_MAC_SIZE} bytes")
        if not 0 <= self.time <= 0xFFFF:
            raise BadLength("HELLO time field is 16 bits")

    def to_bytes(self) -> bytes:
        """The 16 bytes sent over the air."""
        return self.ecc + self.ebid + self.time.to_bytes(2, "big") + self.mac

    @classmethod
    def parse(cls, data: bytes) -> Hello:
        """Split 16 received bytes into fields (no verification)."""
        if len(data) != HELLO_SIZE:
            raise BadLength(f"HELLO must be {HELLO_SIZE} bytes, got {len(data)}")
        return cls(data[0:1], data[1:9], int.from_bytes(data[9:11], "big"), data[11:16])


def hello_mac(k_a: MacKey, ecc: bytes, ebid: bytes, time16: int) -> bytes:
    """MAC_A,i = first 40 bits of HMAC-SHA256(K_A, 0x01 || ECC || EBID || time)."""
    message = HELLO_PREFIX + ecc + ebid + time16.to_bytes(2, "big")
    return hmac.digest(k_a.material, message, "sha256")[:HELLO_MAC_SIZE]


def build_hello(k_a: MacKey, ecc: bytes, ebid: bytes, now_ntp: int) -> Hello:
    """The HELLO a phone broadcasts at ``now_ntp`` with its current (EBID, ECC)."""
    time16 = low16(now_ntp)
    return Hello(ecc, ebid, time16, hello_mac(k_a, ecc, ebid, time16))


def build_hellos(
    k_as: Sequence[MacKey], eccs: bytes, ebids: bytes, times_ntp: npt.NDArray[np.int64]
) -> bytes:
    """``build_hello(k_as[i], eccs[i], ebids[8i:8i+8], times_ntp[i]).to_bytes()`` for every i,
    concatenated (16 bytes each): the HELLOs of many senders at once, for a simulated town.

    The MAC inputs ``0x01 || ECC || EBID || time`` are laid out as one byte matrix, and each
    HELLO is that row without its prefix, then its MAC: the same bytes as ``hello_mac`` and
    ``Hello.to_bytes`` (``tests/protocol/test_hello.py`` compares them).
    """
    n = len(k_as)
    if len(eccs) != n * ECC_SIZE or len(ebids) != n * EBID_SIZE or len(times_ntp) != n:
        raise BadLength("one ECC, one EBID and one time per key")
    rows = np.empty((n, 1 + ECC_SIZE + EBID_SIZE + 2), dtype=np.uint8)
    rows[:, 0] = HELLO_PREFIX[0]
    rows[:, 1] = np.frombuffer(eccs, dtype=np.uint8)
    rows[:, 2:10] = np.frombuffer(ebids, dtype=np.uint8).reshape(n, EBID_SIZE)
    rows[:, 10:12] = (np.asarray(times_ntp) & 0xFFFF).astype(">u2").view(np.uint8).reshape(n, 2)
    messages = rows.tobytes()
    width = rows.shape[1]
    digest = hmac.digest
    macs = b"".join(
        digest(k.material, messages[width * i : width * (i + 1)], "sha256")[:HELLO_MAC_SIZE]
        for i, k in enumerate(k_as)
    )
    out = np.empty((n, HELLO_SIZE), dtype=np.uint8)
    out[:, : HELLO_SIZE - HELLO_MAC_SIZE] = rows[:, 1:]
    out[:, HELLO_SIZE - HELLO_MAC_SIZE :] = np.frombuffer(macs, dtype=np.uint8).reshape(
        n, HELLO_MAC_SIZE
    )
    return out.tobytes()


def split_hellos(data: bytes) -> list[Hello]:
    """``Hello.parse`` of each 16-byte HELLO of ``data`` (received HELLOs, concatenated)."""
    if len(data) % HELLO_SIZE:
        raise BadLength(f"HELLOs are {HELLO_SIZE} bytes each")
    return [Hello.parse(data[i : i + HELLO_SIZE]) for i in range(0, len(data), HELLO_SIZE)]


def verify_hello_mac(k_a: MacKey, ecc: bytes, ebid: bytes, time16: int, mac: bytes) -> None:
    """Raise BadMac unless ``mac`` is the HELLO MAC of these fields (constant-time compare)."""
    if not hmac.compare_digest(hello_mac(k_a, ecc, ebid, time16), mac):
        raise BadMac("HELLO MAC does not verify")


def check_hello_time(time16: int, received_ntp: int, tolerance: int = DEFAULT_TOLERANCE) -> None:
    """Raise StaleTime if the HELLO was sent more than ``tolerance`` s from its reception.

    The time field keeps only 16 bits, so the difference is taken modulo 2**16 (about 18 h).
    """
    if wrapped_distance(time16, low16(received_ntp), 16) > tolerance:
        raise StaleTime("HELLO time outside tolerance")


def verify_hello(
    k_a: MacKey, hello: Hello, received_ntp: int, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Check a HELLO's time window, then its MAC."""
    check_hello_time(hello.time, received_ntp, tolerance)
    verify_hello_mac(k_a, hello.ecc, hello.ebid, hello.time, hello.mac)
