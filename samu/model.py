"""The board's records (small frozen values, no I/O) and the transfer requests' life cycle.

A transfer request moves through these statuses; any other move is refused:

    requested ──► accepted ──► in_transit ──► arrived
        │            │             (final)
        ├──► refused (final)
        └──► cancelled ◄── accepted (final)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EventStatus(StrEnum):
    """An event is open while the crisis lasts, then closed (its log stays)."""

    OPEN = "open"
    CLOSED = "closed"


class TransferStatus(StrEnum):
    """Where an inter-hospital transfer request stands."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REFUSED = "refused"
    IN_TRANSIT = "in_transit"
    ARRIVED = "arrived"
    CANCELLED = "cancelled"


TRANSITIONS: dict[TransferStatus, frozenset[TransferStatus]] = {
    TransferStatus.REQUESTED: frozenset(
        {TransferStatus.ACCEPTED, TransferStatus.REFUSED, TransferStatus.CANCELLED}
    ),
    TransferStatus.ACCEPTED: frozenset({TransferStatus.IN_TRANSIT, TransferStatus.CANCELLED}),
    TransferStatus.IN_TRANSIT: frozenset({TransferStatus.ARRIVED}),
    TransferStatus.REFUSED: frozenset(),
    TransferStatus.ARRIVED: frozenset(),
    TransferStatus.CANCELLED: frozenset(),
}
"""The allowed moves of a transfer request."""


def may_move(current: TransferStatus, new: TransferStatus) -> bool:
    """Whether a transfer request may go from ``current`` to ``new``."""
    return new in TRANSITIONS[current]


def is_final(status: TransferStatus) -> bool:
    """Whether nothing can follow ``status``."""
    return not TRANSITIONS[status]


@dataclass(frozen=True, slots=True)
class Event:
    """An event on the map (an attack, an exceptional health situation, the epidemic)."""

    id: int
    title: str
    kind: str
    departement: str
    lat: float
    lon: float
    status: EventStatus
    opened_by: str
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of an event's log ("main courante"): a message addressed to a scope, or an
    annotation of an earlier entry (``annotates``). Never changed once written."""

    id: int
    event_id: int
    client_id: str
    at: datetime
    author: str
    sender_scope: str
    target_scope: str
    text: str
    annotates: int | None


@dataclass(frozen=True, slots=True)
class Transfer:
    """An inter-hospital transfer request: a patient (named: reads are audited) from one
    establishment to another (FINESS)."""

    id: int
    event_id: int | None
    patient: str
    from_finess: str
    to_finess: str
    departement: str
    reason: str
    status: TransferStatus
    requested_by: str
    created_at: datetime
    updated_at: datetime
