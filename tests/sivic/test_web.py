"""SI-VIC over real HTTP: the counts contract of the SAMU board, registration and import by
JSON, audited reads, refusals as JSON, and the pages of a signed-in hospital member."""

from __future__ import annotations

import re

import aiohttp

from kit.audit import Actor, AuditFilter
from sivic.access import ADMIN, Access
from sivic.intake import HEADER
from tests.sivic.conftest import BICETRE, NANTES, PITIE, Running, browser_session, csrf_of

HEAD = ";".join(HEADER)
NIR = "255081416802538"


def body(finess: str, dep: str, **extra: str) -> dict[str, str]:
    return {
        "finess": finess, "dep": dep, "birth_date": "1955-08-14", "sex": "M", "unit": "crit",
        "status": "hospitalised", "status_date": "2020-04-02", "covid": "for", **extra,
    }  # fmt: skip


async def test_counts_contract_for_the_samu_board(running: Running) -> None:
    board = await running.api_key("board-reader")
    hospital = await running.api_key("hospital", f"finess:{PITIE}")
    auth = {"Authorization": f"Bearer {hospital}"}
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{running.url}/sivic/api/v1/patients", json=body(PITIE, "75", ins=NIR), headers=auth
        ) as r:
            assert r.status == 201, await r.text()
            created = await r.json()
        async with client.post(
            f"{running.url}/sivic/api/v1/patients", json=body(PITIE, "75", ins=NIR), headers=auth
        ) as r:
            assert r.status == 200 and (await r.json())["outcome"] == "unchanged"
        for query, expected in (("dep=75", 1), ("region=11", 1), ("", 1), ("dep=44", 0)):
            async with client.get(
                f"{running.url}/sivic/api/v1/counts?{query}",
                headers={"Authorization": f"Bearer {board}"},
            ) as r:
                assert r.status == 200, await r.text()
                figures = await r.json()
                assert {"dep", "region", "date", "hosp", "rea", "rad", "dc"} <= set(figures)
                assert (figures["hosp"], figures["rea"]) == (expected, expected)
                assert figures["date"] == "2020-04-03"
        async with client.get(f"{running.url}/sivic/api/v1/counts?dep=75") as r:
            assert r.status == 401 and (await r.json())["error"]
        async with client.get(f"{running.url}/sivic/api/v1/counts?dep=75", headers=auth) as r:
            assert r.status == 403
        async with client.get(
            f"{running.url}/sivic/api/v1/counts?dep=99",
            headers={"Authorization": f"Bearer {board}"},
        ) as r:
            assert r.status == 400 and "99" in (await r.json())["message"]
        # The board's key reads no patient.
        async with client.get(
            f"{running.url}/sivic/api/v1/patients/{created['patient']}",
            headers={"Authorization": f"Bearer {board}"},
        ) as r:
            assert r.status == 403


async def test_transfer_by_json_and_audited_reads(running: Running) -> None:
    pitie = {"Authorization": f"Bearer {await running.api_key('hospital', f'finess:{PITIE}')}"}
    nantes = {"Authorization": f"Bearer {await running.api_key('hospital', f'finess:{NANTES}')}"}
    url = f"{running.url}/sivic/api/v1"
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{url}/patients", json=body(PITIE, "75", ins=NIR), headers=pitie
        ) as r:
            patient = (await r.json())["patient"]
        async with client.post(
            f"{url}/patients", json=body(PITIE, "75", ins=NIR, status="transferred"), headers=pitie
        ) as r:
            assert (await r.json())["outcome"] == "updated"
        arriving = body(NANTES, "44", ins=NIR, status_date="2020-04-03")
        async with client.post(f"{url}/patients", json=arriving, headers=nantes) as r:
            assert r.status == 200 and (await r.json())["patient"] == patient
        async with client.post(f"{url}/patients", json=arriving, headers=pitie) as r:
            assert r.status == 403 and (await r.json())["error"]
        async with client.get(f"{url}/patients/{patient}", headers=nantes) as r:
            record = await r.json()
            assert r.status == 200 and record["finess"] == NANTES and record["ins"] == NIR
            assert [h["status"] for h in record["history"]] == [
                "hospitalised", "transferred", "hospitalised",
            ]  # fmt: skip
            # Admitted and transferred the same day: the day's admission is on its last row
            # (a same-day change replaces the day's movements); admitted once in all.
            assert [h["admitted"] for h in record["history"]] == [False, True, False]
        async with client.get(f"{url}/patients/{patient}", headers=pitie) as r:
            assert r.status == 404  # gone from Paris: no longer theirs
        async with client.get(f"{url}/establishments/{NANTES}/patients", headers=nantes) as r:
            assert [p["id"] for p in (await r.json())["patients"]] == [patient]
        async with client.post(
            f"{url}/patients", json={**body(PITIE, "75"), "sex": "X"}, headers=pitie
        ) as r:
            assert r.status == 400 and "sex" in (await r.json())["message"]
        async with client.post(f"{url}/patients", data=b"{", headers=pitie) as r:
            assert r.status == 400
    reads = await running.service.store.audit.query(
        running.service.store.db, AuditFilter(action="read", object_type="patient")
    )
    assert [e.object_id for e in reads] == [str(patient)]  # the refused read is not a read


