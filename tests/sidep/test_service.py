"""The store and the service on SQLite and PostgreSQL: whole or nothing, once, corrections
with history, events and notices of positives, purge."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kit import events
from kit.audit import Actor
from kit.identity import pseudonym
from kit.schema import audit as audit_table
from kit.schema import notifications
from sidep.access import Access
from sidep.model import Refusal, Result, Status
from sidep.service import POSITIVE_TOPIC, WITHDRAWN_TOPIC, SidepService, age_at
from sidep.store import history, metadata, persons, results
from tests.sidep.conftest import KEY, LAB, NOW, T0, FakeIssuer, lab_result, parsed, patient

LAB_ACTOR = Actor(f"finess:{LAB}", "lab")
ADMIN = Actor("console", "admin")


async def count(service: SidepService, table: sa.Table) -> int:
    async with service.store.db.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


def _differences(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": lambda name, kind, _parent: (
                kind != "table" or str(name).startswith("sidep_")
            ),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, metadata))


async def test_the_schema_module_matches_the_migrations(service: SidepService) -> None:
    async with service.store.db.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_a_message_is_stored_and_a_resend_is_a_duplicate(service: SidepService) -> None:
    message = parsed(lab_result("S1"), lab_result("S2", Result.NEGATIVE))
    first = await service.ingest(message, LAB_ACTOR)
    assert (first.accepted, first.duplicates, first.rejected) == (2, 0, 0)
    again = await service.ingest(message, LAB_ACTOR)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 2, 0)
    assert await count(service, results) == 2
    assert await count(service, persons) == 1  # one person, two samples
    batch = await events.read(service.store.db, topics=[POSITIVE_TOPIC])
    assert len(batch.events) == 1  # only the positive, once


async def test_refusals_are_counted_and_nothing_of_them_stored(service: SidepService) -> None:
    refused = parsed()
    refused = type(refused)(refusals=(Refusal("msg 7", "OBX-5 missing"),))
    counts = await service.ingest(refused, LAB_ACTOR)
    assert (counts.accepted, counts.rejected) == (0, 1)
    assert counts.refusals[0].reason == "OBX-5 missing"
    assert await count(service, results) == 0


async def test_the_positive_event_carries_the_contract(service: SidepService) -> None:
    await service.ingest(parsed(lab_result("S1")), LAB_ACTOR)
    (event,) = (await events.read(service.store.db)).events
    assert event.topic == POSITIVE_TOPIC
    p = event.payload
    assert set(p) == {
        "result_id", "lab", "sample_id", "loinc", "method", "sampled_at", "validated_at",
        "dep", "pseudonym", "patient",
    }  # fmt: skip
    assert isinstance(p["result_id"], str) and event.key == p["result_id"]
    assert (p["lab"], p["sample_id"], p["loinc"], p["method"]) == (LAB, "S1", "94500-6", "PCR")
    assert p["sampled_at"] == (NOW - timedelta(days=1)).isoformat()
    assert p["dep"] == "75"
    # the pseudonym is the kit's keyed hash of the normalised identity
    assert p["pseudonym"] == pseudonym(KEY, "DUPONT LEFEVRE", "elodie", patient().birth_date)
    assert p["patient"] == {
        "nir": "269054958815780", "last_name": "Dupont-Lefèvre", "first_name": "Élodie",
        "birth_date": "1969-05-22", "sex": "F", "postcode": "75013",
        "phone": "06 12 34 56 78", "email": "elodie@example.org",
    }  # fmt: skip


async def test_accents_and_case_do_not_split_a_person(service: SidepService) -> None:
    other = patient(last_name="DUPONT LEFEVRE", first_name="ELODIE", nir=None, nir_valid=None)
    await service.ingest(parsed(lab_result("S1"), lab_result("S2", who=other)), LAB_ACTOR)
    assert await count(service, persons) == 1
    # the identity is completed, not erased, by a message lacking a part of it
    rows = await service.results(Access("admin"), ADMIN)
    assert {r.nir for r in rows} == {"269054958815780"}


async def test_a_correction_replaces_and_keeps_history(service: SidepService) -> None:
    await service.ingest(parsed(lab_result("S1", Result.NEGATIVE)), LAB_ACTOR)
    corrected = lab_result("S1", Result.POSITIVE, Status.CORRECTED)
    counts = await service.ingest(parsed(corrected), LAB_ACTOR)
    assert (counts.accepted, counts.duplicates) == (1, 0)
    (row,) = await service.results(Access("admin"), ADMIN)
    assert (row.result, row.status, row.version) == ("P", "corrected", 2)
    (old,) = await service.history_of(row.id)
    assert (old["result"], old["status"], old["version"]) == ("N", "final", 1)
    # turned positive by the correction: one event
    topics = [e.topic for e in (await events.read(service.store.db)).events]
    assert topics == [POSITIVE_TOPIC]
    # corrected back to negative: withdrawn
    back = lab_result("S1", Result.NEGATIVE, Status.CORRECTED)
    await service.ingest(parsed(back), LAB_ACTOR)
    batch = (await events.read(service.store.db)).events
    assert [e.topic for e in batch] == [POSITIVE_TOPIC, WITHDRAWN_TOPIC]
    assert batch[1].payload == {
        "result_id": str(row.id), "lab": LAB, "sample_id": "S1", "loinc": "94500-6"
    }  # fmt: skip
    assert await count(service, history) == 2


async def test_a_preliminary_never_replaces_a_final(service: SidepService) -> None:
    await service.ingest(parsed(lab_result("S1", Result.NEGATIVE)), LAB_ACTOR)
    late = lab_result("S1", Result.POSITIVE, Status.PRELIMINARY)
    counts = await service.ingest(parsed(late), LAB_ACTOR)
    assert (counts.accepted, counts.duplicates) == (0, 1)


async def test_a_correction_inside_one_batch(service: SidepService) -> None:
    first = lab_result("S9", Result.POSITIVE)
    fixed = lab_result("S9", Result.NEGATIVE, Status.CORRECTED)
    (a, b) = await service.ingest_many([parsed(first), parsed(fixed)], LAB_ACTOR)
    assert (a.accepted, b.accepted) == (1, 1)
    (row,) = await service.results(Access("admin"), ADMIN)
    assert (row.result, row.version) == ("N", 2)
    # never positive once committed: no event at all
    assert (await events.read(service.store.db)).events == []


async def test_a_failed_batch_stores_nothing(service: SidepService) -> None:
    good = lab_result("S1")
    too_long = lab_result("S2", lab="X" * 40)  # longer than the column: PostgreSQL refuses
    if service.store.db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    with pytest.raises(sa.exc.DBAPIError):
        await service.ingest_many([parsed(good), parsed(too_long)], LAB_ACTOR)
    assert await count(service, results) == 0
    assert (await events.read(service.store.db)).events == []


async def test_notices_issue_a_code_and_queue_email_and_sms(
    service: SidepService, issuer: FakeIssuer
) -> None:
    await service.ingest(parsed(lab_result("S1"), lab_result("S2", Result.NEGATIVE)), LAB_ACTOR)
    assert await service.process_notices() == 1
    assert issuer.calls == [(NOW - timedelta(days=1)).date()]
    async with service.store.db.connect() as conn:
        queued = (await conn.execute(sa.select(notifications))).all()
    assert sorted(n.channel for n in queued) == ["email", "sms"]
    sms = next(n for n in queued if n.channel == "sms")
    assert sms.recipient == "+33612345678"
    assert "00000001-aaaa" in sms.body
    (row,) = await service.results(Access("admin"), ADMIN, positive_only=True)
    pdf = await service.notice_pdf(row.id)
    assert pdf is not None and pdf.startswith(b"%PDF")
    assert await service.process_notices() == 0  # done once


async def test_notices_wait_while_the_code_service_is_down(
    service: SidepService, issuer: FakeIssuer
) -> None:
    issuer.down = True
    await service.ingest(parsed(lab_result("S1")), LAB_ACTOR)
    assert await service.process_notices() == 0
    issuer.down = False
    assert await service.process_notices() == 1


async def test_purge_removes_identity_after_90_days_and_keeps_the_rest(
    service: SidepService,
) -> None:
    old = patient(
        last_name="Martin", first_name="Paul", nir="180017512345628", nir_valid=True,
        email="paul.martin@example.org", phone="07 98 76 54 32",
    )  # fmt: skip
    await service.ingest(
        parsed(lab_result("OLD", who=old, days_ago=91), lab_result("NEW", days_ago=89)),
        LAB_ACTOR,
    )
    await service.process_notices()
    assert "Martin" in await _outside_text(service)
    assert await service.purge(ADMIN) == 1
    # nothing of the purged person left in the event outbox nor the notifications
    left = await _outside_text(service)
    for trace in ("180017512345628", "Martin", "Paul", "paul.martin", "33798765432"):
        assert trace not in left
    assert "Dupont-Lef" in left and "elodie@example.org" in left  # the other one's, kept
    rows = {r.sample_id: r for r in await service.results(Access("admin"), ADMIN)}
    assert rows["OLD"].last_name is None and rows["OLD"].birth_date is None
    assert rows["OLD"].result_postcode is None and rows["NEW"].result_postcode == "75013"
    assert rows["OLD"].pseudonym and rows["OLD"].age == 57 and rows["OLD"].dep == "75"
    assert rows["NEW"].last_name == "Dupont-Lefèvre"
    assert await service.notice_pdf(rows["OLD"].id) is None
    assert await service.notice_pdf(rows["NEW"].id) is not None
    assert await service.purge(ADMIN) == 0


async def _outside_text(service: SidepService) -> str:
    """The event outbox and the notifications (with attachments), as one text."""
    from kit.schema import notification_attachments, outbox

    async with service.store.db.connect() as conn:
        rows = [
            *(await conn.execute(sa.select(outbox.c.payload))).all(),
            *(await conn.execute(sa.select(notifications))).all(),
            *(await conn.execute(sa.select(notification_attachments.c.content))).all(),
        ]
    return repr(rows)


async def test_roles_see_what_they_may(service: SidepService) -> None:
    await service.ingest(parsed(lab_result("S1"), lab_result("S2", lab="690001234")), LAB_ACTOR)
    mine = await service.results(Access("biologist", f"finess:{LAB}"), LAB_ACTOR)
    assert [r.sample_id for r in mine] == ["S1"]
    analyst = await service.results(Access("spf_analyst"), Actor("a", "spf_analyst"))
    assert len(analyst) == 2 and all(r.nir is None and r.last_name is None for r in analyst)
    assert all(len(r.pseudonym) == 64 for r in analyst)
    from kit.http import BadRequest, Forbidden

    with pytest.raises(BadRequest):
        await service.results(Access("doctor"), Actor("d", "doctor"))
    found = await service.results(Access("doctor"), Actor("d", "doctor"), nir=patient().nir)
    assert len(found) == 2
    with pytest.raises(Forbidden):
        await service.results(Access("tester", f"finess:{LAB}"), Actor("t", "tester"))


def test_age_at() -> None:
    from datetime import date

    assert age_at(date(2000, 3, 1), date(2020, 2, 29)) == 19
    assert age_at(date(2000, 3, 1), date(2020, 3, 1)) == 20
    assert age_at(None, date(2020, 3, 1)) is None
    assert age_at(date(2021, 1, 1), date(2020, 3, 1)) is None


async def test_the_retention_job_purges(service: SidepService) -> None:
    from sidep.app import retention_job

    old = patient(last_name="Martin", first_name="Paul", nir=None, nir_valid=None)
    await service.ingest(parsed(lab_result("OLD", who=old, days_ago=120)), LAB_ACTOR)
    job = retention_job(service)
    assert await job.run_once()
    (row,) = await service.results(Access("admin"), ADMIN)
    assert row.last_name is None and row.pseudonym
    async with service.store.db.connect() as conn:
        entries = (
            await conn.execute(sa.select(audit_table).where(audit_table.c.action == "purge"))
        ).all()
    assert [e.actor for e in entries] == ["sidep-retention"]
    # events older than the retention go (the outbox's purge, same 90 days)
    assert len((await events.read(service.store.db)).events) == 1
    service.clock = lambda: T0 + 91 * 86400
    assert await job.run_once()
    assert (await events.read(service.store.db)).events == []
