"""The append-only audit log: who did what to which record, when (decree 2020-551 art. 5 II:
every consultation, update and deletion, and each record's initialisation, validation and
closure, with the user's id, the date and time and the nature of the action).

An entry names its actor (a user name, ``apikey:<id>`` or ``console``), the actor's role, the
action and the object as a type and a record number or pseudonym, never a name; ``detail`` is
short text without personal data. Client addresses are never stored.

``append`` takes the caller's connection, so a business change and its audit entry commit
together or not at all. UPDATE and DELETE (and TRUNCATE on PostgreSQL) of ``kit_audit`` are
refused by triggers in the database itself (``kit/migrations/versions/kit_0001_tables.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.db import Database, utcnow
from kit.schema import audit as audit_table

DETAIL_MAX = 500
MANY_CHUNK = 10_000
_ACTION = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Action(StrEnum):
    """The actions services record; any other lower-case word is accepted too."""

    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    VALIDATE = "validate"
    CLOSE = "close"
    EXPORT = "export"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    DISABLE = "disable"
    RESET_PASSWORD = "reset_password"
    RESET_TOTP = "reset_totp"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, as the audit log names them: a user name, ``apikey:<id>``, ``console``."""

    name: str
    role: str


CONSOLE = Actor("console", "admin")
"""An operator at the service's command line (the log cannot know more of them)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: datetime
    actor: str
    role: str
    action: str
    object_type: str
    object_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What ``AuditLog.query`` selects: every given field must match; times are inclusive of
    ``since`` and exclusive of ``until``."""

    actor: str | None = None
    role: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditLog:
    """Appends to and reads ``kit_audit``."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock

    async def append(
        self,
        target: AsyncConnection | Database,
        *,
        actor: str,
        role: str,
        action: str,
        object_type: str,
        object_id: str | int,
        detail: str = "",
    ) -> int:
        """Record one action; its entry id. Given a connection, inside the caller's
        transaction; given the database, in a transaction of its own."""
        values = _checked(actor, role, str(action), object_type, str(object_id), detail)
        values["at"] = self.clock()
        if isinstance(target, Database):
            async with target.begin() as conn:
                return await _insert(conn, values)
        return await _insert(target, values)

    async def append_many(
        self,
        conn: AsyncConnection,
        *,
        actor: str,
        role: str,
        action: str,
        object_type: str,
        entries: Sequence[tuple[str, str]],
    ) -> int:
        """Record one action on many objects ((object_id, detail) each) in one statement,
        inside the caller's transaction: issuing 100,000 codes writes 100,000 entries without
        100,000 round trips. How many were written."""
        if not entries:
            return 0
        at = self.clock()
        rows = []
        for object_id, detail in entries:
            values = _checked(actor, role, str(action), object_type, str(object_id), detail)
            values["at"] = at
            rows.append(values)
        for start in range(0, len(rows), MANY_CHUNK):
            await conn.execute(sa.insert(audit_table), rows[start : start + MANY_CHUNK])
        return len(rows)

    async def query(
        self,
        source: AsyncConnection | Database,
        filters: AuditFilter = AuditFilter(),  # frozen: a safe default
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[AuditEntry]:
        """The newest entries matching ``filters``, newest first, at most ``limit`` of them;
        ``before_id`` pages back (pass the last id of the previous page)."""
        t = audit_table
        query = sa.select(t).order_by(t.c.id.desc()).limit(max(1, min(limit, 10_000)))
        for name in ("actor", "role", "action", "object_type", "object_id"):
            value = getattr(filters, name)
            if value is not None:
                query = query.where(t.c[name] == str(value))
        if filters.since is not None:
            query = query.where(t.c.at >= filters.since)
        if filters.until is not None:
            query = query.where(t.c.at < filters.until)
        if before_id is not None:
            query = query.where(t.c.id < before_id)
        if isinstance(source, Database):
            async with source.connect() as conn:
                rows = (await conn.execute(query)).all()
        else:
            rows = (await source.execute(query)).all()
        return [AuditEntry(*row) for row in rows]


async def _insert(conn: AsyncConnection, values: dict[str, object]) -> int:
    result = await conn.execute(sa.insert(audit_table).values(values).returning(audit_table.c.id))
    return int(result.scalar_one())


def _checked(
    actor: str, role: str, action: str, object_type: str, object_id: str, detail: str
) -> dict[str, object]:
    if not _ACTION.fullmatch(action):
        raise ValueError("an audit action is a lower-case word: read, create, login_failed...")
    for name, value, longest in (
        ("actor", actor, 200),
        ("role", role, 64),
        ("object_type", object_type, 64),
        ("object_id", object_id, 128),
    ):
        if not value or len(value) > longest:
            raise ValueError(f"audit {name} must be 1 to {longest} characters")
    if len(detail) > DETAIL_MAX:
        raise ValueError(f"audit detail is at most {DETAIL_MAX} characters")
    return {
        "actor": actor,
        "role": role,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "detail": detail,
    }
