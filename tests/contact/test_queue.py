"""The work queue: to-do cases first whatever the number of validated ones, by pages; list
reads audited with the record numbers shown."""

from __future__ import annotations

from datetime import date

from contact.rules import Status
from contact.service import QUEUE_PAGE, CaseInput, ContactService
from kit.audit import AuditFilter
from tests.contact.conftest import CPAM, Clock, person


def new_case(i: int) -> CaseInput:
    return CaseInput(person(f"Nom{i}", "Jean"), date(2020, 10, 22), onset_date=date(2020, 10, 20))


async def test_validated_cases_never_push_a_new_case_off_the_queue(
    service: ContactService, clock: Clock
) -> None:
    validated = []
    for i in range(QUEUE_PAGE + 1):
        case = await service.open_case(CPAM, new_case(i))
        await service.transition(CPAM, case.id, Status.VALIDATED)
        validated.append(case.id)
    clock.advance(3600)  # the new case's deadline is later than every validated one's
    fresh = await service.open_case(CPAM, new_case(999))
    first = await service.queue_page(CPAM)
    assert [i.case.id for i in first.items][:2] == [fresh.id, validated[0]]
    assert len(first.items) == QUEUE_PAGE and first.next_page == 2
    second = await service.queue_page(CPAM, page=2)
    assert [i.case.id for i in second.items] == validated[-2:] and second.next_page is None
    # overdue first: the first validated case stays behind, a late to-do case goes ahead
    clock.advance(2 * 86400)
    late = await service.open_case(CPAM, new_case(1000))
    clock.advance(2 * 86400)
    order = [i.case.id for i in (await service.queue_page(CPAM)).items]
    assert order[:3] == [fresh.id, late.id, validated[0]]
    # the store sorts in SQL: one row asked, the to-do case comes
    async with service.store.db.connect() as conn:
        found = await service.store.list_cases(conn, limit=1, now=service.now())
    assert [c.id for c in found] == [fresh.id]


async def test_queue_and_search_reads_name_the_records(service: ContactService) -> None:
    shown = [await service.open_case(CPAM, new_case(i)) for i in range(45)]
    await service.queue(CPAM)
    entries = await service.store.audit.query(
        service.store.db, AuditFilter(object_type="case_list")
    )
    listed = " ".join(e.detail for e in entries if e.action == "read").split()
    assert sorted(listed) == sorted(c.record for c in shown)  # 45 records: two entries
    zola = await service.open_case(CPAM, CaseInput(person("Zola", "Émile"), date(2020, 10, 22),
                                                   onset_date=date(2020, 10, 20)))  # fmt: skip
    assert [i.case.id for i in await service.search(CPAM, "zola")] == [zola.id]
    entries = await service.store.audit.query(
        service.store.db, AuditFilter(object_type="case_list", action="search")
    )
    assert [(e.object_id, e.detail) for e in entries] == [("1", zola.record)]
    await service.search(CPAM, "nom")  # 45 found: two entries
    entries = await service.store.audit.query(
        service.store.db, AuditFilter(object_type="case_list", action="search")
    )
    assert len(entries) == 3 and {e.object_id for e in entries[:2]} == {"45"}
    assert sorted(" ".join(e.detail for e in entries[:2]).split()) == [c.record for c in shown]
