"""The code service: organisations issue, check, revoke and list codes; the ROBERT server
consumes them.

Codes, organisations and the audit log live in the service's own database (``codes.store``);
organisations hold API keys of the kit (``kit.auth.apikeys``: role ``lab``, ``doctor`` or
``admin``, scope ``org:<name>``) and an Ed25519 key that signs their deep links.
``consume`` and ``release`` are what the ROBERT server calls (``server.codegate``), in-process
or over HTTP.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from nacl.signing import SigningKey

from codes.errors import AuthFailed, BadRequest, Conflict, Forbidden, NotFound
from codes.links import b64url, make_link
from codes.model import (
    ORG_SCOPE_PREFIX,
    CodeRecord,
    CodeState,
    Organisation,
    Outcome,
    Role,
    check_org_name,
    org_scope,
)
from codes.store import CodeHasher, CodeStore, state_at
from kit.audit import CONSOLE, Actor
from kit.auth.apikeys import ApiKeyStore, Principal
from kit.http import HttpError
from protocol.codes import CodeKind, CodePolicy, generate_code, parse_code
from protocol.errors import BadFormat

MAX_TEST_AGE_DAYS = 30
"""A test date older than this is refused: its contacts are past any retention anyway."""

CODE_CHUNK = 10_000
"""Codes generated and stored per transaction when issuing in bulk."""

REPORTER = Actor("robert-server", "robert-server")
"""How the audit log names the uses of codes by reports: never anything about the phone."""


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code as handed to its issuer: the record and its signed deep link."""

    record: CodeRecord
    link: str

    @property
    def expires_iso(self) -> str:
        """Expiry as ISO 8601 UTC, to the second."""
        return iso_utc(self.record.expires_at)


