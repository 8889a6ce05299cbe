"""SI-DEP's storage (``kit.db``: SQLite embedded, PostgreSQL in production).

``sidep_persons`` holds who was tested (identity, and its keyed pseudonym); ``sidep_results``
one row per (lab, sample id, LOINC), the current value; ``sidep_result_history`` every value a
correction replaced; ``sidep_notices`` the result notices of positives (code issued, PDF,
notification queued). A batch of messages is written in one transaction with its audit entries
and its outbox events (``kit.events``): stored whole or not at all.

Purge (``purge_identities``): a person whose latest sample is older than the retention loses
NIR, names, birth date, postcode, phone and e-mail (and their results their postcode); the
pseudonym, sex, age at sampling and
département stay on the results (what the indicators and the pseudonymised export need).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.db import Database, Migrations, UtcDateTime

MIGRATIONS = Migrations("sidep", Path(__file__).resolve().parent / "migrations")

metadata = sa.MetaData()

persons = sa.Table(
    "sidep_persons",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("pseudonym", sa.String(64), nullable=False, unique=True),
    sa.Column("nir", sa.String(15), nullable=True),
    sa.Column("nir_valid", sa.Boolean(), nullable=True),
    sa.Column("last_name", sa.String(100), nullable=True),
    sa.Column("first_name", sa.String(100), nullable=True),
    sa.Column("birth_date", sa.Date(), nullable=True),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("postcode", sa.String(10), nullable=True),
    sa.Column("phone", sa.String(30), nullable=True),
    sa.Column("email", sa.String(200), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("purged_at", UtcDateTime(), nullable=True),
)

results = sa.Table(
    "sidep_results",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("lab", sa.String(9), nullable=False),
    sa.Column("sample_id", sa.String(64), nullable=False),
    sa.Column("loinc", sa.String(16), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("result", sa.String(1), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("sampled_at", UtcDateTime(), nullable=False),
    sa.Column("validated_at", UtcDateTime(), nullable=True),
    sa.Column("dep", sa.String(3), nullable=True),
    sa.Column("age", sa.Integer(), nullable=True),
    sa.Column("sex", sa.String(1), nullable=False),
    sa.Column("pseudonym", sa.String(64), nullable=False),
    sa.Column("person_id", sa.Integer(), sa.ForeignKey("sidep_persons.id"), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("prescriber_rpps", sa.String(11), nullable=True),
    sa.Column("raw_ref", sa.String(200), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # what this result's message said: its postcode (purged with the person's identity) and
    # which identity fields it carried (``IDENTITY_SENT``, comma-separated); NULL before 0002
    sa.Column("postcode", sa.String(10), nullable=True),
    sa.Column("identity_sent", sa.String(60), nullable=True),
    sa.UniqueConstraint("lab", "sample_id", "loinc", name="sidep_results_key"),
)

history = sa.Table(
    "sidep_result_history",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("result_id", sa.Integer(), sa.ForeignKey("sidep_results.id"), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("result", sa.String(1), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("sampled_at", UtcDateTime(), nullable=False),
    sa.Column("validated_at", UtcDateTime(), nullable=True),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("replaced_at", UtcDateTime(), nullable=False),
)

notices = sa.Table(
    "sidep_notices",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("result_id", sa.Integer(), sa.ForeignKey("sidep_results.id"), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("code_expires_at", UtcDateTime(), nullable=True),
    sa.Column("pdf", sa.LargeBinary(), nullable=True),
    sa.Column("error", sa.String(100), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("done_at", UtcDateTime(), nullable=True),
)

PERSON_COLUMNS = (
    "nir",
    "nir_valid",
    "last_name",
    "first_name",
    "birth_date",
    "sex",
    "postcode",
    "phone",
    "email",
)
IDENTIFYING = ("nir", "last_name", "first_name", "birth_date", "postcode", "phone", "email")
IDENTITY_SENT = ("nir", "last_name", "first_name", "birth_date", "postcode")
"""The identity fields a result records whether its message carried (``results --json``)."""


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A result row with its patient's identity (None where purged or never sent)."""

    id: int
    lab: str
    sample_id: str
    loinc: str
    method: str
    result: str
    status: str
    sampled_at: datetime
    validated_at: datetime | None
    dep: str | None
    age: int | None
    sex: str
    pseudonym: str
    version: int
    nir: str | None
    nir_valid: bool | None
    last_name: str | None
    first_name: str | None
    birth_date: date | None
    postcode: str | None
    phone: str | None
    email: str | None
    result_postcode: str | None = None
    identity_sent: str | None = None


RESULT_COLUMNS = (
    results.c.id,
    results.c.lab,
    results.c.sample_id,
    results.c.loinc,
    results.c.method,
    results.c.result,
    results.c.status,
    results.c.sampled_at,
    results.c.validated_at,
    results.c.dep,
    results.c.age,
    results.c.sex,
    results.c.pseudonym,
    results.c.version,
    persons.c.nir,
    persons.c.nir_valid,
    persons.c.last_name,
    persons.c.first_name,
    persons.c.birth_date,
    persons.c.postcode,
    persons.c.phone,
    persons.c.email,
    results.c.postcode.label("result_postcode"),
    results.c.identity_sent,
)


def stored(row: Any) -> StoredResult:
    """A row of ``RESULT_COLUMNS`` as a record."""
    return StoredResult(*row)


def results_query() -> sa.Select[Any]:
    """Results joined with their patients (filter and order to taste)."""
    return sa.select(*RESULT_COLUMNS).join(persons, persons.c.id == results.c.person_id)


async def existing_results(
    conn: AsyncConnection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], Any]:
    """The stored rows of ``keys`` (lab, sample id, LOINC), by key, locked for update on
    PostgreSQL. Asked as ``lab IN (...) AND sample_id IN (...)`` (the unique index's leading
    columns: index probes, where a row-value IN list may scan), the exact keys kept."""
    wanted = set(keys)
    found: dict[tuple[str, str, str], Any] = {}
    by_lab: dict[str, set[str]] = {}
    for lab, sample, _loinc in wanted:
        by_lab.setdefault(lab, set()).add(sample)
    labs = sorted(by_lab)
    samples = sorted({s for group in by_lab.values() for s in group})
    for start in range(0, len(samples), 1000):
        query = sa.select(results).where(
            results.c.lab.in_(labs), results.c.sample_id.in_(samples[start : start + 1000])
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        for row in (await conn.execute(query)).all():
            key = (row.lab, row.sample_id, row.loinc)
            if key in wanted:
                found[key] = row
    return found


async def person_ids(conn: AsyncConnection, pseudonyms: Sequence[str]) -> dict[str, int]:
    """The ids of the persons of ``pseudonyms`` that exist."""
    found: dict[str, int] = {}
    unique = sorted(set(pseudonyms))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        query = sa.select(persons.c.pseudonym, persons.c.id).where(persons.c.pseudonym.in_(chunk))
        found.update({p: i for p, i in (await conn.execute(query)).all()})
    return found


class SidepStore:
    """The database of SI-DEP (opened and migrated by ``open``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self) -> None:
        """Bring the schema to its latest revision (the kit's tables, then ours)."""
        await self.db.migrate(MIGRATIONS)

    async def close(self) -> None:
        """Release the database's connections."""
        await self.db.close()


sa.Index("sidep_persons_by_nir", persons.c.nir)
sa.Index("sidep_results_by_sampled", results.c.sampled_at)
sa.Index("sidep_results_by_person", results.c.person_id)
sa.Index("sidep_history_by_result", history.c.result_id)
sa.Index("sidep_notices_by_state", notices.c.state)
