"""Typed values of the protocol: identifiers, epochs, times and keys [robert.md: Actors and keys].

Keys are small frozen classes whose ``repr`` hides the key material, so that a key printed by
mistake in a log line shows its kind and never its bytes. Each kind of key is its own type, so a
type checker refuses a tuple key where a MAC key is expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NewType

from protocol.errors import BadLength

IdA = NewType("IdA", bytes)
"""A registration's permanent identifier ID_A: 40 bits [robert.md: Actors and keys]."""

Epoch = NewType("Epoch", int)
"""An epoch number: 15-minute periods counted from the service start [robert.md: Time]."""

NtpSeconds = NewType("NtpSeconds", int)
"""Whole seconds since 1900-01-01T00:00:00Z, the time base of every protocol message."""

RandomSource = Callable[[int], bytes]
"""Where randomness comes from: a function returning n random bytes (``secrets.token_bytes``)."""

ID_A_SIZE = 5
EBID_SIZE = 8
ECC_SIZE = 1


def id_a(value: bytes) -> IdA:
    """Check and type an ID_A."""
    if len(value) != ID_A_SIZE:
        raise BadLength(f"ID_A must be {ID_A_SIZE} bytes, got {len(value)}")
    return IdA(bytes(value))


@dataclass(frozen=True, slots=True)
class SecretKey:
    """Key material of a fixed size; never shown by ``repr`` or ``str``."""

    SIZE: ClassVar[int] = 32
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) != self.SIZE:
            raise BadLength(f"{type(self).__name__} must be {self.SIZE} bytes")


@dataclass(frozen=True, slots=True)
class EbidKey(SecretKey):
    """K_S: the server's SKINNY-64/192 key for one UTC day of EBIDs [robert.md: EBID and ECC]."""

    SIZE: ClassVar[int] = 24


@dataclass(frozen=True, slots=True)
class FederationKey(SecretKey):
    """K_G: the AES-256 key that encrypts the country code, shared by federated servers."""

    SIZE: ClassVar[int] = 32


@dataclass(frozen=True, slots=True)
class MacKey(SecretKey):
    """K_A: the registration's HMAC-SHA256 key for HELLOs and authenticated requests."""

    SIZE: ClassVar[int] = 32


@dataclass(frozen=True, slots=True)
class TupleKey(SecretKey):
    """K_EA: the registration's AES-256-GCM key for its tuple bundles."""

    SIZE: ClassVar[int] = 32
