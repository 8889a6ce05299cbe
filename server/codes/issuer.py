"""The code service: issue, check, revoke and list codes for authenticated organisations.

Codes live in the main ``Store`` (which makes use atomic and single); this service adds who
issued them, the signed deep link, and the audit log. Issuing is batched: one ``add_codes`` per
chunk, one audit append and one index write per chunk, so 100,000 codes take seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from nacl.signing import SigningKey

from protocol.codes import CodeKind, CodePolicy, parse_code
from protocol.epochs import ntp_from_unix, unix_from_ntp
from protocol.errors import BadFormat
from server.codes import apikeys
from server.codes.errors import AuthFailed, BadRequest, Conflict, Forbidden, NotFound
from server.codes.links import b64url, make_link
from server.codes.model import Action, AuditEntry, Organisation, Role, check_org_name
from server.codes.store import IssuerStore
from server.service import store_new_codes
from server.store.base import CodeOutcome, CodeRecord, Store

log = logging.getLogger("robert.codes")

MAX_TEST_AGE_DAYS = 30
"""A test date older than this is refused: its contacts are past any retention anyway."""


class CodeState(StrEnum):
    """What a non-consuming check of a code says."""

    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code as handed to its issuer: the record and its signed deep link."""

    record: CodeRecord
    link: str

    @property
    def expires_iso(self) -> str:
        """Expiry as ISO 8601 UTC (the record holds NTP seconds)."""
        return iso_of_ntp(self.record.expires_at)


def iso_of_ntp(ntp: int) -> str:
    """NTP seconds as ISO 8601 UTC, to the second."""
    moment = datetime.fromtimestamp(unix_from_ntp(ntp), UTC)
    return moment.isoformat().replace("+00:00", "Z")


def state_of(found: tuple[CodeRecord, str] | None, now_ntp: int) -> CodeState:
    """The state of a stored code at ``now_ntp`` (same order of checks as consume_code)."""
    if found is None:
        return CodeState.UNKNOWN
    record, state = found
    if state == "revoked":
        return CodeState.REVOKED
    if state == "used":
        return CodeState.USED
    if now_ntp >= record.expires_at:
        return CodeState.EXPIRED
    return CodeState.VALID


def keyed_hash(key: bytes, code: str) -> str:
    """32 hex characters of HMAC-SHA256(key, code): how the audit log names a code."""
    return hmac.digest(key, code.encode(), "sha256")[:16].hex()


