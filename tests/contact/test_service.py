"""The service on SQLite and PostgreSQL: cases, contacts, one person across cases, levels,
notifications, prescriptions (one use, also under concurrency), roles, purge, export."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from contact.access import Access
from contact.model import ContactKind, Outcome, PrescriptionKind
from contact.rules import Level, Status
from contact.service import CaseInput, ContactInput, ContactService
from kit.audit import AuditFilter
from kit.http import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from kit.notify import Channel, Dispatcher, FileTransport
from kit.schema import notifications as notifications_table
from tests.contact.conftest import (
    ARS,
    BIOLOGIST,
    CPAM,
    DOCTOR,
    PHARMACIST,
    SPF,
    Clock,
    person,
)

ONSET = date(2020, 10, 20)


def patient_zero(consent: bool = False) -> CaseInput:
    return CaseInput(
        person("Dupont-Lefèvre", "Élodie", "1975-03-14", nir="295109912611193",
               phone="06 11 22 33 44"),
        diagnosis_date=date(2020, 10, 22),
        onset_date=ONSET,
        sampled_date=date(2020, 10, 21),
        consent_disclose=consent,
        exposures=[("school", "Lycée Victor-Hugo", date(2020, 10, 19))],
    )  # fmt: skip


def contact(last: str, first: str, **extra: object) -> ContactInput:
    phone = extra.pop("phone", None)
    email = extra.pop("email", None)
    values: dict[str, object] = {"last_contact": date(2020, 10, 19), **extra}
    return ContactInput(
        person(last, first, "1990-06-01", phone=phone, email=email, address="3 rue Oberkampf"),
        **values,  # type: ignore[arg-type]
    )


async def test_doctor_case_three_contacts_to_level_2_notified_and_closed(
    service: ContactService,
) -> None:
    case = await service.open_case(DOCTOR, patient_zero(consent=False))
    assert (case.level, case.status, case.record) == (
        Level.DOCTOR,
        Status.INITIALISED,
        "CC00000001",
    )
    added = [
        await service.add_contact(DOCTOR, case.id, contact("Martin", "Paul", phone="0612345678",
                                                           relation="household")),
        await service.add_contact(DOCTOR, case.id, contact("Bernard", "Lise",
                                                           email="lise@example.fr")),
        await service.add_contact(DOCTOR, case.id, contact("Petit", "Hugo", relation="work")),
    ]  # fmt: skip
    assert [len(a.prescriptions) for a in added] == [3, 3, 3]
    assert added[0].link.household and added[0].link.isolation_until == date(2020, 11, 3)
    assert added[1].link.isolation_until == date(2020, 10, 26)
    with pytest.raises(Unprocessable):  # before the contagious window
        early = contact("Tard", "Jean", last_contact=date(2020, 10, 1))
        await service.add_contact(DOCTOR, case.id, early)
    # level 2 sees nothing yet, the doctor hands over
    assert await service.queue(CPAM) == []
    await service.raise_level(DOCTOR, case.id, Level.CPAM)
    with pytest.raises(Forbidden):  # the doctor reads it still, but no longer edits it
        await service.add_contact(DOCTOR, case.id, contact("Autre", "Anne"))
    queue = await service.queue(CPAM)
    assert [i.case.id for i in queue] == [case.id] and queue[0].to_notify == 3
    assert await service.notify_contacts(CPAM, case.id) == 3
    assert await service.notify_contacts(CPAM, case.id) == 0  # once
    async with service.store.db.connect() as conn:
        rows = (await conn.execute(sa.select(notifications_table).order_by("id"))).all()
    assert [(r.channel, r.recipient.splitlines()[0]) for r in rows] == [
        ("sms", "+33612345678"), ("email", "lise@example.fr"), ("letter", "Hugo Petit"),
    ]  # fmt: skip
    assert all("Dupont" not in r.body and "Élodie" not in r.body for r in rows)
    masks = next(p for p in added[0].prescriptions if p.kind is PrescriptionKind.MASKS)
    assert masks.code[:4] in rows[0].body.replace("-", "")
    # the call screen
    call = await service.record_call(CPAM, added[2].link.id, Outcome.NO_ANSWER)
    assert call.outcome is Outcome.NO_ANSWER
    # the pharmacist delivers the masks once
    check = await service.check_prescription(PHARMACIST, masks.code.lower())
    assert check.may_consume and check.last_name == "Martin"
    await service.consume_prescription(PHARMACIST, masks.code)
    with pytest.raises(Conflict):
        await service.consume_prescription(PHARMACIST, masks.code)
    assert not (await service.check_prescription(PHARMACIST, masks.code)).may_consume
    pcr = next(p for p in added[0].prescriptions if p.kind is PrescriptionKind.PCR_TEST)
    with pytest.raises(Forbidden):  # a pharmacy does not deliver the lab's test
        await service.consume_prescription(PHARMACIST, pcr.code)
    await service.consume_prescription(BIOLOGIST, pcr.code)
    # validated, then closed; no way back
    await service.transition(CPAM, case.id, Status.VALIDATED)
    await service.transition(CPAM, case.id, Status.CLOSED)
    with pytest.raises(Conflict):
        await service.transition(CPAM, case.id, Status.VALIDATED)
    assert await service.queue(CPAM) == []
    entries = await service.store.audit.query(service.store.db, AuditFilter(object_id="CC00000001"))
    actions = [e.action for e in reversed(entries)]
    assert actions[0] == "create" and "validate" in actions and actions[-1] == "close"
    for entry in entries:
        assert "Dupont" not in entry.detail


async def test_index_name_only_with_consent(service: ContactService) -> None:
    case = await service.open_case(CPAM, patient_zero(consent=True))
    assert case.level is Level.CPAM
    await service.add_contact(CPAM, case.id, contact("Martin", "Paul", phone="0612345678"))
    await service.notify_contacts(CPAM, case.id)
    async with service.store.db.connect() as conn:
        body = (await conn.execute(sa.select(notifications_table.c.body))).scalar_one()
    assert "Élodie Dupont-Lefèvre" in body


async def test_one_person_across_cases(service: ContactService) -> None:
    first = await service.open_case(DOCTOR, patient_zero())
    other = CaseInput(
        person("Durand", "Marc", "1960-02-02"), diagnosis_date=date(2020, 10, 22),
        sampled_date=date(2020, 10, 21),
    )  # fmt: skip
    second = await service.open_case(DOCTOR, other)
    a = await service.add_contact(DOCTOR, first.id, contact("Martin", "Paul"))
    b = await service.add_contact(DOCTOR, second.id, contact("MARTIN", "paul"))
    assert a.person and b.person and a.person.id == b.person.id
    assert (a.other_cases, b.other_cases) == (0, 1)
    with pytest.raises(Conflict):
        await service.add_contact(DOCTOR, second.id, contact("Martin", "Paul"))
    # the patient zero entered again with the same NIR and another spelling: one person
    again = await service.open_case(
        CPAM,
        CaseInput(person("Dupont", "Elodie", "1975-03-14", nir="295109912611193"),
                  diagnosis_date=date(2020, 10, 23), onset_date=ONSET),
    )  # fmt: skip
    assert again.person_id == first.person_id
    found = await service.search(DOCTOR, "martin paul")
    assert {i.case.id for i in found} == {first.id, second.id}
    assert [i.case.id for i in await service.search(DOCTOR, "295109912611193")] == [first.id]
    assert [i.case.id for i in await service.search(DOCTOR, "06 11 22 33 44")] == [first.id]
    corsica = CaseInput(
        person("Santoni", "Marie", "1953-07-01", nir="253072B07300470"),
        diagnosis_date=date(2020, 10, 22), onset_date=ONSET,
    )  # fmt: skip
    third = await service.open_case(DOCTOR, corsica)
    assert [i.case.id for i in await service.search(DOCTOR, "2 53 07 2B 073 004 70")] == [third.id]
    with pytest.raises(BadRequest):
        await service.search(DOCTOR, "295109912611199")  # a NIR with a wrong key
    with pytest.raises(BadRequest):
        await service.search(DOCTOR, "du")  # no word of 3 letters


async def test_access_refused_across_roles(service: ContactService) -> None:
    case = await service.open_case(DOCTOR, patient_zero())
    other_doctor = Access("dr.autre", "doctor", "rpps:1")
    with pytest.raises(NotFound):
        await service.case_view(other_doctor, case.id)
    for who in (CPAM, ARS):  # not yet at their level
        with pytest.raises(NotFound):
            await service.case_view(who, case.id)
    for who in (PHARMACIST, BIOLOGIST, SPF):
        with pytest.raises(Forbidden):
            await service.case_view(who, case.id)
        with pytest.raises(Forbidden):
            await service.search(who, "Dupont")
    with pytest.raises(Forbidden):
        await service.export_pseudonymised(CPAM)
    await service.raise_level(DOCTOR, case.id, Level.CPAM)
    lyon = Access("agent.cpam69", "cpam_agent", "dep:69")
    with pytest.raises(NotFound):
        await service.case_view(lyon, case.id)
    assert (await service.case_view(CPAM, case.id)).person is not None
    await service.raise_level(CPAM, case.id, Level.ARS)
    seen = await service.case_view(ARS, case.id)
    assert seen.person is None  # level 3: the record number, no name
    with pytest.raises(Forbidden):
        await service.search(ARS, "Dupont")
    assert [i.case.id for i in await service.search(ARS, "CC00000001")] == [case.id]


async def test_clusters_of_shared_settings(service: ContactService, clock: Clock) -> None:
    for i, name in enumerate(("Un", "Deux", "Trois")):
        await service.open_case(
            CPAM,
            CaseInput(person(name, "Élève", f"2005-01-0{i + 1}"), diagnosis_date=date(2020, 10, 22),
                      onset_date=ONSET,
                      exposures=[("school", "Lycée Victor Hugo", date(2020, 10, 18 + i))]),
        )  # fmt: skip
    found = await service.clusters(ARS)
    assert [(c.setting, c.case_ids) for c in found] == [("school:LYCEE VICTOR HUGO", (1, 2, 3))]
    with pytest.raises(Forbidden):
        await service.clusters(DOCTOR)


async def test_purge_after_90_days_keeps_the_pseudonymised_export(
    service: ContactService, clock: Clock, tmp_path: Path
) -> None:
    case = await service.open_case(DOCTOR, patient_zero())
    await service.add_contact(DOCTOR, case.id, contact("Martin", "Paul", phone="0612345678"))
    await service.raise_level(DOCTOR, case.id, Level.CPAM)
    assert await service.notify_contacts(CPAM, case.id) == 1
    sms = FileTransport(tmp_path / "sms")
    assert await Dispatcher(service.store.db, {Channel.SMS: sms}).dispatch_once() == 1

    async def messages() -> int:
        async with service.store.db.connect() as conn:
            query = sa.select(sa.func.count()).select_from(notifications_table)
            return int((await conn.execute(query)).scalar_one())

    clock.advance(89 * 86400)
    assert await service.purge() == 0
    assert await messages() == 1
    export = list(
        csv.DictReader(io.StringIO(await service.export_pseudonymised(SPF)), delimiter=";")
    )
    assert [r["role"] for r in export] == ["case", "contact"]
    assert all(len(r["pseudonym"]) == 64 for r in export)
    assert "Dupont" not in str(export) and "295109912611193" not in str(export)
    clock.advance(2 * 86400)
    assert await service.purge() == 2
    assert await messages() == 0
    async with service.store.db.connect() as conn:
        index = await service.store.person(conn, case.person_id)
    assert index is not None and index.nir is None and index.birth_date is None
    assert index.last_name == "(purged)" and index.phone is None
    after = list(
        csv.DictReader(io.StringIO(await service.export_pseudonymised(SPF)), delimiter=";")
    )
    assert [r["pseudonym"] for r in after] == [r["pseudonym"] for r in export]
    assert await service.search(DOCTOR, "Dupont") == []


@pytest.mark.parametrize("attempts", [8])
async def test_concurrent_consumption_one_use(service: ContactService, attempts: int) -> None:
    case = await service.open_case(DOCTOR, patient_zero())
    added = await service.add_contact(DOCTOR, case.id, contact("Martin", "Paul"))
    masks = next(p for p in added.prescriptions if p.kind is PrescriptionKind.MASKS)
    pharmacies = [
        Access(f"pharma{i}", "pharmacist", f"finess:75000000{i}") for i in range(attempts)
    ]
    results = await asyncio.gather(
        *(service.consume_prescription(p, masks.code) for p in pharmacies), return_exceptions=True
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    entries = await service.store.audit.query(service.store.db, AuditFilter(action="consume"))
    assert len(entries) == 1


async def test_co_exposed_person_has_no_sick_leave(service: ContactService) -> None:
    case = await service.open_case(DOCTOR, patient_zero())
    added = await service.add_contact(
        DOCTOR, case.id, contact("Leroy", "Zoé", kind=ContactKind.CO_EXPOSED)
    )
    assert {p.kind for p in added.prescriptions} == {
        PrescriptionKind.PCR_TEST,
        PrescriptionKind.MASKS,
    }


async def test_a_matched_person_is_completed_never_overwritten(service: ContactService) -> None:
    first = await service.open_case(DOCTOR, patient_zero())
    other = CaseInput(person("Durand", "Marc", "1960-02-02"), diagnosis_date=date(2020, 10, 22),
                      sampled_date=date(2020, 10, 21))  # fmt: skip
    second = await service.open_case(CPAM, other)
    a = await service.add_contact(DOCTOR, first.id, contact("Martin", "Paul", phone="0612345678"))
    # another case types the same person without a phone, another spelling, an e-mail
    b = await service.add_contact(CPAM, second.id, contact("MARTIN", "paul", email="p@m.fr"))
    assert a.person and b.person and a.person.id == b.person.id
    # the answer holds what this caller typed, not the earlier case's phone
    assert (b.person.last_name, b.person.phone, b.person.email) == ("MARTIN", None, "p@m.fr")
    async with service.store.db.connect() as conn:
        stored = await service.store.person(conn, a.person.id)
    assert stored is not None
    # the record keeps its spelling and phone; the missing e-mail is completed
    assert (stored.last_name, stored.first_name) == ("Martin", "Paul")
    assert (stored.phone, stored.email) == ("+33612345678", "p@m.fr")
    third = await service.open_case(CPAM, CaseInput(
        person("Roux", "Léa", "1970-01-01"), diagnosis_date=date(2020, 10, 22),
        sampled_date=date(2020, 10, 21)))  # fmt: skip
    c = await service.add_contact(CPAM, third.id, contact("Martin", "Paul", phone="0700000000",
                                                          email="other@m.fr"))  # fmt: skip
    assert c.person and (c.person.phone, c.person.email) == ("+33700000000", "other@m.fr")
    async with service.store.db.connect() as conn:
        stored = await service.store.person(conn, a.person.id)
    assert stored is not None and (stored.phone, stored.email) == ("+33612345678", "p@m.fr")


async def test_level_3_sees_names_only_with_a_reason_kept_in_the_audit_log(
    service: ContactService,
) -> None:
    """health.md 3.4: level 3 works by record number, "without names unless needed"."""
    case = await service.open_case(DOCTOR, patient_zero())
    await service.raise_level(DOCTOR, case.id, Level.CPAM)
    await service.raise_level(CPAM, case.id, Level.ARS)
    reason = "cluster at the Lycée Voltaire: the school needs the pupil's name"
    for short in ("", "   ", "because"):  # a reason must say something
        with pytest.raises(Unprocessable) as refused:
            await service.case_view(ARS, case.id, short)
        assert getattr(refused.value, "field", None) == "reason"
    with pytest.raises(Forbidden):  # the others see names already, or never do
        await service.case_view(CPAM, case.id, reason)
    seen = await service.case_view(ARS, case.id, f"  {reason}\n")
    assert seen.person is not None and seen.person.last_name == patient_zero().person.last_name
    assert (await service.case_view(ARS, case.id)).person is None  # nothing remembered
    entries = await service.store.audit.query(
        service.store.db, AuditFilter(object_id=case.record, action="reveal")
    )
    assert [(e.actor, e.detail) for e in entries] == [(ARS.name, reason)]
