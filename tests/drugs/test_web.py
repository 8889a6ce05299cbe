"""The drug service over real HTTP, beside a real bed service on its own socket: pharmacies
report by JSON and by their software's export, each sees only its establishment, the ARS its
region with the redeployment, and the national allocation reads patients in critical care
from the bed service's API with a key of role reader (the deployment's wiring)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from beds import app as beds_app
from beds.access import Access as BedAccess
from beds.model import Counts, Source
from beds.settings import Settings as BedSettings
from drugs import app as drugs_app
from drugs.settings import Settings as DrugSettings
from kit.audit import Actor, AuditFilter
from kit.auth.people import Accounts
from tests.drugs.conftest import PLACES, T0

SECRET = "the drug service's test secret, long enough to derive keys"
PITIE, BICETRE, NANTES = "750100125", "940100043", "440000271"


@dataclass
class Services:
    beds: str
    drugs: str
    keys: dict[str, str]


async def _serve(root: web.Application) -> TestServer:
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    bed_settings = BedSettings(database=f"sqlite:///{tmp_path / 'beds.db'}", secret=SECRET)
    beds = beds_app.new_service(bed_settings, lambda: T0)
    await beds.open()
    await beds.load_establishments()
    seed = (BedAccess("national", "national"), Actor("seed", "national"))
    for finess, covid, occupied in ((PITIE, 100, 120), (NANTES, 10, 40)):
        unit = await beds.store.unit_by_code(finess, "REA")
        assert unit is not None
        counts = Counts(occupied + 10, 0, occupied, 10, covid)
        await beds.update(*seed, unit.id, counts, Source.API)
    bed_accounts = Accounts(beds.store.db, SECRET, "Lits", api_key_prefix="beds")
    _, reader = await bed_accounts.api_keys.create("drugs", "reader", "national")
    root = web.Application()
    beds_app.mount(root, beds_app.create_app(bed_settings, beds, bed_accounts, lambda: T0))
    bed_server = await _serve(root)
    bed_url = str(bed_server.make_url("")).rstrip("/")

    drug_settings = DrugSettings(
        database=f"sqlite:///{tmp_path / 'drugs.db'}",
        secret=SECRET,
        beds_url=bed_url,
        beds_api_key=reader,
    )
    drugs = drugs_app.new_service(drug_settings, lambda: T0)
    await drugs.open()
    await drugs.load_places(PLACES.read_text(encoding="utf-8"))
    drug_accounts = Accounts(drugs.store.db, SECRET, "MaPUI", api_key_prefix="drugs")
    keys = {}
    for name, role, scope in (
        ("pitie", "pharmacist", f"finess:{PITIE}"),
        ("nantes", "pharmacist", f"finess:{NANTES}"),
        ("bicetre", "pharmacist", f"finess:{BICETRE}"),
        ("ars", "ars", "reg:11"),
        ("national", "national", "national"),
    ):
        _, keys[name] = await drug_accounts.api_keys.create(name, role, scope)
    root = web.Application()
    drugs_app.mount(root, drugs_app.create_app(drug_settings, drugs, drug_accounts))
    drug_server = await _serve(root)
    try:
        yield Services(bed_url, str(drug_server.make_url("")).rstrip("/"), keys)
    finally:
        await drug_server.close()
        await bed_server.close()
        await drugs.close()
        await beds.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_reports_scopes_redeployment_and_allocation(services: Services) -> None:
    url, keys = services.drugs + "/drugs/api/v1", services.keys
    async with aiohttp.ClientSession() as client:
        # The Pitié reports by JSON: 2 days of propofol, critical.
        report = {"finess": PITIE, "drug": "PROP-500-50", "on_hand": 5, "daily_use": 2.5}
        async with client.post(f"{url}/stocks", json=report, headers=bearer(keys["pitie"])) as r:
            assert r.status == 200, await r.text()
        # Bicêtre uploads its software's export (two products of one virtual drug).
        export = (
            "code;stock;daily_use\nDIPRIVAN 1 % 50 mL;500;8\nPROPOFOL 1 % 50 mL generics;100;2\n"
        )
        async with client.post(
            f"{url}/stocks/file",
            params={"finess": BICETRE},
            data=export.encode(),
            headers={**bearer(keys["bicetre"]), "Content-Type": "text/csv"},
        ) as r:
            assert r.status == 200 and (await r.json())["drugs"] == 1
        async with client.get(
            f"{url}/stocks", params={"finess": PITIE}, headers=bearer(keys["pitie"])
        ) as r:
            lines = {s["drug"]: s for s in (await r.json())["stocks"]}
        assert lines["PROP-500-50"]["days_of_cover"] == 2.0
        assert lines["PROP-500-50"]["alert"] == "critical"
        # A pharmacy sees and reports only its own establishment: as if the other did not exist.
        async with client.get(
            f"{url}/stocks", params={"finess": BICETRE}, headers=bearer(keys["pitie"])
        ) as r:
            assert r.status == 404 and (await r.json())["error"]
        async with client.post(
            f"{url}/stocks", json={**report, "finess": BICETRE}, headers=bearer(keys["pitie"])
        ) as r:
            assert r.status == 404
        # The ARS of Île-de-France: alerts first, and the optimal move from Bicêtre.
        async with client.get(
            f"{url}/stocks", params={"region": "11"}, headers=bearer(keys["ars"])
        ) as r:
            region = [s for s in (await r.json())["stocks"] if s["drug"] == "PROP-500-50"]
        assert [s["finess"] for s in region] == [PITIE, BICETRE]
        async with client.get(
            f"{url}/redeployment",
            params={"region": "11", "drug": "PROP-500-50"},
            headers=bearer(keys["ars"]),
        ) as r:
            plan = await r.json()
        # The Pitié needs 14 days × 2.5 − 5 = 30; Bicêtre keeps 21 × 10 = 210 of 600.
        assert [(m["from"], m["to"], m["units"]) for m in plan["moves"]] == [(BICETRE, PITIE, 30)]
        async with client.get(
            f"{url}/stocks", params={"region": "52"}, headers=bearer(keys["ars"])
        ) as r:
            assert r.status == 403
        # The national allocation, with patients read from the bed service over HTTP.
        for finess, stock, use in ((PITIE, 100, 50.0), (NANTES, 300, 10.0)):
            body = {"finess": finess, "drug": "ROCU-50-5", "on_hand": stock, "daily_use": use}
            async with client.post(
                f"{url}/stocks", json=body, headers=bearer(keys["national"])
            ) as r:
                assert r.status == 200
        async with client.post(
            f"{url}/allocations",
            json={"drug": "ROCU-50-5", "quota": 1000},
            headers=bearer(keys["national"]),
        ) as r:
            assert r.status == 200, await r.text()
            allocation = await r.json()
        async with client.post(
            f"{url}/allocations",
            json={"drug": "ROCU-50-5", "quota": 1000},
            headers=bearer(keys["ars"]),
        ) as r:
            assert r.status == 403
    assert sum(allocation["establishments"].values()) == 1000
    assert sum(allocation["regions"].values()) == 1000
    assert allocation["establishments"][PITIE] > allocation["establishments"][NANTES]
    shown = "\n".join(line for step in allocation["steps"] for line in step["lines"])
    # The patients the bed service holds (COVID, and occupied − COVID as "other"):
    assert f"{PITIE}: L = 100 + 0.5×20 = 110" in shown
    assert f"{NANTES}: L = 10 + 0.5×30 = 25" in shown


async def test_allocation_refused_when_the_bed_service_refuses_the_key(
    services: Services, tmp_path: Path
) -> None:
    """A wrong bed-service key: the allocation answers 503 with a JSON reason, not a 500."""
    settings = DrugSettings(
        database=f"sqlite:///{tmp_path / 'other.db'}",
        secret=SECRET,
        beds_url=services.beds,
        beds_api_key="beds_1_not-a-key",
    )
    drugs = drugs_app.new_service(settings, lambda: T0)
    await drugs.open()
    await drugs.load_places(PLACES.read_text(encoding="utf-8"))
    accounts = Accounts(drugs.store.db, SECRET, "MaPUI", api_key_prefix="drugs")
    _, key = await accounts.api_keys.create("national", "national", "national")
    root = web.Application()
    drugs_app.mount(root, drugs_app.create_app(settings, drugs, accounts))
    server = await _serve(root)
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.post(
                str(server.make_url("/drugs/api/v1/allocations")),
                json={"drug": "ROCU-50-5", "quota": 1000},
                headers=bearer(key),
            ) as r,
        ):
            assert r.status == 503
            assert "bed service answered 401" in (await r.json())["message"]
        audit = await drugs.store.audit.query(drugs.store.db, AuditFilter(object_type="allocation"))
        assert audit == []
    finally:
        await server.close()
        await drugs.close()