def iso_utc(moment: datetime) -> str:
    """An aware datetime as ISO 8601 UTC, to the second (``...Z``)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def actor_of(org: Organisation | None) -> Actor:
    """How the audit log names an organisation acting (or the operator, for None)."""
    return CONSOLE if org is None else Actor(f"org:{org.name}", org.role.value)


class CodeService:
    """Issuing organisations and their codes, over the service's store."""

    def __init__(
        self,
        store: CodeStore,
        api_keys: ApiKeyStore,
        policy: CodePolicy | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.store = store
        self.api_keys = api_keys
        self.policy = policy or CodePolicy()
        self.clock = clock
        self.random = random
        self._hasher: CodeHasher | None = None

    async def open(self) -> None:
        """Migrate the database and load the deployment secret."""
        await self.store.open()
        self._hasher = CodeHasher(await self.store.secret())

    async def close(self) -> None:
        """Release the database."""
        await self.store.close()

    @property
    def code_hash(self) -> CodeHasher:
        """The keyed hash the audit log names codes by."""
        if self._hasher is None:
            raise RuntimeError("CodeService.open() first")
        return self._hasher

    def now(self) -> datetime:
        """Now, aware UTC, from the service's clock (virtual in the simulator)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def today(self) -> date:
        """Today's date (UTC), for default and plausibility of test dates."""
        return self.now().date()

    # --- organisations ---------------------------------------------------------------------
    async def add_org(self, name: str, role: Role, by: Actor = CONSOLE) -> tuple[Organisation, str]:
        """A new organisation with its signing key, and an API key for it (shown once)."""
        check_org_name(name)
        org = Organisation(name, role, self.random(32), self.now())
        if not await self.store.add_org(org, by):
            raise Conflict(f"organisation {name} exists already")
        _, key = await self.api_keys.create(
            f"organisation {name}", role.value, org_scope(name), by=by
        )
        return org, key

    async def new_key(self, name: str, by: Actor = CONSOLE) -> str:
        """Another API key for an existing organisation (rotation: revoke the old one after)."""
        org = await self.get_org(name)
        _, key = await self.api_keys.create(
            f"organisation {name}", org.role.value, org_scope(name), by=by
        )
        return key

    async def ensure_org(self, name: str, role: Role) -> Organisation:
        """The organisation ``name``, created (with an API key nobody sees) if missing."""
        org = await self.store.get_org(name)
        if org is None:
            try:
                org, _ = await self.add_org(name, role)
            except Conflict:  # created concurrently
                org = await self.store.get_org(name)
        if org is None:
            raise NotFound(name)
        return org

    async def get_org(self, name: str) -> Organisation:
        """The organisation ``name``; NotFound otherwise."""
        org = await self.store.get_org(name)
        if org is None:
            raise NotFound(f"no organisation {name}")
        return org

    async def org_of(self, principal: Principal) -> Organisation:
        """The organisation an authenticated API key (or user) acts for; AuthFailed if it
        belongs to none."""
        if not principal.scope.startswith(ORG_SCOPE_PREFIX):
            raise AuthFailed("this key belongs to no organisation")
        org = await self.store.get_org(principal.scope.removeprefix(ORG_SCOPE_PREFIX))
        if org is None or org.role.value != principal.role:
            raise AuthFailed("this key belongs to no organisation")
        return org

    async def authenticate(self, api_key: str | None) -> Organisation:
        """The organisation holding ``api_key``; AuthFailed otherwise (same error either way)."""
        if not api_key:
            raise AuthFailed("an API key is required")
        try:
            principal = await self.api_keys.authenticate(api_key)
        except HttpError:
            raise AuthFailed("unknown API key") from None
        return await self.org_of(principal)

    async def authorities(self) -> list[dict[str, str]]:
        """Public keys of every issuer, for phones to check deep links offline."""
        return [
            {
                "org": o.name,
                "role": o.role.value,
                "alg": "Ed25519",
                "publicKey": b64url(bytes(o.verify_key)),
            }
            for o in await self.store.list_orgs()
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
        records = await self._store_codes(org, kind, count, day)
        key = org.signing_key
        return [IssuedCode(r, self.link(key, org.name, r)) for r in records]

    @staticmethod
    def link(key: SigningKey, org: str, record: CodeRecord) -> str:
        """The signed deep link of a stored code."""
        return make_link(record.code, record.kind, record.test_date, org, key)

    async def _store_codes(
        self, org: Organisation, kind: CodeKind, count: int, day: str
    ) -> list[CodeRecord]:
        """Generate and store codes chunk by chunk; draw again the rare texts that exist
        already (a short code issued before, even long expired, is skipped by the store: short
        codes are never recycled while the store keeps them, at least 24 hours)."""
        issued: list[CodeRecord] = []
        now = self.now()
        expires = now + timedelta(seconds=self.policy.lifetime(kind))
        while len(issued) < count:
            wanted = min(CODE_CHUNK, count - len(issued))
            batch = {
                text: CodeRecord(text, kind, org.name, day, now, expires)
                for text in (generate_code(kind, self.random) for _ in range(wanted))
            }
            issued += await self.store.add_codes(
                list(batch.values()), actor_of(org), self.code_hash
            )
        return issued

    # --- checking, revoking, listing -------------------------------------------------------
    async def _find(self, code: str, org: Organisation | None) -> tuple[CodeRecord, str] | None:
        """The stored code, hidden (None) if it belongs to another org and ``org`` is not
        admin (``org`` None: the operator sees all)."""
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
        """The state of a code without consuming it."""
        found = await self._find(code, org)
        if found is None:
            return CodeState.UNKNOWN
        record, stored = found
        state = state_at(stored, record.expires_at, self.now())
        await self.store.audit_check(actor_of(org), self.code_hash(record.code), state)
        return state

    async def revoke(self, code: str, org: Organisation | None = None) -> CodeRecord:
        """Revoke an unused code; NotFound if unknown (or another org's), Conflict if used."""
        found = await self._find(code, org)
        if found is None:
            raise NotFound("no such code")
        record = found[0]
        if not await self.store.revoke(record.code, actor_of(org), self.code_hash(record.code)):
            raise Conflict("the code was used already")
        return record

    async def list(
        self, org: str | None = None, limit: int = 100
    ) -> list[tuple[CodeRecord, CodeState]]:
        """The latest codes issued (by ``org``, or all), newest first, with their state."""
        return await self.store.list_codes(org, limit, self.now())

    # --- the ROBERT server's side (server.codegate.CodeGate) -------------------------------
    async def consume(self, code: str) -> str:
        """Use a code once for a report: its outcome, ``accepted`` at most once."""
        outcome = await self.store.consume(code, self.now(), REPORTER, self.code_hash(code))
        return outcome.value

    async def release(self, code: str) -> None:
        """Give back a code whose report could not be queued."""
        await self.store.release(code, REPORTER, self.code_hash(code))

    # --- retention -------------------------------------------------------------------------
    async def purge_expired(self) -> int:
        """Delete codes a day past their expiry (so no short code is reissued within 24
        hours); how many."""
        cutoff = self.now() - timedelta(seconds=self.policy.short_reuse_delay)
        return await self.store.purge(cutoff)


def file_sha256(data: bytes) -> str:
    """Hex SHA-256, for the batch file's checksum."""
    return hashlib.sha256(data).hexdigest()


__all__ = ["CodeService", "IssuedCode", "Outcome", "file_sha256", "iso_utc"]
