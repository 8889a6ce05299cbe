"""The board's storage (``kit.db``: SQLite embedded, PostgreSQL in production).

``samu_entries`` is the log of each event ("main courante"): messages and annotations. Its
rows are never changed: UPDATE and DELETE (and TRUNCATE on PostgreSQL) are refused by triggers
in the database itself (migration ``samu_0001``), like the kit's audit log; an annotation is a
new entry naming the one it annotates. An entry's ``client_id`` (a UUID the sender makes) is
unique: sending the same entry twice stores it once (the offline form's resend).
``samu_transfer_moves`` keeps every status change of a transfer request, append-only too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.audit import Action, Actor, AuditLog
from kit.db import Database, Migrations, UtcDateTime
from samu.model import Entry, Event, EventStatus, Transfer, TransferStatus

PAGE = 500
"""Entries read at once from the log (a caller pages on for more)."""

MIGRATIONS = Migrations("samu", Path(__file__).resolve().parent / "migrations")

metadata = sa.MetaData()

events = sa.Table(
    "samu_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("departement", sa.String(3), nullable=False),
    sa.Column("lat", sa.Float(), nullable=False),
    sa.Column("lon", sa.Float(), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("opened_by", sa.String(200), nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
)
entries = sa.Table(
    "samu_entries",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("samu_events.id"), nullable=False),
    sa.Column("client_id", sa.String(36), nullable=False, unique=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("sender_scope", sa.String(32), nullable=False),
    sa.Column("target_scope", sa.String(32), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("annotates", sa.Integer(), sa.ForeignKey("samu_entries.id"), nullable=True),
)
transfers = sa.Table(
    "samu_transfers",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("samu_events.id"), nullable=True),
    sa.Column("patient", sa.String(200), nullable=False),
    sa.Column("from_finess", sa.String(9), nullable=False),
    sa.Column("to_finess", sa.String(9), nullable=False),
    sa.Column("departement", sa.String(3), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
moves = sa.Table(
    "samu_transfer_moves",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("transfer_id", sa.Integer(), sa.ForeignKey("samu_transfers.id"), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("from_status", sa.String(12), nullable=True),
    sa.Column("to_status", sa.String(12), nullable=False),
)


def _event(row: Any) -> Event:
    return Event(
        row.id, row.title, row.kind, row.departement, row.lat, row.lon,
        EventStatus(row.status), row.opened_by, row.opened_at,
    )  # fmt: skip


def _entry(row: Any) -> Entry:
    return Entry(
        row.id, row.event_id, row.client_id, row.at, row.author, row.sender_scope,
        row.target_scope, row.text, row.annotates,
    )  # fmt: skip


def _transfer(row: Any) -> Transfer:
    return Transfer(
        row.id, row.event_id, row.patient, row.from_finess, row.to_finess, row.departement,
        row.reason, TransferStatus(row.status), row.requested_by, row.created_at, row.updated_at,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry to append (its id and time are the store's)."""

    event_id: int
    client_id: str
    author: str
    sender_scope: str
    target_scope: str
    text: str
    annotates: int | None = None


