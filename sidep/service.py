"""SI-DEP's domain: store what the labs send, whole or not at all, once; turn each new
positive into an event for case investigation and a notice for the patient.

``ingest`` / ``ingest_many`` write one or several parsed messages in ONE transaction: the
persons, the results (new, replaced with their history, or recognised as duplicates), the
audit entries, a pending notice per new positive, and the outbox events (``sidep.positive``,
``sidep.positive.withdrawn``) last, as ``kit.events`` asks. ``process_notices`` then issues a
code for each pending notice (a network call, outside any transaction), renders the PDF and
queues the e-mail and SMS (``kit.notify``) in a transaction of its own: an unreachable code
service delays the notice, never the intake.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kit import events, notify
from kit.audit import Actor, AuditLog
from kit.http import BadRequest, Forbidden
from kit.identity import pseudonym as kit_pseudonym
from kit.schema import notifications as notifications_table
from kit.schema import outbox as outbox_table
from sidep.access import Access
from sidep.issuer import CodeIssuer, CodeRefused, CodeUnavailable, IssuedCode
from sidep.model import LabResult, Method, Parsed, Refusal, Result, Status
from sidep.notice import NoticeText, email_text, notice_pdf, sms_text
from sidep.sites import SiteFinder
from sidep.store import (
    IDENTIFYING,
    IDENTITY_SENT,
    PERSON_COLUMNS,
    SidepStore,
    StoredResult,
    existing_results,
    history,
    notices,
    person_ids,
    persons,
    results,
    results_query,
    stored,
)

log = logging.getLogger("sidep")

POSITIVE_TOPIC = "sidep.positive"
WITHDRAWN_TOPIC = "sidep.positive.withdrawn"
FINAL_STATES = frozenset({Status.FINAL.value, Status.CORRECTED.value})
NOTICE_BATCH = 50


@dataclass(frozen=True, slots=True)
class Counts:
    """What became of a message or file: results stored (new or corrected), recognised as
    already stored, and refusals (each with its reason)."""

    accepted: int = 0
    duplicates: int = 0
    refusals: tuple[Refusal, ...] = ()

    @property
    def rejected(self) -> int:
        return len(self.refusals)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.accepted + other.accepted,
            self.duplicates + other.duplicates,
            self.refusals + other.refusals,
        )

    def line(self) -> str:
        """``accepted=N duplicates=N rejected=N``."""
        return f"accepted={self.accepted} duplicates={self.duplicates} rejected={self.rejected}"


def age_at(birth: date | None, day: date) -> int | None:
    """Whole years of age on ``day`` (None without a plausible birth date)."""
    if birth is None or birth > day:
        return None
    years = day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))
    return years if years <= 130 else None


def person_pseudonym(key: bytes, result: LabResult) -> str:
    """The keyed pseudonym of the patient: ``kit.identity.pseudonym`` of the normalised name,
    first name and birth date; without all three (de-identified messages), a keyed hash of the
    NIR, or of the sample itself (a person of one result)."""
    p = result.patient
    if p.last_name and p.first_name and p.birth_date:
        return kit_pseudonym(key, p.last_name, p.first_name, p.birth_date)
    basis = f"nir\0{p.nir}" if p.nir else f"sample\0{result.lab}\0{result.sample_id}"
    return hmac.new(key, b"sidep-pseudonym-fallback\0" + basis.encode(), hashlib.sha256).hexdigest()


def _values(r: LabResult) -> dict[str, Any]:
    return {
        "method": r.method.value,
        "result": r.result.value,
        "status": r.status.value,
        "sampled_at": r.sampled_at,
        "validated_at": r.validated_at,
        "source": r.source.value,
    }


_COMPARED = ("method", "result", "status", "sampled_at", "validated_at")


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return all(old[k] == new[k] for k in _COMPARED)


def _supersedes(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` replaces ``old`` (a preliminary never replaces a final)."""
    if _same(old, new):
        return False
    return not (new["status"] == Status.PRELIMINARY.value and old["status"] in FINAL_STATES)


def _identity(r: LabResult) -> dict[str, Any]:
    p = r.patient
    return {
        "nir": p.nir,
        "nir_valid": p.nir_valid,
        "last_name": p.last_name[:100] if p.last_name else None,
        "first_name": p.first_name[:100] if p.first_name else None,
        "birth_date": p.birth_date,
        "sex": p.sex.value,
        "postcode": p.postcode,
        "phone": p.phone[:30] if p.phone else None,
        "email": p.email[:200] if p.email else None,
    }


