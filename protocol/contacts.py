"""Reported contacts and their validation [robert.md: Report].

A report lists, per EBID heard, the HELLOs received: ``timeCollectedOnDevice`` (the receiver's
NTP seconds), ``timeFromHelloMessage`` (the sender's 16-bit time field), the 5-byte MAC and the
calibrated RSSI. The server checks each HELLO against the registration the EBID decrypts to;
this module holds those checks (steps 4 to 6 of the reference), the lookups are the caller's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol.auth import b64decode, b64encode, json_integer
from protocol.epochs import epoch_of
from protocol.errors import BadFormat, BadMac, StaleTime
from protocol.hello import HELLO_MAC_SIZE, check_hello_time, verify_hello_mac
from protocol.types import EBID_SIZE, ECC_SIZE, Epoch, MacKey

EPOCH_SLACK = 1
"""A HELLO may be received in its EBID's epoch or a neighbouring one [robert.md: Report, 5]."""

MAX_RSSI_MAGNITUDE = 1000
"""Calibrated RSSIs beyond +-1000 dB are nonsense and refused at parsing."""


class Drop(StrEnum):
    """Why a HELLO or a whole contact was not counted (each is a metric label)."""

    UNKNOWN_COUNTRY = "unknown_country"
    FOREIGN_COUNTRY = "foreign_country"
    NO_KEY = "no_key"
    EPOCH_MISMATCH = "epoch_mismatch"
    UNKNOWN_ID = "unknown_id"
    STALE_TIME = "stale_time"
    EPOCH_DRIFT = "epoch_drift"
    BAD_MAC = "bad_mac"


@dataclass(frozen=True, slots=True)
class HelloRecord:
    """One HELLO as the receiving phone stored it."""

    time_collected: int
    time_from_hello: int
    mac: bytes
    rssi: int

    def to_fields(self) -> dict[str, Any]:
        """JSON fields of one entry of a contact's ``ids``."""
        return {
            "timeCollectedOnDevice": self.time_collected,
            "timeFromHelloMessage": self.time_from_hello,
            "mac": b64encode(self.mac),
            "rssiCalibrated": self.rssi,
        }

    @classmethod
    def from_fields(cls, fields: Any) -> HelloRecord:
        """Parse one ``ids`` entry; only protocol errors on bad input."""
        if not isinstance(fields, Mapping):
            raise BadFormat("each id must be an object")
        collected = _int(fields.get("timeCollectedOnDevice"), "timeCollectedOnDevice", 0, 2**32 - 1)
        hello_time = _int(fields.get("timeFromHelloMessage"), "timeFromHelloMessage", 0, 0xFFFF)
        rssi = _int(
            fields.get("rssiCalibrated"), "rssiCalibrated", -MAX_RSSI_MAGNITUDE, MAX_RSSI_MAGNITUDE
        )
        # The apps also send the raw RSSI (iOS always, Android when it has one): checked, not
        # kept; scoring uses the calibrated one [robert.md: the contract, Report].
        if fields.get("rssiRaw") is not None:
            _int(fields["rssiRaw"], "rssiRaw", -MAX_RSSI_MAGNITUDE, MAX_RSSI_MAGNITUDE)
        return cls(collected, hello_time, b64decode(fields.get("mac"), "mac", HELLO_MAC_SIZE), rssi)


def _int(value: Any, name: str, low: int, high: int) -> int:
    number = json_integer(value)
    if number is None or not low <= number <= high:
        raise BadFormat(f"{name} must be an integer in [{low}, {high}]")
    return number


@dataclass(frozen=True, slots=True)
class Contact:
    """Every HELLO a reporting phone heard from one EBID."""

    ebid: bytes
    ecc: bytes
    records: tuple[HelloRecord, ...]

    def to_fields(self) -> dict[str, Any]:
        """JSON fields of one entry of a report's ``contacts``."""
        return {
            "ebid": b64encode(self.ebid),
            "ecc": b64encode(self.ecc),
            "ids": [r.to_fields() for r in self.records],
        }

    @classmethod
    def from_fields(cls, fields: Any, max_records: int = 10_000) -> Contact:
        """Parse one ``contacts`` entry; only protocol errors on bad input."""
        if not isinstance(fields, Mapping):
            raise BadFormat("each contact must be an object")
        ids = fields.get("ids")
        if not isinstance(ids, list) or not ids:
            raise BadFormat("ids must be a non-empty list")
        if len(ids) > max_records:
            raise BadFormat(f"at most {max_records} HELLOs per contact")
        return cls(
            b64decode(fields.get("ebid"), "ebid", EBID_SIZE),
            b64decode(fields.get("ecc"), "ecc", ECC_SIZE),
            tuple(HelloRecord.from_fields(r) for r in ids),
        )

    def claimed_epoch(self, time_start: int) -> Epoch:
        """Epoch of the first reception: the day key of this epoch decrypts the EBID."""
        return epoch_of(min(r.time_collected for r in self.records), time_start)


def within_epoch_slack(received_epoch: int, ebid_epoch: int) -> bool:
    """True if a reception epoch is close enough to the EBID's epoch (``EPOCH_SLACK``)."""
    return abs(received_epoch - ebid_epoch) <= EPOCH_SLACK


def valid_records(
    contact: Contact,
    ebid_epoch: int,
    k_a: MacKey,
    time_start: int,
    tolerance: int,
) -> tuple[list[HelloRecord], Counter[Drop]]:
    """The contact's HELLOs that pass the reference's checks 4 to 6, and why others failed.

    4. the HELLO's time field is within ``tolerance`` of its reception time (16-bit wrap);
    5. it was received in the EBID's epoch or a neighbouring one;
    6. its MAC verifies under the registration's K_A.
    """
    kept: list[HelloRecord] = []
    dropped: Counter[Drop] = Counter()
    for record in contact.records:
        try:
            check_hello_time(record.time_from_hello, record.time_collected, tolerance)
        except StaleTime:
            dropped[Drop.STALE_TIME] += 1
            continue
        if not within_epoch_slack(epoch_of(record.time_collected, time_start), ebid_epoch):
            dropped[Drop.EPOCH_DRIFT] += 1
            continue
        try:
            verify_hello_mac(k_a, contact.ecc, contact.ebid, record.time_from_hello, record.mac)
        except BadMac:
            dropped[Drop.BAD_MAC] += 1
            continue
        kept.append(record)
    return kept, dropped


def parse_contacts(items: Any, max_contacts: int = 100_000) -> list[Contact]:
    """Parse a report's ``contacts`` list."""
    if not isinstance(items, list):
        raise BadFormat("contacts must be a list")
    if len(items) > max_contacts:
        raise BadFormat(f"at most {max_contacts} contacts per report")
    return [Contact.from_fields(c) for c in items]


def samples(records: Sequence[HelloRecord]) -> list[tuple[int, int]]:
    """(time collected, calibrated RSSI) pairs: what scoring needs of valid HELLOs."""
    return [(r.time_collected, r.rssi) for r in records]