class CodeIssuer:
    """Issuing organisations and their codes, over the main store and the issuer store."""

    def __init__(
        self,
        store: Store,
        issuers: IssuerStore,
        policy: CodePolicy | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.store = store
        self.issuers = issuers
        self.policy = policy or CodePolicy()
        self.clock = clock
        self.random = random
        self._secret: bytes | None = None

    # --- secrets ---------------------------------------------------------------------------
    async def secret(self, label: bytes) -> bytes:
        """A key derived from the deployment secret for one purpose (audit hash, cookies)."""
        if self._secret is None:
            self._secret = await self.issuers.secret()
        return hmac.digest(self._secret, b"robert codes " + label, "sha256")

    async def code_hash(self, code: str) -> str:
        """The keyed hash the audit log records instead of the code (32 hex characters).

        Keyed, because a plain SHA-256 of a 6-character code is reversed by trying all 887M.
        """
        return keyed_hash(await self.secret(b"audit"), code)

    def now_ntp(self) -> int:
        """Code times are NTP seconds, as the ROBERT service stores them."""
        return ntp_from_unix(self.clock())

    def today(self) -> date:
        """Today's date (UTC), for default and plausibility of test dates."""
        return datetime.fromtimestamp(self.clock(), UTC).date()

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append to the audit log."""
        await self.issuers.append_audit(entries)

    # --- organisations ---------------------------------------------------------------------
    async def add_org(self, name: str, role: Role) -> tuple[Organisation, str]:
        """A new organisation with its signing key pair; returns it and its API key (once)."""
        check_org_name(name)
        key = apikeys.new_api_key(name)
        org = Organisation(
            name, role, apikeys.hash_api_key(key), self.random(32), int(self.clock())
        )
        if not await self.issuers.add_org(org):
            raise Conflict(f"organisation {name} exists already")
        await self.audit([AuditEntry(int(self.clock()), name, Action.ORG_ADD, outcome=role)])
        return org, key

    async def ensure_org(self, name: str, role: Role) -> Organisation:
        """The organisation ``name``, created (with an API key nobody sees) if missing."""
        org = await self.issuers.get_org(name)
        if org is None:
            try:
                org, _ = await self.add_org(name, role)
            except Conflict:  # created concurrently
                org = await self.issuers.get_org(name)
        if org is None:
            raise NotFound(name)
        return org

    async def get_org(self, name: str) -> Organisation:
        """The organisation ``name``; NotFound otherwise."""
        org = await self.issuers.get_org(name)
        if org is None:
            raise NotFound(f"no organisation {name}")
        return org

    async def authenticate(self, api_key: str | None) -> Organisation:
        """The organisation holding ``api_key``; AuthFailed otherwise (same error either way)."""
        if not api_key:
            raise AuthFailed("an API key is required")
        org = await self.issuers.get_org(apikeys.org_of_key(api_key))
        if org is None or not apikeys.key_matches(api_key, org.key_hash):
            raise AuthFailed("unknown API key")
        return org

    async def authorities(self) -> list[dict[str, str]]:
        """Public keys of every issuer, for phones to check deep links offline."""
        return [
            {
                "org": o.name,
                "role": o.role.value,
                "alg": "Ed25519",
                "publicKey": b64url(bytes(o.verify_key)),
            }
            for o in await self.issuers.list_orgs()
        ]

    # --- issuing ---------------------------------------------------------------------------
    def check_test_date(self, text: str | None) -> str:
        """A test date as ISO text: today by default, not in the future, not too old."""
        if not text:
            return self.today().isoformat()
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise BadRequest("test date must be YYYY-MM-DD") from exc
        today = self.today()
        # One day of slack for issuers east of UTC whose day has already begun.
        if day > today + timedelta(days=1) or day < today - timedelta(days=MAX_TEST_AGE_DAYS):
            raise BadRequest(f"test date must be within the last {MAX_TEST_AGE_DAYS} days")
        return day.isoformat()

    async def issue(
        self, org: Organisation, kind: CodeKind, count: int, test_date: str | None = None
    ) -> list[IssuedCode]:
        """``count`` fresh single-use codes bound to ``org`` and the test date, signed."""
        if not org.may_issue(kind):
            raise Forbidden(f"a {org.role} may not issue {kind} codes")
        if count < 1:
            raise BadRequest("count must be at least 1")
        day = self.check_test_date(test_date)
        records = await self._store_codes(org.name, kind, count, day)
        key = org.signing_key
        return [IssuedCode(r, self.link(key, org.name, r)) for r in records]

    @staticmethod
    def link(key: SigningKey, org: str, record: CodeRecord) -> str:
        """The signed deep link of a stored code."""
        return make_link(record.code, CodeKind(record.kind), record.test_date, org, key)

    async def _store_codes(
        self, org: str, kind: CodeKind, count: int, day: str
    ) -> list[CodeRecord]:
        """Generate, store, index and audit codes chunk by chunk; retry the rare collisions.

        A short code already in the store (issued before, even long expired) is skipped by
        ``add_codes``, so short codes are never recycled while the store keeps them (>= 24 h).
        """
        audit_key = await self.secret(b"audit")
        issued: list[CodeRecord] = []
        lifetime = self.policy.lifetime(kind)
        async for stored in store_new_codes(
            self.store, kind, count, self.now_ntp(), lifetime, org, day, self.random
        ):
            await self.issuers.index_codes(org, [(r.code, r.issued_at) for r in stored])
            at = int(self.clock())
            await self.audit(
                [
                    AuditEntry(at, org, Action.ISSUE, keyed_hash(audit_key, r.code), kind.value)
                    for r in stored
                ]
            )
            issued += stored
        return issued

    # --- checking, revoking, listing -------------------------------------------------------
    async def _find(self, code: str, org: Organisation | None) -> tuple[CodeRecord, str] | None:
        """The stored code, hidden (None) if it belongs to another org and ``org`` is not admin."""
        try:
            _, canonical = parse_code(code)
        except BadFormat:
            return None
        found = await self.store.get_code(canonical)
        if found is None:
            return None
        if org is not None and org.role is not Role.ADMIN and found[0].org != org.name:
            return None
        return found

    async def check(self, code: str, org: Organisation | None = None) -> CodeState:
        """The state of a code without consuming it (``org`` None: the operator sees all)."""
        found = await self._find(code, org)
        state = state_of(found, self.now_ntp())
        if found is not None:
            entry = AuditEntry(
                int(self.clock()),
                org.name if org else found[0].org,
                Action.VERIFY,
                await self.code_hash(found[0].code),
                state.value,
            )
            await self.audit([entry])
        return state

    async def revoke(self, code: str, org: Organisation | None = None) -> CodeRecord:
        """Revoke an unused code; NotFound if unknown (or another org's), Conflict if used."""
        found = await self._find(code, org)
        if found is None:
            raise NotFound("no such code")
        record = found[0]
        if not await self.store.revoke_code(record.code):
            raise Conflict("the code was used already")
        entry = AuditEntry(
            int(self.clock()),
            org.name if org else record.org,
            Action.REVOKE,
            await self.code_hash(record.code),
        )
        await self.audit([entry])
        return record

    async def list(
        self, org: str | None = None, limit: int = 100
    ) -> list[tuple[CodeRecord, CodeState]]:
        """The latest codes issued (by ``org``, or all), newest first, with their state."""
        now = self.now_ntp()
        listed = []
        for _, code in await self.issuers.list_codes(org, limit):
            found = await self.store.get_code(code)
            if found is not None:
                listed.append((found[0], state_of(found, now)))
        return listed

    # --- the report path's hook ------------------------------------------------------------
    async def on_consume(self, code: str, outcome: CodeOutcome) -> None:
        """Audit a use of a code by a report: the issuing org, the code's hash, the outcome.

        Nothing about the reporting phone is known here or written. Unknown codes (guesses)
        have no organisation and are only counted by the rate limiter, not logged.
        """
        if outcome is CodeOutcome.UNKNOWN:
            return
        try:
            found = await self.store.get_code(code)
            org = found[0].org if found else ""
            entry = AuditEntry(
                int(self.clock()), org, Action.USE, await self.code_hash(code), outcome.value
            )
            await self.audit([entry])
        except Exception as exc:  # the report stands; the failure is logged without the code
            log.error("audit of a code use failed: %s", type(exc).__name__)


def file_sha256(data: bytes) -> str:
    """Hex SHA-256, for the batch file's checksum."""
    return hashlib.sha256(data).hexdigest()
