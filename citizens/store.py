"""The directory's storage: declarations and their moderation in the service's own database
(SQLite embedded, PostgreSQL in production; ``kit.db``), every moderation audited in the same
transaction (``kit.audit``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from citizens.directory import (
    Declaration,
    Entry,
    Status,
    decode_set,
    encode_set,
    query_words,
    search_text,
)
from kit.audit import AuditLog
from kit.db import Database, Migrations, UtcDateTime

MIGRATIONS = Migrations("citizens", Path(__file__).resolve().parent / "migrations")

metadata = sa.MetaData()

services = sa.Table(
    "citizens_services",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("publisher", sa.String(100), nullable=False),
    sa.Column("url", sa.String(300), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("features", sa.String(200), nullable=False),
    sa.Column("audiences", sa.String(100), nullable=False),
    sa.Column("regions", sa.String(100), nullable=False),
    sa.Column("installation", sa.String(16), nullable=False),
    sa.Column("security", sa.String(100), nullable=False),
    sa.Column("free", sa.Boolean(), nullable=False),
    sa.Column("contact_email", sa.String(260), nullable=False),
    sa.Column("search_text", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("submitted_at", UtcDateTime(), nullable=False),
    sa.Column("reviewed_at", UtcDateTime(), nullable=True),
    sa.Column("reviewed_by", sa.String(64), nullable=True),
    sa.Column("review_note", sa.String(500), nullable=False, server_default=""),
    sa.Index("citizens_services_status", "status", "name"),
)


@dataclass(frozen=True, slots=True)
class DirectoryFilter:
    """What a visitor filters the published entries by (each empty means any)."""

    query: str = ""
    feature: str = ""
    audience: str = ""
    region: str = ""
    installation: str = ""
    security: str = ""
    free_only: bool = False


class NotPending(LookupError):
    """The entry does not exist or was already reviewed."""


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DirectoryStore:
    """Declarations, their moderation and its audit, in one ``Database``."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.audit = audit or AuditLog()
        self.clock = clock

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Close the database's connections."""
        await self.db.close()

    async def submit(self, declaration: Declaration) -> int:
        """Keep a publisher's declaration, pending moderation; its id."""
        d = declaration
        async with self.db.begin() as conn:
            result = await conn.execute(
                services.insert().values(
                    name=d.name,
                    publisher=d.publisher,
                    url=d.url,
                    description=d.description,
                    features=encode_set(d.features),
                    audiences=encode_set(d.audiences),
                    regions=encode_set(d.regions),
                    installation=d.installation,
                    security=encode_set(d.security),
                    free=d.free,
                    contact_email=d.contact_email,
                    search_text=search_text(d),
                    status=Status.PENDING.value,
                    submitted_at=self.clock(),
                    review_note="",
                )
            )
            [entry_id] = result.inserted_primary_key or (None,)
            assert isinstance(entry_id, int)
            await self.audit.append(
                conn, actor="publisher", role="publisher", action="create",
                object_type="directory_entry", object_id=entry_id,
            )  # fmt: skip
        return entry_id

    async def review(
        self, entry_id: int, publish: bool, *, moderator: str, role: str, note: str = ""
    ) -> Entry:
        """Publish or reject a pending entry, audited with the moderator's name."""
        status = Status.PUBLISHED if publish else Status.REJECTED
        async with self.db.begin() as conn:
            result = await conn.execute(
                services.update()
                .where(services.c.id == entry_id, services.c.status == Status.PENDING.value)
                .values(
                    status=status.value,
                    reviewed_at=self.clock(),
                    reviewed_by=moderator[:64],
                    review_note=note[:500],
                )
            )
            if result.rowcount != 1:
                raise NotPending(f"no pending entry {entry_id}")
            await self.audit.append(
                conn, actor=moderator, role=role,
                action="validate" if publish else "reject",
                object_type="directory_entry", object_id=entry_id, detail=status.value,
            )  # fmt: skip
        entry = await self.get(entry_id)
        assert entry is not None
        return entry

    async def get(self, entry_id: int) -> Entry | None:
        """One entry, whatever its status."""
        async with self.db.connect() as conn:
            row = (await conn.execute(services.select().where(services.c.id == entry_id))).first()
        return None if row is None else _entry(row._mapping)

    async def pending(self, limit: int = 200) -> list[Entry]:
        """Entries awaiting moderation, oldest first."""
        query = (
            services.select()
            .where(services.c.status == Status.PENDING.value)
            .order_by(services.c.submitted_at, services.c.id)
            .limit(limit)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_entry(r._mapping) for r in rows]

    async def published(self, wanted: DirectoryFilter, limit: int = 500) -> list[Entry]:
        """Published entries matching ``wanted``, by name."""
        where: list[Any] = [services.c.status == Status.PUBLISHED.value]
        for word in query_words(wanted.query):
            where.append(services.c.search_text.like(f"% {_like_escape(word)}%", escape="\\"))
        for column, value in (
            (services.c.features, wanted.feature),
            (services.c.audiences, wanted.audience),
            (services.c.security, wanted.security),
        ):
            if value:
                where.append(column.like(f"%,{_like_escape(value)},%", escape="\\"))
        if wanted.region:  # the whole country (",") or the region
            region = f"%,{_like_escape(wanted.region)},%"
            where.append(
                sa.or_(services.c.regions == ",", services.c.regions.like(region, escape="\\"))
            )
        if wanted.installation:
            where.append(services.c.installation == wanted.installation)
        if wanted.free_only:
            where.append(services.c.free.is_(True))
        query = (
            services.select()
            .where(*where)
            .order_by(sa.func.lower(services.c.name), services.c.id)
            .limit(limit)
        )
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_entry(r._mapping) for r in rows]

    async def submit_many(self, declarations: Sequence[Declaration], publish: bool) -> list[int]:
        """Load declarations (the sample set, an export from elsewhere), published at once if
        ``publish`` (by the console)."""
        ids = []
        for declaration in declarations:
            entry_id = await self.submit(declaration)
            if publish:
                await self.review(entry_id, True, moderator="console", role="admin")
            ids.append(entry_id)
        return ids


def _entry(row: Any) -> Entry:
    return Entry(
        id=row["id"],
        declaration=Declaration(
            name=row["name"],
            publisher=row["publisher"],
            url=row["url"],
            description=row["description"],
            features=decode_set(row["features"]),
            audiences=decode_set(row["audiences"]),
            regions=decode_set(row["regions"]),
            installation=row["installation"],
            security=decode_set(row["security"]),
            free=bool(row["free"]),
            contact_email=row["contact_email"],
        ),
        status=Status(row["status"]),
        submitted_at=row["submitted_at"],
        reviewed_at=row["reviewed_at"],
        reviewed_by=row["reviewed_by"],
        review_note=row["review_note"],
    )
