"""The work queue: to-do cases first whatever the number of validated ones, by pages; list
reads audited with the record numbers shown; each agent's task list."""

from __future__ import annotations

from datetime import date

import aiohttp
import pytest

from contact.access import Access
from contact.rules import Status
from contact.service import QUEUE_PAGE, CaseInput, ContactService
from kit.audit import AuditFilter
from kit.http import Conflict, Forbidden, NotFound
from tests.contact.conftest import (
    CPAM,
    DOCTOR,
    Clock,
    Running,
    browser_session,
    csrf_of,
    person,
)
from tests.contact.test_api import call


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


async def test_task_list_per_agent(service: ContactService) -> None:
    other = Access("agent.b", "cpam_agent", "dep:75")
    mine = await service.open_case(CPAM, new_case(1))
    theirs = await service.open_case(CPAM, new_case(2))
    await service.open_case(CPAM, new_case(3))  # nobody's: the platform's queue
    assert await service.queue(CPAM, mine=True) == []
    taken = await service.assign(CPAM, mine.id, take=True)
    assert taken.assigned_to == CPAM.name
    await service.assign(other, theirs.id, take=True)
    assert [i.case.id for i in await service.queue(CPAM, mine=True)] == [mine.id]
    assert [i.case.id for i in await service.queue(other, mine=True)] == [theirs.id]
    assert len(await service.queue(CPAM)) == 3  # the whole queue still shows all
    with pytest.raises(Conflict):  # held by another agent
        await service.assign(CPAM, theirs.id, take=True)
    await service.assign(CPAM, theirs.id, take=False)  # released for them (audited)
    await service.assign(CPAM, theirs.id, take=True)
    assert {i.case.id for i in await service.queue(CPAM, mine=True)} == {mine.id, theirs.id}
    with pytest.raises(Forbidden):
        await service.assign(DOCTOR, mine.id, take=True)
    with pytest.raises(NotFound):  # another département's agent
        await service.assign(Access("x", "cpam_agent", "dep:13"), mine.id, take=True)
    entries = await service.store.audit.query(
        service.store.db, AuditFilter(object_id=theirs.record, action="update")
    )
    assert [(e.actor, e.detail) for e in reversed(entries)] == [
        ("agent.b", "taken"), (CPAM.name, "released (held by agent.b)"), (CPAM.name, "taken"),
    ]  # fmt: skip
    async with service.store.db.connect() as conn:
        case = await service.store.case(conn, mine.id)
    assert case is not None and case.assigned_to == CPAM.name


async def test_tasks_and_pages_over_http(running: Running) -> None:
    api = f"{running.url}/contact/api/v1"
    agent = await running.api_key("cpam_agent", "dep:75")
    cases = [await running.service.open_case(CPAM, new_case(i)) for i in range(QUEUE_PAGE + 1)]
    async with aiohttp.ClientSession() as s:
        status, body = await call(s, "GET", f"{api}/cases", agent)
        assert status == 200 and (body["page"], body["next"]) == (1, 2)
        assert len(body["cases"]) == QUEUE_PAGE
        status, body = await call(s, "GET", f"{api}/cases?page=2", agent)
        assert [c["id"] for c in body["cases"]] == [cases[-1].id] and body["next"] is None
        url = f"{api}/cases/{cases[0].id}/assignment"
        status, body = await call(s, "POST", url, agent, {"action": "take"})
        assert status == 200 and body["assigned_to"] == "apikey:1", body
        status, body = await call(s, "GET", f"{api}/cases?mine=1", agent)
        assert [c["id"] for c in body["cases"]] == [cases[0].id]
        assert (await call(s, "POST", url, agent, {"action": "steal"}))[0] == 400
        status, body = await call(s, "POST", url, agent, {"action": "release"})
        assert status == 200 and body["assigned_to"] is None
        assert (await call(s, "POST", url, agent, {"action": "release"}))[0] == 409
    await running.person("agent.web", "cpam_agent", "dep:75")
    async with browser_session() as s:
        await running.sign_in(s, "agent.web")
        async with s.get(f"{running.url}/contact/cases") as r:
            text = await r.text()
            assert 'id="next-page"' in text and 'id="my-tasks"' in text
        page = f"{running.url}/contact/cases/{cases[1].id}"
        async with s.get(page) as r:
            token = csrf_of(await r.text())
        form = {"csrf_token": token, "action": "take"}
        async with s.post(f"{page}/action", data=form, allow_redirects=False) as r:
            assert r.status == 303
        async with s.get(f"{running.url}/contact/cases?mine=1") as r:
            text = await r.text()
            assert f'id="case-{cases[1].id}"' in text and f'id="case-{cases[2].id}"' not in text
        async with s.get(page) as r:
            text = await r.text()
            assert 'id="release"' in text and 'id="take"' not in text
