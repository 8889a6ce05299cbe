"""The bed service over real HTTP: the tension contract, JSON, file and FHIR updates, FHIR
search, the nearest bed, the staff form, refusals as JSON or OperationOutcome."""

from __future__ import annotations

import csv
import io
import json
import re
import zlib

import aiohttp
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.location import Location

from beds import fhir
from kit.audit import AuditFilter
from tests.beds.conftest import BICETRE, NANTES, PITIE, Running, browser_session, csrf_of

COUNTS = {"installed": 110, "surge": 20, "occupied": 125, "available": 5, "covid": 118}


async def unit_id(running: Running, finess: str, code: str = "REA") -> int:
    unit = await running.service.store.unit_by_code(finess, code)
    assert unit is not None
    return unit.id


async def test_tension_contract_for_the_samu_board(running: Running) -> None:
    reader = await running.api_key("reader")
    updater = await running.api_key("updater", f"finess:{PITIE}")
    pitie = await unit_id(running, PITIE)
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{running.url}/beds/api/v1/units/{pitie}/counts",
            json=COUNTS,
            headers={"Authorization": f"Bearer {updater}"},
        ) as r:
            assert r.status == 200, await r.text()
        for territory in ("dep:75", "reg:11", "fr"):
            async with client.get(
                f"{running.url}/beds/api/v1/tension",
                params={"territory": territory},
                headers={"Authorization": f"Bearer {reader}"},
            ) as r:
                body = await r.json()
                assert r.status == 200
                assert set(body) == {
                    "territory",
                    "covid_critical",
                    "initial_capacity",
                    "tension_rate",
                    "occupied",
                    "available",
                    "stale_units",
                    "as_of",
                }
                assert body["territory"] == territory and body["covid_critical"] == 118
                assert body["tension_rate"] == round(118 / body["initial_capacity"], 4)
        async with client.get(f"{running.url}/beds/api/v1/tension?territory=dep:75") as r:
            assert r.status == 401
        async with client.get(
            f"{running.url}/beds/api/v1/tension?territory=dep:99",
            headers={"Authorization": f"Bearer {reader}"},
        ) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_territory"


async def test_json_file_and_fhir_updates_with_history(running: Running) -> None:
    updater = await running.api_key("updater", f"finess:{PITIE}")
    auth = {"Authorization": f"Bearer {updater}"}
    pitie, si = await unit_id(running, PITIE), await unit_id(running, PITIE, "SI")
    async with aiohttp.ClientSession(headers=auth) as client:
        bad = {**COUNTS, "covid": 999}
        async with client.post(f"{running.url}/beds/api/v1/units/{pitie}/counts", json=bad) as r:
            assert r.status == 422 and (await r.json())["error"] == "bad_counts"
        other = await unit_id(running, BICETRE)
        async with client.post(f"{running.url}/beds/api/v1/units/{other}/counts", json=COUNTS) as r:
            assert r.status == 404
        async with client.post(f"{running.url}/beds/api/v1/units/{pitie}/counts", json=COUNTS) as r:
            assert r.status == 200
        running.clock.advance(60)
        file = (
            "finess;unit;installed;surge;occupied;available;covid\n"
            f"{PITIE};REA;110;20;126;4;119\n{PITIE};SI;208;0;150;58;30\n"
        )
        async with client.post(f"{running.url}/beds/api/v1/updates", data=file.encode()) as r:
            assert r.status == 200 and (await r.json())["recorded"] == 2
        running.clock.advance(60)
        # FHIR: read the Location, change one capacity record, PUT it back.
        async with client.get(f"{running.url}/beds/fhir/Location/{pitie}") as r:
            assert r.content_type == "application/fhir+json"
            location = Location.model_validate_json(await r.read())
        resource = json.loads(location.model_dump_json(exclude_none=True))
        for record in resource["extension"]:
            parts = {p["url"]: p for p in record["extension"]}
            code = parts["capacityStatus"]["valueCodeableConcept"]["coding"][0]["code"]
            if code == fhir.codes()["capacityStatus", "available"].code:
                parts["nbCapacity"]["valueInteger"] = 3
            if code == fhir.codes()["capacityStatus", "occupied"].code:
                parts["nbCapacity"]["valueInteger"] = 127
            parts["capacityUpdateDate"]["valueDateTime"] = "2026-12-10T04:10:00Z"
        async with client.put(f"{running.url}/beds/fhir/Location/{pitie}", json=resource) as r:
            assert r.status == 200, await r.text()
        async with client.put(
            f"{running.url}/beds/fhir/Location/{pitie}",
            json={"resourceType": "Location", "extension": []},
        ) as r:
            outcome = await r.json()
            assert r.status == 400 and outcome["resourceType"] == "OperationOutcome"
            assert "missing capacity records" in outcome["issue"][0]["diagnostics"]
        async with client.get(f"{running.url}/beds/api/v1/units/{pitie}/history") as r:
            history = (await r.json())["updates"]
        assert [(h["source"], h["occupied"], h["available"]) for h in history] == [
            ("fhir", 127, 3),
            ("file", 126, 4),
            ("api", 125, 5),
        ]
        async with client.get(f"{running.url}/beds/api/v1/establishments/{PITIE}/units") as r:
            units = {u["code"]: u for u in (await r.json())["units"]}
        assert units["SI"]["counts"]["covid"] == 30 and units["SI"]["id"] == si


