"""The two-factor sign-in and the antigen form in a real headless Chromium (Debian's), with
axe-core's accessibility rules. Screenshots go to the test's temporary directory, or to
``$KIT_SCREENSHOTS``."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyotp
import pytest

from kit.audit import CONSOLE
from sidep.access import OPERATOR
from sidep.model import Result
from tests.sidep.conftest import LAB, PASSWORD, T0, Running, lab_result, parsed, patient

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


async def test_a_pharmacist_signs_in_and_records_a_positive(
    running: Running, screens: Path
) -> None:
    await running.person("pharma", "tester", f"finess:{LAB}")
    letters = "abcdefghijklmnopqrstuvwxyz"
    seeded = [
        replace(
            lab_result(f"B{n}", Result.POSITIVE if n % 3 == 0 else Result.NEGATIVE,
                       who=patient(last_name=f"Nom{letters[n % 26]}{letters[n // 26]}", nir=None),
                       days_ago=1 + n % 12),
            dep=("48", "13", "75", "2A")[n % 4],
        )
        for n in range(160)
    ]  # fmt: skip
    await running.service.ingest(parsed(*seeded), CONSOLE)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="en-GB", viewport={"width": 1280, "height": 900})
            await page.goto(f"{running.url}/sidep/antigen")
            assert "/sidep/login" in page.url  # not signed in: the sign-in page
            await page.fill("#username", "pharma")
            await page.fill("#password", PASSWORD)
            await page.click("#login")
            # the second factor: a TOTP code (first sign-in: enrolment)
            await page.fill("#code", pyotp.TOTP(running.secrets["pharma"]).at(T0))
            await page.click("#confirm")
            assert page.url == f"{running.url}/sidep/antigen"
            assert await page.input_value("#lab") == LAB
            assert await serious_violations(page) == []
            await page.fill("#last_name", "Durand")
            await page.fill("#first_name", "Léa")
            await page.fill("#birth_date", "1990-04-05")
            await page.select_option("#sex", "F")
            await page.fill("#nir", "269054958815781")  # a wrong key
            await page.fill("#postcode", "13001")
            await page.fill("#phone", "06 11 22 33 44")
            await page.select_option("#result", "P")
            await page.click("#record")
            assert await page.get_attribute("#nir", "aria-invalid") == "true"
            assert "key does not check" in await page.content()
            assert await page.input_value("#last_name") == "Durand"  # the input is kept
            await page.screenshot(path=screens / "sidep-1-bad-nir.png", full_page=True)
            await page.fill("#nir", "269054958815780")
            await page.click("#record")
            content = await page.content()
            assert "Positive result recorded." in content, content[content.find("<main") :][:1500]
            href = await page.get_attribute("#notice", "href")
            assert href is not None and href.endswith("/notice.pdf")
            await page.screenshot(path=screens / "sidep-2-recorded.png", full_page=True)
            await page.goto(f"{running.url}/sidep/dashboard?zone=13")
            assert await page.locator("svg.map path").count() == 96
            assert await page.locator("svg.curve").count() == 3
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "sidep-3-dashboard.png", full_page=True)
        finally:
            await browser.close()
    (row,) = await running.service.results(OPERATOR, CONSOLE, last_name="Durand")
    assert (row.method, row.result, row.last_name, row.dep) == ("ANTIGEN", "P", "Durand", "13")
    assert await running.service.notice_pdf(row.id) is not None
