"""API keys for machines (a lab's system posting results, a service reading another's events).

A key reads ``<prefix>_<id>_<secret>``: the prefix names the service (so a leaked key is
recognisable, and secret scanners can be taught it), the id finds the row, the secret is 256
random bits. Only SHA-256 of the secret is stored, compared in constant time. A fast hash is
right here and wrong for passwords: a password is guessable and needs argon2's deliberate cost;
a 256-bit random secret cannot be guessed, and the hash of every API call must be cheap.

A key is shown once, when created; it can be revoked, never shown again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from kit.audit import CONSOLE, Action, Actor, AuditLog
from kit.db import Database, utcnow
from kit.http import Forbidden, Unauthorized
from kit.schema import api_keys as keys_table

_PREFIX = re.compile(r"[a-z][a-z0-9]{1,15}")
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key: not a write per request."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: a user or an API key, with role and scope."""

    kind: str  # "user" or "api_key"
    id: int
    name: str
    role: str
    scope: str

    @property
    def actor(self) -> str:
        """How the audit log names it: the user name, or ``apikey:<id>``."""
        return f"apikey:{self.id}" if self.kind == "api_key" else self.name

    def as_actor(self) -> Actor:
        """This principal as an audit ``Actor``."""
        return Actor(self.actor, self.role)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's record (never its secret)."""

    id: int
    name: str
    role: str
    scope: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _key(row: Any) -> ApiKey:
    return ApiKey(
        row.id, row.name, row.role, row.scope, row.created_at, row.revoked_at, row.last_used_at
    )


class ApiKeyStore:
    """The ``kit_api_keys`` table of one service."""

    def __init__(
        self,
        db: Database,
        prefix: str = "kit",
        *,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError("an API key prefix is 2 to 16 lower-case letters or digits")
        self.db = db
        self.prefix = prefix
        self.clock = clock
        self.audit = audit or AuditLog(clock=clock)

    async def create(
        self, name: str, role: str, scope: str = "", *, by: Actor = CONSOLE
    ) -> tuple[ApiKey, str]:
        """A new key's record and the key itself, to be shown once."""
        if not name.strip() or len(name) > 200:
            raise ValueError("an API key's name is 1 to 200 characters")
        if not _ROLE.fullmatch(role):
            raise ValueError(
                "a role is a lower-case word: a letter, then letters, digits, - or _ (64 at most)"
            )
        if len(scope) > 200:
            raise ValueError("a scope is at most 200 characters")
        secret = secrets.token_urlsafe(32)
        async with self.db.begin() as conn:
            key_id = (
                await conn.execute(
                    sa.insert(keys_table)
                    .values(
                        key_hash=_digest(secret),
                        name=name.strip(),
                        role=role,
                        scope=scope,
                        created_at=self.clock(),
                    )
                    .returning(keys_table.c.id)
                )
            ).scalar_one()
            await self.audit.append(
                conn, actor=by.name, role=by.role, action=Action.CREATE, object_type="api_key",
                object_id=key_id, detail=f"role {role}",
            )  # fmt: skip
            row = (await conn.execute(sa.select(keys_table).where(keys_table.c.id == key_id))).one()
        return _key(row), f"{self.prefix}_{key_id}_{secret}"

    async def authenticate(self, key: str) -> Principal:
        """The principal of a valid, unrevoked key, or ``Unauthorized``."""
        prefix, _, rest = key.strip().partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != self.prefix or not key_id.isdigit() or not secret or len(key_id) > 12:
            raise Unauthorized("invalid API key", "bad_api_key")
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(keys_table).where(keys_table.c.id == int(key_id)))
            ).first()
        # The digest is compared even for an unknown id, so timing tells nothing either way.
        expected = row.key_hash if row is not None else b"\0" * 32
        if not hmac.compare_digest(_digest(secret), expected) or row is None:
            raise Unauthorized("invalid API key", "bad_api_key")
        if row.revoked_at is not None:
            raise Unauthorized("this API key was revoked", "revoked_api_key")
        now = self.clock()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            async with self.db.begin() as conn:
                await conn.execute(
                    sa.update(keys_table).where(keys_table.c.id == row.id).values(last_used_at=now)
                )
        return Principal("api_key", row.id, row.name, row.role, row.scope)

    async def revoke(self, key_id: int, *, by: Actor = CONSOLE) -> ApiKey:
        """Revoke a key for good."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(keys_table)
                .where(keys_table.c.id == key_id, keys_table.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            )
            row = (
                await conn.execute(sa.select(keys_table).where(keys_table.c.id == key_id))
            ).first()
            if row is None:
                raise ValueError(f"no API key {key_id}")
            if result.rowcount != 1:
                raise ValueError(f"API key {key_id} was already revoked")
            await self.audit.append(
                conn, actor=by.name, role=by.role, action=Action.REVOKE, object_type="api_key",
                object_id=key_id,
            )  # fmt: skip
        return _key(row)

    async def list(self) -> list[ApiKey]:
        """Every key's record, oldest first."""
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(keys_table).order_by(keys_table.c.id))
            return [_key(row) for row in rows]


API_KEYS = web.AppKey("kit_api_keys", ApiKeyStore)


def setup_api_keys(app: web.Application, store: ApiKeyStore) -> None:
    """Make ``store`` the one ``require_api_key`` checks keys against."""
    app[API_KEYS] = store


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def require_api_key(request: web.Request, roles: Collection[str] | None = None) -> Principal:
    """The principal of the request's ``Authorization: Bearer`` API key: 401 (JSON, with
    ``WWW-Authenticate``) without a valid one, 403 if its role is not one of ``roles``."""
    token = bearer_token(request)
    challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
    if token is None:
        raise Unauthorized("use Authorization: Bearer <API key>", headers=challenge)
    try:
        principal = await request.config_dict[API_KEYS].authenticate(token)
    except Unauthorized as exc:
        exc.headers.update(challenge)
        raise
    if roles is not None and principal.role not in roles:
        raise Forbidden(f"the role {principal.role} may not do this")
    return principal