async def test_fhir_search_by_postcode_identifier_and_last_updated(running: Running) -> None:
    reader = await running.api_key("national", "national")
    updater = await running.api_key("national", "national")
    bicetre = await unit_id(running, BICETRE)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {reader}"}) as client:

        async def search(**params: str) -> Bundle:
            async with client.get(f"{running.url}/beds/fhir/Location", params=params) as r:
                assert r.status == 200, await r.text()
                return Bundle.model_validate_json(await r.read())

        paris_and_94 = await search(**{"address-postalcode": "75,94"})
        finesses = {e.resource.managingOrganization.identifier.value for e in paris_and_94.entry}
        assert PITIE in finesses and BICETRE in finesses and NANTES not in finesses
        assert paris_and_94.total == len(paris_and_94.entry)
        one = await search(identifier=f"{fhir.UNIT_SYSTEM}|{BICETRE}-REA")
        assert [e.resource.id for e in one.entry] == [str(bicetre)]
        assert (await search(_lastUpdated="ge2026-12-10")).total == 0
        async with client.post(
            f"{running.url}/beds/api/v1/units/{bicetre}/counts",
            json=COUNTS | {"installed": 56, "surge": 74},
            headers={"Authorization": f"Bearer {updater}"},
        ) as r:
            assert r.status == 200, await r.text()
        changed = await search(_lastUpdated="ge2026-12-10T04:00:00Z")
        assert [e.resource.id for e in changed.entry] == [str(bicetre)]
        # gt is strictly after the range its value stands for (it was read as ge).
        stamp = changed.entry[0].resource.meta.lastUpdated
        assert stamp.isoformat() == "2026-12-10T04:08:00+00:00"  # the clock's T0
        for bound, found in (
            ("ge2026-12-10T04:08:00Z", 1),
            ("gt2026-12-10T04:08:00Z", 0),
            ("gt2026-12-10T04:07:59Z", 1),
            ("gt2026-12-10T04:07Z", 1),
            ("gt2026-12-10T04:08Z", 0),
            ("ge2026-12-10", 1),
            ("gt2026-12-10", 0),
            ("gt2026-12-09", 1),
        ):
            assert (await search(_lastUpdated=bound)).total == found, bound
        async with client.get(f"{running.url}/beds/fhir/Location?_lastUpdated=lt2026") as r:
            assert r.status == 400
            assert (await r.json())["resourceType"] == "OperationOutcome"
        async with client.get(f"{running.url}/beds/fhir/Location?name=x") as r:
            assert r.status == 400


async def test_nearest_over_http(running: Running) -> None:
    regulator = await running.api_key("ars", "reg:11")
    bicetre = await unit_id(running, BICETRE)
    national = await running.api_key("national", "national")
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{running.url}/beds/api/v1/units/{bicetre}/counts",
            json={"installed": 56, "surge": 0, "occupied": 50, "available": 6, "covid": 1},
            headers={"Authorization": f"Bearer {national}"},
        ) as r:
            assert r.status == 200
        async with client.get(
            f"{running.url}/beds/api/v1/nearest",
            params={"kind": "rea", "lat": "48.84", "lon": "2.36"},
            headers={"Authorization": f"Bearer {regulator}"},
        ) as r:
            body = await r.json()
        assert [u["finess"] for u in body["units"]] == [BICETRE]
        assert body["distance"].startswith("straight line")


