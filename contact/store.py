"""Contact Covid's storage (``kit.db``: SQLite embedded, PostgreSQL in production).

``contact_persons`` holds each person once (matched on NIR, else on normalised identity);
``contact_cases`` the patient-zero records; ``contact_links`` a person listed as a contact of a
case (a contact of two cases: one person, two links); ``contact_prescriptions`` the single-use
codes (consumed with one conditional ``UPDATE``); ``contact_pending`` the SI-DEP positives
waiting for a doctor's case. Name search reads ``search_tokens`` (every prefix of 3 letters
or more of every word of the normalised ``LAST FIRST``): a GIN index of the token array on
PostgreSQL (migration ``contact_0002``), a scan on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from contact.model import (
    Call,
    Case,
    ContactKind,
    Exposure,
    Link,
    OpenedBy,
    Outcome,
    Pending,
    Person,
    PersonInput,
    Prescription,
    PrescriptionKind,
)
from contact.rules import (
    MIN_PREFIX,
    Identity,
    Level,
    Status,
    identity_key,
    search_text,
    search_tokens,
)
from kit.audit import AuditLog
from kit.db import Database, Migrations, UtcDateTime

MIGRATIONS = Migrations("contact", Path(__file__).resolve().parent / "migrations")

metadata = sa.MetaData()

persons = sa.Table(
    "contact_persons",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("nir", sa.String(15), nullable=True, unique=True),
    sa.Column("identity_key", sa.String(400), nullable=True, index=True),
    sa.Column("last_name", sa.String(150), nullable=False),
    sa.Column("first_name", sa.String(150), nullable=False),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("phone", sa.String(20), nullable=True, index=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("address", sa.String(300), nullable=False),
    sa.Column("postcode", sa.String(5), nullable=False),
    sa.Column("department", sa.String(3), nullable=False),
    sa.Column("search_name", sa.String(300), nullable=False),
    sa.Column("search_tokens", sa.Text(), nullable=False, server_default=""),
    sa.Column("pseudonym", sa.String(64), nullable=True),
    sa.Column("collected_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("purged_at", UtcDateTime(), nullable=True),
)
cases = sa.Table(
    "contact_cases",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.Integer(), sa.ForeignKey("contact_persons.id"), nullable=False),
    sa.Column("opened_by", sa.String(10), nullable=False),
    sa.Column("doctor", sa.String(100), nullable=True, index=True),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("diagnosis_date", sa.Date(), nullable=False),
    sa.Column("onset_date", sa.Date(), nullable=True),
    sa.Column("sampled_date", sa.Date(), nullable=True),
    sa.Column("consent_disclose", sa.Boolean(), nullable=False),
    sa.Column("department", sa.String(3), nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("sla_due_at", UtcDateTime(), nullable=False),
    sa.Column("source_result", sa.String(200), nullable=True),
    sa.Column("result_withdrawn", sa.Boolean(), nullable=False),
    sa.Column("assigned_to", sa.String(100), nullable=True, index=True),
)
exposures = sa.Table(
    "contact_exposures",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("place", sa.String(200), nullable=False),
    sa.Column("setting", sa.String(250), nullable=False, index=True),
    sa.Column("day", sa.Date(), nullable=False),
)
links = sa.Table(
    "contact_links",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=False),
    sa.Column("person_id", sa.Integer(), sa.ForeignKey("contact_persons.id"), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("relation", sa.String(50), nullable=False),
    sa.Column("household", sa.Boolean(), nullable=False),
    sa.Column("last_contact", sa.Date(), nullable=False),
    sa.Column("isolation_until", sa.Date(), nullable=False),
    sa.Column("test_on", sa.Date(), nullable=False),
    sa.Column("doctor_will_call", sa.Boolean(), nullable=False),
    sa.Column("notified_at", UtcDateTime(), nullable=True),
    sa.Column("channel", sa.String(10), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("case_id", "person_id", name="contact_links_once"),
)
calls = sa.Table(
    "contact_calls",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("link_id", sa.Integer(), sa.ForeignKey("contact_links.id"), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
)
prescriptions = sa.Table(
    "contact_prescriptions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=False),
    sa.Column("link_id", sa.Integer(), sa.ForeignKey("contact_links.id"), nullable=True),
    sa.Column("person_id", sa.Integer(), sa.ForeignKey("contact_persons.id"), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("code", sa.String(11), nullable=False, unique=True),
    sa.Column("issued_at", UtcDateTime(), nullable=False),
    sa.Column("consumed_at", UtcDateTime(), nullable=True),
    sa.Column("consumed_by", sa.String(120), nullable=True),
)
pending = sa.Table(
    "contact_pending",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("lab", sa.String(20), nullable=False),
    sa.Column("result_id", sa.String(100), nullable=False),
    sa.Column("sampled_at", UtcDateTime(), nullable=False),
    sa.Column("department", sa.String(3), nullable=False),
    sa.Column("pseudonym", sa.String(64), nullable=False),
    sa.Column("patient", sa.JSON(), nullable=True),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("due_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=True),
    sa.UniqueConstraint("lab", "result_id", name="contact_pending_once"),
)

PURGED = "(purged)"


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _person(row: Any) -> Person:
    return Person(
        row.id,
        row.last_name,
        row.first_name,
        row.birth_date,
        row.sex,
        row.nir,
        row.phone,
        row.email,
        row.address,
        row.postcode,
        row.department,
        row.pseudonym,
        row.collected_at,
        row.purged_at,
    )


def _case(row: Any) -> Case:
    return Case(
        row.id,
        row.person_id,
        OpenedBy(row.opened_by),
        row.doctor,
        Level(row.level),
        Status(row.status),
        row.diagnosis_date,
        row.onset_date,
        row.sampled_date,
        row.consent_disclose,
        row.department,
        row.opened_at,
        row.sla_due_at,
        row.source_result,
        row.result_withdrawn,
        row.assigned_to,
    )


def _link(row: Any) -> Link:
    return Link(
        row.id,
        row.case_id,
        row.person_id,
        ContactKind(row.kind),
        row.relation,
        row.household,
        row.last_contact,
        row.isolation_until,
        row.test_on,
        row.doctor_will_call,
        row.notified_at,
        row.channel,
        row.created_at,
    )


def _prescription(row: Any) -> Prescription:
    return Prescription(
        row.id,
        row.case_id,
        row.link_id,
        row.person_id,
        PrescriptionKind(row.kind),
        row.code,
        row.issued_at,
        row.consumed_at,
        row.consumed_by,
    )


def _pending(row: Any) -> Pending:
    return Pending(
        row.id, row.lab, row.result_id, row.received_at, row.due_at, row.status, row.case_id
    )


class ContactStore:
    """Persons, cases, contacts, calls, prescriptions and pending positives in one
    ``Database``. Methods taking ``conn`` run inside the caller's transaction."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit or AuditLog()

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Release the database's connections."""
        await self.db.close()

    # --- persons -----------------------------------------------------------------------------
    async def find_person(
        self, conn: AsyncConnection, nir: str | None, key: str | None
    ) -> Person | None:
        """The person with this NIR, else (when they have none or the same one) with this
        normalised identity."""
        if nir:
            row = (await conn.execute(sa.select(persons).where(persons.c.nir == nir))).first()
            if row is not None:
                return _person(row)
        if key:
            query = sa.select(persons).where(persons.c.identity_key == key)
            for row in (await conn.execute(query.order_by(persons.c.id))).all():
                if not nir or row.nir is None:
                    return _person(row)
        return None

    async def upsert_person(
        self,
        conn: AsyncConnection,
        data: PersonInput,
        now: datetime,
        pseudonym: str | None,
    ) -> tuple[Person, bool]:
        """The person these details are, or a new one; whether it is new. A matched person
        keeps what was recorded (spelling, phone, e-mail...): only the fields they lack are
        completed from ``data``, and their collection time renewed; a purged person takes
        every field given again (they are collected anew). The matched row is locked while it is
        completed, so concurrent cases never overwrite each other's fields."""
        key = identity_key(Identity(data.last_name, data.first_name, data.birth_date, data.nir))
        found = await self.find_person(conn, data.nir, key)
        values: dict[str, Any] = {
            "last_name": data.last_name.strip(),
            "first_name": data.first_name.strip(),
            "birth_date": data.birth_date,
            "sex": data.sex,
            "nir": data.nir,
            "identity_key": key,
            "phone": data.phone,
            "email": data.email,
            "address": data.address.strip(),
            "postcode": data.postcode.strip(),
            "department": data.department.strip(),
            "search_name": search_text(data.last_name, data.first_name),
            "search_tokens": search_tokens(data.last_name, data.first_name),
            "pseudonym": pseudonym,
            "collected_at": now,
            "purged_at": None,
        }
        if found is None:
            new_id = (
                await conn.execute(sa.insert(persons).values(**values).returning(persons.c.id))
            ).scalar_one()
            person = await self.person(conn, int(new_id))
            assert person is not None
            return person, True
        # the row locked (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
        # writers) and read again: two cases matching this person at once complete it one
        # after the other, the second seeing the first's fields instead of overwriting them
        row = (
            await conn.execute(sa.select(persons).where(persons.c.id == found.id).with_for_update())
        ).one()
        found = _person(row)
        given = {k: v for k, v in values.items() if v not in (None, "")}
        if found.purged_at is not None:
            update = given
            if data.sex == "U":
                update.pop("sex", None)
        else:
            update = {k: v for k, v in given.items() if getattr(row, k) in (None, "")}
            if found.sex == "U" and data.sex != "U":
                update["sex"] = data.sex
            if "birth_date" in update or "nir" in update:  # a key now complete
                update["identity_key"] = identity_key(
                    Identity(found.last_name, found.first_name,
                             found.birth_date or data.birth_date, found.nir or data.nir)
                )  # fmt: skip
        update["collected_at"] = now
        update["purged_at"] = None
        await conn.execute(sa.update(persons).where(persons.c.id == found.id).values(**update))
        person = await self.person(conn, found.id)
        assert person is not None
        return person, False

    async def person(self, conn: AsyncConnection, person_id: int) -> Person | None:
        """One person by id."""
        row = (await conn.execute(sa.select(persons).where(persons.c.id == person_id))).first()
        return None if row is None else _person(row)

    async def persons_of(self, conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Person]:
        """Persons by id."""
        if not ids:
            return {}
        rows = await conn.execute(sa.select(persons).where(persons.c.id.in_(set(ids))))
        return {row.id: _person(row) for row in rows}

    async def search_persons(
        self,
        conn: AsyncConnection,
        *,
        name: str | None = None,
        nir: str | None = None,
        phone: str | None = None,
        limit: int = 50,
    ) -> list[int]:
        """Ids of persons, newest first: with this NIR, this phone, or whose name has a word
        starting with each word of ``name`` (normalised). Words of 3 letters or more are
        exact look-ups of ``search_tokens`` (a GIN index of its tokens on PostgreSQL, a scan
        on SQLite); shorter words filter the rows found. A name without such a word finds
        nothing (it would scan every row)."""
        query = sa.select(persons.c.id).where(persons.c.purged_at.is_(None))
        if nir:
            query = query.where(persons.c.nir == nir)
        if phone:
            query = query.where(persons.c.phone == phone)
        if name is not None:
            words = name.split()
            long = [w for w in words if len(w) >= MIN_PREFIX]
            if not long:
                return []
            if conn.dialect.name == "postgresql":
                # asyncpg prepares statements; after five runs PostgreSQL may keep a generic
                # plan, which cannot know how rare the words are and walks the primary key
                # backwards through millions of rows. Each search is planned for its words.
                await conn.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
                tokens = sa.func.string_to_array(persons.c.search_tokens, sa.literal_column("' '"))
                wanted = sa.cast(postgresql.array(long), postgresql.ARRAY(sa.Text()))
                query = query.where(tokens.op("@>")(wanted))
            else:
                padded = " " + persons.c.search_tokens + " "
                for word in long:
                    query = query.where(padded.like(f"% {_escape(word)} %", escape="\\"))
            for word in words:
                if len(word) < MIN_PREFIX:
                    query = query.where(
                        (" " + persons.c.search_name).like(f"% {_escape(word)}%", escape="\\")
                    )
        newest = persons.c.id.desc()
        if name is not None and conn.dialect.name == "postgresql":
            # not the primary key's order: walking it backwards until 50 rows match is the
            # plan PostgreSQL picks when it overestimates a name's rows (seconds among 10
            # million); the index of tokens then a sort of the few rows found is milliseconds
            newest = (persons.c.id + sa.literal_column("0")).desc()
        rows = await conn.execute(query.order_by(newest).limit(limit))
        return [int(r.id) for r in rows]

    # --- cases -------------------------------------------------------------------------------
    async def insert_case(self, conn: AsyncConnection, **values: Any) -> Case:
        """A new case (values of the table's columns)."""
        new_id = (
            await conn.execute(sa.insert(cases).values(**values).returning(cases.c.id))
        ).scalar_one()
        case = await self.case(conn, int(new_id))
        assert case is not None
        return case

    async def case(self, conn: AsyncConnection, case_id: int) -> Case | None:
        """One case by id."""
        row = (await conn.execute(sa.select(cases).where(cases.c.id == case_id))).first()
        return None if row is None else _case(row)

    async def case_for_update(self, conn: AsyncConnection, case_id: int) -> Case | None:
        """One case, its row locked until the transaction ends (PostgreSQL; SQLite's
        writer lock already serialises)."""
        query = sa.select(cases).where(cases.c.id == case_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return None if row is None else _case(row)

    async def update_case(self, conn: AsyncConnection, case_id: int, **values: Any) -> None:
        """Change a case's columns."""
        await conn.execute(sa.update(cases).where(cases.c.id == case_id).values(**values))

    async def cases_of_person(self, conn: AsyncConnection, person_id: int) -> list[Case]:
        """The cases whose patient zero is this person, newest first."""
        rows = await conn.execute(
            sa.select(cases).where(cases.c.person_id == person_id).order_by(cases.c.id.desc())
        )
        return [_case(r) for r in rows]

    async def list_cases(
        self,
        conn: AsyncConnection,
        *,
        doctor: str | None = None,
        min_level: Level | None = None,
        department: str | None = None,
        statuses: Sequence[Status] | None = None,
        ids: Sequence[int] | None = None,
        person_ids: Sequence[int] | None = None,
        assigned_to: str | None = None,
        limit: int = 200,
        offset: int = 0,
        now: datetime | None = None,
    ) -> list[Case]:
        """Cases matching every given filter, nearest deadline first. With ``now``, the work
        queue's order, in SQL so that ``limit`` cuts the right rows: overdue cases first,
        then the other initialised (to-do) ones, then the rest; each by deadline."""
        query = sa.select(cases)
        if doctor is not None:
            query = query.where(cases.c.doctor == doctor)
        if min_level is not None:
            query = query.where(cases.c.level >= int(min_level))
        if department is not None:
            query = query.where(cases.c.department == department)
        if statuses is not None:
            query = query.where(cases.c.status.in_([s.value for s in statuses]))
        if ids is not None:
            query = query.where(cases.c.id.in_(list(ids)))
        if person_ids is not None:
            query = query.where(cases.c.person_id.in_(list(person_ids)))
        if assigned_to is not None:
            query = query.where(cases.c.assigned_to == assigned_to)
        order: list[Any] = [cases.c.sla_due_at, cases.c.id]
        if now is not None:
            todo = cases.c.status == Status.INITIALISED.value
            overdue = sa.and_(todo, cases.c.level < int(Level.ARS), cases.c.sla_due_at < now)
            order.insert(0, sa.case((overdue, 0), (todo, 1), else_=2))
        rows = await conn.execute(query.order_by(*order).limit(limit).offset(offset))
        return [_case(r) for r in rows]

    async def stale_doctor_cases(
        self, conn: AsyncConnection, opened_before: datetime, limit: int
    ) -> list[Case]:
        """Open cases still at level 1 opened before ``opened_before``, oldest first (locked,
        skipping rows another run holds, on PostgreSQL)."""
        query = (
            sa.select(cases)
            .where(
                cases.c.level == int(Level.DOCTOR),
                cases.c.status != Status.CLOSED.value,
                cases.c.opened_at < opened_before,
            )
            .order_by(cases.c.opened_at, cases.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return [_case(r) for r in await conn.execute(query)]

    async def add_exposure(self, conn: AsyncConnection, case_id: int, exposure: Exposure) -> None:
        """Record a setting the case was in."""
        await conn.execute(
            sa.insert(exposures).values(
                case_id=case_id,
                kind=exposure.kind,
                place=exposure.place,
                setting=exposure.setting,
                day=exposure.day,
            )
        )

    async def exposures_of(self, conn: AsyncConnection, case_id: int) -> list[Exposure]:
        """A case's settings."""
        rows = await conn.execute(
            sa.select(exposures).where(exposures.c.case_id == case_id).order_by(exposures.c.id)
        )
        return [Exposure(r.kind, r.place, r.setting, r.day) for r in rows]

    async def exposures_since(
        self, conn: AsyncConnection, since: date, department: str | None
    ) -> list[tuple[int, str, date, str]]:
        """``(case_id, setting, day, department)`` of settings since ``since``."""
        query = (
            sa.select(exposures.c.case_id, exposures.c.setting, exposures.c.day, cases.c.department)
            .join(cases, cases.c.id == exposures.c.case_id)
            .where(exposures.c.day >= since)
        )
        if department is not None:
            query = query.where(cases.c.department == department)
        return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(query)]

    # --- contacts ----------------------------------------------------------------------------
    async def insert_link(self, conn: AsyncConnection, **values: Any) -> Link:
        """A person listed on a case."""
        new_id = (
            await conn.execute(sa.insert(links).values(**values).returning(links.c.id))
        ).scalar_one()
        link = await self.link(conn, int(new_id))
        assert link is not None
        return link

    async def link(self, conn: AsyncConnection, link_id: int) -> Link | None:
        """One contact link by id."""
        row = (await conn.execute(sa.select(links).where(links.c.id == link_id))).first()
        return None if row is None else _link(row)

    async def link_of(self, conn: AsyncConnection, case_id: int, person_id: int) -> Link | None:
        """The link of a person on a case, if listed."""
        query = sa.select(links).where(links.c.case_id == case_id, links.c.person_id == person_id)
        row = (await conn.execute(query)).first()
        return None if row is None else _link(row)

    async def links_of_case(self, conn: AsyncConnection, case_id: int) -> list[Link]:
        """A case's contacts in the order they were listed."""
        rows = await conn.execute(
            sa.select(links).where(links.c.case_id == case_id).order_by(links.c.id)
        )
        return [_link(r) for r in rows]

    async def links_of_person(self, conn: AsyncConnection, person_id: int) -> list[Link]:
        """Every case this person is a contact of."""
        rows = await conn.execute(
            sa.select(links).where(links.c.person_id == person_id).order_by(links.c.id)
        )
        return [_link(r) for r in rows]

    async def mark_notified(
        self, conn: AsyncConnection, link_id: int, channel: str, now: datetime
    ) -> bool:
        """Mark a contact notified, once (False if it already was)."""
        done = await conn.execute(
            sa.update(links)
            .where(links.c.id == link_id, links.c.notified_at.is_(None))
            .values(notified_at=now, channel=channel)
        )
        return done.rowcount == 1

    async def add_call(
        self, conn: AsyncConnection, link_id: int, actor: str, outcome: Outcome, now: datetime
    ) -> Call:
        """Record a call's outcome."""
        new_id = (
            await conn.execute(
                sa.insert(calls)
                .values(link_id=link_id, at=now, actor=actor, outcome=outcome.value)
                .returning(calls.c.id)
            )
        ).scalar_one()
        return Call(int(new_id), link_id, now, actor, outcome)

    async def calls_of(self, conn: AsyncConnection, link_ids: Sequence[int]) -> list[Call]:
        """Calls to these contacts, oldest first."""
        if not link_ids:
            return []
        rows = await conn.execute(
            sa.select(calls).where(calls.c.link_id.in_(list(link_ids))).order_by(calls.c.id)
        )
        return [Call(r.id, r.link_id, r.at, r.actor, Outcome(r.outcome)) for r in rows]

    # --- prescriptions -----------------------------------------------------------------------
    async def insert_prescription(self, conn: AsyncConnection, **values: Any) -> Prescription:
        """A new prescription."""
        new_id = (
            await conn.execute(
                sa.insert(prescriptions).values(**values).returning(prescriptions.c.id)
            )
        ).scalar_one()
        row = (
            await conn.execute(sa.select(prescriptions).where(prescriptions.c.id == new_id))
        ).one()
        return _prescription(row)

    async def prescription(self, conn: AsyncConnection, code: str) -> Prescription | None:
        """A prescription by code."""
        query = sa.select(prescriptions).where(prescriptions.c.code == code)
        row = (await conn.execute(query)).first()
        return None if row is None else _prescription(row)

    async def prescriptions_of(self, conn: AsyncConnection, case_id: int) -> list[Prescription]:
        """A case's prescriptions."""
        rows = await conn.execute(
            sa.select(prescriptions)
            .where(prescriptions.c.case_id == case_id)
            .order_by(prescriptions.c.id)
        )
        return [_prescription(r) for r in rows]

    async def consume(
        self, conn: AsyncConnection, code: str, kinds: Sequence[PrescriptionKind], by: str,
        now: datetime,
    ) -> bool:  # fmt: skip
        """Mark a prescription used, if it is still unused and of one of ``kinds``: one
        conditional ``UPDATE``, so of two racing attempts exactly one changes the row."""
        done = await conn.execute(
            sa.update(prescriptions)
            .where(
                prescriptions.c.code == code,
                prescriptions.c.consumed_at.is_(None),
                prescriptions.c.kind.in_([k.value for k in kinds]),
            )
            .values(consumed_at=now, consumed_by=by)
        )
        return done.rowcount == 1

    # --- pending positives -------------------------------------------------------------------
    async def add_pending(self, conn: AsyncConnection, **values: Any) -> bool:
        """Record a positive once per (lab, result id); False if it was known."""
        query = sa.select(pending.c.id).where(
            pending.c.lab == values["lab"], pending.c.result_id == values["result_id"]
        )
        if (await conn.execute(query)).first() is not None:
            return False
        await conn.execute(sa.insert(pending).values(**values))
        return True

    async def withdraw_pending(
        self, conn: AsyncConnection, lab: str, result_id: str
    ) -> Pending | None:
        """Mark a positive withdrawn; it as it was before (None if unknown)."""
        query = sa.select(pending).where(pending.c.lab == lab, pending.c.result_id == result_id)
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        await conn.execute(
            sa.update(pending).where(pending.c.id == row.id).values(status="withdrawn")
        )
        return _pending(row)

    async def due_pending(self, conn: AsyncConnection, now: datetime, limit: int) -> list[Any]:
        """Pending positives whose delay has passed (rows, with the patient)."""
        query = (
            sa.select(pending)
            .where(pending.c.status == "pending", pending.c.due_at <= now)
            .order_by(pending.c.due_at, pending.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list((await conn.execute(query)).all())

    async def settle_pending(
        self, conn: AsyncConnection, pending_id: int, status: str, case_id: int | None
    ) -> None:
        """Mark a pending positive handled (``opened`` or ``matched``) with its case."""
        await conn.execute(
            sa.update(pending)
            .where(pending.c.id == pending_id)
            .values(status=status, case_id=case_id, patient=None)
        )

    async def pending_list(self, conn: AsyncConnection) -> list[Pending]:
        """Every pending positive, oldest first."""
        rows = await conn.execute(sa.select(pending).order_by(pending.c.id))
        return [_pending(r) for r in rows]

    # --- retention ---------------------------------------------------------------------------
    async def purge(self, conn: AsyncConnection, before: datetime, now: datetime) -> int:
        """Erase the identifying fields of persons collected before ``before`` (names,
        NIR, contact details, birth date); their pseudonym, sex and département stay for the
        pseudonymised export. Pending positives received then lose their patient. How many
        persons were purged."""
        done = await conn.execute(
            sa.update(persons)
            .where(persons.c.collected_at < before, persons.c.purged_at.is_(None))
            .values(
                last_name=PURGED,
                first_name="",
                birth_date=None,
                nir=None,
                identity_key=None,
                phone=None,
                email=None,
                address="",
                postcode="",
                search_name="",
                search_tokens="",
                purged_at=now,
            )
        )
        await conn.execute(
            sa.update(pending).where(pending.c.received_at < before).values(patient=None)
        )
        return int(done.rowcount)

    async def export_rows(self, conn: AsyncConnection) -> list[Any]:
        """For the pseudonymised export: one row per case and per contact link, with the
        person's pseudonym, sex, birth year, département and the dates."""
        case_rows = await conn.execute(
            sa.select(
                cases.c.id,
                cases.c.level,
                cases.c.status,
                cases.c.opened_by,
                cases.c.diagnosis_date,
                cases.c.onset_date,
                cases.c.department,
                persons.c.pseudonym,
                persons.c.sex,
            )
            .join(persons, persons.c.id == cases.c.person_id)
            .order_by(cases.c.id)
        )
        return list(case_rows.all())

    async def export_links(self, conn: AsyncConnection) -> list[Any]:
        """For the export: contact links with the contact's pseudonym."""
        rows = await conn.execute(
            sa.select(
                links.c.case_id,
                links.c.kind,
                links.c.household,
                links.c.last_contact,
                links.c.notified_at,
                persons.c.pseudonym,
                persons.c.sex,
                persons.c.department,
            )
            .join(persons, persons.c.id == links.c.person_id)
            .order_by(links.c.id)
        )
        return list(rows.all())