def identity_sent(r: LabResult) -> str:
    """Which of ``IDENTITY_SENT`` the result's message carried, comma-separated."""
    p = r.patient
    return ",".join(f for f in IDENTITY_SENT if getattr(p, f) not in (None, ""))


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def positive_payload(result_id: int, r: LabResult, pseudonym: str) -> dict[str, Any]:
    """The ``sidep.positive`` event (the contract of docs/sidep.md)."""
    p = r.patient
    return {
        "result_id": str(result_id),
        "lab": r.lab,
        "sample_id": r.sample_id,
        "loinc": r.loinc,
        "method": r.method.value,
        "sampled_at": r.sampled_at.isoformat(),
        "validated_at": iso(r.validated_at),
        "dep": r.dep,
        "pseudonym": pseudonym,
        "patient": {
            "nir": p.nir,
            "last_name": p.last_name,
            "first_name": p.first_name,
            "birth_date": p.birth_date.isoformat() if p.birth_date else None,
            "sex": p.sex.value,
            "postcode": p.postcode,
            "phone": p.phone,
            "email": p.email,
        },
    }


@dataclass(slots=True)
class _Key:
    """What one (lab, sample, LOINC) becomes in a batch."""

    current: dict[str, Any]
    before_positive: bool
    new: bool
    result_id: int | None
    version: int
    first: LabResult
    latest: LabResult
    actor: Actor
    replacements: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)


