"""SI-DEP's positives through the kit's feed: a producer's outbox filled here (the exact
contract of ``sidep.positive`` and ``sidep.positive.withdrawn``), consumed once, and the
auto-opening job after the delay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from contact.access import Access
from contact.app import feed_consumer
from contact.rules import Level, Status
from contact.service import CaseInput, ContactService
from kit.audit import AuditFilter
from kit.db import Database
from kit.events import append, local_fetcher
from tests.contact.conftest import CPAM, DOCTOR, Clock, person

NIR = "185057512345673"


def positive(result_id: str, **patient: Any) -> dict[str, Any]:
    return {
        "result_id": result_id,
        "lab": "750054321",
        "sample_id": f"S-{result_id}",
        "loinc": "94500-6",
        "method": "PCR",
        "sampled_at": "2020-10-22T09:30:00+02:00",
        "validated_at": "2020-10-22T18:00:00+02:00",
        "dep": "75",
        "pseudonym": "ab" * 32,
        "patient": {
            "nir": NIR,
            "last_name": "Moreau",
            "first_name": "Chloé",
            "birth_date": "1985-05-01",
            "sex": "F",
            "postcode": "75011",
            "phone": "+33698765432",
            "email": None,
            **patient,
        },
    }


@pytest.fixture
async def producer(another_database_url: str) -> AsyncIterator[Database]:
    """SI-DEP's side as far as the feed goes: the kit's outbox in a database of its own."""
    db = Database(another_database_url)
    await db.migrate()
    try:
        yield db
    finally:
        await db.close()


async def publish(db: Database, clock: Clock, topic: str, payload: dict[str, Any]) -> None:
    async with db.begin() as conn:
        now = datetime.fromtimestamp(clock(), UTC)
        await append(conn, topic, payload, key=payload["result_id"], now=now)


async def test_positive_opens_level_2_case_after_the_delay(
    service: ContactService, producer: Database, clock: Clock
) -> None:
    topics = ["sidep.positive", "sidep.positive.withdrawn"]
    consumer = feed_consumer(service, local_fetcher(producer, topics))
    await publish(producer, clock, "sidep.positive", positive("R1"))
    await publish(producer, clock, "sidep.positive", positive("R1"))  # the same result again
    assert await consumer.poll_once() == 2
    assert await consumer.poll_once() == 0  # each event once
    async with service.store.db.connect() as conn:
        assert [p.status for p in await service.store.pending_list(conn)] == ["pending"]
    clock.advance(23 * 3600)
    assert await service.auto_open() == 0  # within the delay
    assert await service.queue(CPAM) == []
    clock.advance(3600 + 1)
    assert await service.auto_open() == 1
    assert await service.auto_open() == 0
    queue = await service.queue(CPAM)
    assert len(queue) == 1
    case = queue[0].case
    assert (case.level, case.status, case.opened_by.value) == (
        Level.CPAM,
        Status.INITIALISED,
        "auto",
    )
    assert case.source_result == "750054321:R1" and case.sampled_date == date(2020, 10, 22)
    assert queue[0].person is not None and queue[0].person.nir == NIR
    assert queue[0].overdue  # 24 h after SI-DEP published it, nobody has taken it over


async def test_no_auto_case_when_a_doctor_opened_one(
    service: ContactService, producer: Database, clock: Clock
) -> None:
    consumer = feed_consumer(service, local_fetcher(producer))
    await publish(producer, clock, "sidep.positive", positive("R2", nir=None))
    await consumer.poll_once()
    clock.advance(3 * 3600)
    # the doctor types the name differently, no NIR: matched on normalised identity
    await service.open_case(
        DOCTOR,
        CaseInput(person("MOREAU", "chloe", "1985-05-01"), diagnosis_date=date(2020, 10, 23),
                  sampled_date=date(2020, 10, 22)),
    )  # fmt: skip
    clock.advance(24 * 3600)
    assert await service.auto_open() == 0
    async with service.store.db.connect() as conn:
        (item,) = await service.store.pending_list(conn)
    assert (item.status, item.case_id) == ("matched", 1)


async def test_withdrawn_positive_cancels_the_pending_one(
    service: ContactService, producer: Database, clock: Clock
) -> None:
    consumer = feed_consumer(service, local_fetcher(producer))
    await publish(producer, clock, "sidep.positive", positive("R3"))
    await publish(producer, clock, "sidep.positive", {"result_id": "bad"})  # malformed: skipped
    withdrawn = {"result_id": "R3", "lab": "750054321", "sample_id": "S-R3", "loinc": "94500-6"}
    await publish(producer, clock, "sidep.positive.withdrawn", withdrawn)
    assert await consumer.poll_once() == 3
    clock.advance(25 * 3600)
    assert await service.auto_open() == 0
    async with service.store.db.connect() as conn:
        (item,) = await service.store.pending_list(conn)
    assert item.status == "withdrawn"


async def test_positive_without_departement_takes_the_postcodes(
    service: ContactService, producer: Database, clock: Clock
) -> None:
    consumer = feed_consumer(service, local_fetcher(producer))
    await publish(producer, clock, "sidep.positive", {**positive("R4", postcode="20090"),
                                                      "dep": None})  # fmt: skip
    no_dep = positive("R5", nir=None, last_name="Sans", postcode=None)
    await publish(producer, clock, "sidep.positive", {**no_dep, "dep": None})
    assert await consumer.poll_once() == 2
    clock.advance(25 * 3600)
    assert await service.auto_open() == 1
    (item,) = await service.queue(Access("agent.cpam2a", "cpam_agent", "dep:2A"))
    assert item.case.department == "2A"
    async with service.store.db.connect() as conn:
        statuses = {p.result_id: p.status for p in await service.store.pending_list(conn)}
    assert statuses == {"R4": "opened", "R5": "unusable"}  # no département: no platform's


async def test_doctors_case_not_handed_over_reaches_level_2(
    service: ContactService, producer: Database, clock: Clock
) -> None:
    consumer = feed_consumer(service, local_fetcher(producer))
    await publish(producer, clock, "sidep.positive", positive("R6"))
    await consumer.poll_once()
    kept = await service.open_case(
        DOCTOR, CaseInput(person("Moreau", "Chloé", "1985-05-01", nir=NIR),
                          diagnosis_date=date(2020, 10, 23), sampled_date=date(2020, 10, 22)),
    )  # fmt: skip
    closed = await service.open_case(
        DOCTOR, CaseInput(person("Roux", "Jean"), diagnosis_date=date(2020, 10, 23),
                          sampled_date=date(2020, 10, 22)),
    )  # fmt: skip
    await service.transition(DOCTOR, closed.id, Status.CLOSED)
    clock.advance(23 * 3600)
    assert await service.run_jobs() == (0, 0)  # within the delay: the doctor's still
    assert await service.queue(CPAM) == []
    clock.advance(3600 + 1)
    assert await service.run_jobs() == (1, 0)  # the positive matched the doctor's case
    (item,) = await service.queue(CPAM)
    assert item.case.id == kept.id and item.case.level is Level.CPAM and item.overdue
    assert await service.run_jobs() == (0, 0)
    async with service.store.db.connect() as conn:
        (pending,) = await service.store.pending_list(conn)
    assert (pending.status, pending.case_id) == ("matched", kept.id)
    entries = await service.store.audit.query(
        service.store.db, AuditFilter(actor="handover", object_id=kept.record)
    )
    assert [(e.action, e.role) for e in entries] == [("update", "job")]
