"""What the ROBERT API does, independent of HTTP: register, status, report, unregister, delete.

Handlers in ``server.api`` parse JSON and call these methods; the protocol rules themselves come
from ``protocol/``. Each method raises a ``kit.http.HttpError`` (or a ``ProtocolError`` the
error guard maps) for anything but success.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgpack

from kit.http import BadRequest, Unauthorized, Unavailable
from protocol.auth import AuthRequest, RequestKind, check_request_epoch, check_request_time
from protocol.auth import verify_request_mac as verify_mac
from protocol.codes import parse_code
from protocol.contacts import Contact, HelloRecord
from protocol.ebid import check_ebid_epoch, decrypt_ebid
from protocol.epochs import (
    EPOCH_DURATION,
    EPOCHS_PER_DAY,
    day_of_epoch,
    epoch_of,
    epoch_start,
    epochs_of_day,
    ntp_from_unix,
)
from protocol.errors import BadFormat, BadMac
from protocol.registration import agree
from protocol.scoring import ScoringConfig
from protocol.status import blurred_contact_day
from protocol.types import EbidKey, IdA, TupleKey, id_a
from server import errors
from server.codegate import ACCEPTED, CodeGate
from server.keys import ServerKeys
from server.metrics import Metrics
from server.minting import TupleMinter
from server.settings import Settings
from server.store.base import Registration, StatusOutcome, Store

Clock = Callable[[], float]
"""Unix seconds now (``time.time``, or a simulation's virtual clock)."""

_MAX_ID_DRAWS = 16


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """What a status request returns besides the HTTP envelope."""

    at_risk: bool
    risk_level: int
    last_contact_date: str | None
    last_risk_scoring_date: str | None
    tuples: str | None


class RobertService:
    """The ROBERT server's behaviour over one store, one key set and one clock."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        keys: ServerKeys,
        metrics: Metrics,
        clock: Clock,
        codes: CodeGate,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.settings = settings
        self.store = store
        self.codes = codes
        self.keys = keys
        self.metrics = metrics
        self.clock = clock
        self.random = random
        self.time_start = settings.time_start_ntp
        self.scoring = ScoringConfig(risk_threshold=settings.risk_threshold)
        self._client_config = self._make_client_config()
        self._epoch_keys: dict[int, EbidKey] = {}
        self._tuple_plans: dict[int, tuple[range, int]] = {}
        self.minter = TupleMinter(
            keys.key_of_day, lambda: keys.k_g, settings.country_code, self.time_start, random
        )

    # --- time ------------------------------------------------------------------------------
    def now_ntp(self) -> int:
        """Server time in NTP seconds."""
        return ntp_from_unix(self.clock())

    def now_epoch(self) -> int:
        """The current epoch."""
        return epoch_of(self.now_ntp(), self.time_start)

    def clock_info(self) -> dict[str, Any]:
        """Body of ``GET /clock``: phones correct their clock drift with it."""
        now = self.now_ntp()
        return {
            "serverTime": now,
            "timeStart": self.time_start,
            "epochId": epoch_of(now, self.time_start),
            "epochDuration": EPOCH_DURATION,
        }

    def client_config(self) -> list[dict[str, Any]]:
        """The ``config`` list of {name, value} the reference returned to the app."""
        return self._client_config

    def _make_client_config(self) -> list[dict[str, Any]]:
        return [
            {"name": "statusMinIntervalSeconds", "value": self.settings.status_min_interval},
            {"name": "helloToleranceSeconds", "value": self.settings.hello_tolerance},
            {"name": "clockToleranceSeconds", "value": self.settings.clock_tolerance},
            {"name": "riskThreshold", "value": self.settings.risk_threshold},
        ]

    # --- tuples ----------------------------------------------------------------------------
    def tuple_epochs(self, now_epoch: int) -> range:
        """From now to the end of the last day handed out (the rest of today + N-1 days)."""
        last_day = day_of_epoch(now_epoch, self.time_start) + timedelta(
            days=self.settings.tuple_days - 1
        )
        return range(now_epoch, epochs_of_day(last_day, self.time_start).stop)

    async def mint_bundle(self, owner: IdA, k_ea: TupleKey, epochs: range) -> str:
        """The base64 encrypted tuple bundle for ``epochs`` [robert.md: Tuple bundle], minted
        in one batch with those of concurrent requests."""
        return await self.minter.bundle(owner, k_ea, epochs)

    # --- register --------------------------------------------------------------------------
    async def register(self, client_public_key_spki: bytes) -> dict[str, Any]:
        """ECDH with the phone, a fresh ID_A, and the first tuples [robert.md: Registration]."""
        k_a, k_ea = agree(self.keys.ecdh_private, client_public_key_spki)
        now_epoch = self.now_epoch()
        epochs = self.tuple_epochs(now_epoch)
        for _ in range(_MAX_ID_DRAWS):
            owner = id_a(self.random(5))
            registration = Registration(owner, k_a, k_ea, tuples_until_epoch=epochs.stop - 1)
            if await self.store.create_registration(registration):
                break
        else:  # 2**40 identifiers: reached only if the store is nearly full
            raise Unavailable("could not allocate a registration", "no_identifier")
        self.metrics.registrations.inc()
        return {
            "tuples": await self.mint_bundle(owner, k_ea, epochs),
            "timeStart": self.time_start,
            "config": self.client_config(),
            "message": "registered",
        }

    # --- authenticated requests ------------------------------------------------------------
    def _check_request(self, fields: Mapping[str, Any]) -> tuple[AuthRequest, IdA, int]:
        """What can be checked before the store: sizes, EBID and its epoch, the clock.

        Returns the request, the ID_A its EBID decrypts to, and the current epoch.
        [robert.md: Authenticated requests]: the EBID under the key of ``epochId``'s day (430
        if that key is gone), its epoch, the phone's clock within 60 s, the epoch current.
        """
        request = AuthRequest.from_fields(fields)
        owner = check_ebid_epoch(
            decrypt_ebid(self.key_of_epoch(request.epoch_id), request.ebid), request.epoch_id
        )
        now = self.now_ntp()
        check_request_time(request.time, now, self.settings.clock_tolerance)
        now_epoch = epoch_of(now, self.time_start)
        check_request_epoch(request.epoch_id, now_epoch)
        return request, owner, now_epoch

    def key_of_epoch(self, epoch: int) -> EbidKey:
        """K_S of an epoch's day, memoised by epoch (every status request asks; the answer
        changes only when keys are rotated, which calls ``forget_keys``)."""
        key = self._epoch_keys.get(epoch)
        if key is None:
            key = self.keys.key_of_day(day_of_epoch(epoch, self.time_start))
            if len(self._epoch_keys) >= 4096:
                self._epoch_keys.clear()
            self._epoch_keys[epoch] = key
        return key

    def forget_keys(self) -> None:
        """Drop memoised keys after the key set changed."""
        self._epoch_keys.clear()
        self._tuple_plans.clear()

    def tuple_plan(self, now_epoch: int) -> tuple[range, int]:
        """(the epochs a fresh bundle covers, the epoch before which tuples are due), memoised
        for the current epoch."""
        plan = self._tuple_plans.get(now_epoch)
        if plan is None:
            refresh_before = now_epoch + self.settings.tuple_refresh_days * EPOCHS_PER_DAY
            plan = (self.tuple_epochs(now_epoch), refresh_before)
            self._tuple_plans = {now_epoch: plan}
        return plan

    async def authenticate(
        self, kind: RequestKind, fields: Mapping[str, Any]
    ) -> tuple[AuthRequest, Registration]:
        """Check an unregister or delete-history request: then the registration and its MAC."""
        request, owner, _ = self._check_request(fields)
        registration = await self.store.get_registration(owner)
        if registration is None:
            raise errors.unknown_registration()
        verify_mac(registration.k_a, kind, request)
        return request, registration

    async def status(self, fields: Mapping[str, Any]) -> StatusAnswer:
        """Exposure status request [robert.md: Authenticated requests, Status answer].

        One store round trip reads the registration and takes the status slot at once (replay
        and rate limit atomically); the MAC is then checked on what was read, and a request
        whose MAC fails gives the slot back, so a forger holds it for one round trip at most.
        """
        request, owner, now_epoch = self._check_request(fields)
        epochs, refresh_before = self.tuple_plan(now_epoch)
        recorded = await self.store.record_status(
            owner,
            request.epoch_id,
            request.time,
            self.settings.status_min_gap_epochs,
            epochs.stop - 1,
            refresh_before,
        )
        registration = recorded.before
        if registration is None:
            raise errors.unknown_registration()
        try:
            verify_mac(registration.k_a, RequestKind.STATUS, request)
        except BadMac:
            if recorded.outcome is StatusOutcome.ACCEPTED:
                await self.store.undo_status(owner, registration, request.epoch_id, request.time)
            raise
        if recorded.outcome is StatusOutcome.TOO_SOON:
            raise errors.too_soon()
        if recorded.outcome is StatusOutcome.REPLAYED:
            raise errors.replayed()
        due = registration.tuples_until_epoch < refresh_before
        risk = registration.risk
        fresh = risk.last_contact_epoch >= now_epoch - self.scoring.at_risk_days * EPOCHS_PER_DAY
        at_risk = risk.at_risk and fresh
        return StatusAnswer(
            at_risk=at_risk,
            risk_level=risk.risk_level if fresh else 0,
            last_contact_date=(
                str(blurred_contact_day(risk.last_contact_epoch, self.time_start, self.random))
                if at_risk
                else None
            ),
            last_risk_scoring_date=(
                str(epoch_start(risk.last_scoring_epoch, self.time_start))
                if risk.last_scoring_epoch >= 0
                else None
            ),
            tuples=await self.mint_bundle(owner, registration.k_ea, epochs) if due else None,
        )

    async def unregister(self, fields: Mapping[str, Any]) -> None:
        """Forget the registration and its exposures."""
        _, registration = await self.authenticate(RequestKind.UNREGISTER, fields)
        await self.store.delete_registration(registration.id_a)

    async def delete_history(self, fields: Mapping[str, Any]) -> None:
        """Clear the registration's exposures and risk state."""
        _, registration = await self.authenticate(RequestKind.DELETE_HISTORY, fields)
        await self.store.delete_exposures(registration.id_a)

    # --- report ----------------------------------------------------------------------------
    async def report(self, token: Any, contacts: list[Contact]) -> None:
        """Consume the submission code, then queue the contacts for the worker.

        The contacts were parsed first, so a malformed upload does not burn the code; nothing
        about the client (address, headers) is stored with the report.
        """
        try:
            _, code = parse_code(token)
        except BadFormat as exc:
            raise BadRequest("token is not a submission code", "bad_token") from exc
        outcome = await self.codes.consume(code)
        if outcome != ACCEPTED:
            raise Unauthorized(f"submission code {outcome}", f"code_{outcome}")
        try:
            await self.store.enqueue_report(encode_report(contacts))
        except Exception:
            # Not queued, so not reported: give the code back, or the person could never
            # report again. (If the store is down for this too, the 5xx says "try later".)
            with contextlib.suppress(Exception):
                await self.codes.release(code)
            raise


def encode_report(contacts: list[Contact]) -> bytes:
    """Compact queue payload of validated contacts (msgpack)."""
    packed: bytes = msgpack.packb(
        [
            [
                c.ebid,
                c.ecc,
                [[r.time_collected, r.time_from_hello, r.mac, r.rssi] for r in c.records],
            ]
            for c in contacts
        ]
    )
    return packed


def decode_report(payload: bytes) -> list[Contact]:
    """Contacts of a queued report (written by ``encode_report``, so trusted)."""
    return [
        Contact(ebid, ecc, tuple(HelloRecord(tc, th, mac, rssi) for tc, th, mac, rssi in records))
        for ebid, ecc, records in msgpack.unpackb(payload)
    ]