def international_phone(phone: str | None) -> str | None:
    """A French phone number in international form (+33...), or None if it is not one."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit() or c == "+")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("0") and len(digits) == 10:
        digits = "+33" + digits[1:]
    return digits if digits.startswith("+") and 8 <= len(digits) <= 16 else None


class SidepService:
    """Lab results in, events and notices out, over the service's store."""

    def __init__(
        self,
        store: SidepStore,
        pseudonym_key: bytes,
        *,
        audit: AuditLog | None = None,
        issuer: CodeIssuer | None = None,
        purge_days: int = 90,
        clock: Callable[[], float] = time.time,
        sites: SiteFinder | None = None,
    ) -> None:
        self.store = store
        self.sites = sites
        self.key = pseudonym_key
        self.clock = clock
        self.audit = audit or AuditLog(clock=self.now)
        self.issuer = issuer
        self.purge_days = purge_days

    async def open(self) -> None:
        """Migrate the database."""
        await self.store.open()

    async def close(self) -> None:
        """Release the database (and the session of the test sites' service)."""
        if self.sites is not None:
            await self.sites.close()
        await self.store.close()

    def now(self) -> datetime:
        """Now, aware UTC, from the service's clock."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- intake ----------------------------------------------------------------------------
    async def ingest(self, parsed: Parsed, actor: Actor) -> Counts:
        """Store one parsed message or file, whole, in one transaction."""
        return (await self.ingest_many([parsed], actor))[0]

    async def ingest_many(
        self, batch: Sequence[Parsed], actor: Actor | Sequence[Actor]
    ) -> list[Counts]:
        """Store several parsed messages in ONE transaction (group commit); each one's counts.
        Nothing is stored if the transaction fails. ``actor``: who sent them (one for all, or
        one per message), for the audit log."""
        actors = [actor] * len(batch) if isinstance(actor, Actor) else list(actor)
        all_results = [r for parsed in batch for r in parsed.results]
        if not all_results:
            return [Counts(refusals=p.refusals) for p in batch]
        async with self.store.db.begin() as conn:
            return await self._ingest(conn, batch, all_results, actors)

    async def _ingest(
        self,
        conn: AsyncConnection,
        batch: Sequence[Parsed],
        all_results: list[LabResult],
        actors: list[Actor],
    ) -> list[Counts]:
        now = self.now()
        names = [person_pseudonym(self.key, r) for r in all_results]
        pseudonym_of = {id(r): n for r, n in zip(all_results, names, strict=True)}
        people = await self._persons(conn, all_results, names, now)
        found = await existing_results(conn, [r.key for r in all_results])
        keys: dict[tuple[str, str, str], _Key] = {}
        counts: list[Counts] = []
        for parsed, actor in zip(batch, actors, strict=True):
            accepted = duplicates = 0
            for r in parsed.results:
                new = _values(r)
                state = keys.get(r.key)
                if state is None and r.key in found:
                    row = found[r.key]
                    old = {k: getattr(row, k) for k in (*_COMPARED, "source")}
                    state = _Key(old, row.result == "P", False, row.id, row.version, r, r, actor)
                    keys[r.key] = state
                if state is None:
                    keys[r.key] = _Key(new, False, True, None, 1, r, r, actor)
                    accepted += 1
                elif _supersedes(state.current, new):
                    state.replacements.append((state.current, new))
                    state.current = new
                    state.latest = r
                    state.actor = actor
                    accepted += 1
                else:
                    duplicates += 1
            counts.append(Counts(accepted, duplicates, parsed.refusals))
        created = [s for s in keys.values() if s.new]
        if created:
            rows = [self._row(s.first, pseudonym_of, people, now) for s in created]
            inserted = await conn.execute(
                sa.insert(results).returning(
                    results.c.id, results.c.lab, results.c.sample_id, results.c.loinc
                ),
                rows,
            )
            ids = {(lab, sample, loinc): i for i, lab, sample, loinc in inserted.all()}
            for s in created:
                s.result_id = ids[s.latest.key]
        await self._replace(conn, keys, pseudonym_of, people, now)
        await self._audit(conn, keys)
        await self._announce(conn, keys, pseudonym_of, now)
        return counts

    async def _persons(
        self,
        conn: AsyncConnection,
        items: Sequence[LabResult],
        names: Sequence[str],
        now: datetime,
    ) -> dict[str, int]:
        """The person id of each pseudonym, creating the new ones; identity completed."""
        ids = await person_ids(conn, names)
        merged: dict[str, dict[str, Any]] = {}
        for r, name in zip(items, names, strict=True):
            identity = merged.setdefault(name, {})
            for column, value in _identity(r).items():
                if value is not None and not (column == "sex" and value == "U" and identity):
                    identity[column] = value
        fresh = [
            {**dict.fromkeys(PERSON_COLUMNS), "sex": "U", **identity, "pseudonym": name,
             "created_at": now}
            for name, identity in merged.items()
            if name not in ids
        ]  # fmt: skip
        made: dict[str, int] = {}
        if fresh:
            # another transaction may create one of them meanwhile: skip it, then read it
            insert = (
                postgresql.insert(persons)
                if conn.dialect.name == "postgresql"
                else sqlite.insert(persons)
            ).on_conflict_do_nothing(index_elements=["pseudonym"])
            inserted = await conn.execute(
                insert.returning(persons.c.pseudonym, persons.c.id), fresh
            )
            made = {p: i for p, i in inserted.all()}
            ids.update(made)
            missing = [f["pseudonym"] for f in fresh if f["pseudonym"] not in ids]
            if missing:
                ids.update(await person_ids(conn, missing))
        created = set(made) if fresh else set()
        known = [(name, identity) for name, identity in merged.items() if name not in created]
        if known:
            completed = (*IDENTIFYING, "nir_valid")
            statement = (
                sa.update(persons)
                .where(persons.c.id == sa.bindparam("person"))
                .values(
                    {c: sa.func.coalesce(sa.bindparam(f"new_{c}"), persons.c[c]) for c in completed}
                )
            )
            await conn.execute(
                statement,
                [
                    {"person": ids[name], **{f"new_{c}": identity.get(c) for c in completed}}
                    for name, identity in known
                ],
            )
        return ids

    def _row(
        self,
        r: LabResult,
        pseudonym_of: dict[int, str],
        people: dict[str, int],
        now: datetime,
    ) -> dict[str, Any]:
        name = pseudonym_of[id(r)]
        return {
            "lab": r.lab,
            "sample_id": r.sample_id,
            "loinc": r.loinc,
            **_values(r),
            "dep": r.dep,
            "age": age_at(r.patient.birth_date, r.sampled_at.date()),
            "sex": r.patient.sex.value,
            "pseudonym": name,
            "person_id": people[name],
            "prescriber_rpps": r.prescriber_rpps,
            "raw_ref": r.raw_ref[:200] if r.raw_ref else None,
            "postcode": r.patient.postcode[:10] if r.patient.postcode else None,
            "identity_sent": identity_sent(r),
            "version": 1,
            "received_at": now,
            "updated_at": now,
        }

    async def _replace(
        self,
        conn: AsyncConnection,
        keys: dict[tuple[str, str, str], _Key],
        pseudonym_of: dict[int, str],
        people: dict[str, int],
        now: datetime,
    ) -> None:
        kept: list[dict[str, Any]] = []
        for s in keys.values():
            if not s.replacements:
                continue
            assert s.result_id is not None
            for old, _new in s.replacements:
                kept.append(
                    {"result_id": s.result_id, "version": s.version, **old, "replaced_at": now}
                )
                s.version += 1
            row = self._row(s.latest, pseudonym_of, people, now)
            for unchanged in ("lab", "sample_id", "loinc", "received_at"):
                row.pop(unchanged)
            row["version"] = s.version
            await conn.execute(sa.update(results).where(results.c.id == s.result_id).values(row))
        if kept:
            await conn.execute(sa.insert(history), kept)

    async def _audit(self, conn: AsyncConnection, keys: dict[tuple[str, str, str], _Key]) -> None:
        grouped: dict[tuple[str, Actor], list[tuple[str, str]]] = {}
        for s in keys.values():
            if s.new or s.replacements:
                action = "create" if s.new else "update"
                grouped.setdefault((action, s.actor), []).append((str(s.result_id), s.latest.lab))
        for (action, actor), entries in grouped.items():
            await self.audit.append_many(
                conn,
                actor=actor.name,
                role=actor.role,
                action=action,
                object_type="lab_result",
                entries=entries,
            )

    async def _announce(
        self,
        conn: AsyncConnection,
        keys: dict[tuple[str, str, str], _Key],
        pseudonym_of: dict[int, str],
        now: datetime,
    ) -> None:
        """Pending notices, then the outbox events (last: ``kit.events`` holds its lock from
        ``append`` to the commit)."""
        positives = [
            s
            for s in keys.values()
            if s.current["result"] == Result.POSITIVE.value
            and not s.before_positive
            and (s.new or s.replacements)
        ]
        withdrawn = [
            s
            for s in keys.values()
            if s.before_positive and s.current["result"] != Result.POSITIVE.value
        ]
        if positives:
            await conn.execute(
                sa.insert(notices),
                [
                    {"result_id": s.result_id, "state": "pending", "attempts": 0,
                     "created_at": now}
                    for s in positives
                ],
            )  # fmt: skip
        items: list[tuple[str, dict[str, Any], str]] = []
        for s in positives:
            assert s.result_id is not None
            payload = positive_payload(s.result_id, s.latest, pseudonym_of[id(s.latest)])
            items.append((POSITIVE_TOPIC, payload, str(s.result_id)))
        for s in withdrawn:
            r = s.latest
            payload = {
                "result_id": str(s.result_id),
                "lab": r.lab,
                "sample_id": r.sample_id,
                "loinc": r.loinc,
            }
            items.append((WITHDRAWN_TOPIC, payload, str(s.result_id)))
        await events.append_many(conn, items, now=now)

    # --- reading ---------------------------------------------------------------------------
    async def results(
        self,
        access: Access,
        actor: Actor,
        *,
        nir: str | None = None,
        last_name: str | None = None,
        birth_date: date | None = None,
        lab: str | None = None,
        positive_only: bool = False,
        limit: int = 200,
        after_id: int = 0,
        newest_first: bool = False,
    ) -> list[StoredResult]:
        """Results visible to ``access`` matching the filters, oldest id first; audited.
        A pseudonymised access gets the rows without identity."""
        if not access.may_search():
            raise Forbidden("this role may not read results")
        if access.needs_patient and not (nir or (last_name and birth_date)):
            raise BadRequest("name the patient: NIR, or name and birth date")
        query = results_query().where(results.c.id > after_id)
        query = query.order_by(results.c.id.desc() if newest_first else results.c.id)
        own = access.lab_filter
        if own is not None:
            query = query.where(results.c.lab == own)
        if lab:
            query = query.where(results.c.lab == lab)
        if nir:
            query = query.where(persons.c.nir == nir)
        if last_name:
            query = query.where(sa.func.upper(persons.c.last_name) == last_name.upper())
        if birth_date:
            query = query.where(persons.c.birth_date == birth_date)
        if positive_only:
            query = query.where(results.c.result == Result.POSITIVE.value)
        async with self.store.db.begin() as conn:
            rows = [stored(r) for r in (await conn.execute(query.limit(limit))).all()]
            # every search is recorded, even one finding nothing (it still tells something)
            span = f"{min(r.id for r in rows)}-{max(r.id for r in rows)}" if rows else "none"
            await self.audit.append(
                conn,
                actor=actor.name,
                role=actor.role,
                action="read" if access.identifying else "read_pseudonymised",
                object_type="lab_result_list",
                object_id=span,
                detail=f"{len(rows)} results",
            )
        return rows if access.identifying else [pseudonymised(r) for r in rows]

    async def result_by_id(self, result_id: int) -> StoredResult | None:
        """One result with its patient (not audited: the caller audits what it shows)."""
        async with self.store.db.connect() as conn:
            row = (await conn.execute(results_query().where(results.c.id == result_id))).first()
        return None if row is None else stored(row)

    async def result_by_key(self, key: tuple[str, str, str]) -> int | None:
        """The id of the result (lab, sample id, LOINC), if stored."""
        lab, sample, loinc = key
        query = sa.select(results.c.id).where(
            results.c.lab == lab, results.c.sample_id == sample, results.c.loinc == loinc
        )
        async with self.store.db.connect() as conn:
            found = (await conn.execute(query)).scalar()
        return None if found is None else int(found)

    async def history_of(self, result_id: int) -> list[dict[str, Any]]:
        """The earlier values of a result, oldest first."""
        async with self.store.db.connect() as conn:
            query = sa.select(history).where(history.c.result_id == result_id)
            rows = (await conn.execute(query.order_by(history.c.version))).all()
        return [dict(r._mapping) for r in rows]

    async def all_results(self, actor: Actor, *, batch: int = 5000) -> list[StoredResult]:
        """Every result with identity (the operator's ``results`` command); audited."""
        found: list[StoredResult] = []
        after = 0
        while True:
            page = await self.results(Access("admin"), actor, after_id=after, limit=batch)
            found += page
            if len(page) < batch:
                return found
            after = page[-1].id

    async def write_indicator_input(self, path: Path, actor: Actor) -> int:
        """The virological tests (PCR and antigen, not serology) as the indicators read them
        (``sidep.indicators``: ``person;day;dep;age;result;area``, the pseudonym as person, the
        sampling day in Paris time, the result's postcode as area: empty when the message had
        none or it was purged), written to ``path``; how many rows. Audited."""
        query = (
            sa.select(
                results.c.pseudonym, results.c.sampled_at, results.c.dep, results.c.age,
                results.c.result, results.c.postcode,
            )
            .where(results.c.method != Method.SEROLOGY.value)
            .order_by(results.c.id)
        )  # fmt: skip
        paris = ZoneInfo("Europe/Paris")
        written = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write("person;day;dep;age;result;area\n")
            async with self.store.db.connect() as conn:
                stream = await conn.stream(query.execution_options(yield_per=10_000))
                async for rows in stream.partitions():
                    lines = [
                        f"{p};{at.astimezone(paris).date().isoformat()};{dep or ''};"
                        f"{'' if age is None else age};{result};{_area(area)}\n"
                        for p, at, dep, age, result, area in rows
                    ]
                    out.writelines(lines)
                    written += len(lines)
        await self.audit.append(
            self.store.db, actor=actor.name, role=actor.role, action="export_pseudonymised",
            object_type="lab_result_list", object_id="indicators", detail=f"{written} tests",
        )  # fmt: skip
        return written

    # --- retention -------------------------------------------------------------------------
    async def purge(self, actor: Actor) -> int:
        """Purge the identity of every person whose latest sample is older than the retention
        (and the PDF notices of their results); how many persons. Pseudonymised rows stay."""
        cutoff = self.now() - timedelta(days=self.purge_days)
        latest = (
            sa.select(results.c.person_id)
            .group_by(results.c.person_id)
            .having(sa.func.max(results.c.sampled_at) < cutoff)
        )
        async with self.store.db.begin() as conn:
            targets = [
                row[0]
                for row in (
                    await conn.execute(
                        sa.select(persons.c.id).where(
                            sa.or_(*(persons.c[c].isnot(None) for c in IDENTIFYING)),
                            persons.c.id.in_(latest),
                        )
                    )
                ).all()
            ]
            for start in range(0, len(targets), 500):
                chunk = targets[start : start + 500]
                await _forget_elsewhere(conn, chunk)
                await conn.execute(
                    sa.update(persons)
                    .where(persons.c.id.in_(chunk))
                    .values(purged_at=self.now(), nir_valid=None, **dict.fromkeys(IDENTIFYING))
                )
                await conn.execute(
                    sa.update(results).where(results.c.person_id.in_(chunk)).values(postcode=None)
                )
                own_results = sa.select(results.c.id).where(results.c.person_id.in_(chunk))
                await conn.execute(
                    sa.update(notices).where(notices.c.result_id.in_(own_results)).values(pdf=None)
                )
            if targets:
                await self.audit.append(
                    conn,
                    actor=actor.name,
                    role=actor.role,
                    action="purge",
                    object_type="person",
                    object_id=f"{len(targets)} persons",
                    detail=f"identity of samples before {cutoff.date().isoformat()}",
                )
        retention = timedelta(days=self.purge_days)
        await events.purge(self.store.db, retention, now=self.now())
        await notify.Dispatcher(self.store.db, {}, clock=self.now).purge(retention)
        return len(targets)

    # --- notices ---------------------------------------------------------------------------
    async def process_notices(self, limit: int = NOTICE_BATCH, result_id: int | None = None) -> int:
        """Issue codes, render notices and queue the patients' e-mails and SMS for pending
        notices (of ``result_id`` only, if given); how many were done. Without a code issuer,
        notices wait."""
        if self.issuer is None:
            return 0
        query = (
            sa.select(notices.c.id, *results_query().selected_columns)
            .join(results, results.c.id == notices.c.result_id)
            .join(persons, persons.c.id == results.c.person_id)
            .where(notices.c.state == "pending")
            .order_by(notices.c.id)
            .limit(limit)
        )
        if result_id is not None:
            query = query.where(notices.c.result_id == result_id)
        async with self.store.db.connect() as conn:
            pending = (await conn.execute(query)).all()
        done = 0
        for row in pending:
            notice_id, result = row[0], stored(row[1:])
            code: IssuedCode | None = None
            try:
                code = await self.issuer.issue_long(result.sampled_at.date())
            except CodeUnavailable as exc:
                await self._notice_failed(notice_id, str(exc)[:100])
                log.warning("notice %d: code service unavailable, will retry", notice_id)
                break
            except CodeRefused:
                code = None
            await self._notice_done(notice_id, result, code)
            done += 1
        return done

    async def _notice_failed(self, notice_id: int, reason: str) -> None:
        async with self.store.db.begin() as conn:
            await conn.execute(
                sa.update(notices)
                .where(notices.c.id == notice_id)
                .values(attempts=notices.c.attempts + 1, error=reason)
            )

    async def _notice_done(
        self, notice_id: int, result: StoredResult, code: IssuedCode | None
    ) -> None:
        name = " ".join(n for n in (result.first_name, result.last_name) if n) or "Madame, Monsieur"
        # the test sites near the person (best effort, short timeout: never blocks the notice)
        postcode = result.result_postcode or result.postcode
        nearby = await self.sites.near(postcode) if self.sites is not None else None
        text = NoticeText(name, result.sampled_at.date(), result.lab, nearby)
        pdf = notice_pdf(text, code)
        async with self.store.db.begin() as conn:
            channels = []
            if result.email and "@" in result.email:
                attachment = notify.Attachment("resultat-covid.pdf", "application/pdf", pdf)
                await notify.enqueue(
                    conn, notify.Channel.EMAIL, result.email,
                    "Résultat de votre test COVID-19", email_text(text, code), [attachment],
                )  # fmt: skip
                channels.append("email")
            phone = international_phone(result.phone)
            if phone:
                await notify.enqueue(
                    conn, notify.Channel.SMS, phone, "", sms_text(text.sampled_on, code, nearby)
                )
                channels.append("sms")
            await conn.execute(
                sa.update(notices)
                .where(notices.c.id == notice_id)
                .values(
                    state="done" if code else "no-code",
                    attempts=notices.c.attempts + 1,
                    pdf=pdf,
                    code_expires_at=code.expires_at if code else None,
                    error=None,
                    done_at=self.now(),
                )
            )
            await self.audit.append(
                conn,
                actor="sidep",
                role="system",
                action="notify",
                object_type="lab_result",
                object_id=result.id,
                detail=",".join(channels) or "no contact",
            )

    async def notice_pdf(self, result_id: int) -> bytes | None:
        """The PDF notice of a result, when one was produced (and not purged)."""
        async with self.store.db.connect() as conn:
            query = sa.select(notices.c.pdf).where(notices.c.result_id == result_id)
            return (await conn.execute(query.order_by(notices.c.id.desc()).limit(1))).scalar()


def _area(postcode: str | None) -> str:
    """A postcode as the indicators' ``area`` (nothing that would break the ``;`` file)."""
    return "".join(c for c in postcode or "" if c.isalnum())


async def _forget_elsewhere(conn: AsyncConnection, person_chunk: list[int]) -> None:
    """What the purge of these persons must also reach outside SI-DEP's own tables: the
    identity in the payloads of their ``sidep.positive`` events (blanked, the event kept for
    the feed's order) and their e-mails and SMS (deleted, attachments with them; a pending one
    to an address another person still identified also has is kept: it may be theirs)."""
    own = (
        await conn.execute(sa.select(results.c.id).where(results.c.person_id.in_(person_chunk)))
    ).scalars()
    keys = [str(i) for i in own]
    outbox = outbox_table
    for start in range(0, len(keys), 500):
        found = (
            await conn.execute(
                sa.select(outbox.c.id, outbox.c.payload).where(
                    outbox.c.topic == POSITIVE_TOPIC, outbox.c.key.in_(keys[start : start + 500])
                )
            )
        ).all()
        for event_id, payload in found:
            patient = dict(payload.get("patient") or {})
            patient.update(dict.fromkeys(IDENTIFYING))
            await conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == event_id)
                .values(payload={**payload, "patient": patient})
            )
    contacts = (
        await conn.execute(
            sa.select(persons.c.email, persons.c.phone).where(persons.c.id.in_(person_chunk))
        )
    ).all()
    emails = {e for e, _ in contacts if e}
    phones = {p for _, p in contacts if p}
    others = (
        await conn.execute(
            sa.select(persons.c.email, persons.c.phone).where(
                persons.c.id.not_in(person_chunk),
                sa.or_(persons.c.email.in_(sorted(emails)), persons.c.phone.in_(sorted(phones))),
            )
        )
    ).all()

    def addresses(rows: Sequence[Any]) -> set[str]:
        return {e.strip() for e, _ in rows if e} | {
            p for _, phone in rows if (p := international_phone(phone))
        }

    mine, shared = addresses(contacts), addresses(others)
    if mine:
        t = notifications_table
        await conn.execute(
            sa.delete(t).where(
                t.c.recipient.in_(sorted(mine)),
                sa.or_(
                    t.c.status != notify.Status.PENDING.value,
                    t.c.recipient.not_in(sorted(shared)) if shared else sa.true(),
                ),
            )
        )


