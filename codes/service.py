"""The code service: organisations issue, check, revoke and list codes; the ROBERT server
consumes them.

Codes, organisations and the audit log live in the service's own database (``codes.store``);
organisations hold API keys of the kit (``kit.auth.apikeys``: role ``lab``, ``doctor`` or
``admin``, scope ``org:<name>``) and an Ed25519 key that signs their deep links.
``consume`` and ``release`` are what the ROBERT server calls (``server.codegate``), in-process
or over HTTP.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from nacl.signing import SigningKey

from codes.errors import AuthFailed, BadRequest, BadTestDate, Conflict, Forbidden, NotFound
from codes.links import b64url, make_link
from codes.model import (
    ORG_SCOPE_PREFIX,
    Batch,
    CodeRecord,
    CodeState,
    Organisation,
    Outcome,
    Role,
    check_address,
    check_org_name,
    check_title,
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

BATCH_ID_BYTES = 8
"""A batch is named by 16 hex characters drawn at random: unguessable, short in a URL."""

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
    async def create_org(
        self, name: str, role: Role, title: str = "", address: str = "", by: Actor = CONSOLE
    ) -> Organisation:
        """A new organisation with its signing key; its people and machines come after (users
        of scope ``org:<name>``, ``new_key``)."""
        check_org_name(name)
        org = Organisation(
            name, role, self.random(32), self.now(), check_title(title), check_address(address)
        )
        if not await self.store.add_org(org, by):
            raise Conflict(f"organisation {name} exists already")
        return org

    async def add_org(
        self, name: str, role: Role, by: Actor = CONSOLE, title: str = "", address: str = ""
    ) -> tuple[Organisation, str]:
        """A new organisation with its signing key, and an API key for it (shown once)."""
        org = await self.create_org(name, role, title, address, by)
        _, key = await self.api_keys.create(
            f"organisation {name}", role.value, org_scope(name), by=by
        )
        return org, key

    async def update_org(
        self, name: str, title: str, address: str, by: Actor = CONSOLE
    ) -> Organisation:
        """Change the full name and address an organisation's handouts print."""
        if not await self.store.update_org(name, check_title(title), check_address(address), by):
            raise NotFound(f"no organisation {name}")
        return await self.get_org(name)

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
        """The organisation an authenticated API key acts for; AuthFailed if it belongs to
        none."""
        org = await self.org_in_scope(principal.role, principal.scope)
        if org is None:
            raise AuthFailed("this key belongs to no organisation")
        return org

    async def org_in_scope(self, role: str, scope: str) -> Organisation | None:
        """The organisation that a key or a person of ``role`` and ``scope`` (``org:<name>``)
        acts for: it must exist and have that role; None otherwise."""
        if not scope.startswith(ORG_SCOPE_PREFIX):
            return None
        org = await self.store.get_org(scope.removeprefix(ORG_SCOPE_PREFIX))
        if org is None or org.role.value != role:
            return None
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

    async def organisations(self) -> list[Organisation]:
        """Every organisation, by name."""
        return await self.store.list_orgs()

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
    def check_test_date(self, text: str | None, today: date | None = None) -> str:
        """A test date as ISO text: today by default, not after today, not too old.

        ``today`` is the issuer's own calendar day, when known (a person's page, in their time
        zone); without it (machines), today in UTC with one day of slack for issuers east of
        UTC whose day has already begun."""
        if not text:
            return (today or self.today()).isoformat()
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise BadTestDate("format", "test date must be YYYY-MM-DD") from exc
        latest = today or self.today() + timedelta(days=1)
        earliest = (today or self.today()) - timedelta(days=MAX_TEST_AGE_DAYS)
        if day > latest:
            raise BadTestDate("future", "test date cannot be after today")
        if day < earliest:
            raise BadTestDate(
                "too_old", f"test date must be within the last {MAX_TEST_AGE_DAYS} days"
            )
        return day.isoformat()

    async def issue(
        self,
        org: Organisation,
        kind: CodeKind,
        count: int,
        test_date: str | None = None,
        by: Actor | None = None,
        today: date | None = None,
    ) -> list[IssuedCode]:
        """``count`` fresh single-use codes bound to ``org`` and the test date, signed, in one
        new batch; ``by`` is the person issuing them (default: the organisation's key)."""
        if not org.may_issue(kind):
            raise Forbidden(f"a {org.role} may not issue {kind} codes")
        if count < 1:
            raise BadRequest("count must be at least 1")
        day = self.check_test_date(test_date, today)
        records = await self._store_codes(org, kind, count, day, by or actor_of(org))
        key = org.signing_key
        return [IssuedCode(r, self.link(key, org.name, r)) for r in records]

    @staticmethod
    def link(key: SigningKey, org: str, record: CodeRecord) -> str:
        """The signed deep link of a stored code."""
        return make_link(record.code, record.kind, record.test_date, org, key)

    async def _store_codes(
        self, org: Organisation, kind: CodeKind, count: int, day: str, by: Actor
    ) -> list[CodeRecord]:
        """Generate and store codes chunk by chunk; draw again the rare texts that exist
        already (a short code issued before, even long expired, is skipped by the store: short
        codes are never recycled while the store keeps them, at least 24 hours)."""
        issued: list[CodeRecord] = []
        now = self.now()
        batch = self.random(BATCH_ID_BYTES).hex()
        expires = now + timedelta(seconds=self.policy.lifetime(kind))
        while len(issued) < count:
            wanted = min(CODE_CHUNK, count - len(issued))
            drawn = {
                text: CodeRecord(text, kind, org.name, day, now, expires, batch)
                for text in (generate_code(kind, self.random) for _ in range(wanted))
            }
            issued += await self.store.add_codes(list(drawn.values()), by, self.code_hash)
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

    async def own_code(self, org: Organisation, code: str) -> tuple[IssuedCode, CodeState] | None:
        """One of the organisation's codes with its signed link and state (to show or print
        it again); None if it is not one of theirs."""
        found = await self._find(code, org)
        if found is None or found[0].org != org.name:
            return None
        record, stored = found
        issued = IssuedCode(record, self.link(org.signing_key, org.name, record))
        return issued, state_at(stored, record.expires_at, self.now())

    async def check(
        self, code: str, org: Organisation | None = None, by: Actor | None = None
    ) -> CodeState:
        """The state of a code without consuming it."""
        found = await self._find(code, org)
        if found is None:
            return CodeState.UNKNOWN
        record, stored = found
        state = state_at(stored, record.expires_at, self.now())
        await self.store.audit_check(by or actor_of(org), self.code_hash(record.code), state)
        return state

    async def revoke(
        self, code: str, org: Organisation | None = None, by: Actor | None = None
    ) -> CodeRecord:
        """Revoke an unused code; NotFound if unknown (or another org's), Conflict if used."""
        found = await self._find(code, org)
        if found is None:
            raise NotFound("no such code")
        record = found[0]
        hashed = self.code_hash(record.code)
        if not await self.store.revoke(record.code, by or actor_of(org), hashed):
            raise Conflict("the code was used already")
        return record

    async def batches(self, org: Organisation, limit: int = 20) -> list[Batch]:
        """The organisation's latest batches, newest first, with their codes' states."""
        return await self.store.list_batches(org.name, limit, self.now())

    async def batch(
        self, org: Organisation, batch: str, by: Actor | None = None, export: bool = False
    ) -> list[tuple[IssuedCode, CodeState]]:
        """The codes of one of the organisation's batches with their signed links and states,
        to show or (``export``) to print or download again; NotFound if it has no such batch.
        Reading live codes is audited (``read`` or ``export``)."""
        found = await self.store.batch_codes(org.name, batch, self.now())
        if not found:
            raise NotFound("no such batch")
        action = "export" if export else "read"
        await self.store.audit_batch(by or actor_of(org), action, batch, f"{org.name} {len(found)}")
        key = org.signing_key
        return [(IssuedCode(r, self.link(key, org.name, r)), s) for r, s in found]

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


__all__ = ["CodeService", "IssuedCode", "Outcome", "iso_utc"]