async def test_import_by_api(running: Running) -> None:
    bicetre = {"Authorization": f"Bearer {await running.api_key('hospital', f'finess:{BICETRE}')}"}
    text = "\n".join(
        [
            HEAD,
            f"{BICETRE};94;B1;1951-04-03;F;conv;hospitalised;2020-04-02;for",
            f"{BICETRE};94;B2;1951-04-03;F;rea;hospitalised;2020-04-02;for",
            f"{PITIE};75;P1;1951-04-03;F;conv;hospitalised;2020-04-02;for",
        ]
    )
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{running.url}/sivic/api/v1/import", data=text.encode(), headers=bicetre
        ) as r:
            report = await r.json()
            assert r.status == 200 and report["created"] == 1 and not report["success"]
            assert report["refused"] == [
                {"line": 3, "reason": "unit must be one of conv, crit, ssr_usld, other, not 'rea'"},
                {"line": 4, "reason": "not an establishment of yours"},
            ]
        async with client.post(
            f"{running.url}/sivic/api/v1/import", data=b"\xff\xfe", headers=bicetre
        ) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_encoding"


async def test_pages_of_a_hospital_member(running: Running) -> None:
    await running.person("infirmier", "staff", f"finess:{PITIE}")
    async with browser_session() as client:
        await running.sign_in(client, "infirmier")
        async with client.get(f"{running.url}/sivic/") as r:
            assert r.url.path == f"/sivic/establishments/{PITIE}"
            page = await r.text()
            assert "Aucun patient hospitalisé ici." in page
        form = {
            "csrf_token": csrf_of(page), "last_name": "Dupont-Lefèvre", "first_name": "Élodie",
            "birth_date": "1960-02-29", "sex": "F", "dep": "75", "unit": "crit",
            "status": "hospitalised", "status_date": "2020-04-02", "covid": "for",
        }  # fmt: skip
        async with client.post(
            f"{running.url}/sivic/establishments/{PITIE}/register", data=form
        ) as r:
            page = await r.text()
            assert r.status == 200 and "Dupont-Lefèvre" in page and "Patient enregistré." in page
        async with client.post(
            f"{running.url}/sivic/establishments/{PITIE}/register",
            data={**form, "birth_date": "2020-04-05"},
        ) as r:
            assert r.status == 422 and "status_date is before birth_date" in await r.text()
        (patient,) = await running.service.store.patients_at(1, PITIE)
        async with client.get(f"{running.url}/sivic/patients/{patient.id}") as r:
            page = await r.text()
            assert "nouvelle hospitalisation, entrée en soins critiques" in page
        async with client.post(
            f"{running.url}/sivic/patients/{patient.id}",
            data={"csrf_token": csrf_of(page), "status": "home", "unit": "crit",
                  "status_date": "2020-04-03", "covid": "for"},
        ) as r:  # fmt: skip
            page = await r.text()
            assert r.status == 200 and "retour à domicile" in page
        async with client.get(f"{running.url}/sivic/establishments/{BICETRE}") as r:
            assert r.status == 403
        async with client.get(f"{running.url}/sivic/events") as r:
            page = await r.text()
            assert "COVID-19" in page and "Ouvrir un événement" not in page
        upload = aiohttp.FormData()
        upload.add_field("csrf_token", csrf_of(page))
        line = f"{PITIE};75;P9;1951-04-03;F;conv;hospitalised;2020-04-03;for"
        upload.add_field("file", f"{HEAD}\n{line}\n".encode(), filename="intake.csv")
        async with client.post(
            f"{running.url}/sivic/establishments/{PITIE}/file", data=upload
        ) as r:
            page = await r.text()
            assert r.status == 200 and "Fichier appliqué : 1 créés" in page and "P9" in page
    counts = await running.service.snapshot(running.service.today())
    assert counts.totals(["75"]).rad == 1


async def test_counts_page_of_an_ars(running: Running) -> None:
    await running.service.import_text(
        Access(ADMIN, ""),
        Actor("console", ADMIN),
        "\n".join(
            [
                HEAD,
                f"{PITIE};75;P1;1951-04-03;F;crit;hospitalised;2020-04-03;for",
                f"{NANTES};44;N1;1951-04-03;F;conv;hospitalised;2020-04-03;for",
            ]
        ),
    )
    await running.person("ars.idf", "ars", "reg:11")
    async with browser_session() as client:
        await running.sign_in(client, "ars.idf")
        async with client.get(f"{running.url}/sivic/") as r:
            assert r.url.path == "/sivic/counts"
            page = await r.text()
    rows = re.findall(
        r'<tr id="dep-(\w+)"><th scope="row">[^<]*</th><td>(\d+)</td><td>(\d+)</td>', page
    )
    assert [dep for dep, _, _ in rows] == ["75", "77", "78", "91", "92", "93", "94", "95"]
    assert ("75", "1", "1") in rows  # Nantes (44) is not in Île-de-France


async def test_ids_too_large_are_404_in_a_path_400_elsewhere(running: Running) -> None:
    """99999999999999999999 was an OverflowError (500) in the path, ?event= and the body; then
    a 404 in all three, where SAMU answered 400 in a query or body: one rule (kit.http.row_id)."""
    big = "99999999999999999999"
    admin = {"Authorization": f"Bearer {await running.api_key('admin')}"}
    url = f"{running.url}/sivic/api/v1"
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{url}/patients/{big}", headers=admin) as r:
            assert r.status == 404 and (await r.json())["success"] is False
        async with client.post(f"{url}/events/{big}/close", headers=admin) as r:
            assert r.status == 404
        head = ";".join(HEADER)
        for event in (big, "0", "%C2%B2", "x"):
            async with client.post(
                f"{url}/import?event={event}", data=f"{head}\n", headers=admin
            ) as r:
                assert r.status == 400 and (await r.json())["success"] is False, event
        for event in (2**40, 0, "1", True):
            big_json = {**body(PITIE, "75", patient_ref="X1"), "event": event}
            async with client.post(f"{url}/patients", json=big_json, headers=admin) as r:
                assert r.status == 400, await r.text()
        for patient in ("abc", "%C2%B2", "-1"):
            async with client.get(f"{url}/patients/{patient}", headers=admin) as r:
                assert r.status == 400, patient