class SamuStore:
    """Events, their logs and transfer requests, in one ``Database``."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Release the database's connections."""
        await self.db.close()

    # --- events ------------------------------------------------------------------------------
    async def add_event(
        self, title: str, kind: str, departement: str, lat: float, lon: float,
        actor: Actor, at: datetime,
    ) -> Event:  # fmt: skip
        """Open an event. Audited."""
        values = {
            "title": title, "kind": kind, "departement": departement, "lat": lat, "lon": lon,
            "status": EventStatus.OPEN.value, "opened_by": actor.name, "opened_at": at,
        }  # fmt: skip
        async with self.db.begin() as conn:
            new_id = (await conn.execute(sa.insert(events).values(values))).inserted_primary_key
            assert new_id is not None
            event_id = int(new_id[0])
            await self.audit.append(
                conn, actor=actor.name, role=actor.role, action=Action.CREATE,
                object_type="samu_event", object_id=event_id,
            )  # fmt: skip
        return Event(id=event_id, **{**values, "status": EventStatus.OPEN})  # type: ignore[arg-type]

    async def set_event_status(self, event_id: int, status: EventStatus, actor: Actor) -> None:
        """Open or close an event. Audited."""
        async with self.db.begin() as conn:
            await conn.execute(
                sa.update(events).where(events.c.id == event_id).values(status=status.value)
            )
            await self.audit.append(
                conn, actor=actor.name, role=actor.role, action=Action.CLOSE
                if status == EventStatus.CLOSED else Action.UPDATE,
                object_type="samu_event", object_id=event_id, detail=status.value,
            )  # fmt: skip

    async def event(self, event_id: int) -> Event | None:
        """One event."""
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(events).where(events.c.id == event_id))).first()
        return None if row is None else _event(row)

    async def events(self, status: EventStatus | None = None) -> list[Event]:
        """Every event (or those of ``status``), newest first."""
        query = sa.select(events).order_by(events.c.id.desc())
        if status is not None:
            query = query.where(events.c.status == status.value)
        async with self.db.connect() as conn:
            return [_event(r) for r in (await conn.execute(query)).all()]

    # --- the log -----------------------------------------------------------------------------
    async def append(self, item: NewEntry, at: datetime) -> tuple[Entry, bool]:
        """Append an entry; (the entry, whether it is new). An entry whose ``client_id`` is
        known already is not stored twice: the one stored is returned."""
        values = {
            "event_id": item.event_id, "client_id": item.client_id, "at": at,
            "author": item.author, "sender_scope": item.sender_scope,
            "target_scope": item.target_scope, "text": item.text, "annotates": item.annotates,
        }  # fmt: skip
        async with self.db.begin() as conn:
            statement = (
                _dialect(conn)
                .insert(entries)
                .values(values)
                .on_conflict_do_nothing(index_elements=["client_id"])
                .returning(entries.c.id)
            )
            new_id = (await conn.execute(statement)).scalar_one_or_none()
            if new_id is not None:
                return Entry(id=int(new_id), **values), True  # type: ignore[arg-type]
            row = (
                await conn.execute(sa.select(entries).where(entries.c.client_id == item.client_id))
            ).one()
        return _entry(row), False

    async def entry(self, entry_id: int) -> Entry | None:
        """One entry of any event."""
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(entries).where(entries.c.id == entry_id))).first()
        return None if row is None else _entry(row)

    async def entry_by_client_id(self, client_id: str) -> Entry | None:
        """The entry its sender named ``client_id``."""
        async with self.db.connect() as conn:
            query = sa.select(entries).where(entries.c.client_id == client_id)
            row = (await conn.execute(query)).first()
        return None if row is None else _entry(row)

    async def entries(
        self,
        event_id: int,
        targets: list[str] | None,
        sender: str | None = None,
        after_id: int = 0,
        limit: int = PAGE,
        *,
        before_id: int | None = None,
        newest: bool = False,
    ) -> list[Entry]:
        """One page of the log of an event, oldest first: the entries addressed to one of
        ``targets`` (None: all) or sent from ``sender``, after ``after_id`` (and before
        ``before_id``); at most ``limit`` (1 to 5,000), the first ones, or the last ones with
        ``newest``. A caller wanting the whole log pages on with the last id it got."""
        where = [entries.c.event_id == event_id, entries.c.id > after_id]
        if before_id is not None:
            where.append(entries.c.id < before_id)
        query = (
            sa.select(entries)
            .where(*where)
            .order_by(entries.c.id.desc() if newest else entries.c.id)
            .limit(max(1, min(limit, 5000)))
        )
        if targets is not None:
            seen: sa.ColumnElement[bool] = entries.c.target_scope.in_(targets)
            if sender is not None:
                seen = sa.or_(seen, entries.c.sender_scope == sender)
            query = query.where(seen)
        async with self.db.connect() as conn:
            found = [_entry(r) for r in (await conn.execute(query)).all()]
        return found[::-1] if newest else found

    # --- transfers ---------------------------------------------------------------------------
    async def add_transfer(
        self, event_id: int | None, patient: str, from_finess: str, to_finess: str,
        departement: str, reason: str, actor: Actor, at: datetime,
    ) -> Transfer:  # fmt: skip
        """A new transfer request (status requested). Audited, its first move kept."""
        values = {
            "event_id": event_id, "patient": patient, "from_finess": from_finess,
            "to_finess": to_finess, "departement": departement, "reason": reason,
            "status": TransferStatus.REQUESTED.value, "requested_by": actor.name,
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        async with self.db.begin() as conn:
            key = (await conn.execute(sa.insert(transfers).values(values))).inserted_primary_key
            assert key is not None
            transfer_id = int(key[0])
            await conn.execute(
                sa.insert(moves).values(
                    transfer_id=transfer_id, at=at, actor=actor.name, from_status=None,
                    to_status=TransferStatus.REQUESTED.value,
                )
            )  # fmt: skip
            await self.audit.append(
                conn, actor=actor.name, role=actor.role, action=Action.CREATE,
                object_type="samu_transfer", object_id=transfer_id,
            )  # fmt: skip
        values["status"] = TransferStatus.REQUESTED
        return Transfer(id=transfer_id, **values)  # type: ignore[arg-type]

    async def transfer(self, transfer_id: int) -> Transfer | None:
        """One transfer request, not audited (the service audits what it shows)."""
        async with self.db.connect() as conn:
            query = sa.select(transfers).where(transfers.c.id == transfer_id)
            row = (await conn.execute(query)).first()
        return None if row is None else _transfer(row)

    async def transfers(
        self, departements: list[str] | None = None, finess: str | None = None
    ) -> list[Transfer]:
        """Transfer requests of ``departements`` (None: all) or from/to ``finess``, newest
        first. Not audited (the service audits what it shows)."""
        query = sa.select(transfers).order_by(transfers.c.id.desc()).limit(1000)
        if departements is not None:
            query = query.where(transfers.c.departement.in_(departements))
        if finess is not None:
            query = query.where(
                sa.or_(transfers.c.from_finess == finess, transfers.c.to_finess == finess)
            )
        async with self.db.connect() as conn:
            return [_transfer(r) for r in (await conn.execute(query)).all()]

    async def move_transfer(
        self, transfer_id: int, current: TransferStatus, new: TransferStatus, actor: Actor,
        at: datetime,
    ) -> bool:  # fmt: skip
        """Move a transfer from ``current`` to ``new``; False if it was not in ``current``
        any more (someone moved it first). Audited, the move kept."""
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(transfers)
                .where(transfers.c.id == transfer_id, transfers.c.status == current.value)
                .values(status=new.value, updated_at=at)
            )
            if result.rowcount != 1:
                return False
            await conn.execute(
                sa.insert(moves).values(
                    transfer_id=transfer_id, at=at, actor=actor.name,
                    from_status=current.value, to_status=new.value,
                )
            )  # fmt: skip
            await self.audit.append(
                conn, actor=actor.name, role=actor.role, action=Action.UPDATE,
                object_type="samu_transfer", object_id=transfer_id, detail=new.value,
            )  # fmt: skip
        return True

    async def read_audited(self, items: list[Transfer], actor: Actor) -> None:
        """Record that ``actor`` read these transfer requests (they name patients)."""
        if not items:
            return
        async with self.db.begin() as conn:
            await self.audit.append_many(
                conn, actor=actor.name, role=actor.role, action=Action.READ,
                object_type="samu_transfer", entries=[(str(t.id), "") for t in items],
            )  # fmt: skip


def _dialect(conn: AsyncConnection) -> Any:
    """The dialect module of ``conn`` (for INSERT ... ON CONFLICT)."""
    return postgresql if conn.dialect.name == "postgresql" else sqlite
