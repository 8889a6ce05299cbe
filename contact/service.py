"""Contact Covid's domain, independent of HTTP: cases from patient zero to every contact,
three levels, prescriptions, notifications, SI-DEP positives, retention and the export.

Every read of a record and every change appends to the audit log in the same transaction
(decree 2020-551 art. 5 II); entries name records by number, never by name.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from contact import rules
from contact.access import (
    ARS_AGENT,
    CASE_ROLES,
    CHECK_ROLES,
    CPAM,
    DOCTOR,
    EXPORT_ROLES,
    Access,
)
from contact.model import (
    Call,
    Case,
    ContactKind,
    Exposure,
    Link,
    OpenedBy,
    Outcome,
    Person,
    PersonInput,
    Prescription,
    PrescriptionKind,
)
from contact.rules import Level, Status, TimeRules
from contact.store import ContactStore
from kit.events import Event
from kit.http import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from kit.identity import normalise_name, pseudonym
from kit.notify import Channel, Dispatcher, enqueue

REVEAL_REASON_MIN, REVEAL_REASON_MAX = 10, 200
"""How long the reason a level-3 agent gives for seeing names must be (kept in the audit log)."""

log = logging.getLogger("contact")

POSITIVE, WITHDRAWN = "sidep.positive", "sidep.positive.withdrawn"
_NIR_SHAPE = re.compile(r"\d{5}[0-9AB]{2}\d{8}")  # 2A/2B: Corsica
TOPICS = (POSITIVE, WITHDRAWN)


@dataclass(frozen=True, slots=True)
class CaseInput:
    """A patient-zero record as a doctor or an agent enters it."""

    person: PersonInput
    diagnosis_date: date
    onset_date: date | None = None
    sampled_date: date | None = None
    consent_disclose: bool = False
    exposures: Sequence[tuple[str, str, date]] = ()


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact (or co-exposed person) as listed on a case."""

    person: PersonInput
    last_contact: date
    relation: str = "other"
    kind: ContactKind = ContactKind.CONTACT
    household: bool = False
    doctor_will_call: bool = False


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact of a case with what agents need on the call screen."""

    link: Link
    person: Person | None
    prescriptions: list[Prescription]
    calls: list[Call]
    other_cases: int


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case as a reader is allowed to see it (``person`` is None without names)."""

    case: Case
    person: Person | None
    contacts: list[ContactView]
    exposures: list[Exposure]
    overdue: bool
    prescriptions: list[Prescription] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One line of a work queue."""

    case: Case
    person: Person | None
    overdue: bool
    contacts: int
    to_notify: int


@dataclass(frozen=True, slots=True)
class PrescriptionCheck:
    """What a pharmacist or a lab sees of a code: enough to check the person in front."""

    prescription: Prescription
    last_name: str
    first_name: str
    birth_date: date | None
    may_consume: bool


@dataclass(frozen=True, slots=True)
class QueuePage:
    """A page of a work queue and the next page's number (None: the last page)."""

    items: list[QueueItem]
    page: int
    next_page: int | None


QUEUE_PAGE = 50
"""Cases a queue page shows."""
MAX_PAGE = 10_000
AUDIT_RECORDS = 40
"""Record numbers an audit entry's detail lists (11 characters each, within 500)."""

