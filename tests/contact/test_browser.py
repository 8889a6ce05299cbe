"""The agents' journey in a real headless Chromium (Debian's), with two-factor sign-in and
axe-core's accessibility rules: a doctor opens a case with three contacts and hands it over,
a health-insurance agent notifies and calls the contacts, a pharmacist delivers masks once,
the agent closes the case. Screenshots go to the test's temporary directory, or to
``$KIT_SCREENSHOTS``."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from contact.access import Access
from contact.model import PrescriptionKind
from contact.rules import Level
from contact.service import CaseInput
from kit.schema import notifications
from tests.contact.conftest import PASSWORD, Running, person

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (pip)")
axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="axe (pip)")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="no Debian chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KIT_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def serious_violations(page: Any) -> list[str]:
    results = await axe_api.Axe().run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def sign_in(page: Any, running: Running, username: str) -> None:
    await page.goto(f"{running.url}/contact/")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    running.clock.advance(30)  # a new TOTP step: each code is accepted once
    await page.fill("#code", pyotp.TOTP(running.secrets[username]).at(running.clock()))
    enrolling = await page.locator("#confirm").count()
    await page.click("#confirm" if enrolling else "#verify")


async def sign_out(page: Any) -> None:
    await page.context.clear_cookies()


CONTACTS = [
    ("Martin", "Paul", "0612345678", "", "household"),
    ("Bernard", "Lise", "", "lise@example.fr", "work"),
    ("Petit", "Hugo", "", "", "friend"),
]


async def test_investigation_journey(running: Running, screens: Path) -> None:
    await running.person("dr.martin", "doctor", "rpps:10003456789")
    await running.person("agent.cpam", "cpam_agent", "dep:75")
    await running.person("pharma", "pharmacist", "finess:750012345")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
            refusals: list[str] = []
            page.on(
                "console",
                lambda m: refusals.append(m.text) if "Content Security" in m.text else None,
            )
            # 1. the doctor: patient zero and three contacts, then level 2
            await sign_in(page, running, "dr.martin")
            assert page.url.endswith("/contact/cases")
            await page.goto(f"{running.url}/contact/cases/new")
            await page.fill("#last_name", "Dupont")
            await page.fill("#first_name", "Élodie")
            await page.fill("#birth_date", "1975-03-14")
            await page.fill("#nir", "2 95 10 99 126 111 93")
            await page.fill("#phone", "06 11 22 33 44")
            await page.fill("#diagnosis_date", "2020-10-22")
            await page.fill("#onset_date", "2020-10-20")
            await page.click("#open-case")  # no postcode: refused at the field, input kept
            assert await page.locator("#postcode-error").count() == 1
            assert await page.get_attribute("#postcode", "aria-invalid") == "true"
            assert await page.input_value("#last_name") == "Dupont"
            assert await serious_violations(page) == []
            await page.fill("#postcode", "75011")
            await page.select_option("#exposure_kind", "school")
            await page.fill("#exposure_place", "Lycée Victor-Hugo")
            await page.fill("#exposure_day", "2020-10-19")
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "contact-1-new-case.png", full_page=True)
            await page.click("#open-case")
            assert page.url.endswith("/contact/cases/1")
            assert await page.text_content("#record") == "Dossier CC00000001"
            for last, first, phone, email, relation in CONTACTS:
                await page.fill("#c_last_name", last)
                await page.fill("#c_first_name", first)
                await page.fill("#c_phone", phone)
                await page.fill("#c_email", email)
                await page.fill("#c_address", "3 rue Oberkampf")
                await page.fill("#c_postcode", "75011")
                await page.select_option("#c_relation", relation)
                await page.fill("#c_last_contact", "2020-10-19")
                await page.click("#add")
            assert await page.locator("#contacts tbody tr").count() == 3
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "contact-2-case-doctor.png", full_page=True)
            await page.click("#to-level2")
            await sign_out(page)
            # 2. the health-insurance agent: queue, notify, call, validate
            await sign_in(page, running, "agent.cpam")
            assert await page.locator("#case-1").count() == 1
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "contact-3-queue.png", full_page=True)
            await page.fill("#q", "dupont")
            await page.click("#search")
            await page.click("#case-1 a")
            await page.click("#take")  # into the agent's task list
            assert await page.text_content("#assigned") == "agent.cpam"
            await page.goto(f"{running.url}/contact/cases")
            await page.click("#my-tasks")
            assert await page.text_content("#heading") == "Mes tâches"
            assert await page.locator("#case-1").count() == 1
            assert await serious_violations(page) == []
            await page.click("#case-1 a")
            await page.click("#notify")
            assert "3 contact(s) prévenu(s)." in await page.content()
            await page.screenshot(path=screens / "contact-4-case-agent.png", full_page=True)
            await page.click("#contacts tbody tr:nth-child(3) a")
            assert await page.text_content("#contact-name") == "PETIT Hugo"
            assert "Dupont" not in await page.text_content(".script")
            await page.select_option("#outcome", "no_answer")
            await page.click("#record-call")
            assert await page.locator("#calls li").count() == 1
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "contact-5-call.png", full_page=True)
            await page.goto(f"{running.url}/contact/cases/1")
            await page.click("#validate")
            await sign_out(page)
            # 3. the pharmacist: the masks once, refused the second time
            async with running.service.store.db.connect() as conn:
                prescriptions = await running.service.store.prescriptions_of(conn, 1)
                sent = (
                    await conn.execute(sa.select(sa.func.count()).select_from(notifications))
                ).scalar()
            assert sent == 3
            masks = next(x for x in prescriptions if x.kind is PrescriptionKind.MASKS)
            await sign_in(page, running, "pharma")
            assert page.url.endswith("/contact/prescriptions")
            await page.fill("#code", masks.code.lower())
            await page.click("#check")
            assert "MARTIN Paul" in await page.text_content("#person")
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "contact-6-check.png", full_page=True)
            token = await page.input_value("input[name=csrf_token]")
            await page.click("#consume")
            assert await page.locator("#consume").count() == 0
            assert "Déjà utilisée" in await page.text_content("#state")
            await page.screenshot(path=screens / "contact-7-used.png", full_page=True)
            # the same form posted again (a second tab, a double click): refused
            again = await page.request.post(
                f"{running.url}/contact/prescriptions",
                form={"csrf_token": token, "code": masks.code},
                headers={"Origin": running.url},
            )
            assert again.ok and "Cette prescription a déjà été utilisée." in await again.text()
            await sign_out(page)
            # 4. the agent closes the case
            await sign_in(page, running, "agent.cpam")
            await page.goto(f"{running.url}/contact/cases/1")
            await page.click("#close")
            assert await page.text_content("#status") == "clôturé"
            assert refusals == []
        finally:
            await browser.close()


async def test_level_3_shows_names_only_after_a_reason(running: Running, screens: Path) -> None:
    """The ARS agent's case page: record number only, then the names this once after saying
    why (a reason too short is the field's error, the input kept)."""
    await running.person("ars.idf", "ars_agent", "dep:75")
    doctor, cpam = Access("dr.a", "doctor", "rpps:1"), Access("x", "cpam_agent", "dep:75")
    case = await running.service.open_case(
        doctor,
        CaseInput(person("Dupont", "Élodie"), diagnosis_date=date(2020, 10, 22),
                  onset_date=date(2020, 10, 20)),
    )  # fmt: skip
    await running.service.raise_level(doctor, case.id, Level.CPAM)
    await running.service.raise_level(cpam, case.id, Level.ARS)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
            await sign_in(page, running, "ars.idf")
            await page.goto(f"{running.url}/contact/cases/{case.id}")
            assert await page.locator("#patient").count() == 0
            await page.fill("#reason", "besoin")
            await page.click("#show-names")
            assert await page.locator("#reason-error").count() == 1
            assert await page.input_value("#reason") == "besoin"
            assert await serious_violations(page) == []
            await page.fill("#reason", "cluster au lycée Voltaire : l'école doit joindre l'élève")
            await page.click("#show-names")
            assert "DUPONT Élodie" in (await page.text_content("#patient") or "")
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "contact-8-reveal.png", full_page=True)
            await page.goto(f"{running.url}/contact/cases/{case.id}")
            assert await page.locator("#patient").count() == 0
            await page.screenshot(path=screens / "contact-9-level3.png", full_page=True)
        finally:
            await browser.close()
