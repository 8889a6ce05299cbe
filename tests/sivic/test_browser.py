"""A hospital member registers a patient, then sends them home, in a real headless Chromium
(Debian's), with axe-core's accessibility rules. Screenshots go to the test's temporary
directory, or to ``$KIT_SCREENSHOTS``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.sivic.conftest import PASSWORD, PITIE, Running

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


async def test_register_then_discharge_a_patient(running: Running, screens: Path) -> None:
    await running.person("infirmier", "staff", f"finess:{PITIE}")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 900})
            refusals: list[str] = []
            page.on(
                "console",
                lambda m: refusals.append(m.text) if "Content Security" in m.text else None,
            )
            await page.goto(f"{running.url}/sivic/")
            await page.fill("#username", "infirmier")
            await page.fill("#password", PASSWORD)
            await page.click("#login")
            await page.fill("#code", pyotp.TOTP(running.secrets["infirmier"]).at(running.clock()))
            await page.click("#confirm")
            assert page.url == f"{running.url}/sivic/establishments/{PITIE}"
            await page.fill("#last_name", "Dupont-Lefèvre")
            await page.fill("#first_name", "Élodie")
            await page.fill("#birth_date", "1960-02-29")
            await page.select_option("#sex", "F")
            await page.select_option("#unit", "crit")
            await page.fill("#status_date", "2020-04-02")
            await page.click("#register")
            assert "Patient registered." in await page.content()
            row = page.locator("#patients tbody tr").first
            assert "Dupont-Lefèvre Élodie" in await row.inner_text()
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "sivic-1-registered.png", full_page=True)
            await row.locator("a").click()
            assert "entry into critical care" in await page.text_content("#history")
            await page.select_option("#status", "home")
            await page.fill("#status_date", "2020-04-03")
            await page.click("#save")
            assert "Returned home" in await page.text_content("#current-status")
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "sivic-2-home.png", full_page=True)
            assert refusals == []
        finally:
            await browser.close()
    snapshot = await running.service.snapshot(running.service.today())
    paris = snapshot.totals(["75"])
    assert (paris.hosp, paris.rad) == (0, 1)
