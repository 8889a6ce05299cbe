"""The storage interface every backend implements (embedded SQLite, Redis).

Only what the protocol needs is kept per registration [robert.md: Storage in the reference]:
ID_A, K_A, K_EA, the last status request (the server's epoch then, for rate limiting, and the
request's time, against replay), the exposed epochs with their scores, the risk state the worker
derived from them, and the push information the app sent, if any (deleted with the
registration). Every method is one atomic step on one registration (so that a Redis Cluster can
shard by ID_A), except the report queue. Captchas live here too, so that any server process
checks any captcha: each is used once, expires, and counts its wrong answers. Submission codes
are not here: they belong to the code service (``codes/``), which the server asks through
``server.codegate``.

Exposure writes are idempotent: a score is stored under (epoch, a tag of the report), so a
report that a crashed worker left half done and another worker processes again is not counted
twice. The stored tag is a hash of the caller's report tag and the epoch (``exposure_tag``):
it carries no time, and the records one report left (other registrations', other epochs') share
nothing.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from protocol.types import IdA, MacKey, TupleKey


def exposure_tag(report_tag: str, epoch: int) -> str:
    """What an exposure record holds of its report: a hash of the report's tag and the epoch
    (16 hex digits), the same each time the report is processed, unlinkable across records."""
    return hashlib.sha256(f"{report_tag}:{epoch}".encode()).hexdigest()[:16]


class StoreUnavailable(Exception):
    """The store cannot be opened or reached; the message says which and why, without
    credentials."""


NEVER = -1
"""Epoch value meaning "not yet" (no status request yet, no contact yet)."""


@dataclass(frozen=True, slots=True)
class RiskState:
    """What the worker concluded from a registration's exposures; status only reads it."""

    at_risk: bool = False
    risk_level: int = 0
    last_contact_epoch: int = NEVER
    last_scoring_epoch: int = NEVER


@dataclass(frozen=True, slots=True)
class Registration:
    """A registered phone, as stored."""

    id_a: IdA
    k_a: MacKey
    k_ea: TupleKey
    last_status_epoch: int = NEVER
    """The server's epoch when the last status request was accepted."""
    last_status_time: int = 0
    """That request's ``time`` (low 32 bits of the phone's NTP seconds)."""
    risk: RiskState = RiskState()


@dataclass(frozen=True, slots=True)
class PushInfo:
    """What an app sends to be woken by push notifications [robert.md: the contract]: its
    push token, locale and time zone (each checked by the API: short, printable, no NUL)."""

    token: str
    locale: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Captcha:
    """A registration challenge: shown to a person (``image``, ``audio``) or solved by a
    machine (``pow``, whose ``answer`` is empty: the work is checked, not the text)."""

    id: str
    kind: str
    answer: str
    locale: str
    expires: int
    """NTP seconds after which the captcha is refused."""
    attempts: int = 0
    """Wrong answers given so far."""


class StatusOutcome(StrEnum):
    """Outcome of ``Store.record_status``."""

    ACCEPTED = "accepted"
    TOO_SOON = "too_soon"
    REPLAYED = "replayed"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class StatusRecorded:
    """What ``Store.record_status`` did, the registration as it was before, and its push
    information when the caller asked for it. (Not frozen: made on every status request, and
    a frozen dataclass costs several times as much to make.)"""

    outcome: StatusOutcome
    before: Registration | None
    push: PushInfo | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """One token bucket of a limit shared by every server process: ``burst`` tokens at once,
    refilled at ``burst / per_seconds`` a second. ``key`` is opaque to the store (callers
    pass pseudonyms, never client addresses)."""

    key: str
    burst: int
    per_seconds: float


@dataclass(frozen=True, slots=True)
class QueuedReport:
    """A report waiting in the queue: its id and the payload the API stored."""

    report_id: str
    payload: bytes


