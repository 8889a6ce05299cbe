"""The drug service on both databases: reports and history, alerts, scopes, uploads,
redeployment from stored stocks, and the allocation with patients from the bed service."""

from __future__ import annotations

import pytest

from drugs.critical_care import Patients
from drugs.service import Access, DrugService
from kit.audit import Actor, AuditFilter
from kit.http import Forbidden, NotFound, Unprocessable
from tests.drugs.conftest import FixedPatients

PITIE, BICETRE, NANTES = "750100125", "940100043", "440000271"
PHARMA = Access("pharmacist", f"finess:{PITIE}")
ARS_IDF = Access("ars", "reg:11")
NATIONAL = Access("national", "national")
BOB = Actor("bob", "pharmacist")


async def test_reports_alerts_and_audit(service: DrugService) -> None:
    await service.report(PHARMA, BOB, PITIE, "PROP-500-50", 40, 20.0)
    await service.report(PHARMA, BOB, PITIE, "MIDA-50-10", 300, 10)
    lines = {s.drug.code: s for s in await service.stocks(PHARMA, PITIE)}
    assert lines["PROP-500-50"].days == 2.0 and lines["PROP-500-50"].alert.value == "critical"
    assert lines["MIDA-50-10"].alert.value == "ok" and lines["ATRA-50-5"].on_hand is None
    history = await service.store.history(PITIE, "PROP-500-50")
    assert [h.on_hand for h in history] == [40]
    audit = await service.store.audit.query(service.store.db, AuditFilter(object_type="stock"))
    assert {e.object_id for e in audit} == {f"{PITIE}:PROP-500-50", f"{PITIE}:MIDA-50-10"}
    with pytest.raises(NotFound):
        await service.report(PHARMA, BOB, BICETRE, "PROP-500-50", 40, 2.0)
    with pytest.raises(Unprocessable):
        await service.report(PHARMA, BOB, PITIE, "PROP-500-50", -1, 2.0)
    with pytest.raises(Forbidden):
        await service.region_stocks(ARS_IDF, "52")


async def test_export_upload_and_regional_redeployment(service: DrugService) -> None:
    export = "code;stock;daily_use\nDIPRIVAN 1 % 50 mL;30;2\nPROPOFOL 1 % 50 mL generics;10;0,5\n"
    assert await service.import_export(PHARMA, BOB, PITIE, export) == 1
    [line] = [s for s in await service.stocks(PHARMA, PITIE) if s.on_hand is not None]
    assert (line.on_hand, line.daily_use) == (40, 2.5)  # two products of one virtual drug
    await service.report(NATIONAL, BOB, BICETRE, "PROP-500-50", 600, 10)
    lines = await service.region_stocks(ARS_IDF, "11")
    assert [s.place.finess for s in lines] == [PITIE, BICETRE]  # alerts first
    plan = await service.redeployment(ARS_IDF, "11", "PROP-500-50")
    # Bicêtre keeps 21 days (210): 390 to spare; the Pitié lacks 14×2.5 − 40 = −5 → none.
    assert plan.moves == []
    await service.report(PHARMA, BOB, PITIE, "PROP-500-50", 5, 2.5)
    plan = await service.redeployment(ARS_IDF, "11", "PROP-500-50")
    assert [(m.source, m.destination, m.units) for m in plan.moves] == [(BICETRE, PITIE, 30)]


async def test_allocation_reads_patients_and_is_kept(service: DrugService) -> None:
    service.critical_care = FixedPatients(
        [
            Patients(PITIE, "Pitié", "75", "11", 100, 20),
            Patients(NANTES, "Nantes", "44", "52", 10, 30),
        ]
    )
    await service.report(NATIONAL, BOB, PITIE, "ROCU-50-5", 100, 50)
    await service.report(NATIONAL, BOB, NANTES, "ROCU-50-5", 300, 10)
    result = await service.allocate(NATIONAL, BOB, "ROCU-50-5", 1000)
    assert sum(result.establishments.values()) == 1000
    assert result.establishments[PITIE] > result.establishments[NANTES]
    audit = await service.store.audit.query(service.store.db, AuditFilter(object_type="allocation"))
    assert len(audit) == 1
    with pytest.raises(Forbidden):
        await service.allocate(ARS_IDF, BOB, "ROCU-50-5", 1000)
