"""The bed service's storage (``kit.db``: SQLite embedded, PostgreSQL in production).

``beds_current`` holds each unit's latest counts (what dashboards and searches read: one row
per unit, about 3,000 nationally); ``beds_updates`` keeps every update (the history); the
audit log gets one entry per update in the same transaction. ``beds_daily`` keeps each
département's figures once a day (the dashboards' 7-day trend and the bulletin's history).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from beds.model import BedKind, Counts, Establishment, Unit, UnitState, Update
from beds.tension import DENOMINATOR_KINDS, Tension
from kit.audit import Actor, AuditLog
from kit.db import Database, Migrations, UtcDateTime

MIGRATIONS = Migrations("beds", Path(__file__).resolve().parent / "migrations")

COUNT_NAMES = ("installed", "surge", "occupied", "available", "covid")

metadata = sa.MetaData()


def _counts() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in COUNT_NAMES]


establishments = sa.Table(
    "beds_establishments",
    metadata,
    sa.Column("finess", sa.String(9), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("commune", sa.String(100), nullable=False),
    sa.Column("postcode", sa.String(5), nullable=False),
    sa.Column("departement", sa.String(3), nullable=False),
    sa.Column("region", sa.String(2), nullable=False),
    sa.Column("lat", sa.Float(), nullable=False),
    sa.Column("lon", sa.Float(), nullable=False),
)
units = sa.Table(
    "beds_units",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("finess", sa.String(9), sa.ForeignKey("beds_establishments.finess"), nullable=False),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(3), nullable=False),
    sa.Column("initial", sa.Integer(), nullable=False),
)
current = sa.Table(
    "beds_current",
    metadata,
    sa.Column("unit_id", sa.Integer(), sa.ForeignKey("beds_units.id"), primary_key=True),
    *_counts(),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
)
updates = sa.Table(
    "beds_updates",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("unit_id", sa.Integer(), sa.ForeignKey("beds_units.id"), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    *_counts(),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
)
daily = sa.Table(
    "beds_daily",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("departement", sa.String(3), primary_key=True),
    sa.Column("covid_critical", sa.Integer(), nullable=False),
    sa.Column("initial_capacity", sa.Integer(), nullable=False),
    sa.Column("occupied", sa.Integer(), nullable=False),
    sa.Column("available", sa.Integer(), nullable=False),
    sa.Column("installed", sa.Integer(), nullable=False),
    sa.Column("surge", sa.Integer(), nullable=False),
    sa.Column("units", sa.Integer(), nullable=False),
    sa.Column("stale_units", sa.Integer(), nullable=False),
    sa.Column("taken_at", UtcDateTime(), nullable=False),
)

_TENSION_FIELDS = (
    "covid_critical",
    "initial_capacity",
    "occupied",
    "available",
    "installed",
    "surge",
    "units",
    "stale_units",
)

_STATE_COLUMNS = (
    units.c.id,
    units.c.finess,
    units.c.code,
    units.c.name,
    units.c.kind,
    units.c.initial,
    *(establishments.c[name] for name in ("name", "commune", "postcode", "departement")),
    establishments.c.region,
    establishments.c.lat,
    establishments.c.lon,
    *(current.c[name] for name in COUNT_NAMES),
    current.c.updated_at,
    current.c.source,
)


def _establishment(row: Any) -> Establishment:
    return Establishment(
        row.finess,
        row.name,
        row.commune,
        row.postcode,
        row.departement,
        row.region,
        row.lat,
        row.lon,
    )


def _unit(row: Any) -> Unit:
    return Unit(row.id, row.finess, row.code, row.name, BedKind(row.kind), row.initial)


def _state(row: Sequence[Any]) -> UnitState:
    unit = Unit(row[0], row[1], row[2], row[3], BedKind(row[4]), row[5])
    establishment = Establishment(row[1], *row[6:13])
    counts = None if row[13] is None else Counts(*row[13:18])
    return UnitState(unit, establishment, counts, row[18], row[19])


@dataclass(frozen=True, slots=True)
class NewUpdate:
    """An update to record: whose unit, the counts, when, from where."""

    unit_id: int
    counts: Counts
    at: datetime
    source: str


class BedStore:
    """Establishments, units, counts and their history, in one ``Database``."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()
        self.version = 0
        """Incremented after every committed write (what cached figures are checked with)."""
        self._pending: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Finish the pending group commit, then release the database's connections."""
        if self._writer is not None:
            await self._writer
        await self.db.close()

    # --- establishments and units ----------------------------------------------------------
    async def put_establishments(self, items: Sequence[Establishment], actor: Actor) -> int:
        """Create or update establishments (by FINESS); how many were written. Audited."""
        if not items:
            return 0
        async with self.db.begin() as conn:
            rows = [
                {
                    "finess": e.finess,
                    "name": e.name,
                    "commune": e.commune,
                    "postcode": e.postcode,
                    "departement": e.departement,
                    "region": e.region,
                    "lat": e.lat,
                    "lon": e.lon,
                }
                for e in items
            ]
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
                entries=[(e.finess, "") for e in items],
            )
        self.version += 1
        return len(items)

    async def add_unit(
        self, finess: str, code: str, name: str, kind: BedKind, initial: int, actor: Actor
    ) -> Unit | None:
        """A new unit of an establishment; None if the establishment has one of that code."""
        async with self.db.begin() as conn:
            inserted = await conn.execute(
                _dialect(conn)
                .insert(units)
                .values(finess=finess, code=code, name=name, kind=kind.value, initial=initial)
                .on_conflict_do_nothing()
                .returning(units.c.id)
            )
            unit_id = inserted.scalar()
            if unit_id is None:
                return None
            await self.audit.append(
                conn,
                actor=actor.name,
                role=actor.role,
                action="create",
                object_type="unit",
                object_id=unit_id,
                detail=f"{finess} {kind.value} initial {initial}",
            )
        self.version += 1
        return Unit(unit_id, finess, code, name, kind, initial)

    async def establishment(self, finess: str) -> Establishment | None:
        """The establishment of that FINESS, or None."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(establishments).where(establishments.c.finess == finess)
                )
            ).first()
        return None if row is None else _establishment(row)

    async def establishments_in(self, departements: Iterable[str] | None) -> list[Establishment]:
        """Establishments of the given départements (all with None), by FINESS."""
        query = sa.select(establishments).order_by(establishments.c.finess)
        if departements is not None:
            query = query.where(establishments.c.departement.in_(list(departements)))
        async with self.db.connect() as conn:
            return [_establishment(r) for r in await conn.execute(query)]

    async def unit(self, unit_id: int) -> Unit | None:
        """The unit of that id, or None."""
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(units).where(units.c.id == unit_id))).first()
        return None if row is None else _unit(row)

    async def unit_by_code(self, finess: str, code: str) -> Unit | None:
        """The unit of an establishment by its code, or None."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(units).where(units.c.finess == finess, units.c.code == code)
                )
            ).first()
        return None if row is None else _unit(row)

    # --- states ----------------------------------------------------------------------------
    def _states_query(self) -> sa.Select[Any]:
        return (
            sa.select(*_STATE_COLUMNS)
            .select_from(
                units.join(establishments, units.c.finess == establishments.c.finess).outerjoin(
                    current, current.c.unit_id == units.c.id
                )
            )
            .order_by(units.c.finess, units.c.kind, units.c.code)
        )

    async def states(
        self,
        *,
        departements: Iterable[str] | None = None,
        finess: str | None = None,
        unit_ids: Iterable[int] | None = None,
        kind: BedKind | None = None,
        with_free_bed: bool = False,
        postcodes: Iterable[str] | None = None,
        changed_since: datetime | None = None,
    ) -> list[UnitState]:
        """Units with their latest counts, filtered."""
        query = self._states_query()
        if departements is not None:
            query = query.where(establishments.c.departement.in_(list(departements)))
        if finess is not None:
            query = query.where(units.c.finess == finess)
        if unit_ids is not None:
            query = query.where(units.c.id.in_(list(unit_ids)))
        if kind is not None:
            query = query.where(units.c.kind == kind.value)
        if with_free_bed:
            query = query.where(current.c.available > 0)
        if postcodes is not None:
            clauses = [establishments.c.postcode.startswith(p) for p in postcodes]
            query = query.where(sa.or_(*clauses))
        if changed_since is not None:
            query = query.where(current.c.updated_at >= changed_since)
        async with self.db.connect() as conn:
            return [_state(r) for r in await conn.execute(query)]

    async def free_positions(self, kind: BedKind) -> list[tuple[int, float, float]]:
        """(unit id, latitude, longitude) of every unit of ``kind`` with a free bed now: what
        the nearest-bed search ranks, without building each unit's whole state."""
        query = (
            sa.select(units.c.id, establishments.c.lat, establishments.c.lon)
            .select_from(
                units.join(establishments, units.c.finess == establishments.c.finess).join(
                    current, current.c.unit_id == units.c.id
                )
            )
            .where(units.c.kind == kind.value, current.c.available > 0)
            .order_by(units.c.id)
        )
        async with self.db.connect() as conn:
            return [(r[0], r[1], r[2]) for r in await conn.execute(query)]

    async def tension_by_departement(
        self, departements: Iterable[str] | None, stale_before: datetime
    ) -> dict[str, Tension]:
        """Each département's indicators now, summed by the database (``GROUP BY`` over
        ``beds_current``, one row per unit): the same figures as ``tension.by_departement``
        over every unit's state, without a Python object per unit. A unit is stale when never
        updated or updated before ``stale_before``."""
        stale = sa.or_(current.c.updated_at.is_(None), current.c.updated_at < stale_before)
        rea_initial = sa.case(
            (units.c.kind.in_([k.value for k in DENOMINATOR_KINDS]), units.c.initial), else_=0
        )
        query = (
            sa.select(
                establishments.c.departement,
                *(
                    sa.func.coalesce(sa.func.sum(expr), 0)
                    for expr in (
                        current.c.covid,
                        rea_initial,
                        current.c.occupied,
                        current.c.available,
                        current.c.installed,
                        current.c.surge,
                    )
                ),
                sa.func.count(units.c.id),
                sa.func.coalesce(sa.func.sum(sa.case((stale, 1), else_=0)), 0),
            )
            .select_from(
                units.join(establishments, units.c.finess == establishments.c.finess).outerjoin(
                    current, current.c.unit_id == units.c.id
                )
            )
            .group_by(establishments.c.departement)
        )
        if departements is not None:
            query = query.where(establishments.c.departement.in_(list(departements)))
        async with self.db.connect() as conn:
            return {r[0]: Tension(*(int(v) for v in r[1:])) for r in await conn.execute(query)}

    # --- updates ---------------------------------------------------------------------------
    async def record(self, items: Sequence[NewUpdate], actor: Actor) -> list[Update]:
        """Record updates in one transaction: history, current counts, audit. An update older
        than the unit's current counts goes to the history but does not replace them."""
        [recorded] = await self.record_many([(items, actor)])
        return recorded

    async def record_many(
        self, batches: Sequence[tuple[Sequence[NewUpdate], Actor]]
    ) -> list[list[Update]]:
        """Record several callers' updates in ONE transaction (a group commit): each batch's
        history rows carry its actor, each actor's audit entries are written together; the
        current counts take the latest update of each unit across the batches."""
        everything = [(item, actor) for items, actor in batches for item in items]
        if not everything:
            return [[] for _ in batches]
        async with self.db.begin() as conn:
            rows = [
                {
                    "unit_id": u.unit_id,
                    "at": u.at,
                    "source": u.source,
                    "actor": actor.name,
                    **_count_values(u.counts),
                }
                for u, actor in everything
            ]
            ids = list(
                (
                    await conn.execute(
                        sa.insert(updates).returning(updates.c.id, sort_by_parameter_order=True),
                        rows,
                    )
                ).scalars()
            )
            recorded: list[list[Update]] = []
            position = 0
            for items, actor in batches:
                recorded.append(
                    [
                        Update(update_id, u.unit_id, u.at, u.counts, u.source, actor.name)
                        for update_id, u in zip(
                            ids[position : position + len(items)], items, strict=True
                        )
                    ]
                )
                position += len(items)
            statement = _dialect(conn).insert(current)
            newer = current.c.updated_at <= statement.excluded.updated_at
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["unit_id"],
                    set_={c: statement.excluded[c] for c in (*COUNT_NAMES, "updated_at", "source")},
                    where=newer,
                ),
                [
                    {
                        "unit_id": u.unit_id,
                        "updated_at": u.at,
                        "source": u.source,
                        **_count_values(u.counts),
                    }
                    for u in _latest_per_unit([u for u, _ in everything])
                ],
            )
            by_actor: dict[Actor, list[tuple[str, str]]] = {}
            for done, (_, actor) in zip(recorded, batches, strict=True):
                by_actor.setdefault(actor, []).extend(
                    (str(u.unit_id), f"{u.source} update {u.id}") for u in done
                )
            for actor, entries in by_actor.items():
                await self.audit.append_many(
                    conn,
                    actor=actor.name,
                    role=actor.role,
                    action="update",
                    object_type="unit",
                    entries=entries,
                )
        self.version += 1
        return recorded

    async def submit(self, items: Sequence[NewUpdate], actor: Actor) -> list[Update]:
        """Record updates with those of other callers waiting at the same time, in one
        transaction (a group commit): while one transaction runs, the updates arriving queue
        up and go together in the next. Returns when this caller's updates are committed.
        If a group fails, each caller's updates are retried alone, so one caller's fault
        is not another's."""
        waiting = _Waiting(items, actor, asyncio.get_running_loop().create_future())
        self._pending.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        return await waiting.done

    async def _write_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                results = await self.record_many([(w.items, w.actor) for w in group])
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0].done, exc)
                    continue
                for w in group:
                    try:
                        _settle(w.done, await self.record(w.items, w.actor))
                    except Exception as alone:
                        _settle(w.done, alone)
            else:
                for w, result in zip(group, results, strict=True):
                    _settle(w.done, result)

    async def history(self, unit_id: int, limit: int = 100) -> list[Update]:
        """A unit's updates, newest first."""
        query = (
            sa.select(updates)
            .where(updates.c.unit_id == unit_id)
            .order_by(updates.c.at.desc(), updates.c.id.desc())
            .limit(limit)
        )
        async with self.db.connect() as conn:
            return [
                Update(
                    r.id,
                    r.unit_id,
                    r.at,
                    Counts(*(getattr(r, c) for c in COUNT_NAMES)),
                    r.source,
                    r.actor,
                )
                for r in await conn.execute(query)
            ]

    # --- daily figures ---------------------------------------------------------------------
    async def put_daily(self, day: date, figures: dict[str, Tension], taken_at: datetime) -> None:
        """Keep (replace) the day's figures of each département."""
        if not figures:
            return
        rows = [
            {
                "day": day.isoformat(),
                "departement": dep,
                "taken_at": taken_at,
                **{f: getattr(t, f) for f in _TENSION_FIELDS},
            }
            for dep, t in figures.items()
        ]
        async with self.db.begin() as conn:
            statement = _dialect(conn).insert(daily)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["day", "departement"],
                    set_={c: statement.excluded[c] for c in (*_TENSION_FIELDS, "taken_at")},
                ),
                rows,
            )

    async def daily_figures(
        self, departements: Iterable[str] | None, since: date
    ) -> dict[str, dict[str, Tension]]:
        """Day (ISO) → département → figures, from ``since`` on."""
        query = sa.select(daily).where(daily.c.day >= since.isoformat())
        if departements is not None:
            query = query.where(daily.c.departement.in_(list(departements)))
        found: dict[str, dict[str, Tension]] = {}
        async with self.db.connect() as conn:
            for r in await conn.execute(query):
                found.setdefault(r.day, {})[r.departement] = Tension(
                    *(getattr(r, f) for f in _TENSION_FIELDS)
                )
        return found


@dataclass(frozen=True, slots=True)
class _Waiting:
    """A caller's updates waiting for the next group commit."""

    items: Sequence[NewUpdate]
    actor: Actor
    done: asyncio.Future[list[Update]]


def _settle(future: asyncio.Future[list[Update]], outcome: list[Update] | Exception) -> None:
    """Give a waiting caller its result or error (unless it has gone: cancelled)."""
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _count_values(counts: Counts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in COUNT_NAMES}


def _latest_per_unit(items: Sequence[NewUpdate]) -> list[NewUpdate]:
    """The latest update of each unit in a batch (a file may carry several per unit)."""
    latest: dict[int, NewUpdate] = {}
    for item in items:
        kept = latest.get(item.unit_id)
        if kept is None or item.at >= kept.at:
            latest[item.unit_id] = item
    return list(latest.values())


def _dialect(conn: AsyncConnection) -> Any:
    """The dialect module of ``conn`` (for INSERT ... ON CONFLICT)."""
    return postgresql if conn.dialect.name == "postgresql" else sqlite
