"""The JSON API over real HTTP: the investigation end to end with API keys of each role,
refusals as JSON 4xx, and the SI-DEP feed running inside the application."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from kit.audit import AuditFilter
from tests.contact.conftest import Running, browser_session, csrf_of

CASE = {
    "last_name": "Dupont",
    "first_name": "Élodie",
    "birth_date": "1975-03-14",
    "nir": "2 95 10 99 126 111 93",
    "phone": "06 11 22 33 44",
    "postcode": "75011",
    "diagnosis_date": "2020-10-22",
    "onset_date": "2020-10-20",
    "exposures": [{"kind": "care_home", "place": "EHPAD Les Lilas", "day": "2020-10-19"}],
}


def contact(last: str, first: str, **extra: Any) -> dict[str, Any]:
    return {"last_name": last, "first_name": first, "birth_date": "1990-06-01",
            "postcode": "75011", "last_contact": "2020-10-19", **extra}  # fmt: skip


async def call(
    session: aiohttp.ClientSession, method: str, url: str, key: str, body: Any = None
) -> tuple[int, Any]:
    async with session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as r:
        data = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, data


async def test_investigation_through_the_api(running: Running) -> None:
    api = f"{running.url}/contact/api/v1"
    doctor = await running.api_key("doctor", "rpps:10003456789")
    cpam = await running.api_key("cpam_agent", "dep:75")
    pharmacist = await running.api_key("pharmacist", "finess:750012345")
    spf = await running.api_key("spf_analyst", "national")
    async with aiohttp.ClientSession() as s:
        status, case = await call(s, "POST", f"{api}/cases", doctor, CASE)
        assert status == 201, case
        assert case["record"] == "CC00000001" and case["level"] == 1
        codes = []
        for i, (last, first) in enumerate((("Martin", "Paul"), ("Bernard", "Lise"),
                                           ("Petit", "Hugo"))):  # fmt: skip
            extra = {"phone": f"06123456{i}0"}
            status, added = await call(s, "POST", f"{api}/cases/1/contacts", doctor,
                                       contact(last, first, **extra))  # fmt: skip
            assert status == 201, added
            codes.append({p["kind"]: p["code"] for p in added["prescriptions"]})
        status, _ = await call(s, "GET", f"{api}/cases/1", cpam)
        assert status == 404  # level 1 still
        assert (await call(s, "POST", f"{api}/cases/1/level", doctor, {"level": 2}))[0] == 200
        status, view = await call(s, "GET", f"{api}/cases/1", cpam)
        assert status == 200 and len(view["contacts"]) == 3
        assert view["person"]["nir"] == "295109912611193"
        assert (await call(s, "POST", f"{api}/cases/1/notify", cpam))[1] == {"notified": 3}
        status, queue = await call(s, "GET", f"{api}/cases", cpam)
        assert [c["record"] for c in queue["cases"]] == ["CC00000001"]
        masks = codes[0]["masks"]
        status, check = await call(s, "GET", f"{api}/prescriptions/{masks}", pharmacist)
        assert status == 200 and check["may_consume"] and check["last_name"] == "Martin"
        results = await asyncio.gather(
            *(call(s, "POST", f"{api}/prescriptions/{masks}/consume", pharmacist)
              for _ in range(5))
        )  # fmt: skip
        assert sorted(r[0] for r in results) == [200, 409, 409, 409, 409]
        assert (await call(s, "POST", f"{api}/cases/1/status", cpam, {"status": "validated"}))[
            0
        ] == 200
        status, closed = await call(s, "POST", f"{api}/cases/1/status", cpam, {"status": "closed"})
        assert status == 200 and closed["status"] == "closed"
        status, error = await call(
            s, "POST", f"{api}/cases/1/status", cpam, {"status": "validated"}
        )
        assert status == 409 and error["error"]
        status, text = await call(s, "GET", f"{api}/export", spf)
        assert status == 200 and "Dupont" not in text and text.startswith("record;role;pseudonym")


async def test_refusals_are_json(running: Running) -> None:
    api = f"{running.url}/contact/api/v1"
    doctor = await running.api_key("doctor", "rpps:1")
    pharmacist = await running.api_key("pharmacist", "finess:1")
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{api}/cases", headers={"Accept": "application/json"}) as r:
            assert r.status == 401 and "error" in await r.json()
        assert (await call(s, "GET", f"{api}/cases", pharmacist))[0] == 403
        assert (await call(s, "GET", f"{api}/export", doctor))[0] == 403
        status, body = await call(
            s, "POST", f"{api}/cases", doctor, {**CASE, "nir": "295109912611199"}
        )
        assert status == 400 and "NIR" in body["message"]
        status, body = await call(
            s, "POST", f"{api}/cases", doctor, {**CASE, "diagnosis_date": "22/10"}
        )
        assert status == 400
        status, body = await call(s, "POST", f"{api}/cases", doctor, {**CASE, "surprise": 1})
        assert status == 400
        status, body = await call(s, "GET", f"{api}/prescriptions/ABCD-EFGH-JKM", pharmacist)
        assert status in (400, 404) and "error" in body
        assert (await call(s, "GET", f"{api}/cases/abc", doctor))[0] == 400
        assert (await call(s, "GET", f"{api}/cases/99", doctor))[0] == 404


async def test_level_3_asks_for_names_with_a_reason(running: Running) -> None:
    """Over the API and on the case page: a level-3 agent sees the names of one case once,
    after saying why; a reason too short is the field's error, never a 500."""
    api = f"{running.url}/contact/api/v1"
    doctor = await running.api_key("doctor", "rpps:10003456789")
    cpam = await running.api_key("cpam_agent", "dep:75")
    ars = await running.api_key("ars_agent", "dep:75")
    reason = "cluster in a care home: the home must reach this resident"
    async with aiohttp.ClientSession() as s:
        status, case = await call(s, "POST", f"{api}/cases", doctor, CASE)
        assert status == 201, case
        for key, level in ((doctor, 2), (cpam, 3)):
            status, _ = await call(s, "POST", f"{api}/cases/1/level", key, {"level": level})
            assert status == 200
        status, seen = await call(s, "GET", f"{api}/cases/1", ars)
        assert status == 200 and seen["person"] is None
        for body in ({"reason": "why"}, {"reason": 42}, {}):
            status, refused = await call(s, "POST", f"{api}/cases/1/reveal", ars, body)
            assert status in (400, 422) and "error" in refused, (body, status, refused)
        status, _ = await call(s, "POST", f"{api}/cases/1/reveal", cpam, {"reason": reason})
        assert status == 403
        status, seen = await call(s, "POST", f"{api}/cases/1/reveal", ars, {"reason": reason})
        assert status == 200 and seen["person"]["last_name"] == "Dupont", seen
    await running.person("ars.idf", "ars_agent", "dep:75")
    page = f"{running.url}/contact/cases/1"
    async with browser_session() as s:
        await running.sign_in(s, "ars.idf")
        async with s.get(page) as r:
            text = await r.text()
            assert r.status == 200 and "DUPONT" not in text and 'id="reveal"' in text
        form = {"csrf_token": csrf_of(text), "reason": "no"}
        async with s.post(f"{page}/reveal", data=form) as r:
            text = await r.text()
            assert r.status == 422 and "DUPONT" not in text and 'value="no"' in text
        form["reason"] = reason
        async with s.post(f"{page}/reveal", data=form) as r:
            assert r.status == 200 and "DUPONT Élodie" in await r.text()
        async with s.get(page) as r:
            assert "DUPONT" not in await r.text()  # once: nothing remembered
    entries = await running.service.store.audit.query(
        running.service.store.db, AuditFilter(action="reveal")
    )
    assert [e.detail for e in entries] == [reason, reason]