def pseudonymised(r: StoredResult) -> StoredResult:
    """The row without what identifies the patient."""
    from dataclasses import replace

    return replace(
        r, nir=None, nir_valid=None, last_name=None, first_name=None, birth_date=None,
        postcode=None, phone=None, email=None, result_postcode=None,
    )  # fmt: skip


def result_json(r: StoredResult) -> dict[str, Any]:
    """The ``robert sidep results --json`` line of a result: the patient as the result's own
    message gave them, null where it lacked a field (the postcode is the message's own; the NIR,
    names and birth date are the person's, when the message carried them: a later message
    may have completed or respelt them). Results stored before migration 0002 show the
    person's identity."""
    sent = None if r.identity_sent is None else set(r.identity_sent.split(","))

    def given(field: str, value: Any) -> Any:
        return value if sent is None or field in sent else None

    birth = given("birth_date", r.birth_date)
    return {
        "lab": r.lab,
        "sample_id": r.sample_id,
        "loinc": r.loinc,
        "method": r.method,
        "result": r.result,
        "sampled_at": r.sampled_at.isoformat(),
        "status": r.status,
        "dep": r.dep,
        "patient": {
            "nir": given("nir", r.nir),
            "last_name": given("last_name", r.last_name),
            "first_name": given("first_name", r.first_name),
            "birth_date": birth.isoformat() if birth else None,
            "sex": r.sex,
            "postcode": r.postcode if sent is None else r.result_postcode,
        },
    }


def pseudonymised_json(r: StoredResult) -> dict[str, Any]:
    """The ``robert sidep export --pseudonymised`` line: no identity, the pseudonym, age."""
    return {
        "pseudonym": r.pseudonym,
        "lab": r.lab,
        "loinc": r.loinc,
        "method": r.method,
        "result": r.result,
        "status": r.status,
        "sampled_at": r.sampled_at.isoformat(),
        "validated_at": iso(r.validated_at),
        "dep": r.dep,
        "age": r.age,
        "sex": r.sex,
    }