class Store(abc.ABC):
    """Storage of the ROBERT server. Times are NTP seconds, epochs protocol epochs."""

    # --- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    async def open(self) -> None:
        """Connect or create the schema; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True if the backend answers (health endpoint)."""

    # --- registrations ---------------------------------------------------------------------
    @abc.abstractmethod
    async def create_registration(
        self, registration: Registration, push: PushInfo | None = None
    ) -> bool:
        """Store a new registration (with its push information, if any) in one step; False
        (and nothing written) if its ID_A already exists."""

    @abc.abstractmethod
    async def create_registrations(self, registrations: Sequence[Registration]) -> list[bool]:
        """Store many new registrations at once (seeding a load test, importing); which were
        created (False where the ID_A existed already, which is left as it was)."""

    @abc.abstractmethod
    async def get_registration(self, id_a: IdA) -> Registration | None:
        """The registration of ID_A, or None."""

    @abc.abstractmethod
    async def get_keys(self, id_a: IdA) -> tuple[MacKey, TupleKey] | None:
        """K_A and K_EA of the registration, or None: what a status request's MAC is checked
        with before anything is written, and what its bundle is encrypted under."""

    @abc.abstractmethod
    async def record_status(
        self,
        id_a: IdA,
        epoch: int,
        time: int,
        min_gap_epochs: int,
        with_push: bool = False,
    ) -> StatusRecorded:
        """Atomically read the registration and accept a status request, in one step.

        ``epoch`` is the server's current epoch, ``time`` the request's. REPLAYED if ``time``
        equals the last accepted request's; TOO_SOON if a request was accepted fewer than
        ``min_gap_epochs`` epochs before ``epoch`` (0 disables the check); otherwise store
        epoch and time as the last status: ACCEPTED. The registration is returned as it was
        BEFORE the step (with its push information if ``with_push``). The caller checks the
        request's MAC on a ``get_registration`` first: a forged request never gets here.
        """

    @abc.abstractmethod
    async def set_push_info(self, id_a: IdA, push: PushInfo) -> bool:
        """Replace the registration's push information; False if no registration."""

    @abc.abstractmethod
    async def get_push_info(self, id_a: IdA) -> PushInfo | None:
        """The registration's push information, or None."""

    @abc.abstractmethod
    async def delete_registration(self, id_a: IdA) -> bool:
        """Unregister: remove the registration, its exposures and its push information;
        False if it did not exist."""

    @abc.abstractmethod
    async def delete_exposures(self, id_a: IdA) -> bool:
        """Delete exposure history: clear exposures and risk state; False if no registration."""

    @abc.abstractmethod
    async def count_registrations(self) -> int:
        """Number of registrations (for metrics; may be approximate on Redis Cluster)."""

    @abc.abstractmethod
    def iter_exposed(self, batch: int = 1000) -> AsyncIterator[list[IdA]]:
        """Batches of ID_As that have at least one stored exposure (for retention)."""

    # --- exposures and risk (worker) -------------------------------------------------------
    @abc.abstractmethod
    async def add_exposures(
        self, id_a: IdA, report_id: str, scores: Sequence[tuple[int, float]]
    ) -> bool:
        """Store (epoch, score) pairs from one report; idempotent per (report_id, epoch).

        Returns False (nothing written) if the registration does not exist.
        """

    @abc.abstractmethod
    async def get_exposures(self, id_a: IdA) -> dict[int, float]:
        """Scores per exposed epoch (summed over reports)."""

    @abc.abstractmethod
    async def set_risk(self, id_a: IdA, risk: RiskState) -> bool:
        """Store the risk state; False if no registration."""

    @abc.abstractmethod
    async def purge_exposures(self, id_a: IdA, before_epoch: int) -> int:
        """Delete exposures of epochs < before_epoch; the number of entries removed."""

    # --- captchas --------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_captcha(self, captcha: Captcha, lifetime: int) -> bool:
        """Store a new captcha that lives ``lifetime`` seconds (until ``captcha.expires``);
        False (nothing written) if its id exists."""

    @abc.abstractmethod
    async def get_captcha(self, captcha_id: str, now: int) -> Captcha | None:
        """The captcha, unless unknown, used, or expired at ``now`` (NTP seconds)."""

    @abc.abstractmethod
    async def use_captcha(self, captcha_id: str, now: int) -> bool:
        """Consume the captcha: True for exactly one caller while it exists and has not
        expired at ``now``; it is gone afterwards."""

    @abc.abstractmethod
    async def fail_captcha(self, captcha_id: str, max_attempts: int) -> int:
        """Count a wrong answer; the number of wrong answers so far (0 if the captcha is
        gone). At ``max_attempts`` the captcha is deleted: nobody can use it any more."""

    @abc.abstractmethod
    async def purge_captchas(self, now: int) -> int:
        """Delete captchas expired at ``now``; how many (a backend that expires them by
        itself may answer 0)."""

    # --- shared limits ---------------------------------------------------------------------
    @abc.abstractmethod
    async def take_budget(self, budgets: Sequence[Budget], now: float) -> float:
        """Take one token from every bucket of ``budgets`` in one atomic step, or from none:
        0.0 if taken, else the seconds until every bucket has a token (nothing taken).

        ``now`` is Unix seconds. Concurrent callers cannot all pass one check: the check and
        the charge are one script (Redis) or one transaction (SQLite)."""

    @abc.abstractmethod
    async def refund_budget(self, budgets: Sequence[Budget], now: float) -> None:
        """Give one token back to each bucket (up to its burst): the attempt did not count."""

    @abc.abstractmethod
    async def first_request(self, id_a: IdA, kind: int, time: int, ttl: int) -> bool:
        """Remember an authenticated request (registration, kind, time) for ``ttl`` seconds:
        True the first time, False for a replay within that time (one atomic step)."""

    # --- report queue ----------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue_report(self, payload: bytes) -> str:
        """Queue a validated report for the worker; its id. Durable once this returns."""

    @abc.abstractmethod
    async def claim_reports(
        self, consumer: str, count: int, block_ms: int, reclaim_after_ms: int
    ) -> list[QueuedReport]:
        """Up to ``count`` reports for ``consumer``: first those another consumer claimed more
        than ``reclaim_after_ms`` ago without acknowledging (a crashed worker), then new ones,
        waiting up to ``block_ms`` if there are none."""

    @abc.abstractmethod
    async def ack_report(self, report_id: str) -> None:
        """Mark a report done: it is removed and never handed out again."""

    @abc.abstractmethod
    async def pending_reports(self) -> int:
        """Reports queued or claimed but not acknowledged."""
