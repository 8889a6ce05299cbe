"""The drug service's storage (``kit.db``): establishments, every stock report (history), the
latest stock per establishment and drug, the allocations made; each write audited in its
transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.audit import Actor, AuditLog
from kit.db import Database, Migrations, UtcDateTime

MIGRATIONS = Migrations("drugs", Path(__file__).resolve().parent / "migrations")
metadata = sa.MetaData()

establishments = sa.Table(
    "drugs_establishments",
    metadata,
    sa.Column("finess", sa.String(9), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("departement", sa.String(3), nullable=False),
    sa.Column("region", sa.String(2), nullable=False),
    sa.Column("lat", sa.Float(), nullable=True),
    sa.Column("lon", sa.Float(), nullable=True),
)
reports = sa.Table(
    "drugs_reports",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("finess", sa.String(9), nullable=False),
    sa.Column("drug", sa.String(32), nullable=False),
    sa.Column("on_hand", sa.Integer(), nullable=False),
    sa.Column("daily_use", sa.Float(), nullable=False),
    sa.Column("reported_at", UtcDateTime(), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
)
stock = sa.Table(
    "drugs_stock",
    metadata,
    sa.Column("finess", sa.String(9), primary_key=True),
    sa.Column("drug", sa.String(32), primary_key=True),
    sa.Column("on_hand", sa.Integer(), nullable=False),
    sa.Column("daily_use", sa.Float(), nullable=False),
    sa.Column("reported_at", UtcDateTime(), nullable=False),
)
allocations = sa.Table(
    "drugs_allocations",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("drug", sa.String(32), nullable=False),
    sa.Column("quota", sa.Integer(), nullable=False),
    sa.Column("formula", sa.String(32), nullable=False),
    sa.Column("made_at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("result", sa.Text(), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Place:
    """An establishment as the drug service knows it."""

    finess: str
    name: str
    departement: str
    region: str
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class Report:
    """One stock report (or the latest, for ``drugs_stock``)."""

    finess: str
    drug: str
    on_hand: int
    daily_use: float
    reported_at: datetime


def _dialect(conn: AsyncConnection) -> Any:
    return postgresql if conn.dialect.name == "postgresql" else sqlite


class DrugStore:
    """The drug service's tables, in one ``Database``."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def open(self) -> None:
        """Bring the schema to its latest revision."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Release the database's connections."""
        await self.db.close()

    async def put_places(self, places: Sequence[Place], actor: Actor) -> None:
        """Create or update establishments. Audited."""
        if not places:
            return
        rows = [
            {
                "finess": p.finess,
                "name": p.name,
                "departement": p.departement,
                "region": p.region,
                "lat": p.lat,
                "lon": p.lon,
            }
            for p in places
        ]
        async with self.db.begin() as conn:
            statement = _dialect(conn).insert(establishments)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["finess"],
                    set_={c: statement.excluded[c] for c in rows[0] if c != "finess"},
                ),
                rows,
            )
            await self.audit.append_many(
                conn,
                actor=actor.name,
                role=actor.role,
                action="update",
                object_type="establishment",
                entries=[(p.finess, "") for p in places],
            )

    async def places(self, region: str | None = None) -> list[Place]:
        """Establishments (of a region), by FINESS."""
        query = sa.select(establishments).order_by(establishments.c.finess)
        if region is not None:
            query = query.where(establishments.c.region == region)
        async with self.db.connect() as conn:
            return [
                Place(r.finess, r.name, r.departement, r.region, r.lat, r.lon)
                for r in await conn.execute(query)
            ]

    async def place(self, finess: str) -> Place | None:
        """One establishment, or None."""
        found = [p for p in await self.places() if p.finess == finess]
        return found[0] if found else None

    async def record(self, items: Sequence[Report], source: str, actor: Actor) -> list[int]:
        """Record stock reports (history, latest stock, audit) in one transaction."""
        if not items:
            return []
        async with self.db.begin() as conn:
            rows = [
                {
                    "finess": r.finess,
                    "drug": r.drug,
                    "on_hand": r.on_hand,
                    "daily_use": r.daily_use,
                    "reported_at": r.reported_at,
                    "source": source,
                    "actor": actor.name,
                }
                for r in items
            ]
            ids = list(
                (
                    await conn.execute(
                        sa.insert(reports).returning(reports.c.id, sort_by_parameter_order=True),
                        rows,
                    )
                ).scalars()
            )
            statement = _dialect(conn).insert(stock)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["finess", "drug"],
                    set_={
                        c: statement.excluded[c] for c in ("on_hand", "daily_use", "reported_at")
                    },
                    where=stock.c.reported_at <= statement.excluded.reported_at,
                ),
                [
                    {k: row[k] for k in ("finess", "drug", "on_hand", "daily_use", "reported_at")}
                    for row in rows
                ],
            )
            await self.audit.append_many(
                conn,
                actor=actor.name,
                role=actor.role,
                action="update",
                object_type="stock",
                entries=[
                    (f"{r.finess}:{r.drug}", f"{source} report {i}")
                    for r, i in zip(items, ids, strict=True)
                ],
            )
        return ids

    async def latest(
        self, finess: Iterable[str] | None = None, drug: str | None = None
    ) -> list[Report]:
        """The latest stock of each (establishment, drug)."""
        query = sa.select(stock).order_by(stock.c.finess, stock.c.drug)
        if finess is not None:
            query = query.where(stock.c.finess.in_(list(finess)))
        if drug is not None:
            query = query.where(stock.c.drug == drug)
        async with self.db.connect() as conn:
            return [
                Report(r.finess, r.drug, r.on_hand, r.daily_use, r.reported_at)
                for r in await conn.execute(query)
            ]

    async def history(self, finess: str, drug: str, limit: int = 100) -> list[Report]:
        """An establishment's reports of a drug, newest first."""
        query = (
            sa.select(reports)
            .where(reports.c.finess == finess, reports.c.drug == drug)
            .order_by(reports.c.reported_at.desc(), reports.c.id.desc())
            .limit(limit)
        )
        async with self.db.connect() as conn:
            return [
                Report(r.finess, r.drug, r.on_hand, r.daily_use, r.reported_at)
                for r in await conn.execute(query)
            ]

    async def save_allocation(
        self,
        drug: str,
        quota: int,
        formula: str,
        made_at: datetime,
        actor: Actor,
        result: dict[str, Any],
    ) -> int:
        """Keep an allocation and its trace. Audited."""
        async with self.db.begin() as conn:
            allocation_id = (
                await conn.execute(
                    sa.insert(allocations)
                    .values(
                        drug=drug,
                        quota=quota,
                        formula=formula,
                        made_at=made_at,
                        actor=actor.name,
                        result=json.dumps(result, ensure_ascii=False),
                    )
                    .returning(allocations.c.id)
                )
            ).scalar_one()
            await self.audit.append(
                conn,
                actor=actor.name,
                role=actor.role,
                action="create",
                object_type="allocation",
                object_id=allocation_id,
                detail=f"{drug} {quota}",
            )
        return int(allocation_id)
