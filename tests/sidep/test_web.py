"""SI-DEP over real HTTP: the intake endpoints (HL7 ACK, FHIR OperationOutcome, files), the
event feed, the pages (two factors, roles, audit, the antigen form)."""

from __future__ import annotations

import io
from dataclasses import replace

import aiohttp
import sqlalchemy as sa

from kit.audit import CONSOLE
from kit.schema import audit as audit_table
from sidep.access import OPERATOR
from sidep.store import results
from tests.sidep.conftest import LAB, OTHER_LAB, Running, browser_session, csrf_of
from tests.sidep.fakeparse import CSV_HEADER, message

CSV = (
    CSV_HEADER + "\n"
    f"{LAB};C1;;MARTIN;PAUL;1980-01-02;M;69003;2026-12-08T09:00:00+01:00;;94500-6;P\n"
    f"{LAB};C2;;MARTIN;PAULE;1981-01-02;F;69003;2026-12-08T09:00:00+01:00;;94500-6;Z\n"
).encode()


async def count(running: Running, table: sa.Table) -> int:
    async with running.service.store.db.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        return int((await conn.execute(query)).scalar_one())


async def test_hl7_over_http_needs_a_lab_key_of_its_lab(running: Running) -> None:
    key = await running.api_key("lab", f"finess:{LAB}")
    url = f"{running.url}/sidep/api/v1/hl7"
    async with aiohttp.ClientSession() as client:
        async with client.post(url, data=message()) as r:
            assert r.status == 401
            assert (await r.json())["error"]
        headers = {"Authorization": f"Bearer {key}"}
        async with client.post(url, data=message(control="H1"), headers=headers) as r:
            assert r.status == 200 and r.content_type == "x-application/hl7-v2+er7"
            assert "MSA|AA|H1" in await r.text()
        foreign = message(control="H2", sample="S2", lab=OTHER_LAB)
        async with client.post(url, data=foreign, headers=headers) as r:
            text = await r.text()
            assert "MSA|AE|H2" in text and f"may not send results of lab {OTHER_LAB}" in text
        # a batch: each message acknowledged in a response batch, the key's lab checked in each
        batch = (
            b"BHS|^~\\&|LAB|" + LAB.encode() + b"|SIDEP|DGS|20261210||||HB1\r"
            + message(control="H3", sample="S3")
            + foreign.replace(b"|H2|", b"|H4|")
            + b"BTS|2\r"
        )  # fmt: skip
        async with client.post(url, data=batch, headers=headers) as r:
            lines = [line for line in (await r.text()).split("\r") if line]
            assert r.status == 200 and lines[0].split("|")[11] == "HB1"
            msas = [line.split("|")[1:3] for line in lines if line.startswith("MSA")]
            assert msas == [["AA", "H3"], ["AE", "H4"]] and lines[-1] == "BTS|2"
    assert await count(running, results) == 2


async def test_files_answer_counts_and_refusals(running: Running) -> None:
    key = await running.api_key("lab", f"finess:{LAB}")
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{running.url}/sidep/api/v1/files?format=csv&name=day.csv"
    async with aiohttp.ClientSession() as client:
        async with client.post(url, data=CSV, headers=headers) as r:
            assert r.status == 200
            body = await r.json()
        assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, 1)
        assert body["refusals"][0]["where"] == "day.csv:3"
        async with client.post(url, data=CSV, headers=headers) as r:
            assert (await r.json())["duplicates"] == 1
        async with client.post(
            f"{running.url}/sidep/api/v1/files?format=pdf", data=CSV, headers=headers
        ) as r:
            assert r.status == 400
        fhir = f"{running.url}/sidep/api/v1/fhir"
        async with client.post(fhir, data=b"{}", headers=headers) as r:
            assert r.status == 422 and r.content_type == "application/fhir+json"
            outcome = await r.json()
            assert outcome["resourceType"] == "OperationOutcome"
            assert outcome["issue"][0]["severity"] == "error"
            assert outcome["issue"][0]["diagnostics"] == "not a FHIR Bundle"
            assert outcome["issue"][0]["expression"] == ["Bundle"]
        bundle = b'{"resourceType": "Bundle", "id": "F1"}'
        async with client.post(fhir, data=bundle, headers=headers) as r:
            assert r.status == 200
            outcome = await r.json()
            assert outcome["issue"] == [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": "accepted=1 duplicates=0 rejected=0",
                }
            ]


