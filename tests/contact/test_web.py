"""The pages over real HTTP with signed-in people: each role sees its own pages and is refused
the others'; every read of a record is in the audit log."""

from __future__ import annotations

from datetime import date

from contact.access import Access
from contact.rules import Level
from contact.service import CaseInput
from kit.audit import AuditFilter
from tests.contact.conftest import Running, browser_session, csrf_of, person


async def test_pages_refused_across_roles(running: Running) -> None:
    for name, role, scope in (
        ("dr.a", "doctor", "rpps:1"),
        ("dr.b", "doctor", "rpps:2"),
        ("pharma", "pharmacist", "finess:750012345"),
        ("spf", "spf_analyst", "national"),
        ("ars", "ars_agent", "dep:75"),
    ):
        await running.person(name, role, scope)
    case = await running.service.open_case(
        Access("dr.a", "doctor"),
        CaseInput(person("Dupont", "Élodie"), diagnosis_date=date(2020, 10, 22),
                  onset_date=date(2020, 10, 20)),
    )  # fmt: skip
    page = f"{running.url}/contact/cases/{case.id}"
    async with browser_session() as s:
        await running.sign_in(s, "dr.a")
        async with s.get(page) as r:
            assert r.status == 200 and "DUPONT Élodie" in await r.text()
    async with browser_session() as s:
        running.clock.advance(30)
        await running.sign_in(s, "dr.b")
        async with s.get(page) as r:
            assert r.status == 404 and "Dupont" not in await r.text()
    async with browser_session() as s:
        running.clock.advance(30)
        await running.sign_in(s, "pharma")
        for path in ("/contact/cases", f"/contact/cases/{case.id}", "/contact/clusters"):
            async with s.get(f"{running.url}{path}") as r:
                assert r.status == 403, path
        async with s.get(f"{running.url}/contact/prescriptions?code=XXXX") as r:
            assert r.status == 400
    async with browser_session() as s:
        running.clock.advance(30)
        await running.sign_in(s, "spf")
        async with s.get(f"{running.url}/contact/") as r:
            assert r.status == 200 and "/contact/api/v1/export" in await r.text()
        async with s.get(f"{running.url}/contact/api/v1/export") as r:
            assert r.status == 200 and "Dupont" not in await r.text()
        async with s.get(page) as r:
            assert r.status == 403
    async with browser_session() as s:  # level 3: not yet escalated, and never names
        running.clock.advance(30)
        await running.sign_in(s, "ars")
        async with s.get(page) as r:
            assert r.status == 404
        await running.service.raise_level(Access("dr.a", "doctor"), case.id, Level.CPAM)
        await running.service.raise_level(Access("x", "cpam_agent"), case.id, Level.ARS)
        async with s.get(page) as r:
            text = await r.text()
            assert r.status == 200 and "CC00000001" in text and "dupont" not in text.lower()
    reads = await running.service.store.audit.query(
        running.service.store.db, AuditFilter(action="read", object_type="case")
    )
    assert {e.actor for e in reads} == {"dr.a", "ars"}


async def test_form_errors_keep_the_input(running: Running) -> None:
    await running.person("dr.a", "doctor", "rpps:1")
    async with browser_session() as s:
        await running.sign_in(s, "dr.a")
        async with s.get(f"{running.url}/contact/cases/new") as r:
            token = csrf_of(await r.text())
        form = {"csrf_token": token, "last_name": "Dupont", "first_name": "Élodie",
                "nir": "295109912611199", "diagnosis_date": "2020-10-22"}  # fmt: skip
        async with s.post(f"{running.url}/contact/cases/new", data=form) as r:
            text = await r.text()
            assert r.status == 400 and "key does not match" in text and 'value="Dupont"' in text
        form["nir"] = ""
        async with s.post(f"{running.url}/contact/cases/new", data=form) as r:
            assert r.status == 422  # neither onset nor sampling date
