"""SI-VIC's domain, independent of HTTP: events, registrations (file, form, JSON) with one
patient per person within an event, audited reads, the daily open-data snapshot and the counts
the SAMU board reads."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from kit.audit import Actor
from kit.http import BadRequest, Conflict, Forbidden, NotFound
from kit.identity import pseudonym
from kit.keys import derive_key
from sivic import intake
from sivic.access import COUNT_ROLES, EVENT_ROLES, PATIENT_ROLES, Access
from sivic.model import (
    Covid,
    Event,
    EventKind,
    HistoryEntry,
    Outcome,
    Patient,
    Registration,
    Source,
)
from sivic.opendata import (
    ALL_REASONS,
    DATASETS,
    HOSPITAL,
    Published,
    Snapshot,
    check_snapshot,
    compute,
    csv_text,
    file_name,
    published_rows,
)
from sivic.store import Result, SivicStore, concurrent
from sivic.territory import departements, departements_of_region, regions

SYSTEM = Actor("system", "admin")
COVID_EVENT_NAME = "COVID-19"


@dataclass(slots=True)
class ImportReport:
    """What an import did: how many lines created, updated or left patients unchanged, and
    the refused lines (number and reason)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[intake.LineError] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": [{"line": e.line, "reason": e.reason} for e in self.refused],
        }

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.refused)} refused"
        )