async def test_the_event_feed_serves_positives_to_event_readers(running: Running) -> None:
    lab = await running.api_key("lab", f"finess:{LAB}")
    reader = await running.api_key("event-reader")
    async with aiohttp.ClientSession() as client:
        await client.post(
            f"{running.url}/sidep/api/v1/hl7",
            data=message(),
            headers={"Authorization": f"Bearer {lab}"},
        )
        feed = f"{running.url}/sidep/api/v1/events?after=0"
        async with client.get(feed, headers={"Authorization": f"Bearer {lab}"}) as r:
            assert r.status == 403
        async with client.get(feed, headers={"Authorization": f"Bearer {reader}"}) as r:
            assert r.status == 200
            (event,) = (await r.json())["events"]
    assert event["topic"] == "sidep.positive"
    assert event["payload"]["patient"]["last_name"] == "DUPONT"


async def test_roles_on_the_results_page(running: Running) -> None:
    lab = await running.api_key("lab", f"finess:{LAB}")
    async with aiohttp.ClientSession() as client:
        await client.post(
            f"{running.url}/sidep/api/v1/hl7",
            data=message(),
            headers={"Authorization": f"Bearer {lab}"},
        )
    await running.person("agent", "cpam_agent")
    await running.person("analyst", "spf_analyst")
    await running.person("doc", "doctor")
    async with browser_session() as client:
        async with client.get(f"{running.url}/sidep/results", allow_redirects=False) as r:
            assert r.status == 303 and "/sidep/login" in r.headers["Location"]
        await running.sign_in(client, "agent")
        async with client.get(f"{running.url}/sidep/results?go=1") as r:
            page = await r.text()
        assert "DUPONT" in page and "269054958815780" in page
    async with browser_session() as client:
        await running.sign_in(client, "analyst")
        async with client.get(f"{running.url}/sidep/results?go=1") as r:
            page = await r.text()
        assert "DUPONT" not in page and "269054958815780" not in page
    async with browser_session() as client:
        await running.sign_in(client, "doc")
        async with client.get(f"{running.url}/sidep/results?go=1") as r:
            assert "name the patient" in await r.text()
        async with client.get(f"{running.url}/sidep/antigen") as r:
            assert r.status == 403
    async with running.service.store.db.connect() as conn:
        actions = {
            (row.actor, row.action) for row in (await conn.execute(sa.select(audit_table))).all()
        }
    assert ("agent", "read") in actions and ("analyst", "read_pseudonymised") in actions


async def test_the_antigen_form(running: Running) -> None:
    await running.person("pharma", "tester", f"finess:{LAB}")
    async with browser_session() as client:
        await running.sign_in(client, "pharma")
        async with client.get(f"{running.url}/sidep/antigen") as r:
            token = csrf_of(await r.text())
        form = {
            "csrf_token": token, "lab": OTHER_LAB, "sample_id": "", "last_name": "Durand",
            "first_name": "Léa", "birth_date": "1990-04-05", "sex": "F",
            "nir": "269054958815781", "postcode": "13001", "phone": "0611223344",
            "email": "", "sampled_at": "2026-12-09T10:30", "result": "P",
        }  # fmt: skip
        async with client.post(f"{running.url}/sidep/antigen", data=form) as r:
            assert r.status == 422
            page = await r.text()
        assert "La clé de ce NIR ne correspond pas" in page and 'value="Durand"' in page
        form["nir"] = "269054958815780"
        async with client.post(f"{running.url}/sidep/antigen", data=form) as r:
            assert r.status == 200
            page = await r.text()
        assert "Résultat positif enregistré." in page and 'id="notice"' in page
        (row,) = await running.service.results(OPERATOR, CONSOLE)
        assert (row.lab, row.method, row.result, row.dep) == (LAB, "ANTIGEN", "P", "13")
        async with client.get(f"{running.url}/sidep/results/{row.id}/notice.pdf") as r:
            assert r.status == 200 and (await r.read()).startswith(b"%PDF")


async def test_hostile_bodies_are_refused_with_a_reason(running: Running) -> None:
    key = await running.api_key("lab", f"finess:{LAB}")
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as client:
        url = f"{running.url}/sidep/api/v1/hl7"
        async with client.post(url, data=b"\xff\xfe garbage", headers=headers) as r:
            assert r.status == 200 and "MSA|AR|" in await r.text()
        huge = io.BytesIO(b"x" * (5 * 1024 * 1024))
        async with client.post(url, data=huge, headers=headers) as r:
            assert r.status == 413
            assert (await r.json())["error"]
        files = f"{running.url}/sidep/api/v1/files?format=csv"
        async with client.post(files, data=b"", headers=headers) as r:
            assert r.status == 422
            assert (await r.json())["refusals"] == [{"where": "file", "reason": "empty"}]
    assert await count(running, results) == 0


