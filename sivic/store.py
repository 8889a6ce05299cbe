"""SI-VIC's storage (``kit.db``: SQLite embedded, PostgreSQL in production).

``sivic_patients`` holds each patient's current episode; ``sivic_keys`` the keyed hashes a
patient is found by within an event (INS, normalised identity, the hospital's own number), so
that a transfer finds the same patient; ``sivic_history`` every change with what it counts
(new hospitalisation, entry into critical care, return home, death), from which any day's
snapshot is computed; ``sivic_published`` the rows published each day. Every change is audited
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.audit import Actor, AuditLog
from kit.db import Database, Migrations, UtcDateTime
from sivic.model import (
    Covid,
    Episode,
    Event,
    EventKind,
    HistoryEntry,
    Identity,
    Movement,
    Outcome,
    Patient,
    Registration,
    Sex,
    Status,
    UnitKind,
    age_class,
    day_movement,
    decide,
    movement,
)
from sivic.opendata import MovementCount, StateCount

MIGRATIONS = Migrations("sivic", Path(__file__).resolve().parent / "migrations")
REVISION = "sivic_0003"
CHUNK = 500

metadata = sa.MetaData()

events = sa.Table(
    "sivic_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
    sa.Column("opened_by", sa.String(100), nullable=False),
)
patients = sa.Table(
    "sivic_patients",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), nullable=False),
    sa.Column("finess", sa.String(9), nullable=False),
    sa.Column("dep", sa.String(3), nullable=False),
    sa.Column("ins", sa.String(15), nullable=True),
    sa.Column("patient_ref", sa.String(64), nullable=True),
    sa.Column("last_name", sa.String(100), nullable=True),
    sa.Column("first_name", sa.String(100), nullable=True),
    sa.Column("birth_date", sa.String(10), nullable=False),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("unit", sa.String(8), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("status_date", sa.String(10), nullable=False),
    sa.Column("covid", sa.String(4), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("age_class", sa.String(2), nullable=False, server_default="0"),
)
keys = sa.Table(
    "sivic_keys",
    metadata,
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("patient_id", sa.Integer(), sa.ForeignKey("sivic_patients.id"), nullable=False),
)
history = sa.Table(
    "sivic_history",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("patient_id", sa.Integer(), sa.ForeignKey("sivic_patients.id"), nullable=False),
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), nullable=False),
    sa.Column("finess", sa.String(9), nullable=False),
    sa.Column("dep", sa.String(3), nullable=False),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("age_class", sa.String(2), nullable=False),
    sa.Column("unit", sa.String(8), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("status_date", sa.String(10), nullable=False),
    sa.Column("covid", sa.String(4), nullable=False),
    sa.Column("admitted", sa.SmallInteger(), nullable=False),
    sa.Column("to_critical", sa.SmallInteger(), nullable=False),
    sa.Column("to_home", sa.SmallInteger(), nullable=False),
    sa.Column("to_death", sa.SmallInteger(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
)
published = sa.Table(
    "sivic_published",
    metadata,
    sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("dataset", sa.String(60), primary_key=True),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("published_at", UtcDateTime(), nullable=False),
)

sa.Index("sivic_patients_at", patients.c.event_id, patients.c.finess, patients.c.status)
sa.Index("sivic_history_by_day", history.c.event_id, history.c.status_date)
sa.Index("sivic_history_by_patient", history.c.patient_id, history.c.id)
sa.Index(
    "sivic_history_movements",
    *(history.c[name] for name in ("event_id", "status_date", "dep", "sex", "age_class", "covid",
                                   "admitted", "to_critical", "to_home", "to_death")),
)  # fmt: skip
sa.Index("sivic_patients_current", patients.c.event_id, patients.c.status, patients.c.dep)

_IDENTITY = ("ins", "patient_ref", "last_name", "first_name")


@dataclass(slots=True)
class _Live:
    """A patient during a batch: as stored, or new (no id until inserted)."""

    id: int | None
    identity: Identity
    episode: Episode
    changed: bool = False
    prior: Episode | None = None
    """The patient's last state dated before ``episode``'s day (None: none), once known."""
    day: list[Episode] | None = None
    """The patient's states of ``episode``'s day, in order (None: not read yet)."""


@dataclass(slots=True)
class _Change:
    """A history row to write: the patient, their new state, what it counts."""

    live: _Live
    episode: Episode
    moved: Movement


NO_MOVEMENT = Movement(False, False, False, False)


@dataclass(frozen=True, slots=True)
class Result:
    """What one registration of a batch did, and to which patient."""

    outcome: Outcome
    reason: str
    patient_id: int | None


def _event(row: Any) -> Event:
    return Event(row.id, EventKind(row.kind), row.name, row.opened_at, row.closed_at)


def _identity(row: Any) -> Identity:
    return Identity(
        date.fromisoformat(row.birth_date),
        Sex(row.sex),
        row.ins,
        row.patient_ref,
        row.last_name,
        row.first_name,
    )


def _episode(row: Any) -> Episode:
    return Episode(
        row.finess,
        row.dep,
        UnitKind(row.unit),
        Status(row.status),
        date.fromisoformat(row.status_date),
        Covid(row.covid),
    )


def _patient(row: Any) -> Patient:
    return Patient(row.id, row.event_id, _identity(row), _episode(row), row.updated_at)


def _episode_values(e: Episode) -> dict[str, str]:
    return {
        "finess": e.finess,
        "dep": e.dep,
        "unit": e.unit.value,
        "status": e.status.value,
        "status_date": e.status_date.isoformat(),
        "covid": e.covid.value,
    }


def _identity_values(i: Identity) -> dict[str, str | None]:
    return {
        "ins": i.ins,
        "patient_ref": i.patient_ref,
        "last_name": i.last_name,
        "first_name": i.first_name,
        "birth_date": i.birth_date.isoformat(),
        "sex": i.sex.value,
    }


def _merged(stored: Identity, given: Identity) -> Identity:
    """The stored identity completed by what a new registration gives (never erased)."""
    values = {name: getattr(given, name) or getattr(stored, name) for name in _IDENTITY}
    sex = stored.sex if given.sex == Sex.UNKNOWN else given.sex
    return replace(stored, sex=sex, **values)


def _conflicts(stored: Identity, given: Identity) -> bool:
    """Two different INS: not the same person, whatever else matches."""
    return stored.ins is not None and given.ins is not None and stored.ins != given.ins


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class SivicStore:
    """Events, patients, their keys and history, and the published rows, in one ``Database``."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Release the database's connections."""
        await self.db.close()

    # --- events ----------------------------------------------------------------------------
    async def create_event(self, kind: EventKind, name: str, actor: Actor, at: datetime) -> Event:
        """A new open event. Audited."""
        async with self.db.begin() as conn:
            event_id = (
                await conn.execute(
                    sa.insert(events)
                    .values(kind=kind.value, name=name, opened_at=at, opened_by=actor.name)
                    .returning(events.c.id)
                )
            ).scalar_one()
            await self.audit.append(
                conn,
                actor=actor.name,
                role=actor.role,
                action="create",
                object_type="event",
                object_id=event_id,
                detail=kind.value,
            )
        return Event(event_id, kind, name, at, None)

    async def close_event(self, event_id: int, actor: Actor, at: datetime) -> bool:
        """Close an open event; whether it was open. Audited."""
        async with self.db.begin() as conn:
            closed = await conn.execute(
                sa.update(events)
                .where(events.c.id == event_id, events.c.closed_at.is_(None))
                .values(closed_at=at)
            )
            if closed.rowcount != 1:
                return False
            await self.audit.append(
                conn,
                actor=actor.name,
                role=actor.role,
                action="close",
                object_type="event",
                object_id=event_id,
            )
        return True

    async def events(self) -> list[Event]:
        """Every event, newest first."""
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(events).order_by(events.c.id.desc()))
            return [_event(r) for r in rows]

    async def event(self, event_id: int) -> Event | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(events).where(events.c.id == event_id))).first()
        return None if row is None else _event(row)

    # --- registrations ---------------------------------------------------------------------
    async def register(
        self,
        event_id: int,
        items: Sequence[tuple[Registration, Sequence[str]]],
        actor: Actor,
        source: str,
        at: datetime,
    ) -> list[Result]:
        """Apply registrations (each with its match keys, most trusted first) in one
        transaction: a known patient is updated, an unknown one created, the same state twice
        changes nothing. History and audit in the same transaction.

        A correction of the same day (a state dated the day of the current one) replaces that
        day's movements instead of adding to them: it counts what changed since the patient's
        last state dated *before* that day, and the patient's earlier rows of that day count
        nothing any more (crit, conv, crit the same day is one entry into critical care; a
        mistaken "deceased" corrected the same day is no death).

        Concurrent batches: the known patients are locked (``SELECT ... FOR UPDATE`` on
        PostgreSQL; SQLite writes one transaction at a time) so that each change is computed
        from the state the other committed; two batches creating the same person at once
        collide on a key, and the one refused is run again once, finding the patient the other
        made; so is one refused by a deadlock or serialisation failure (``concurrent``). Any
        other database error (a foreign key, a NOT NULL...) is a fault, raised as it is."""
        if not items:
            return []
        try:
            return await self._register(event_id, items, actor, source, at)
        except sa.exc.DBAPIError as exc:
            if not concurrent(exc):
                raise
            return await self._register(event_id, items, actor, source, at)

    async def _register(
        self,
        event_id: int,
        items: Sequence[tuple[Registration, Sequence[str]]],
        actor: Actor,
        source: str,
        at: datetime,
    ) -> list[Result]:
        async with self.db.begin() as conn:
            owners = await self._owners(conn, event_id, sorted({k for _, ks in items for k in ks}))
            lives = await self._lives(conn, sorted(set(owners.values())))
            by_key: dict[str, _Live] = {k: lives[pid] for k, pid in owners.items()}
            new_keys: list[tuple[str, _Live]] = []
            changes: list[_Change] = []
            corrected: set[tuple[int, str]] = set()
            results: list[tuple[Outcome, str, _Live | None]] = []
            created: list[_Live] = []
            for registration, candidate_keys in items:
                live = next(
                    (
                        by_key[k]
                        for k in candidate_keys
                        if k in by_key and not _conflicts(by_key[k].identity, registration.identity)
                    ),
                    None,
                )
                previous = live.episode if live else None
                outcome, reason = decide(previous, registration.episode)
                if outcome in (Outcome.REFUSED, Outcome.UNCHANGED):
                    results.append((outcome, reason, live))
                    continue
                day = registration.episode.status_date
                if live is not None and previous is not None and previous.status_date == day:
                    if live.day is None:
                        assert live.id is not None  # known since an earlier batch
                        live.prior, live.day = await self._day_of(conn, live.id, day)
                    live.day.append(registration.episode)
                    moved = day_movement(live.prior, live.day)
                    for change in changes:
                        if change.live is live and change.episode.status_date == day:
                            change.moved = NO_MOVEMENT
                    if live.id is not None:
                        corrected.add((live.id, day.isoformat()))
                else:
                    moved = movement(previous, registration.episode)
                if live is None:
                    live = _Live(None, registration.identity, registration.episode)
                    live.day = [registration.episode]
                    created.append(live)
                else:
                    if previous is not None and previous.status_date < day:
                        live.prior, live.day = previous, [registration.episode]
                    live.identity = _merged(live.identity, registration.identity)
                    live.episode = registration.episode
                    live.changed = True
                for k in candidate_keys:
                    if k not in by_key:
                        by_key[k] = live
                        new_keys.append((k, live))
                changes.append(_Change(live, registration.episode, moved))
                results.append((outcome, reason, live))
            await self._insert_patients(conn, event_id, created, at)
            if corrected:  # before this batch's rows are written: the day's earlier rows only
                await conn.execute(
                    sa.update(history)
                    .where(
                        history.c.patient_id == sa.bindparam("h_patient"),
                        history.c.status_date == sa.bindparam("h_day"),
                    )
                    .values(admitted=0, to_critical=0, to_home=0, to_death=0),
                    [{"h_patient": p, "h_day": d} for p, d in sorted(corrected)],
                )
            await self._update_patients(conn, [v for v in lives.values() if v.changed], at)
            if new_keys:
                await conn.execute(
                    sa.insert(keys),
                    [{"event_id": event_id, "key": k, "patient_id": v.id} for k, v in new_keys],
                )
            if changes:
                await conn.execute(
                    sa.insert(history),
                    [
                        {
                            "patient_id": c.live.id,
                            "event_id": event_id,
                            **_episode_values(c.episode),
                            "sex": c.live.identity.sex.value,
                            "age_class": age_class(
                                c.live.identity.birth_date, c.episode.status_date
                            ),
                            "admitted": int(c.moved.admitted),
                            "to_critical": int(c.moved.to_critical),
                            "to_home": int(c.moved.to_home),
                            "to_death": int(c.moved.to_death),
                            "recorded_at": at,
                            "source": source,
                            "actor": actor.name,
                        }
                        for c in changes
                    ],
                )
                await self.audit.append_many(
                    conn,
                    actor=actor.name,
                    role=actor.role,
                    action="update",
                    object_type="patient",
                    entries=[
                        (
                            str(c.live.id),
                            f"{source}: {c.episode.status.value} {c.episode.unit.value} "
                            f"at {c.episode.finess}",
                        )
                        for c in changes
                    ],
                )
        return [Result(o, r, None if v is None else v.id) for o, r, v in results]

    async def _owners(
        self, conn: AsyncConnection, event_id: int, wanted: list[str]
    ) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in _chunks(wanted):
            rows = await conn.execute(
                sa.select(keys.c.key, keys.c.patient_id).where(
                    keys.c.event_id == event_id, keys.c.key.in_(list(chunk))
                )
            )
            found.update({r.key: r.patient_id for r in rows})
        return found

    async def _day_of(
        self, conn: AsyncConnection, patient_id: int, day: date
    ) -> tuple[Episode | None, list[Episode]]:
        """A patient's last recorded state dated before ``day`` (None: none), and their
        recorded states of ``day``, in order."""
        h = history.c
        row = (
            await conn.execute(
                sa.select(history)
                .where(h.patient_id == patient_id, h.status_date < day.isoformat())
                .order_by(h.status_date.desc(), h.id.desc())
                .limit(1)
            )
        ).first()
        rows = await conn.execute(
            sa.select(history)
            .where(h.patient_id == patient_id, h.status_date == day.isoformat())
            .order_by(h.id)
        )
        return None if row is None else _episode(row), [_episode(r) for r in rows]

    async def _lives(self, conn: AsyncConnection, ids: list[int]) -> dict[int, _Live]:
        found: dict[int, _Live] = {}
        for chunk in _chunks(ids):
            rows = await conn.execute(
                sa.select(patients)
                .where(patients.c.id.in_(list(chunk)))
                .order_by(patients.c.id)
                .with_for_update()  # PostgreSQL: a concurrent batch waits; SQLite: ignored
            )
            for r in rows:
                found[r.id] = _Live(r.id, _identity(r), _episode(r))
        return found

    async def _insert_patients(
        self, conn: AsyncConnection, event_id: int, created: list[_Live], at: datetime
    ) -> None:
        if not created:
            return
        ids = (
            await conn.execute(
                sa.insert(patients).returning(patients.c.id, sort_by_parameter_order=True),
                [
                    {
                        "event_id": event_id,
                        **_identity_values(v.identity),
                        **_episode_values(v.episode),
                        "age_class": age_class(v.identity.birth_date, v.episode.status_date),
                        "updated_at": at,
                    }
                    for v in created
                ],
            )
        ).scalars()
        for live, patient_id in zip(created, list(ids), strict=True):
            live.id = patient_id

    async def _update_patients(
        self, conn: AsyncConnection, changed: list[_Live], at: datetime
    ) -> None:
        if not changed:
            return
        columns = (*_identity_values(changed[0].identity), *_episode_values(changed[0].episode))
        statement = (
            sa.update(patients)
            .where(patients.c.id == sa.bindparam("p_id"))
            .values({c: sa.bindparam(f"p_{c}") for c in (*columns, "updated_at", "age_class")})
        )
        await conn.execute(
            statement,
            [
                {
                    "p_id": v.id,
                    "p_updated_at": at,
                    "p_age_class": age_class(v.identity.birth_date, v.episode.status_date),
                    **{f"p_{k}": x for k, x in _identity_values(v.identity).items()},
                    **{f"p_{k}": x for k, x in _episode_values(v.episode).items()},
                }
                for v in changed
            ],
        )

    # --- reads -----------------------------------------------------------------------------
    async def patients_at(
        self, event_id: int, finess: str, *, present_only: bool = True
    ) -> list[Patient]:
        """The patients whose current episode is at ``finess`` (hospitalised ones only with
        ``present_only``), by last change."""
        query = (
            sa.select(patients)
            .where(patients.c.event_id == event_id, patients.c.finess == finess)
            .order_by(patients.c.status_date.desc(), patients.c.id.desc())
        )
        if present_only:
            query = query.where(patients.c.status == Status.HOSPITALISED.value)
        async with self.db.connect() as conn:
            return [_patient(r) for r in await conn.execute(query)]

    async def patient(self, patient_id: int) -> Patient | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(patients).where(patients.c.id == patient_id))
            ).first()
        return None if row is None else _patient(row)

    async def history_of(self, patient_id: int) -> list[HistoryEntry]:
        """A patient's changes, oldest first."""
        query = sa.select(history).where(history.c.patient_id == patient_id).order_by(history.c.id)
        async with self.db.connect() as conn:
            return [
                HistoryEntry(
                    r.id,
                    r.patient_id,
                    _episode(r),
                    Movement(
                        bool(r.admitted), bool(r.to_critical), bool(r.to_home), bool(r.to_death)
                    ),
                    r.recorded_at,
                    r.source,
                    r.actor,
                )
                for r in await conn.execute(query)
            ]

    async def count_patients(self, event_id: int) -> int:
        async with self.db.connect() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count()).where(patients.c.event_id == event_id)
                    )
                ).scalar_one()
            )

    # --- snapshot inputs -------------------------------------------------------------------
    async def states_now(
        self, event_id: int, deps: Sequence[str] | None = None
    ) -> list[StateCount]:
        """The patients hospitalised now (their current state), counted like ``states_on``:
        the same as ``states_on`` of any day from the latest status date on, without reading
        the history."""
        p = patients.c
        query = (
            sa.select(p.dep, p.sex, p.age_class, p.unit, p.status, p.covid, sa.func.count())
            .where(p.event_id == event_id, p.status == Status.HOSPITALISED.value)
            .group_by(p.dep, p.sex, p.age_class, p.unit, p.status, p.covid)
        )
        if deps is not None:
            query = query.where(p.dep.in_(list(deps)))
        async with self.db.connect() as conn:
            return [
                StateCount(
                    r[0], Sex(r[1]), r[2], UnitKind(r[3]), Status(r[4]), Covid(r[5]), int(r[6])
                )
                for r in await conn.execute(query)
            ]

    async def states_on(
        self, event_id: int, day: date, deps: Sequence[str] | None = None
    ) -> list[StateCount]:
        """Each patient's state at the end of ``day`` (their last change dated ``day`` or
        before), counted by département, sex, age class, unit, status and reason; only of
        patients who were ever in ``deps`` when given."""
        ever = history.c.event_id == event_id
        if deps is not None:
            ever = sa.and_(
                ever,
                history.c.patient_id.in_(
                    sa.select(history.c.patient_id)
                    .where(history.c.event_id == event_id, history.c.dep.in_(list(deps)))
                    .scalar_subquery()
                ),
            )
        last = (
            sa.select(sa.func.max(history.c.id).label("id"))
            .where(ever, history.c.status_date <= day.isoformat())
            .group_by(history.c.patient_id)
            .subquery()
        )
        h = history.c
        query = (
            sa.select(h.dep, h.sex, h.age_class, h.unit, h.status, h.covid, sa.func.count())
            .select_from(history.join(last, history.c.id == last.c.id))
            .group_by(h.dep, h.sex, h.age_class, h.unit, h.status, h.covid)
        )
        async with self.db.connect() as conn:
            return [
                StateCount(
                    r[0], Sex(r[1]), r[2], UnitKind(r[3]), Status(r[4]), Covid(r[5]), int(r[6])
                )
                for r in await conn.execute(query)
            ]

    async def movements_until(
        self, event_id: int, day: date, deps: Sequence[str] | None = None
    ) -> list[MovementCount]:
        """Movements dated ``day`` or before (in ``deps`` when given), summed by département,
        sex, age class, reason, and whether they are of ``day`` itself."""
        h = history.c
        where = [h.event_id == event_id, h.status_date <= day.isoformat()]
        if deps is not None:
            where.append(h.dep.in_(list(deps)))
        on_day = sa.case((h.status_date == day.isoformat(), 1), else_=0).label("on_day")
        query = (
            sa.select(
                h.dep,
                h.sex,
                h.age_class,
                h.covid,
                on_day,
                sa.func.sum(h.admitted),
                sa.func.sum(h.to_critical),
                sa.func.sum(h.to_home),
                sa.func.sum(h.to_death),
            )
            .where(*where)
            .group_by(h.dep, h.sex, h.age_class, h.covid, on_day)
        )
        async with self.db.connect() as conn:
            return [
                MovementCount(
                    r[0], Sex(r[1]), r[2], Covid(r[3]), bool(r[4]), *(int(x) for x in r[5:])
                )
                for r in await conn.execute(query)
            ]

    # --- publications ----------------------------------------------------------------------
    async def published_bodies(
        self, event_id: int, dataset: str, before: date | None = None
    ) -> dict[date, str]:
        """The rows of ``dataset`` published for ``event_id`` each day (before ``before``)."""
        p = published.c
        query = sa.select(p.day, p.body).where(p.event_id == event_id, p.dataset == dataset)
        if before is not None:
            query = query.where(p.day < before.isoformat())
        async with self.db.connect() as conn:
            return {date.fromisoformat(r.day): r.body for r in await conn.execute(query)}

    async def keep_published(
        self, event_id: int, day: date, bodies: dict[str, str], actor: Actor, at: datetime
    ) -> None:
        """Keep (replace) the event's rows of the day, for each dataset. Audited."""
        async with self.db.begin() as conn:
            statement = _dialect(conn).insert(published)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["event_id", "day", "dataset"],
                    set_={"body": statement.excluded.body, "published_at": at},
                ),
                [
                    {
                        "event_id": event_id,
                        "day": day.isoformat(),
                        "dataset": name,
                        "body": body,
                        "published_at": at,
                    }
                    for name, body in bodies.items()
                ],
            )
            await self.audit.append(
                conn,
                actor=actor.name,
                role=actor.role,
                action="publish",
                object_type="opendata",
                object_id=day.isoformat(),
                detail=f"event {event_id}",
            )


RETRIED = frozenset({"40P01", "40001", "23505"})
"""PostgreSQL's deadlock and serialisation failures, and a unique key taken meanwhile: a batch
refused so is run again once."""


def concurrent(exc: sa.exc.DBAPIError) -> bool:
    """Whether a concurrent transaction refused ``exc``'s: a SQLSTATE of ``RETRIED`` on
    PostgreSQL; on SQLite (one writer at a time) a UNIQUE constraint (primary keys included)."""
    if _sqlstate(exc) in RETRIED:
        return True
    return isinstance(exc, sa.exc.IntegrityError) and str(exc.orig).startswith(
        "UNIQUE constraint failed"
    )


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    """The SQLSTATE of a driver's error (asyncpg's ``sqlstate``, psycopg's ``pgcode``)."""
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    for candidate in (orig, cause):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _dialect(conn: AsyncConnection) -> Any:
    """The dialect module of ``conn`` (for INSERT ... ON CONFLICT)."""
    return postgresql if conn.dialect.name == "postgresql" else sqlite
