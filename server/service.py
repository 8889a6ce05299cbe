"""What the ROBERT API does, independent of HTTP: register, status, report, unregister, delete.

Handlers in ``server.api`` parse JSON and call these methods; the protocol rules themselves come
from ``protocol/``. Each method raises a ``kit.http.HttpError`` (or a ``ProtocolError`` the
error guard maps) for anything but success. What the answers hold is the contract the real apps
hold the server to [robert.md: the contract, /api/v6].
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgpack
import orjson

from kit.http import BadRequest, TooManyRequests, Unauthorized, Unavailable
from protocol.auth import AuthRequest, RequestKind, check_request_time
from protocol.auth import verify_request_mac as verify_mac
from protocol.codes import is_dummy_code, parse_code
from protocol.contacts import Contact, HelloRecord, parse_contacts
from protocol.ebid import check_ebid_epoch, decrypt_ebid
from protocol.epochs import (
    EPOCHS_PER_DAY,
    datetime_from_ntp,
    day_of_epoch,
    epoch_of,
    epoch_start,
    epochs_of_day,
    ntp_from_unix,
)
from protocol.errors import BadFormat, KeyUnavailable
from protocol.registration import agree
from protocol.scoring import ScoringConfig
from protocol.status import last_contact_date, risk_level
from protocol.types import EbidKey, IdA, MacKey, TupleKey, id_a
from server import errors
from server.codegate import ACCEPTED, CodeGate
from server.keys import ServerKeys
from server.limits import HOUR, CodeAttempts, CodeLimits, parse_networks
from server.metrics import Metrics
from server.minting import TupleMinter
from server.settings import Settings
from server.store.base import Budget, PushInfo, Registration, StatusOutcome, Store
from server.tokens import TokenLifetimes, TokenSigner

T = TypeVar("T")
Clock = Callable[[], float]
"""Unix seconds now (``time.time``, or a simulation's virtual clock)."""

_MAX_ID_DRAWS = 16
REPORT_TIMINGS = 100
"""How many recent real reports' times (from the limits to the signed token) a dummy report's
is drawn from: few enough to follow the machine's load as it changes, enough to reproduce the
spread."""
PRIOR_REPORT_SECONDS = 0.002
"""A dummy report's time (from its first step to its signed token) before this process has
answered any real report."""
SLEEP_GRAIN = 0.002
"""The last part of a dummy's wait, yielded away rather than left to a timer."""
OFFLOAD_BYTES = 64 * 1024
"""Bodies at least this large are parsed on a thread, not on the event loop (a real report of
a few hundred contacts is smaller; an 8 MiB one took about 0.5 s of CPU)."""
NONCE_BYTES = 16


@dataclass(slots=True)
class StatusAnswer:
    """What a status request returns besides the HTTP envelope (not frozen: made on every
    status request, and a frozen dataclass costs five times as much to make)."""

    risk_level: int
    tuples: tuple[bytes, ...]
    """The base64 bundle in pieces to be joined, ASCII bytes (written into the answer's JSON
    as they are)."""
    last_contact_date: str | None
    last_risk_scoring_date: str | None
    declaration_token: str | None
    analytics_token: str

    @property
    def at_risk(self) -> bool:
        """What the apps conclude from ``riskLevel``."""
        return self.risk_level > 0


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
        self.status_min_gap_epochs = settings.status_min_gap_epochs
        self.clock_tolerance = settings.clock_tolerance
        self.scoring = ScoringConfig(risk_threshold=settings.risk_threshold)
        self._client_config = self._make_client_config()
        self.client_config_json = orjson.dumps(self._client_config)
        """The ``config`` list's JSON, as every status answer carries it."""
        self._epoch_keys: dict[int, EbidKey] = {}
        self._tuple_epochs: tuple[int, range] | None = None
        lifetimes = TokenLifetimes(
            report=settings.report_token_minutes * 60,
            analytics=settings.analytics_token_minutes * 60,
            declaration=settings.declaration_token_days * 86_400,
        )
        self.tokens = TokenSigner(keys.token_private, self._derived(b"token ids"), lifetimes)
        self.dummy_tokens = TokenSigner.throwaway(lifetimes)
        self._blur_key = self._derived(b"last contact blur")
        self._report_timings: deque[float] = deque(maxlen=REPORT_TIMINGS)
        private = secrets.token_hex(12)  # buckets of this process's dummies: nobody else's
        self.dummy_budgets = [
            Budget(kind + private, settings.code_failures_overall, HOUR) for kind in "xyz"
        ]
        self._parse_slots = asyncio.Semaphore(settings.parse_slots)
        self.trusted = parse_networks(settings.trusted_proxies)
        """The reverse proxies whose ``X-Forwarded-For`` names the client."""
        self.attempts = CodeAttempts(
            store,
            self._derived(b"client pseudonyms"),
            CodeLimits(
                settings.code_failures_per_client,
                settings.code_failures_per_prefix,
                settings.code_failures_overall,
            ),
        )
        self.minter = TupleMinter(
            keys.key_of_day, lambda: keys.k_g, settings.country_code, self.time_start, random
        )

    def _derived(self, label: bytes) -> bytes:
        """A key for ``label`` derived from K_G, so every process of a deployment has it."""
        return hmac.digest(self.keys.k_g.material, b"robert " + label, "sha256")

    # --- time ------------------------------------------------------------------------------
    def now_ntp(self) -> int:
        """Server time in NTP seconds."""
        return ntp_from_unix(self.clock())

    def now_epoch(self) -> int:
        """The current epoch."""
        return epoch_of(self.now_ntp(), self.time_start)

    def clock_info(self) -> dict[str, Any]:
        """Body of ``GET /clock`` (the reference's): the service start as a date, the server
        time (ISO 8601, UTC, milliseconds) and the current epoch."""
        now = self.clock()
        moment = datetime.fromtimestamp(now, tz=UTC)
        return {
            "serviceStartDate": datetime_from_ntp(self.time_start).date().isoformat(),
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "epoch": epoch_of(ntp_from_unix(now), self.time_start),
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
        """From now to the end of the last day handed out (the rest of today + N-1 days),
        memoised for the current epoch: every answer of the epoch mints the same epochs."""
        memo = self._tuple_epochs
        if memo is not None and memo[0] == now_epoch:
            return memo[1]
        last_day = day_of_epoch(now_epoch, self.time_start) + timedelta(
            days=self.settings.tuple_days - 1
        )
        epochs = range(now_epoch, epochs_of_day(last_day, self.time_start).stop)
        self._tuple_epochs = (now_epoch, epochs)
        return epochs

    async def mint_bundle(self, owner: IdA, k_ea: TupleKey, epochs: range) -> str:
        """The base64 encrypted tuple bundle for ``epochs`` [robert.md: Tuple bundle], minted
        in one batch with those of concurrent requests."""
        return b"".join(await self.minter.bundle(owner, k_ea, epochs)).decode("ascii")

    # --- register --------------------------------------------------------------------------
    def agree(self, client_public_key_spki: bytes) -> tuple[MacKey, TupleKey]:
        """ECDH with the phone's key: (K_A, K_EA), or BadFormat for a key that is none
        [robert.md: Registration]. Done before the captcha is looked at, so that a malformed
        key does not spend it."""
        return agree(self.keys.ecdh_private, client_public_key_spki)

    async def register(
        self, keys: tuple[MacKey, TupleKey], push: PushInfo | None = None
    ) -> dict[str, Any]:
        """A fresh ID_A for the agreed keys, its push information, and the first tuples."""
        k_a, k_ea = keys
        epochs = self.tuple_epochs(self.now_epoch())
        for _ in range(_MAX_ID_DRAWS):
            owner = id_a(self.random(5))
            if await self.store.create_registration(Registration(owner, k_a, k_ea), push):
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
    def _check_request(
        self, fields: Mapping[str, Any], now_ntp: int | None = None
    ) -> tuple[AuthRequest, IdA]:
        """What can be checked before the store: sizes, the EBID and its epoch, the clock.

        [the contract]: any EBID whose day key is still held is accepted (the apps send their
        last one when they hold none for now); 430 if that key is gone. The EBID must decrypt
        to ``epochId``, the phone's clock be within 60 s of the server's.
        """
        request = AuthRequest.from_fields(fields)
        owner = check_ebid_epoch(
            decrypt_ebid(self.key_of_epoch(request.epoch_id), request.ebid), request.epoch_id
        )
        if now_ntp is None:
            now_ntp = self.now_ntp()
        check_request_time(request.time, now_ntp, self.clock_tolerance)
        return request, owner

    def key_of_epoch(self, epoch: int) -> EbidKey:
        """K_S of an epoch's day, memoised by epoch (every status request asks; the answer
        changes only when keys are rotated, which calls ``forget_keys``)."""
        key = self._epoch_keys.get(epoch)
        if key is None:
            try:
                day = day_of_epoch(epoch, self.time_start)
            except OverflowError:  # an epochId past the year 9999: no key was ever made
                raise KeyUnavailable(f"no K_S for epoch {epoch}") from None
            key = self.keys.key_of_day(day)
            if len(self._epoch_keys) >= 4096:
                self._epoch_keys.clear()
            self._epoch_keys[epoch] = key
        return key

    def forget_keys(self) -> None:
        """Drop memoised keys after the key set changed."""
        self._epoch_keys.clear()

    async def authenticate(
        self, kind: RequestKind, fields: Mapping[str, Any]
    ) -> tuple[AuthRequest, Registration]:
        """Check an unregister or delete-history request: then the registration and its MAC."""
        request, owner = self._check_request(fields)
        registration = await self.store.get_registration(owner)
        if registration is None:
            raise errors.unknown_registration()
        verify_mac(registration.k_a, kind, request)
        return request, registration

    async def status(self, fields: Mapping[str, Any], push: PushInfo | None = None) -> StatusAnswer:
        """Exposure status request [robert.md: Authenticated requests, the contract].

        The registration is read and the MAC checked on what was read *before* the status slot
        is taken: a forged request (built from an overheard EBID) is refused without touching
        the registration, so it can neither consume nor delay the phone's own request. The
        slot is then taken in one atomic store step that checks replay and the interval again
        on the current state (K_A never changes, so the MAC checked stays valid). Every answer
        carries a fresh bundle of tuples: the apps discard an answer without one.

        The bundle is asked for as soon as the MAC verifies, under the K_EA read with K_A, and
        minted (with those of concurrent requests) while the store takes the slot: one wait
        for both instead of two in turn. If the slot is refused (too soon, a replay, or
        unregistered meanwhile) the bundle is discarded: minting touches no state, and a
        request that gets that far carries a valid MAC.
        """
        now = self.clock()
        now_ntp = ntp_from_unix(now)
        request, owner = self._check_request(fields, now_ntp)
        now_epoch = epoch_of(now_ntp, self.time_start)
        keys = await self.store.get_keys(owner)
        if keys is None:
            raise errors.unknown_registration()
        k_a, k_ea = keys
        verify_mac(k_a, RequestKind.STATUS, request)
        bundle = self.minter.bundle(owner, k_ea, self.tuple_epochs(now_epoch))
        try:
            recorded = await self.store.record_status(
                owner,
                now_epoch,
                request.time,
                self.status_min_gap_epochs,
                with_push=push is not None,
            )
            registration = recorded.before
            if registration is None or registration.k_a.material != k_a.material:
                raise errors.unknown_registration()  # unregistered meanwhile
            if recorded.outcome is StatusOutcome.TOO_SOON:
                raise errors.too_soon()
            if recorded.outcome is StatusOutcome.REPLAYED:
                raise errors.replayed()
            if push is not None and push != recorded.push:
                await self.store.set_push_info(owner, push)
        except BaseException:
            bundle.cancel()  # given up (TupleMinter.bundle says what that does)
            raise
        return self._answer(owner, registration, await bundle, int(now), now_epoch)

    def _answer(
        self,
        owner: IdA,
        registration: Registration,
        tuples: tuple[bytes, ...],
        now: int,
        now_epoch: int,
    ) -> StatusAnswer:
        """The risk part of a status answer, from the state the worker stored: at risk only
        while the last exposure is within 7 days; dates and the declaration token only then."""
        risk = registration.risk
        recent = now_epoch - self.scoring.at_risk_days * EPOCHS_PER_DAY
        at_risk = risk.at_risk and risk.last_contact_epoch >= recent
        contact: int | None = None
        scoring: int | None = None
        declaration: str | None = None
        if at_risk:
            now_ntp = ntp_from_unix(now)
            contact = last_contact_date(
                risk.last_contact_epoch, self.time_start, self._blur_key, owner, now_ntp
            )
            if risk.last_scoring_epoch >= 0:
                scoring = epoch_start(risk.last_scoring_epoch, self.time_start)
            declaration = self.tokens.declaration(
                now,
                owner,
                risk.last_scoring_epoch,
                epoch_start(now_epoch, self.time_start),
                contact,
            )
        return StatusAnswer(
            risk_level(at_risk),
            tuples,
            None if contact is None else str(contact),
            None if scoring is None else str(scoring),
            declaration,
            self.tokens.analytics(now),
        )

    async def _first(self, kind: RequestKind, fields: Mapping[str, Any]) -> Registration:
        """Authenticate, then refuse (409) a request seen before: an identical replay comes
        with the same ``time``, and a ``time`` more than the clock tolerance away from now is
        refused anyway, so remembering each for twice the tolerance is enough."""
        request, registration = await self.authenticate(kind, fields)
        ttl = 2 * self.settings.clock_tolerance + 1
        if not await self.store.first_request(registration.id_a, int(kind), request.time, ttl):
            raise errors.replayed()
        return registration

    async def unregister(self, fields: Mapping[str, Any]) -> None:
        """Forget the registration, its exposures and its push information."""
        registration = await self._first(RequestKind.UNREGISTER, fields)
        await self.store.delete_registration(registration.id_a)

    async def delete_history(self, fields: Mapping[str, Any]) -> None:
        """Clear the registration's exposures and risk state."""
        registration = await self._first(RequestKind.DELETE_HISTORY, fields)
        await self.store.delete_exposures(registration.id_a)

    # --- report ----------------------------------------------------------------------------
    async def offload(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` for a body of ``size`` bytes: inline when small, else on a thread of
        a bounded set (``parse_slots``) so that a large upload does not hold the event loop. A
        large upload waits up to ``parse_wait`` seconds for a slot (a few reports arriving
        together all go through), then gets 503 with ``Retry-After``."""
        if size < OFFLOAD_BYTES:
            return fn(*args)
        try:
            await asyncio.wait_for(self._parse_slots.acquire(), self.settings.parse_wait)
        except TimeoutError:
            raise Unavailable("too many large uploads at once; retry later", "busy") from None
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._parse_slots.release()

    async def report(
        self,
        token: Any,
        items: Callable[[], Awaitable[Any]],
        client: str = "?",
        size: int = 0,
    ) -> str:
        """Check the submission code, then parse the contacts and queue them for the worker;
        the report validation token.

        ``items`` gives the raw ``contacts`` (parsing the body if the caller has not yet);
        the code is checked before it is called and before the contacts are parsed: an upload
        with a wrong code costs no contact parsing (nor, when the token was read first, any).
        Failed codes are limited per client, per code prefix and overall
        (``server.limits``): a token is taken from each before the code service is asked and
        given back if the code was accepted. A code whose contacts turn out malformed is
        released, so the upload does not burn it; nothing about the client is stored with the
        report. A dummy report (its token is a dummy code, ``protocol.codes``) changes nothing
        and consumes no code, but takes the same steps (``_dummy_report``), so its timing
        follows the machine's load as a real report's does, and is answered with a token of
        the same size signed under a key nobody trusts.
        """
        if is_dummy_code(token):
            return await self._dummy_report(items, size)
        try:
            _, code = parse_code(token)
        except BadFormat as exc:
            raise BadRequest("token is not a submission code", "bad_token") from exc
        started = time.perf_counter()
        now = self.clock()
        wait = await self.attempts.take(client, code, now)
        if wait > 0:
            raise TooManyRequests(
                "too many failed submission codes; retry later",
                "too_many_attempts",
                retry_after=math.ceil(wait),
            )
        try:
            outcome = await self.codes.consume(code)
        except BaseException:
            await self.attempts.give_back(client, code, now)  # not an attempt: nothing known
            raise
        if outcome != ACCEPTED:
            raise Unauthorized(f"submission code {outcome}", f"code_{outcome}")
        await self.attempts.give_back(client, code, now)
        try:
            contacts = await self.offload(size, parse_contacts, await items())
            await self.store.enqueue_report(encode_report(contacts, self.random(NONCE_BYTES)))
        except Exception:
            # Malformed, or not queued, so not reported: give the code back, or the person
            # could never report again. (If the store is down for this too, the 5xx says
            # "try later".)
            with contextlib.suppress(Exception):
                await self.codes.release(code)
            raise
        answer = self.tokens.report_validation(int(self.clock()))
        self._report_timings.append(time.perf_counter() - started)
        return answer

    async def _dummy_report(self, items: Callable[[], Awaitable[Any]], size: int) -> str:
        """A real report's steps, each without effect: a token taken from three buckets of
        this process's own in one store call (as the failed-code limits' three) and given
        back (the store then forgets them); the contacts parsed and encoded as a real
        report's (on the thread pool when large; a malformed one is refused at the same
        step); a store round trip that writes nothing (``ping``) in place of queueing; a
        token signed under a key nobody trusts. Then a wait, standing for the code service,
        until as long has passed as one of the last real reports took for the same stretch:
        whatever the machine's load did to the steps done for real is inside that time."""
        timings = self._report_timings
        total = timings[secrets.randbelow(len(timings))] if timings else PRIOR_REPORT_SECONDS
        started = time.perf_counter()
        now = self.clock()
        await self.store.take_budget(self.dummy_budgets, now)
        await self.store.refund_budget(self.dummy_budgets, now)
        contacts = await self.offload(size, parse_contacts, await items())
        encode_report(contacts, self.random(NONCE_BYTES))
        await self.store.ping()
        answer = self.dummy_tokens.report_validation(int(self.clock()))
        await self._sleep(total - (time.perf_counter() - started))
        return answer

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``. The event loop's clock and timers count whole milliseconds
        (uvloop's, as libuv's; epoll's timeout too), which a code service's answer does not:
        so times are taken with ``time.perf_counter``, the timer only covers all but the last
        ``SLEEP_GRAIN``, and the rest is yielded away one loop turn at a time until the
        deadline (other requests run meanwhile; a dummy costs up to that much CPU). A loaded
        machine makes the wait end late as it makes a real report's last steps slower; no
        correction is subtracted (one was, when the timer alone ended the wait: it made the
        dummies' typical time early by the mean of a skewed lateness)."""
        deadline = time.perf_counter() + seconds
        coarse = seconds - SLEEP_GRAIN
        if coarse > 0:
            await asyncio.sleep(coarse)
        while time.perf_counter() < deadline:
            await asyncio.sleep(0)


def encode_report(contacts: list[Contact], nonce: bytes) -> bytes:
    """Compact queue payload of validated contacts (msgpack): ``{n: nonce, c: contacts}``.

    The nonce is random and exists only in the queue entry: the worker derives each exposure
    record's tag from it (``report_tag``), so a report reclaimed after a crash writes the same
    tags (no double counting), and once the entry is deleted nothing links the records of one
    report, nor dates them."""
    packed: bytes = msgpack.packb(
        {
            "n": nonce,
            "c": [
                [
                    c.ebid,
                    c.ecc,
                    [[r.time_collected, r.time_from_hello, r.mac, r.rssi] for r in c.records],
                ]
                for c in contacts
            ],
        }
    )
    return packed


def decode_report(payload: bytes) -> tuple[bytes, list[Contact]]:
    """(nonce, contacts) of a queued report (written by ``encode_report``, so trusted); a
    payload queued by an earlier version (a bare list) gets an empty nonce."""
    data = msgpack.unpackb(payload)
    nonce, items = (data["n"], data["c"]) if isinstance(data, dict) else (b"", data)
    return nonce, [
        Contact(ebid, ecc, tuple(HelloRecord(tc, th, mac, rssi) for tc, th, mac, rssi in records))
        for ebid, ecc, records in items
    ]


def report_tag(nonce: bytes, report_id: str, owner: IdA) -> str:
    """The tag of one report's exposure records for one registration: a hash of the report's
    random nonce and the registration, so that two registrations' records of one report share
    nothing (an earlier version's payload, without a nonce, falls back on its queue id)."""
    secret = nonce or report_id.encode()
    return hashlib.sha256(secret + bytes(owner)).hexdigest()[:16]