async def test_without_a_code_service_the_notice_waits(running: Running) -> None:
    running.service.issuer = None
    await running.person("nurse", "tester", f"finess:{LAB}")
    async with browser_session() as client:
        await running.sign_in(client, "nurse")
        async with client.get(f"{running.url}/sidep/antigen") as r:
            token = csrf_of(await r.text())
        form = {
            "csrf_token": token, "lab": LAB, "sample_id": "N1", "last_name": "Roux",
            "first_name": "Jean", "birth_date": "1950-01-01", "sex": "M", "nir": "",
            "postcode": "33000", "phone": "", "email": "", "sampled_at": "2026-12-09T10:30",
            "result": "P",
        }  # fmt: skip
        async with client.post(f"{running.url}/sidep/antigen", data=form) as r:
            page = await r.text()
        assert "dès que le service des codes répondra" in page and 'id="notice"' not in page


async def test_the_indicators_dashboard(running: Running) -> None:
    from sidep.model import Result
    from tests.sidep.conftest import lab_result, parsed, patient

    letters = "abcdefghijklmnopqrstuvwxyz"
    people = [  # names of letters: digits are not letters, "Nom1" and "Nom2" are one NOM
        patient(last_name=f"Nom{letters[n % 26]}{letters[n // 26]}", nir=None, nir_valid=None)
        for n in range(40)
    ]
    batch = [
        replace(
            lab_result(f"D{n}", Result.POSITIVE if n % 2 == 0 else Result.NEGATIVE,
                       who=people[n], days_ago=1 + n % 10),
            dep="48",
        )
        for n in range(40)
    ]  # fmt: skip
    await running.service.ingest(parsed(*batch), CONSOLE)
    await running.person("analyst", "spf_analyst")
    async with browser_session() as client:
        await running.sign_in(client, "analyst")
        async with client.get(f"{running.url}/sidep/dashboard") as r:
            assert r.status == 200
            page = await r.text()
        # Lozère (76,573 inhabitants): 16 persons positive over the 7 days ending on the last
        # day: 20.9 per 100,000, class 20-50; Ain: tests, none, class 0-10
        assert 'fill="#f9c17b" stroke="#555" stroke-width="0.6" data-dep="48"' in page
        assert 'fill="#f4f1de" stroke="#555" stroke-width="0.6" data-dep="01"' in page
        async with client.get(f"{running.url}/sidep/dashboard?zone=48") as r:
            page = await r.text()
        assert "<h2>48 Lozère</h2>" in page and page.count('class="curve"') == 3
        assert '<span class="last">20.9</span>' in page


async def test_http_and_mllp_never_give_two_acks_one_control_id(running: Running) -> None:
    """One ACK counter per process: HTTP's and MLLP's used to start in the same second
    at 1 each, both answering SIDEP<start>1."""
    from hl7.mllp import open_hl7_connection

    from sidep.intake import Intake
    from sidep.mllp import AckNumbers, Committer, MllpListener
    from sidep.model import SourceFormat
    from tests.sidep import fakeparse

    committer = Committer(running.service, max_batch=10)
    listener = MllpListener(Intake({SourceFormat.HL7: fakeparse.parse}), committer)
    assert listener.numbers is AckNumbers.of_process()
    port = await listener.start("127.0.0.1", 0)
    ids = []
    try:
        key = await running.api_key("lab", f"finess:{LAB}")
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession() as client:
            for n in range(3):
                body = message(control=f"W{n}", sample=f"W{n}")
                async with client.post(
                    f"{running.url}/sidep/api/v1/hl7", data=body, headers=headers
                ) as r:
                    ids.append((await r.text()).split("\r")[0].split("|")[9])
                reader, writer = await open_hl7_connection("127.0.0.1", port)
                writer.writeblock(message(control=f"M{n}", sample=f"M{n}"))
                await writer.drain()
                ack = (await reader.readblock()).decode()
                writer.close()
                ids.append(ack.split("\r")[0].split("|")[9])
    finally:
        await listener.stop()
        await committer.stop()
    assert all(i.startswith("SIDEP") for i in ids) and len(set(ids)) == 6
