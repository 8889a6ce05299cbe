"""The code service's storage: organisations and codes in its own relational database (SQLite
embedded, PostgreSQL in production; ``kit.db``), the audit log beside them (``kit.audit``).

Every change commits with its audit entry in one transaction. Using a code is one conditional
``UPDATE``: of concurrent consumers exactly one sees its row change, on both databases.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from codes.model import Batch, CodeRecord, CodeState, Organisation, Outcome, Role
from kit.audit import Actor, AuditLog
from kit.db import Database, Migrations, UtcDateTime
from protocol.codes import CodeKind

MIGRATIONS = Migrations("codes", Path(__file__).resolve().parent / "migrations")

metadata = sa.MetaData()

meta = sa.Table(
    "codes_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.LargeBinary(), nullable=False),
)

orgs = sa.Table(
    "codes_orgs",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("signing_seed", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("title", sa.String(200), nullable=False, server_default=""),
    sa.Column("address", sa.String(500), nullable=False, server_default=""),
)

codes = sa.Table(
    "codes_codes",
    metadata,
    sa.Column("code", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("org", sa.String(32), nullable=False),
    sa.Column("test_date", sa.String(10), nullable=False),
    sa.Column("issued_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("batch", sa.String(24), nullable=True),
    sa.CheckConstraint("state IN ('valid', 'used', 'revoked')", name="codes_state"),
    sa.Index("codes_by_org", "org", "issued_at"),
    sa.Index("codes_by_expiry", "expires_at"),
    sa.Index("codes_by_batch", "org", "batch"),
)

INSERT_CHUNK = 5_000
"""Codes inserted per statement when issuing in bulk."""


def _org(row: Any) -> Organisation:
    return Organisation(
        row.name, Role(row.role), bytes(row.signing_seed), row.created_at, row.title, row.address
    )


def _record(row: Sequence[Any]) -> CodeRecord:
    return CodeRecord(row[0], CodeKind(row[1]), row[2], row[3], row[4], row[5], row[7])


_CODE_COLUMNS = (
    codes.c.code,
    codes.c.kind,
    codes.c.org,
    codes.c.test_date,
    codes.c.issued_at,
    codes.c.expires_at,
    codes.c.state,
    codes.c.batch,
)


def state_at(stored: str, expires_at: datetime, now: datetime) -> CodeState:
    """What a stored code is at ``now`` (the order of checks of ``consume``)."""
    if stored == "revoked":
        return CodeState.REVOKED
    if stored == "used":
        return CodeState.USED
    if now >= expires_at:
        return CodeState.EXPIRED
    return CodeState.VALID


class CodeStore:
    """Organisations, codes and their audit, in one ``Database``."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Release the database's connections."""
        await self.db.close()

    async def _audit(
        self,
        conn: AsyncConnection,
        actor: Actor,
        action: str,
        object_type: str,
        object_id: str,
        detail: str,
    ) -> None:
        await self.audit.append(
            conn,
            actor=actor.name,
            role=actor.role,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail,
        )

    # --- the deployment secret -------------------------------------------------------------
    async def secret(self) -> bytes:
        """A 32-byte secret created once and shared by every process of the service (keyed
        hashes of codes in the audit log)."""
        async with self.db.begin() as conn:
            found = (
                await conn.execute(sa.select(meta.c.value).where(meta.c.name == "secret"))
            ).scalar()
            if found is not None:
                return bytes(found)
            value = secrets.token_bytes(32)
            await conn.execute(_insert_ignore(conn, meta), [{"name": "secret", "value": value}])
            stored = (
                await conn.execute(sa.select(meta.c.value).where(meta.c.name == "secret"))
            ).scalar_one()
            return bytes(stored)

    # --- organisations ---------------------------------------------------------------------
    async def add_org(self, org: Organisation, actor: Actor) -> bool:
        """Store a new organisation; False if the name is taken."""
        async with self.db.begin() as conn:
            row = {
                "name": org.name,
                "role": org.role.value,
                "signing_seed": org.signing_seed,
                "created_at": org.created_at,
                "title": org.title,
                "address": org.address,
            }
            added = (await conn.execute(_insert_ignore(conn, orgs), [row])).rowcount == 1
            if added:
                await self._audit(conn, actor, "org_add", "organisation", org.name, org.role.value)
            return added

    async def update_org(self, name: str, title: str, address: str, actor: Actor) -> bool:
        """Change an organisation's full name and address; False if there is none."""
        async with self.db.begin() as conn:
            done = await conn.execute(
                sa.update(orgs).where(orgs.c.name == name).values(title=title, address=address)
            )
            if done.rowcount != 1:
                return False
            await self._audit(conn, actor, "org_update", "organisation", name, "title, address")
            return True

    async def get_org(self, name: str) -> Organisation | None:
        """The organisation called ``name``, or None."""
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(orgs).where(orgs.c.name == name))).first()
        return _org(row) if row is not None else None

    async def list_orgs(self) -> list[Organisation]:
        """Every organisation, by name."""
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(orgs).order_by(orgs.c.name))).all()
        return [_org(r) for r in rows]

    # --- codes -----------------------------------------------------------------------------
    async def add_codes(
        self, records: Sequence[CodeRecord], actor: Actor, code_hash: CodeHasher
    ) -> list[CodeRecord]:
        """Store new codes, valid; those whose text exists already (issued before, even long
        expired) are skipped. The records stored, each audited as issued."""
        stored: list[CodeRecord] = []
        async with self.db.begin() as conn:
            for start in range(0, len(records), INSERT_CHUNK):
                chunk = records[start : start + INSERT_CHUNK]
                rows = [
                    {
                        "code": r.code,
                        "kind": r.kind.value,
                        "org": r.org,
                        "test_date": r.test_date,
                        "issued_at": r.issued_at,
                        "expires_at": r.expires_at,
                        "state": "valid",
                        "batch": r.batch,
                    }
                    for r in chunk
                ]
                inserted = await conn.execute(
                    _insert_ignore(conn, codes).returning(codes.c.code), rows
                )
                new = set(inserted.scalars())
                stored += [r for r in chunk if r.code in new]
            await self.audit.append_many(
                conn,
                actor=actor.name,
                role=actor.role,
                action="issue",
                object_type="code",
                entries=[(code_hash(r.code), r.kind.value) for r in stored],
            )
        return stored

    async def get_code(self, code: str) -> tuple[CodeRecord, str] | None:
        """A code and its stored state (``valid``, ``used``, ``revoked``), or None."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(*_CODE_COLUMNS).where(codes.c.code == code))
            ).first()
        if row is None:
            return None
        return _record(row), str(row[6])

    async def consume(self, code: str, now: datetime, actor: Actor, hashed: str) -> Outcome:
        """Use a code once: exactly one of concurrent callers gets ACCEPTED. Audited with the
        issuing organisation, never anything about the reporter; unknown codes (guesses) are
        not audited (they name nothing)."""
        async with self.db.begin() as conn:
            used = await conn.execute(
                sa.update(codes)
                .where(codes.c.code == code, codes.c.state == "valid", codes.c.expires_at > now)
                .values(state="used")
                .returning(codes.c.org)
            )
            org = used.scalar()
            if org is not None:
                outcome = Outcome.ACCEPTED
            else:
                row = (
                    await conn.execute(
                        sa.select(codes.c.state, codes.c.expires_at, codes.c.org).where(
                            codes.c.code == code
                        )
                    )
                ).first()
                if row is None:
                    return Outcome.UNKNOWN
                org = row[2]
                outcome = Outcome(state_at(row[0], row[1], now).value)
            await self._audit(conn, actor, "use", "code", hashed, f"{org} {outcome.value}")
            return outcome

    async def release(self, code: str, actor: Actor, hashed: str) -> bool:
        """Make a used code valid again; False unless it was used. Only for a report that was
        accepted but could not be queued: the person keeps a code that still works."""
        async with self.db.begin() as conn:
            done = await conn.execute(
                sa.update(codes)
                .where(codes.c.code == code, codes.c.state == "used")
                .values(state="valid")
            )
            if done.rowcount != 1:
                return False
            await self._audit(conn, actor, "release", "code", hashed, "")
            return True

    async def revoke(self, code: str, actor: Actor, hashed: str) -> bool:
        """Revoke a code that is not used; False if unknown or used. Revoking a revoked code
        again holds (True)."""
        async with self.db.begin() as conn:
            done = await conn.execute(
                sa.update(codes)
                .where(codes.c.code == code, codes.c.state != "used")
                .values(state="revoked")
            )
            if done.rowcount != 1:
                return False
            await self._audit(conn, actor, "revoke", "code", hashed, "")
            return True

    async def audit_check(self, actor: Actor, hashed: str, state: CodeState) -> None:
        """Record a non-consuming check of a code."""
        async with self.db.begin() as conn:
            await self._audit(conn, actor, "verify", "code", hashed, state.value)

    async def audit_batch(self, actor: Actor, action: str, batch: str, detail: str) -> None:
        """Record that a batch's codes were read (``read``), or printed or downloaded
        (``export``)."""
        async with self.db.begin() as conn:
            await self._audit(conn, actor, action, "batch", batch, detail)

    async def list_codes(
        self, org: str | None, limit: int, now: datetime
    ) -> list[tuple[CodeRecord, CodeState]]:
        """The latest codes issued (by ``org``, or all), newest first, with their state."""
        query = sa.select(*_CODE_COLUMNS).order_by(codes.c.issued_at.desc(), codes.c.code)
        if org is not None:
            query = query.where(codes.c.org == org)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.limit(limit))).all()
        return [(_record(r), state_at(r[6], r[5], now)) for r in rows]

    async def list_batches(self, org: str, limit: int, now: datetime) -> list[Batch]:
        """The organisation's latest batches, newest first, with how many of their codes are
        valid, used and revoked at ``now``."""

        def count(state: str) -> sa.ColumnElement[int]:
            return sa.func.sum(sa.case((codes.c.state == state, 1), else_=0))

        query = (
            sa.select(
                codes.c.batch,
                sa.func.min(codes.c.kind),
                sa.func.min(codes.c.test_date),
                sa.func.min(codes.c.issued_at),
                sa.func.max(codes.c.expires_at),
                sa.func.count(),
                count("valid"),
                count("used"),
                count("revoked"),
            )
            .where(codes.c.org == org, codes.c.batch.is_not(None))
            .group_by(codes.c.batch)
            .order_by(sa.func.min(codes.c.issued_at).desc(), codes.c.batch)
            .limit(limit)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Batch(
                id=r[0],
                org=org,
                kind=CodeKind(r[1]),
                test_date=r[2],
                issued_at=r[3],
                expires_at=r[4],
                count=int(r[5]),
                valid=int(r[6]) if now < r[4] else 0,
                used=int(r[7]),
                revoked=int(r[8]),
            )
            for r in rows
        ]

    async def batch_codes(
        self, org: str, batch: str, now: datetime
    ) -> list[tuple[CodeRecord, CodeState]]:
        """The codes of one of the organisation's batches, in a stable order, with their
        state; empty if it has no such batch."""
        query = (
            sa.select(*_CODE_COLUMNS)
            .where(codes.c.org == org, codes.c.batch == batch)
            .order_by(codes.c.code)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(_record(r), state_at(r[6], r[5], now)) for r in rows]

    async def purge(self, expired_before: datetime) -> int:
        """Retention: delete every code (valid, used or revoked) that expired before the given
        time; how many. Callers keep short codes a day past expiry so none is reissued."""
        async with self.db.begin() as conn:
            done = await conn.execute(sa.delete(codes).where(codes.c.expires_at < expired_before))
            return int(done.rowcount)


class CodeHasher:
    """How the audit log names a code: 32 hex characters of a keyed hash (a plain hash of a
    6-character code is reversed by trying all 887 million)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, code: str) -> str:
        import hmac

        return hmac.digest(self._key, code.encode(), "sha256")[:16].hex()


def _insert_ignore(conn: AsyncConnection, table: sa.Table) -> sa.Insert:
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of ``conn``; executed with a list of
    rows, SQLAlchemy batches them within each driver's limit on parameters."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement: sa.Insert = dialect.insert(table).on_conflict_do_nothing()
    return statement