class SivicService:
    """SI-VIC over its store. ``secret`` keys the match keys (never plain hashes: identities
    are few enough to be tried one by one)."""

    def __init__(
        self, store: SivicStore, secret: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.clock = clock
        self._key = derive_key(secret, "sivic match keys")

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def today(self) -> date:
        return self.now().date()

    # --- events ----------------------------------------------------------------------------
    async def covid_event(self) -> Event:
        """The open COVID epidemic event (made on first use): where the intake file goes."""
        for event in await self.store.events():
            if (
                event.kind == EventKind.EPIDEMIC
                and event.closed_at is None
                and (event.name == COVID_EVENT_NAME)
            ):
                return event
        return await self.store.create_event(
            EventKind.EPIDEMIC, COVID_EVENT_NAME, SYSTEM, self.now()
        )

    async def event(self, event_id: int | None) -> Event:
        """The event of that id (the COVID event with None); 404 for none."""
        if event_id is None:
            return await self.covid_event()
        found = await self.store.event(event_id)
        if found is None:
            raise NotFound(f"no event {event_id}")
        return found

    async def events(self) -> list[Event]:
        await self.covid_event()
        return await self.store.events()

    async def close_event(self, access: Access, actor: Actor, event_id: int) -> Event:
        """Close an event: no registration is taken for it afterwards (its patients and
        history stay, for the counts and the audit)."""
        if access.role not in EVENT_ROLES:
            raise Forbidden("only the national crisis centre closes events")
        await self.event(event_id)
        if not await self.store.close_event(event_id, actor, self.now()):
            raise Conflict("the event is already closed")
        return await self.event(event_id)

    async def _open_event(self, event_id: int | None) -> Event:
        event = await self.event(event_id)
        if event.closed_at is not None:
            raise Conflict(f"event {event.id} is closed")
        return event

    async def create_event(self, access: Access, actor: Actor, kind: str, name: str) -> Event:
        if access.role not in EVENT_ROLES:
            raise Forbidden("only the national crisis centre opens events")
        try:
            event_kind = EventKind(kind)
        except ValueError:
            raise BadRequest("kind must be attack, health_situation or epidemic") from None
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise BadRequest("an event needs a name of at most 200 characters")
        return await self.store.create_event(event_kind, name, actor, self.now())

    # --- registrations ---------------------------------------------------------------------
    def keys_of(self, registration: Registration) -> list[str]:
        """The keys a patient is found by within an event, most trusted first: the INS, the
        normalised identity (names and birth date), the hospital's own number (within the
        establishment). Keyed hashes: the table holds no identity."""
        identity = registration.identity
        found = []
        if identity.ins:
            found.append("ins:" + self._mac(identity.ins))
        if identity.last_name and identity.first_name:
            with contextlib.suppress(ValueError):  # names without letters: no such key
                found.append(
                    "id:"
                    + pseudonym(
                        self._key, identity.last_name, identity.first_name, identity.birth_date
                    )
                )
        if identity.patient_ref:
            found.append(
                "ref:" + self._mac(f"{registration.episode.finess}:{identity.patient_ref}")
            )
        return found

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    async def register(
        self,
        access: Access,
        actor: Actor,
        registration: Registration,
        source: Source,
        event_id: int | None = None,
    ) -> Result:
        """Register (or move, discharge...) one patient. 403 outside the caller's
        establishment; 422 when refused (an older state)."""
        if not access.may_write(registration.episode.finess):
            raise Forbidden("patients of another establishment")
        if not self.keys_of(registration):
            raise BadRequest("give an INS, names, or the hospital's patient number")
        if registration.episode.status_date > self.today():
            raise BadRequest("status_date is in the future")
        event = await self._open_event(event_id)
        (result,) = await self._apply(
            event.id, [(registration, self.keys_of(registration))], actor, source
        )
        return result

    async def _apply(
        self,
        event_id: int,
        items: Sequence[tuple[Registration, Sequence[str]]],
        actor: Actor,
        source: str,
    ) -> list[Result]:
        """The store's registration; 409 if a concurrent one still collides after the
        store's retry (a unique key, a deadlock, a serialisation failure: nothing applied,
        send it again). Another database error is a fault of ours, a 500."""
        try:
            return await self.store.register(event_id, items, actor, source, self.now())
        except sa.exc.DBAPIError as exc:
            if not concurrent(exc):
                raise
            raise Conflict("registered concurrently by another request: send it again") from None

    async def import_text(
        self,
        access: Access,
        actor: Actor,
        text: str,
        event_id: int | None = None,
        source: Source = Source.FILE,
    ) -> ImportReport:
        """An intake file: the good lines applied, the others refused with their reason."""
        parsed = intake.parse(text, today=self.today())
        report = ImportReport(refused=list(parsed.errors))
        allowed: list[tuple[int, Registration]] = []
        for number, registration in parsed.registrations:
            if access.may_write(registration.episode.finess):
                allowed.append((number, registration))
            else:
                report.refused.append(intake.LineError(number, "not an establishment of yours"))
        event = await self._open_event(event_id)
        results = await self._apply(
            event.id, [(r, self.keys_of(r)) for _, r in allowed], actor, source.value
        )
        for (number, _), result in zip(allowed, results, strict=True):
            if result.outcome == Outcome.CREATED:
                report.created += 1
            elif result.outcome == Outcome.UPDATED:
                report.updated += 1
            elif result.outcome == Outcome.UNCHANGED:
                report.unchanged += 1
            else:
                report.refused.append(intake.LineError(number, result.reason))
        report.refused.sort(key=lambda e: e.line)
        return report

    # --- reads (audited) -------------------------------------------------------------------
    async def patients_at(
        self,
        access: Access,
        actor: Actor,
        finess: str,
        event_id: int | None = None,
        *,
        present_only: bool = True,
    ) -> list[Patient]:
        """The patients lying at an establishment. The read is audited."""
        if access.role not in PATIENT_ROLES:
            raise Forbidden("no access to patients")
        if not intake.FINESS.fullmatch(finess):
            raise BadRequest("finess must be 9 characters")
        event = await self.event(event_id)
        found = await self.store.patients_at(event.id, finess, present_only=present_only)
        dep = found[0].episode.dep if found else _dep_of_finess(finess)
        if not access.may_read(finess, dep):
            raise Forbidden("patients of another establishment or territory")
        await self.store.audit.append(
            self.store.db,
            actor=actor.name,
            role=actor.role,
            action="read",
            object_type="patient_list",
            object_id=f"{event.id}:{finess}",
            detail=f"{len(found)} patients",
        )
        return found

    async def patient(
        self, access: Access, actor: Actor, patient_id: int
    ) -> tuple[Patient, list[HistoryEntry]]:
        """A patient's record and history. The read is audited; a patient elsewhere is 404
        (their existence is not disclosed)."""
        found = await self.store.patient(patient_id)
        if found is None or not access.may_read(found.episode.finess, found.episode.dep):
            raise NotFound("no such patient")
        await self.store.audit.append(
            self.store.db,
            actor=actor.name,
            role=actor.role,
            action="read",
            object_type="patient",
            object_id=patient_id,
        )
        return found, await self.store.history_of(patient_id)

    # --- open data -------------------------------------------------------------------------
    async def snapshot(
        self,
        day: date,
        event_id: int | None = None,
        reasons: frozenset[Covid] = ALL_REASONS,
        deps: Sequence[str] | None = None,
    ) -> Snapshot:
        """The day's rows of the three files, from the history (exact for ``deps`` only when
        given: the others' rows may be partial)."""
        event = await self.event(event_id)
        if day >= self.today():  # nothing is dated after today: the current table is the day's
            states = await self.store.states_now(event.id, deps)
        else:
            states = await self.store.states_on(event.id, day, deps)
        movements = await self.store.movements_until(event.id, day, deps)
        return compute(day, states, movements, reasons)

    async def publish(
        self, day: date, out: Path | None, actor: Actor = SYSTEM, event_id: int | None = None
    ) -> Published:
        """Compute the day's snapshot, check it against what was published before, keep it and
        write the three files (every published day, as SpF's files held the whole series) to
        ``out``. Nothing is kept or written when an invariant fails: ``problems`` says which."""
        event = await self.event(event_id)
        snapshot = await self.snapshot(day, event.id)
        earlier = await self.store.published_bodies(event.id, HOSPITAL, before=day)
        result = Published(day, problems=check_snapshot(snapshot, published_rows(earlier)))
        if result.problems:
            return result
        bodies = {name: snapshot.body(name) for name in DATASETS}
        await self.store.keep_published(event.id, day, bodies, actor, self.now())
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for name in DATASETS:
                kept = await self.store.published_bodies(event.id, name)
                days = sorted(d for d in kept if d <= day)
                path = out / file_name(name, day)
                path.write_text(csv_text(name, (kept[d] for d in days)), encoding="utf-8")
                result.files.append(str(path))
        return result

    async def territory_rows(self, access: Access) -> list[TerritoryRow]:
        """Today's counts of each département the caller may see (ARS: their region)."""
        deps = [d for d in departements() if access.may_count(d)]
        if not deps:
            raise Forbidden("no access to the counts")
        snapshot = await self.snapshot(self.today(), deps=deps)
        rows = []
        for dep in deps:
            t, n = snapshot.totals([dep]), snapshot.new_totals([dep])
            rows.append(
                TerritoryRow(dep, departements()[dep][0], t.hosp, t.rea, t.rad, t.dc, n.incid_hosp)
            )
        return rows

    async def counts(
        self,
        access: Access,
        dep: str | None = None,
        region: str | None = None,
        day: date | None = None,
    ) -> dict[str, object]:
        """The SAMU board's contract: a département's (or region's, or the country's) current
        counts: hospitalised, in critical care, by kind of unit, cumulative returns home and
        deaths, and the day's new ones."""
        if access.role not in COUNT_ROLES:
            raise Forbidden("no access to the counts")
        if dep is not None and region is not None:
            raise BadRequest("give dep or region, not both")
        if dep is not None:
            if dep not in departements():
                raise BadRequest(f"no département {dep[:10]!r}")
            deps = [dep]
        elif region is not None:
            if region not in regions():
                raise BadRequest(f"no region {region[:10]!r}")
            deps = departements_of_region(region)
        else:
            deps = list(departements())
        if not all(access.may_count(d) for d in deps):
            raise Forbidden("counts of another territory")
        on = day or self.today()
        snapshot = await self.snapshot(on, deps=None if dep is None and region is None else deps)
        totals = snapshot.totals(deps)
        new = snapshot.new_totals(deps)
        return {
            "dep": dep,
            "region": region,
            "date": on.isoformat(),
            "hosp": totals.hosp,
            "rea": totals.rea,
            "conv": totals.conv,
            "ssr_usld": totals.ssr_usld,
            "other": totals.other,
            "rad": totals.rad,
            "dc": totals.dc,
            "incid_hosp": new.incid_hosp,
            "incid_rea": new.incid_rea,
            "incid_dc": new.incid_dc,
            "incid_rad": new.incid_rad,
            "as_of": self.now().isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True, slots=True)
class TerritoryRow:
    """A département's counts of the day (the counts page)."""

    dep: str
    name: str
    hosp: int
    rea: int
    rad: int
    dc: int
    incid_hosp: int


def _dep_of_finess(finess: str) -> str:
    """The département a FINESS number starts with (97x overseas): for an empty list only."""
    return finess[:3] if finess.startswith("97") else finess[:2]