RELATIONS = ("household", "family", "work", "school", "friend", "care", "travel", "other")


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class ContactService:
    """The Contact Covid service over its store."""

    def __init__(
        self,
        store: ContactStore,
        *,
        rules: TimeRules = rules.DEFAULT_RULES,
        auto_open_after: timedelta = timedelta(hours=24),
        handover_after: timedelta = timedelta(hours=24),
        retention: timedelta = timedelta(days=90),
        cluster_min_cases: int = 3,
        cluster_window_days: int = 7,
        pseudonym_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.rules = rules
        self.auto_open_after = auto_open_after
        self.handover_after = handover_after
        self.retention = retention
        self.cluster_min_cases = cluster_min_cases
        self.cluster_window_days = cluster_window_days
        self.pseudonym_key = pseudonym_key
        self.clock = clock

    async def open(self) -> None:
        """Migrate the database."""
        await self.store.open()

    async def close(self) -> None:
        """Release the database."""
        await self.store.close()

    def now(self) -> datetime:
        """The service's clock as an aware UTC time."""
        return _utc(self.clock())

    def _pseudonym(self, data: PersonInput) -> str | None:
        if self.pseudonym_key is None or data.birth_date is None:
            return None
        try:
            return pseudonym(self.pseudonym_key, data.last_name, data.first_name, data.birth_date)
        except ValueError:
            return None

    async def _audit(
        self, conn: AsyncConnection, access: Access, action: str, kind: str, object_id: object,
        detail: str = "",
    ) -> None:  # fmt: skip
        await self.store.audit.append(
            conn,
            actor=access.name,
            role=access.role,
            action=action,
            object_type=kind,
            object_id=str(object_id),
            detail=detail,
        )

    async def _person(self, conn: AsyncConnection, data: PersonInput, now: datetime) -> Person:
        return (await self._person_entered(conn, data, now))[0]

    async def _person_entered(
        self, conn: AsyncConnection, data: PersonInput, now: datetime
    ) -> tuple[Person, Person]:
        """The person as stored (matched and completed, or new), and as the caller entered
        them: the same record with only the caller's details (what another case recorded
        is not shown back to them)."""
        try:
            data = replace(
                data, phone=rules.normalise_phone(data.phone), nir=rules.clean_nir(data.nir)
            )
        except ValueError as exc:
            raise BadRequest(str(exc), "bad_identity") from None
        try:
            person, _ = await self.store.upsert_person(conn, data, now, self._pseudonym(data))
        except IntegrityError:
            raise Conflict("this NIR belongs to another person", "nir_conflict") from None
        entered = replace(
            person, last_name=data.last_name.strip(), first_name=data.first_name.strip(),
            birth_date=data.birth_date, sex=data.sex, nir=data.nir, phone=data.phone,
            email=data.email, address=data.address.strip(), postcode=data.postcode.strip(),
            department=data.department.strip(),
        )  # fmt: skip
        return person, entered

    # --- cases -------------------------------------------------------------------------------
    async def open_case(self, access: Access, data: CaseInput) -> Case:
        """A new patient-zero record: a doctor's at level 1, a platform's at level 2, the
        ARS's at level 3. Audited (``create``)."""
        level = access.level
        if level is None:
            raise Forbidden("this role does not open cases")
        if data.onset_date is None and data.sampled_date is None:
            raise FieldError(
                "onset_date", "give the symptom onset date or the sampling date", "no_dates"
            )
        department = data.person.department or access.department or ""
        if not department:
            raise FieldError(
                "postcode",
                "give the postcode or the département: it routes the case to its platform",
                "no_department",
            )
        now = self.now()
        try:
            rules.check_case_dates(
                data.diagnosis_date, data.onset_date, data.sampled_date, now.date()
            )
            for _, _, day in data.exposures:
                rules.check_day("exposure_day", day, now.date())
            _check_birth(data.person, now.date())
        except rules.DateError as exc:
            raise FieldError(exc.field, str(exc), "bad_date") from None
        exposures = [_exposure(kind, place, day) for kind, place, day in data.exposures]
        async with self.store.db.begin() as conn:
            person = await self._person(conn, data.person, now)
            opened_by = {
                Level.DOCTOR: OpenedBy.DOCTOR,
                Level.CPAM: OpenedBy.CPAM,
                Level.ARS: OpenedBy.ARS,
            }[level]
            case = await self.store.insert_case(
                conn,
                person_id=person.id,
                opened_by=opened_by.value,
                doctor=access.name if access.role == DOCTOR else None,
                level=int(level),
                status=Status.INITIALISED.value,
                diagnosis_date=data.diagnosis_date,
                onset_date=data.onset_date,
                sampled_date=data.sampled_date,
                consent_disclose=data.consent_disclose,
                department=department,
                opened_at=now,
                sla_due_at=rules.sla_due(now, self.rules),
                source_result=None,
                result_withdrawn=False,
            )
            for exposure in exposures:
                await self.store.add_exposure(conn, case.id, exposure)
            await self._audit(conn, access, "create", "case", case.record, f"level {int(level)}")
        return case

    async def _readable(self, conn: AsyncConnection, access: Access, case_id: int) -> Case:
        if access.role not in CASE_ROLES:
            raise Forbidden("this role does not read cases")
        case = await self.store.case(conn, case_id)
        if case is None or not access.may_read(case):
            # the same answer for another's case as for none: record numbers are sequential
            raise NotFound("no such case", "no_case")
        return case

    async def _editable(self, conn: AsyncConnection, access: Access, case_id: int) -> Case:
        if access.role not in CASE_ROLES:
            raise Forbidden("this role does not work on cases")
        case = await self.store.case_for_update(conn, case_id)
        if case is None or not access.may_read(case):
            raise NotFound("no such case", "no_case")
        if not access.may_edit(case):
            raise Forbidden("this case is at another level now", "other_level")
        return case

    async def case_view(self, access: Access, case_id: int, reveal: str | None = None) -> CaseView:
        """A case with its contacts, as ``access`` may see it. Audited (``read``).

        Level 3 sees record numbers without names "unless needed" (health.md 3.4): with
        ``reveal``, the reason an ARS agent gives (a cluster to trace back, a setting to call),
        this one answer carries the names, and the audit entry is ``reveal`` with the reason.
        Nothing is remembered: the next read is by record number again."""
        names = access.sees_names
        reason = ""
        if reveal is not None:
            if access.role != ARS_AGENT:
                raise Forbidden("only level 3 asks for names: the others see them or never do",
                                "no_reveal")  # fmt: skip
            reason = " ".join(reveal.split())
            if not REVEAL_REASON_MIN <= len(reason) <= REVEAL_REASON_MAX:
                raise FieldError(
                    "reason",
                    f"say why the names are needed ({REVEAL_REASON_MIN} to "
                    f"{REVEAL_REASON_MAX} characters): it is kept in the audit log",
                )
            names = True
        async with self.store.db.begin() as conn:
            case = await self._readable(conn, access, case_id)
            view = await self._view(conn, access, case, names)
            await self._audit(
                conn, access, "reveal" if reason else "read", "case", case.record, reason
            )
        return view

    async def _view(
        self, conn: AsyncConnection, access: Access, case: Case, names: bool | None = None
    ) -> CaseView:
        """The case as ``access`` sees it; ``names`` overrides whether names are shown."""
        if names is None:
            names = access.sees_names
        link_list = await self.store.links_of_case(conn, case.id)
        people = await self.store.persons_of(
            conn, [case.person_id, *(link.person_id for link in link_list)]
        )
        all_prescriptions = await self.store.prescriptions_of(conn, case.id)
        call_list = await self.store.calls_of(conn, [link.id for link in link_list])
        contacts = []
        for link in link_list:
            others = len(await self.store.links_of_person(conn, link.person_id)) - 1
            contacts.append(
                ContactView(
                    link,
                    people.get(link.person_id) if names else None,
                    [p for p in all_prescriptions if p.link_id == link.id],
                    [c for c in call_list if c.link_id == link.id],
                    others,
                )
            )
        return CaseView(
            case,
            people.get(case.person_id) if names else None,
            contacts,
            await self.store.exposures_of(conn, case.id),
            rules.is_overdue(case.sla_due_at, case.status, case.level, self.now()),
            [p for p in all_prescriptions if p.link_id is None],
        )

    async def add_contact(self, access: Access, case_id: int, data: ContactInput) -> ContactView:
        """List a person on a case (matched to a known person: a contact of two cases is one
        person with two links); their registration issues the single-use prescriptions (a
        PCR test, masks, and a sick-leave certificate for a contact). Audited."""
        if data.relation not in RELATIONS:
            raise BadRequest(f"relation is one of {', '.join(RELATIONS)}", "bad_relation")
        if not data.person.department:
            raise FieldError(
                "postcode", "give the contact's postcode or département (mandatory)",
                "no_department",
            )  # fmt: skip
        now = self.now()
        try:
            rules.check_day("last_contact", data.last_contact, now.date())
            _check_birth(data.person, now.date())
        except rules.DateError as exc:
            raise FieldError(exc.field, str(exc), "bad_date") from None
        async with self.store.db.begin() as conn:
            case = await self._editable(conn, access, case_id)
            if case.status is Status.CLOSED:
                raise Conflict("this case is closed", "closed")
            try:
                rules.check_contact_date(
                    data.last_contact, case.onset_date, case.sampled_date, case.diagnosis_date,
                    self.rules,
                )  # fmt: skip
            except ValueError as exc:
                raise FieldError("last_contact", str(exc), "outside_window") from None
            person, entered = await self._person_entered(conn, data.person, now)
            if person.id == case.person_id:
                raise Unprocessable("the patient zero is not their own contact", "self")
            if await self.store.link_of(conn, case.id, person.id) is not None:
                raise Conflict("this person is already listed on this case", "listed")
            household = data.household or data.relation == "household"
            link = await self.store.insert_link(
                conn,
                case_id=case.id,
                person_id=person.id,
                kind=data.kind.value,
                relation=data.relation,
                household=household,
                last_contact=data.last_contact,
                isolation_until=rules.isolation_until(
                    data.last_contact, household, case.onset_date, case.sampled_date, self.rules
                ),
                test_on=rules.test_on(data.last_contact, self.rules),
                doctor_will_call=data.doctor_will_call,
                notified_at=None,
                channel=None,
                created_at=now,
            )
            kinds = [PrescriptionKind.PCR_TEST, PrescriptionKind.MASKS]
            if data.kind is ContactKind.CONTACT:
                kinds.append(PrescriptionKind.SICK_LEAVE)
            issued = [
                await self.store.insert_prescription(
                    conn,
                    case_id=case.id,
                    link_id=link.id,
                    person_id=person.id,
                    kind=kind.value,
                    code=rules.make_code(secrets.token_bytes(10)),
                    issued_at=now,
                )
                for kind in kinds
            ]
            others = len(await self.store.links_of_person(conn, person.id)) - 1
            await self._audit(conn, access, "create", "contact", link.id, case.record)
        return ContactView(link, entered, issued, [], others)

    async def transition(self, access: Access, case_id: int, target: Status) -> Case:
        """Move a case along the workflow (initialised -> validated -> closed). Audited with
        the lifecycle action (``validate``, ``close``)."""
        async with self.store.db.begin() as conn:
            case = await self._editable(conn, access, case_id)
            try:
                rules.check_transition(case.status, target)
            except rules.TransitionError as exc:
                raise Conflict(str(exc), "transition") from None
            await self.store.update_case(conn, case.id, status=target.value)
            action = "validate" if target is Status.VALIDATED else "close"
            await self._audit(conn, access, action, "case", case.record)
        return replace(case, status=target)

    async def raise_level(self, access: Access, case_id: int, target: Level) -> Case:
        """Hand a case to a higher level (the doctor to the platform, the platform to the
        ARS). Audited (``update``)."""
        async with self.store.db.begin() as conn:
            case = await self._editable(conn, access, case_id)
            try:
                rules.check_level_change(case.level, target, case.status)
            except rules.TransitionError as exc:
                raise Conflict(str(exc), "level") from None
            await self.store.update_case(conn, case.id, level=int(target))
            await self._audit(
                conn, access, "update", "case", case.record, f"level {int(case.level)}->"
                f"{int(target)}"
            )  # fmt: skip
        return replace(case, level=target)

    async def assign(self, access: Access, case_id: int, take: bool) -> Case:
        """Take a case into one's task list (409 when another agent holds it: they release it
        first, or anyone of the platform does for them) or release it to the platform's
        queue. Level 2 and 3 agents; audited (``update``, ``taken``/``released``)."""
        if access.role == DOCTOR:
            raise Forbidden("a doctor's cases are theirs already", "no_tasks")
        async with self.store.db.begin() as conn:
            case = await self._editable(conn, access, case_id)
            if case.status is Status.CLOSED:
                raise Conflict("this case is closed", "closed")
            if take and case.assigned_to not in (None, access.name):
                raise Conflict(f"{case.assigned_to} holds this case: release it first", "taken")
            if not take and case.assigned_to is None:
                raise Conflict("nobody holds this case", "not_taken")
            holder = access.name if take else None
            await self.store.update_case(conn, case.id, assigned_to=holder)
            detail = "taken" if take else f"released (held by {case.assigned_to})"
            await self._audit(conn, access, "update", "case", case.record, detail[:500])
        return replace(case, assigned_to=holder)

    # --- reaching contacts ---------------------------------------------------------------------
    async def notify_contacts(self, access: Access, case_id: int) -> int:
        """Queue a message to every contact not yet notified: SMS when there is a mobile
        number, else e-mail, else a letter. The index case is named only with their consent.
        How many were queued. Audited."""
        if access.role not in CPAM and access.role != DOCTOR:
            raise Forbidden("level 2 reaches contacts")
        now = self.now()
        sent = 0
        async with self.store.db.begin() as conn:
            case = await self._editable(conn, access, case_id)
            index = await self.store.person(conn, case.person_id)
            assert index is not None
            for link in await self.store.links_of_case(conn, case.id):
                if link.notified_at is not None:
                    continue
                person = await self.store.person(conn, link.person_id)
                assert person is not None
                channel, recipient = _channel_of(person)
                if channel is None:
                    continue
                codes = [
                    p for p in await self.store.prescriptions_of(conn, case.id)
                    if p.link_id == link.id
                ]  # fmt: skip
                body = notice(case, index, person, link, codes)
                await enqueue(
                    conn, channel, recipient, "Contact Covid: vous êtes cas contact", body,
                    now=now,
                )  # fmt: skip
                await self.store.mark_notified(conn, link.id, channel.value, now)
                sent += 1
            await self._audit(conn, access, "notify", "case", case.record, f"{sent} contacts")
        return sent

    async def record_call(self, access: Access, link_id: int, outcome: Outcome) -> Call:
        """Record a call to a contact and how it ended. Audited."""
        now = self.now()
        async with self.store.db.begin() as conn:
            link = await self.store.link(conn, link_id)
            if link is None:
                raise NotFound("no such contact", "no_contact")
            case = await self._editable(conn, access, link.case_id)
            if case.status is Status.CLOSED:
                raise Conflict("this case is closed", "closed")
            call = await self.store.add_call(conn, link.id, access.name, outcome, now)
            await self._audit(conn, access, "call", "contact", link.id, outcome.value)
        return call

    async def contact_view(self, access: Access, link_id: int) -> tuple[CaseView, ContactView]:
        """The call screen: a contact and their case. Audited (``read``)."""
        async with self.store.db.begin() as conn:
            link = await self.store.link(conn, link_id)
            if link is None:
                raise NotFound("no such contact", "no_contact")
            case = await self._readable(conn, access, link.case_id)
            view = await self._view(conn, access, case)
            await self._audit(conn, access, "read", "contact", link.id, case.record)
        contact = next(c for c in view.contacts if c.link.id == link_id)
        return view, contact

    # --- queues, search, clusters ------------------------------------------------------------
    async def queue(
        self, access: Access, include_closed: bool = False, page: int = 1, mine: bool = False
    ) -> list[QueueItem]:
        """One page of the work queue (``queue_page``), without whether more follow."""
        return (await self.queue_page(access, include_closed, page, mine)).items

    async def queue_page(
        self, access: Access, include_closed: bool = False, page: int = 1, mine: bool = False
    ) -> QueuePage:
        """The work queue of ``access``'s level, ``QUEUE_PAGE`` cases a page: a doctor's own
        cases; level 2 every case at level 2 or more of their scope; level 3 the escalated
        cases. Overdue first, then the other initialised (to-do) cases, then the validated
        ones, each by nearest deadline (sorted and cut in SQL: validated cases never push a
        new case off the page). ``mine``: only the cases ``access`` took (their task list).
        Audited: one ``read`` of the list naming every record shown."""
        if access.role not in CASE_ROLES:
            raise Forbidden("this role has no case queue")
        if page < 1 or page > MAX_PAGE:
            raise BadRequest(f"page is a number from 1 to {MAX_PAGE}", "bad_page")
        statuses = None if include_closed else [Status.INITIALISED, Status.VALIDATED]
        doctor = access.name if access.role == DOCTOR else None
        async with self.store.db.begin() as conn:
            found = await self.store.list_cases(
                conn,
                doctor=doctor,
                min_level=None if doctor else access.level,
                department=None if doctor else access.department,
                statuses=statuses,
                assigned_to=access.name if mine else None,
                limit=QUEUE_PAGE + 1,
                offset=(page - 1) * QUEUE_PAGE,
                now=self.now(),
            )
            items = await self._items(conn, access, found[:QUEUE_PAGE])
            listed = access.scope or "national"
            await self._audit_list(
                conn, access, "read", f"{listed} (mine)" if mine else listed,
                [i.case for i in items],
            )  # fmt: skip
        return QueuePage(items, page, page + 1 if len(found) > QUEUE_PAGE else None)

    async def _audit_list(
        self, conn: AsyncConnection, access: Access, action: str, object_id: object,
        shown: Sequence[Case],
    ) -> None:  # fmt: skip
        """A list read: the record numbers shown in the detail (as many entries as the
        detail's limit needs; one, empty, for an empty list)."""
        records = [c.record for c in shown]
        chunks = [records[i : i + AUDIT_RECORDS] for i in range(0, len(records), AUDIT_RECORDS)]
        for chunk in chunks or [[]]:
            await self._audit(conn, access, action, "case_list", object_id, " ".join(chunk))

    async def _items(
        self, conn: AsyncConnection, access: Access, found: Sequence[Case]
    ) -> list[QueueItem]:
        now = self.now()
        people = await self.store.persons_of(conn, [c.person_id for c in found])
        items = []
        for case in found:
            link_list = await self.store.links_of_case(conn, case.id)
            items.append(
                QueueItem(
                    case,
                    people.get(case.person_id) if access.sees_names else None,
                    rules.is_overdue(case.sla_due_at, case.status, case.level, now),
                    len(link_list),
                    sum(1 for link in link_list if link.notified_at is None),
                )
            )
        items.sort(
            key=lambda i: rules.queue_order(i.case.sla_due_at, i.case.status, i.case.level, now)
        )
        return items

    async def search(self, access: Access, text: str) -> list[QueueItem]:
        """Cases by record number, NIR, phone or name (every word), among those ``access``
        may read; the patient zero or one of their contacts matches. Audited."""
        if access.role not in CASE_ROLES:
            raise Forbidden("this role does not search cases")
        text = text.strip()
        if len(text) < 2 or len(text) > 200:
            raise BadRequest("search for 2 to 200 characters", "bad_search")
        async with self.store.db.begin() as conn:
            case_ids: list[int] | None = None
            person_ids: list[int] = []
            record = rules.parse_record_number(text)
            if record is not None:
                case_ids = [record]
            elif not access.sees_names:
                raise Forbidden("level 3 searches by record number only", "record_only")
            else:
                compact = text.replace(" ", "").replace(".", "").upper()
                nir = None
                phone = None
                if _NIR_SHAPE.fullmatch(compact):
                    try:
                        nir = rules.clean_nir(compact)
                    except ValueError:
                        raise BadRequest("this NIR's key does not match", "bad_nir") from None
                elif compact.lstrip("+").isdigit():
                    try:
                        phone = rules.normalise_phone(compact)
                    except ValueError:
                        raise BadRequest("not a phone number", "bad_phone") from None
                if nir or phone:
                    person_ids = await self.store.search_persons(conn, nir=nir, phone=phone)
                else:
                    name = normalise_name(text)
                    if not any(len(w) >= rules.MIN_PREFIX for w in name.split()):
                        raise BadRequest("type at least 3 letters of a name", "short_search")
                    person_ids = await self.store.search_persons(conn, name=name)
            found: list[Case] = []
            if case_ids is not None:
                found = await self.store.list_cases(conn, ids=case_ids)
            elif person_ids:
                by_index = await self.store.list_cases(conn, person_ids=person_ids)
                via_links: list[int] = []
                for person_id in person_ids:
                    via_links += [
                        link.case_id for link in await self.store.links_of_person(conn, person_id)
                    ]
                linked = await self.store.list_cases(conn, ids=via_links) if via_links else []
                found = list({c.id: c for c in [*by_index, *linked]}.values())
            visible = [c for c in found if access.may_read(c)]
            items = await self._items(conn, access, visible)
            await self._audit_list(conn, access, "search", len(items), [i.case for i in items])
        return items

    async def clusters(self, access: Access) -> list[rules.Cluster]:
        """Settings shared by several recent cases (level 2 and 3 of the scope). Audited."""
        if access.role not in CPAM and access.level is not Level.ARS:
            raise Forbidden("clusters are for levels 2 and 3")
        since = (self.now() - timedelta(days=4 * self.cluster_window_days)).date()
        async with self.store.db.begin() as conn:
            rows = await self.store.exposures_since(conn, since, access.department)
            await self._audit(conn, access, "read", "clusters", access.scope or "national")
        return rules.detect_clusters(
            [(case_id, setting, day) for case_id, setting, day, _ in rows],
            self.cluster_min_cases,
            self.cluster_window_days,
        )

    # --- prescriptions -------------------------------------------------------------------------
    async def check_prescription(self, access: Access, typed: str) -> PrescriptionCheck:
        """What a pharmacist or a lab reads of a code (kind, state, and the person's names and
        birth date to check their card). Audited (``read``)."""
        if access.role not in CHECK_ROLES:
            raise Forbidden("this role does not check prescriptions")
        code = rules.normalise_code(typed)
        if code is None:
            raise BadRequest("this is not a prescription code (check the characters)", "bad_code")
        async with self.store.db.begin() as conn:
            found = await self.store.prescription(conn, code)
            if found is None:
                raise NotFound("no prescription has this code", "no_prescription")
            person = await self.store.person(conn, found.person_id)
            assert person is not None
            await self._audit(conn, access, "read", "prescription", found.id)
        return PrescriptionCheck(
            found, person.last_name, person.first_name, person.birth_date,
            access.may_consume(found.kind) and found.consumed_at is None,
        )  # fmt: skip

    async def consume_prescription(self, access: Access, typed: str) -> Prescription:
        """Mark a prescription used, once: of two attempts (two pharmacies at the same
        second), one succeeds and the other gets 409. Audited."""
        if access.role not in CHECK_ROLES:
            raise Forbidden("this role does not consume prescriptions")
        code = rules.normalise_code(typed)
        if code is None:
            raise BadRequest("this is not a prescription code (check the characters)", "bad_code")
        now = self.now()
        by = f"{access.name} ({access.scope})" if access.scope else access.name
        async with self.store.db.begin() as conn:
            found = await self.store.prescription(conn, code)
            if found is None:
                raise NotFound("no prescription has this code", "no_prescription")
            if not access.may_consume(found.kind):
                raise Forbidden(f"a {access.role} does not deliver {found.kind.value}", "kind")
            if not await self.store.consume(conn, code, [found.kind], by[:120], now):
                raise Conflict("this prescription was already used", "used")
            await self._audit(conn, access, "consume", "prescription", found.id, found.kind.value)
        return replace(found, consumed_at=now, consumed_by=by[:120])

    # --- SI-DEP positives ----------------------------------------------------------------------
    async def handle_event(self, conn: AsyncConnection, event: Event) -> None:
        """Apply one SI-DEP event inside the consumer's transaction: a positive waits for a
        doctor's case (``auto_open_after``); a withdrawal cancels it. A malformed event is
        logged and skipped (holding the feed back for it would stop every later one)."""
        try:
            if event.topic == POSITIVE:
                await self._positive(conn, event)
            elif event.topic == WITHDRAWN:
                await self._withdrawn(conn, event)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("SI-DEP event %d skipped: %s", event.id, type(exc).__name__)

    async def _positive(self, conn: AsyncConnection, event: Event) -> None:
        payload = event.payload
        patient = payload["patient"]
        if not isinstance(patient, dict):
            raise TypeError("patient")
        sampled = datetime.fromisoformat(str(payload["sampled_at"]).replace("Z", "+00:00"))
        if sampled.tzinfo is None:
            sampled = sampled.replace(tzinfo=UTC)
        received = event.created_at if event.created_at.tzinfo else self.now()
        await self.store.add_pending(
            conn,
            lab=str(payload["lab"])[:20],
            result_id=str(payload["result_id"])[:100],
            sampled_at=sampled,
            department=str(payload.get("dep") or "")[:3],
            pseudonym=str(payload["pseudonym"])[:64],
            patient=patient,
            received_at=received,
            due_at=received + self.auto_open_after,
            status="pending",
            case_id=None,
        )

    async def _withdrawn(self, conn: AsyncConnection, event: Event) -> None:
        payload = event.payload
        lab, result_id = str(payload["lab"]), str(payload["result_id"])
        before = await self.store.withdraw_pending(conn, lab, result_id)
        if before is not None and before.case_id is not None:
            await self.store.update_case(conn, before.case_id, result_withdrawn=True)
            await self.store.audit.append(
                conn, actor="sidep", role="feed", action="update", object_type="case",
                object_id=rules.record_number(before.case_id), detail="result withdrawn",
            )  # fmt: skip

    async def auto_open(self, limit: int = 500) -> int:
        """Open a level-2 case for every positive whose delay has passed with no case for
        that person (matched on NIR, else identity); link it to the doctor's case when there
        is one. How many cases were opened. The job runs it every minute."""
        now = self.now()
        opened = 0
        async with self.store.db.begin() as conn:
            for row in await self.store.due_pending(conn, now, limit):
                data = _patient_input(row.patient or {}, row.department)
                if data is None or not data.department:
                    # no name, or no département (none sent, no postcode): a case no
                    # département's platform would see
                    log.warning("SI-DEP positive %d unusable: no name or no département", row.id)
                    await self.store.settle_pending(conn, row.id, "unusable", None)
                    continue
                key = rules.identity_key(
                    rules.Identity(data.last_name, data.first_name, data.birth_date, data.nir)
                )
                known = await self.store.find_person(conn, data.nir, key)
                recent = []
                if known is not None:
                    window = row.sampled_at.date() - timedelta(days=30)
                    recent = [
                        c for c in await self.store.cases_of_person(conn, known.id)
                        if c.diagnosis_date >= window
                    ]  # fmt: skip
                if recent:
                    await self.store.settle_pending(conn, row.id, "matched", recent[0].id)
                    continue
                person = await self._person(conn, data, now)
                case = await self.store.insert_case(
                    conn,
                    person_id=person.id,
                    opened_by=OpenedBy.AUTO.value,
                    doctor=None,
                    level=int(Level.CPAM),
                    status=Status.INITIALISED.value,
                    diagnosis_date=row.sampled_at.date(),
                    onset_date=None,
                    sampled_date=row.sampled_at.date(),
                    consent_disclose=False,
                    department=data.department,
                    opened_at=now,
                    sla_due_at=rules.sla_due(row.received_at, self.rules),
                    source_result=f"{row.lab}:{row.result_id}",
                    result_withdrawn=False,
                )
                await self.store.settle_pending(conn, row.id, "opened", case.id)
                await self.store.audit.append(
                    conn, actor="sidep", role="feed", action="create", object_type="case",
                    object_id=case.record, detail="level 2 from an SI-DEP positive",
                )  # fmt: skip
                opened += 1
        return opened

    async def hand_over_stale(self, limit: int = 500) -> int:
        """Raise to level 2 every open doctor's case not handed over within
        ``handover_after`` (24 h: level 2 takes over within 24 h of the doctor's entry,
        health.md 3.4), so that no case, nor an SI-DEP positive matched to it, stays with the
        doctor alone. Audited (``update``, actor ``handover``). How many were raised. The
        auto-open job runs it."""
        now = self.now()
        async with self.store.db.begin() as conn:
            stale = await self.store.stale_doctor_cases(conn, now - self.handover_after, limit)
            for case in stale:
                await self.store.update_case(conn, case.id, level=int(Level.CPAM))
                await self.store.audit.append(
                    conn, actor="handover", role="job", action="update", object_type="case",
                    object_id=case.record, detail="level 1->2: not handed over in time",
                )  # fmt: skip
        return len(stale)

    async def run_jobs(self) -> tuple[int, int]:
        """The auto-open job's run: level-1 cases past the hand-over delay go to level 2,
        then due SI-DEP positives open cases. (handed over, opened)."""
        handed = await self.hand_over_stale()
        return handed, await self.auto_open()

    # --- retention and export ------------------------------------------------------------------
    async def purge(self) -> int:
        """Erase identifying data collected more than ``retention`` ago (90 days: decree
        2020-551 art. 5 I), and delete the sent messages to contacts as old. How many persons
        were purged. Audited."""
        now = self.now()
        # the messages to contacts hold names and codes: sent ones go with the same delay
        await Dispatcher(self.store.db, {}, clock=self.now).purge(self.retention)
        async with self.store.db.begin() as conn:
            count = await self.store.purge(conn, now - self.retention, now)
            if count:
                await self.store.audit.append(
                    conn, actor="retention", role="job", action="delete",
                    object_type="person_identity", object_id=count,
                    detail=f"collected before {(now - self.retention).date().isoformat()}",
                )  # fmt: skip
        return count

    async def export_pseudonymised(self, access: Access) -> str:
        """The export for Santé publique France: CSV, one line per case and per contact, the
        person named by the keyed pseudonym SI-DEP uses (no name, NIR, contact detail or birth
        date). Audited (``export``)."""
        if access.role not in EXPORT_ROLES and access.role != "admin":
            raise Forbidden("the export is for Santé publique France")
        async with self.store.db.begin() as conn:
            case_rows = await self.store.export_rows(conn)
            link_rows = await self.store.export_links(conn)
            await self._audit(conn, access, "export", "pseudonymised", len(case_rows))
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(
            ["record", "role", "pseudonym", "sex", "dep", "level", "status", "opened_by",
             "diagnosis_date", "onset_date", "contact_kind", "household", "last_contact",
             "notified"]
        )  # fmt: skip
        for r in case_rows:
            writer.writerow(
                [rules.record_number(r.id), "case", r.pseudonym or "", r.sex, r.department,
                 r.level, r.status, r.opened_by, _iso(r.diagnosis_date), _iso(r.onset_date),
                 "", "", "", ""]
            )  # fmt: skip
        for r in link_rows:
            writer.writerow(
                [rules.record_number(r.case_id), "contact", r.pseudonym or "", r.sex,
                 r.department, "", "", "", "", "", r.kind, int(r.household),
                 _iso(r.last_contact), int(r.notified_at is not None)]
            )  # fmt: skip
        return out.getvalue()


class FieldError(Unprocessable):
    """422 about one field of the form (the page shows the message at that field)."""

    def __init__(self, field: str, message: str, code: str | None = None) -> None:
        super().__init__(message, code)
        self.field = field


def _check_birth(person: PersonInput, today: date) -> None:
    if person.birth_date is not None and not date(1880, 1, 1) <= person.birth_date <= today:
        raise rules.DateError("birth_date", "the birth date is in the future or before 1880")


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def _exposure(kind: str, place: str, day: date) -> Exposure:
    try:
        return Exposure(kind, place, rules.setting_key(kind, place), day)
    except ValueError as exc:
        raise BadRequest(str(exc), "bad_exposure") from None


def _channel_of(person: Person) -> tuple[Channel | None, str]:
    if person.phone and person.phone.startswith(("+336", "+337")):
        return Channel.SMS, person.phone
    if person.email:
        return Channel.EMAIL, person.email
    if person.address and person.postcode:
        lines = [f"{person.first_name} {person.last_name}", person.address, person.postcode]
        return Channel.LETTER, "\n".join(lines)
    if person.phone:
        return Channel.SMS, person.phone
    return None, ""


def notice(
    case: Case, index: Person, person: Person, link: Link, codes: Sequence[Prescription]
) -> str:
    """The message to a contact: isolation, test date, prescription codes; the index case's
    name only when they consented."""
    who = (
        f"{index.first_name} {index.last_name}, testé(e) positif(ve) à la Covid-19,"
        if case.consent_disclose
        else "Une personne testée positive à la Covid-19"
    )
    lines = [
        f"Bonjour {person.first_name} {person.last_name},",
        f"{who} nous a indiqué avoir été en contact avec vous le "
        f"{link.last_contact.strftime('%d/%m/%Y')}.",
        f"Restez isolé(e) jusqu'au {link.isolation_until.strftime('%d/%m/%Y')} inclus et faites "
        f"un test PCR le {link.test_on.strftime('%d/%m/%Y')}.",
    ]
    labels = {
        PrescriptionKind.PCR_TEST: "test PCR (laboratoire)",
        PrescriptionKind.MASKS: "masques (pharmacie)",
        PrescriptionKind.SICK_LEAVE: "arrêt de travail",
    }
    for p in codes:
        lines.append(f"Code {labels[p.kind]} : {rules.show_code(p.code)}")
    lines.append("L'Assurance Maladie vous appellera. Contact Covid, dossier " + case.record)
    return "\n".join(lines)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _patient_input(patient: dict[str, Any], department: str) -> PersonInput | None:
    """A person from an SI-DEP payload's ``patient``, or None when unusable. Fields of the
    wrong type or format are dropped (never raised: that would hold the feed back)."""
    try:
        nir = rules.clean_nir(_text_of(patient.get("nir")))
    except ValueError:
        nir = None
    try:
        phone = rules.normalise_phone(_text_of(patient.get("phone")))
    except ValueError:
        phone = None
    last, first = _text_of(patient.get("last_name")), _text_of(patient.get("first_name"))
    if not normalise_name(last) or not normalise_name(first):
        return None
    try:
        birth: date | None = date.fromisoformat(_text_of(patient.get("birth_date")))
    except ValueError:
        birth = None
    sex = _text_of(patient.get("sex"))
    email = _text_of(patient.get("email")).strip()
    postcode = _text_of(patient.get("postcode")).strip()[:5]
    try:
        dep = rules.clean_department(department[:3])
    except ValueError:
        dep = ""
    return PersonInput(
        last_name=last[:150],
        first_name=first[:150],
        birth_date=birth,
        sex=sex if sex in ("M", "F", "U") else "U",
        nir=nir,
        phone=phone,
        email=email[:254] if "@" in email else None,
        postcode=postcode,
        department=dep or rules.department_of(postcode),
    )