async def test_staff_form_saves_only_changed_units(running: Running) -> None:
    await running.person("alice", "staff", f"finess:{PITIE}")
    pitie, si = await unit_id(running, PITIE), await unit_id(running, PITIE, "SI")
    async with browser_session() as client:
        await running.sign_in(client, "alice")
        async with client.get(f"{running.url}/beds/establishments/{PITIE}") as r:
            page = await r.text()
        form = {"csrf_token": csrf_of(page)}
        for unit, counts in ((pitie, (110, 0, 100, 10, 40)), (si, (208, 0, 0, 208, 0))):
            for name, value in zip(
                ("installed", "surge", "occupied", "available", "covid"), counts, strict=True
            ):
                form[f"u{unit}-{name}"] = str(value)
        async with client.post(f"{running.url}/beds/establishments/{PITIE}", data=form) as r:
            assert r.status == 200 and "Enregistré" in await r.text()
        # SI's values equal its defaults (initial beds all free) but it had no counts: saved.
        assert len(await running.service.store.history(pitie)) == 1
        form[f"u{pitie}-covid"] = "500"
        async with client.post(f"{running.url}/beds/establishments/{PITIE}", data=form) as r:
            assert r.status == 422
            text = await r.text()
            # The rule's sentence in the page's language (it was English on the French page).
            assert "les patients COVID ne peuvent dépasser les lits occupés" in text
            assert 'value="500"' in text
        form[f"u{pitie}-covid"] = "40"
        form[f"u{pitie}-surge"] = "20000"
        async with client.post(f"{running.url}/beds/establishments/{PITIE}", data=form) as r:
            assert r.status == 422
            assert "Supplémentaires : un nombre entier de 0 à 10000" in await r.text()
        async with client.get(f"{running.url}/beds/establishments/{BICETRE}") as r:
            assert r.status == 404
        async with client.get(f"{running.url}/beds/dashboard?territory=fr") as r:
            assert r.status == 403


async def test_daily_bulletin_csv_and_pdf(running: Running) -> None:
    """The national bulletin: CSV lines for France, regions and départements whose figures are
    the tension API's; a PDF with the same national figures; both audited as exports; an ARS
    (a region's scope) is refused the national bulletin."""
    await running.person("cellule", "national", "national")
    await running.person("ars.pdl", "ars", "reg:52")
    national = await running.api_key("national", "national")
    pitie, nantes = await unit_id(running, PITIE), await unit_id(running, NANTES)
    async with browser_session() as client:
        for unit, counts in ((pitie, COUNTS), (nantes, {**COUNTS, "covid": 60, "surge": 0})):
            body = {**counts, "occupied": counts["covid"] + 2}
            body["available"] = counts["installed"] + counts["surge"] - body["occupied"]
            async with client.post(
                f"{running.url}/beds/api/v1/units/{unit}/counts",
                json=body,
                headers={"Authorization": f"Bearer {national}"},
            ) as r:
                assert r.status == 200, await r.text()
        async with client.get(
            f"{running.url}/beds/api/v1/tension?territory=fr",
            headers={"Authorization": f"Bearer {national}"},
        ) as r:
            france = await r.json()
        await running.sign_in(client, "cellule")
        async with client.get(f"{running.url}/beds/bulletin.csv") as r:
            assert r.status == 200 and r.content_type == "text/csv"
            assert "bulletin-tension-2026-12-10.csv" in r.headers["Content-Disposition"]
            rows = list(csv.DictReader(io.StringIO(await r.text())))
        async with client.get(f"{running.url}/beds/bulletin.pdf") as r:
            assert r.status == 200 and r.content_type == "application/pdf"
            pdf = await r.read()
    first = rows[0]
    assert (first["level"], first["code"], first["date"]) == ("fr", "fr", "2026-12-10")
    assert int(first["covid_critical"]) == france["covid_critical"] == 118 + 60
    assert int(first["initial_capacity"]) == france["initial_capacity"]
    assert float(first["tension_rate"]) == pytest.approx(france["tension_rate"], abs=1e-4)
    by_code = {(r["level"], r["code"]): r for r in rows}
    assert int(by_code[("reg", "11")]["covid_critical"]) == 118
    assert int(by_code[("reg", "52")]["covid_critical"]) == 60
    assert int(by_code[("dep", "75")]["covid_critical"]) == 118
    assert int(by_code[("dep", "44")]["covid_critical"]) == 60
    # The regions' and départements' lines each add up to France.
    for level in ("reg", "dep"):
        assert sum(int(r["covid_critical"]) for r in rows if r["level"] == level) == 178
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = b"".join(
        zlib.decompress(stream)
        for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
        if stream[:1] == b"x"
    )
    assert b"Bulletin national de tension hospitali" in text
    assert f"{france['covid_critical']}".encode() in text
    audit = await running.service.store.audit.query(
        running.service.store.db, AuditFilter(object_type="bulletin", action="export")
    )
    assert [e.actor for e in audit] == ["cellule", "cellule"]
    async with browser_session() as client:
        await running.sign_in(client, "ars.pdl")
        async with client.get(f"{running.url}/beds/bulletin.csv") as r:
            assert r.status == 403
