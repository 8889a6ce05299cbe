"""The board on both databases: events, the append-only log, idempotent entries, transfers
and their audited reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from kit.audit import Actor, AuditFilter
from kit.db import Database
from kit.http import Conflict, Forbidden, NotFound
from samu.access import Access
from samu.model import EventStatus, TransferStatus
from samu.service import SamuService
from samu.store import SamuStore
from tests.samu.conftest import Clock

NATIONAL = Access("national", "national")
PARIS = Access("regulator", "samu:75")
LYON = Access("regulator", "samu:69")
IDF = Access("ars", "region:11")
CORRUSS = Actor("corruss", "national")
REGULATOR = Actor("regul.75", "regulator")


@pytest.fixture
async def service(database_url: str, clock: Clock) -> AsyncIterator[SamuService]:
    opened = SamuService(SamuStore(Database(database_url)), clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_messages_reach_their_scopes_only(service: SamuService) -> None:
    event = await service.open_event(NATIONAL, CORRUSS, "Attentat", "attack", "75", 48.86, 2.35)
    assert event.status == EventStatus.OPEN and event.departement == "75"
    await service.post(NATIONAL, CORRUSS, event.id, "to all", "national")
    await service.post(NATIONAL, CORRUSS, event.id, "to Lyon", "samu:69")
    await service.post(PARIS, REGULATOR, event.id, "Paris to its ARS", "region:11")
    await service.post(IDF, Actor("ars", "ars"), event.id, "ARS to Paris", "samu:75")
    texts = lambda entries: [e.text for e in entries]  # noqa: E731
    assert texts(await service.log(PARIS, event.id)) == [
        "to all", "Paris to its ARS", "ARS to Paris",
    ]  # fmt: skip
    assert texts(await service.log(LYON, event.id)) == ["to all", "to Lyon"]
    assert texts(await service.log(IDF, event.id)) == [
        "to all", "Paris to its ARS", "ARS to Paris",
    ]  # fmt: skip
    assert len(await service.log(NATIONAL, event.id)) == 4
    with pytest.raises(Forbidden):
        await service.post(PARIS, REGULATOR, event.id, "to Lyon", "samu:69")
    with pytest.raises(Forbidden):
        await service.log(Access("hospital", "finess:750100125"), event.id)


async def test_a_resend_is_stored_once(service: SamuService) -> None:
    event = await service.open_event(PARIS, REGULATOR, "Accident", "accident", "75", 48.8, 2.3)
    key = str(uuid.uuid4())
    first, new = await service.post(PARIS, REGULATOR, event.id, "bus overturned", None, key)
    again, new_again = await service.post(PARIS, REGULATOR, event.id, "bus overturned", None, key)
    assert new and not new_again and again == first
    assert len(await service.log(PARIS, event.id)) == 1
    # Another person reusing the id is refused, not merged.
    with pytest.raises(Conflict):
        await service.post(PARIS, Actor("other", "regulator"), event.id, "x", None, key)


async def test_the_log_cannot_be_rewritten(service: SamuService, database_url: str) -> None:
    event = await service.open_event(PARIS, REGULATOR, "Incendie", "fire", "75", 48.8, 2.3)
    entry, _ = await service.post(PARIS, REGULATOR, event.id, "12 victims")
    note, _ = await service.post(PARIS, REGULATOR, event.id, "14, not 12", annotates=entry.id)
    assert note.annotates == entry.id
    await service.request_transfer(PARIS, REGULATOR, "X", "750100125", "940100043", "75")
    db = service.store.db
    for statement in (
        "UPDATE samu_entries SET text = 'nothing happened'",
        "DELETE FROM samu_entries",
        "UPDATE samu_transfer_moves SET actor = 'x'",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.begin() as conn:
                await conn.execute(sa.text(statement))
    if db.backend == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.begin() as conn:
                await conn.execute(sa.text("TRUNCATE samu_entries CASCADE"))
    assert [e.text for e in await service.log(NATIONAL, event.id)] == ["12 victims", "14, not 12"]
    # An annotation names an entry of the same event that its author may see.
    other = await service.open_event(NATIONAL, CORRUSS, "Other", "x", "69", 45.7, 4.8)
    with pytest.raises(NotFound):
        await service.post(PARIS, REGULATOR, other.id, "note", "region:11", annotates=entry.id)


async def test_a_closed_event_takes_no_message(service: SamuService) -> None:
    event = await service.open_event(PARIS, REGULATOR, "Fin", "x", "75", 48.8, 2.3)
    key = str(uuid.uuid4())
    await service.post(PARIS, REGULATOR, event.id, "last", None, key)
    closed = await service.close_event(NATIONAL, CORRUSS, event.id)
    assert closed.status == EventStatus.CLOSED
    with pytest.raises(Conflict):
        await service.post(PARIS, REGULATOR, event.id, "too late")
    # ... but a resend of what was stored before the closing is answered, not refused.
    entry, new = await service.post(PARIS, REGULATOR, event.id, "last", None, key)
    assert entry.text == "last" and not new


async def test_transfers_flow_and_reads_are_audited(service: SamuService) -> None:
    transfer = await service.request_transfer(
        PARIS, REGULATOR, "DUPONT Jean 1950-01-02", "750100125", "940100043", "75", "no bed"
    )
    assert transfer.status == TransferStatus.REQUESTED
    receiving = Access("hospital", "finess:940100043")
    staff = Actor("chef.bicetre", "hospital")
    moved = await service.move_transfer(receiving, staff, transfer.id, "accepted")
    assert moved.status == TransferStatus.ACCEPTED
    with pytest.raises(Conflict):
        await service.move_transfer(PARIS, REGULATOR, transfer.id, "arrived")
    await service.move_transfer(PARIS, REGULATOR, transfer.id, "in_transit")
    await service.move_transfer(PARIS, REGULATOR, transfer.id, "arrived")
    with pytest.raises(Forbidden):
        await service.move_transfer(receiving, staff, transfer.id, "cancelled")
    assert [t.id for t in await service.transfers(receiving, staff)] == [transfer.id]
    assert await service.transfers(Access("hospital", "finess:690000000"), staff) == []
    assert await service.transfers(LYON, Actor("regul.69", "regulator")) == []
    with pytest.raises(NotFound):
        await service.transfer(LYON, Actor("regul.69", "regulator"), transfer.id)
    (read,) = await service.transfers(IDF, Actor("ars.idf", "ars"))
    assert read.status == TransferStatus.ARRIVED
    reads = await service.store.audit.query(
        service.store.db, AuditFilter(action="read", object_type="samu_transfer")
    )
    assert {e.actor for e in reads} >= {"chef.bicetre", "ars.idf", "regul.75"}
    assert all(e.object_id == str(transfer.id) for e in reads)
