"""The staff's update and the regional dashboard in a real headless Chromium (Debian's),
with axe-core's accessibility rules. Screenshots go to the test's temporary directory, or to
``$KIT_SCREENSHOTS``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pyotp
import pytest

from beds.access import Access
from beds.model import Counts, Source
from kit.audit import Actor
from tests.beds.conftest import BICETRE, PASSWORD, PITIE, Running

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


OVERFLOWS = """() => {
  const wrap = document.querySelector('#parts').closest('.table-wrap');
  const sparklines = [];
  for (const cell of document.querySelectorAll('#parts td.spark')) {
    const svg = cell.querySelector('svg');
    if (!svg) continue;
    const c = cell.getBoundingClientRect(), s = svg.getBoundingClientRect();
    if (s.left < c.left - 0.5 || s.right > c.right + 0.5 || s.top < c.top - 0.5
        || s.bottom > c.bottom + 0.5 || s.width < 20) {
      sparklines.push(cell.parentElement.id);
    }
  }
  return {table: wrap.scrollWidth > wrap.clientWidth + 1, sparklines};
}"""


async def overflows(page: Any) -> dict[str, Any]:
    """Whether the dashboard's table overflows its box, and the rows whose sparkline leaves
    its cell (or is squeezed under 20 px)."""
    result: dict[str, Any] = await page.evaluate(OVERFLOWS)
    return result


async def sign_in(page: Any, running: Running, username: str) -> None:
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    totp = pyotp.TOTP(running.secrets[username])
    await page.fill("#code", totp.at(running.clock()))
    await page.click("#confirm")


async def test_staff_takes_one_bed_in_two_clicks(running: Running, screens: Path) -> None:
    await running.person("infirmiere", "staff", f"finess:{PITIE}")
    unit = await running.service.store.unit_by_code(PITIE, "REA")
    assert unit is not None
    await running.service.update(
        Access("national", "national"), Actor("seed", "national"), unit.id,
        Counts(110, 0, 100, 10, 40), Source.API,
    )  # fmt: skip
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
            refusals: list[str] = []
            page.on(
                "console",
                lambda m: refusals.append(m.text) if "Content Security" in m.text else None,
            )
            await page.goto(f"{running.url}/beds/")
            await sign_in(page, running, "infirmiere")
            assert page.url == f"{running.url}/beds/establishments/{PITIE}"
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "beds-1-form.png", full_page=True)
            # Every column of the form fits at desktop width (no sideways scrolling).
            assert await page.evaluate(
                "(() => { const w = document.querySelector('#units').closest('.table-wrap');"
                " return w.scrollWidth <= w.clientWidth + 1; })()"
            )
            # One bed less: click 1, "−" under Available; click 2, Save.
            await page.click(f"#unit-{unit.id} button.minus[data-target='u{unit.id}-available']")
            assert await page.input_value(f"#u{unit.id}-occupied") == "101"
            await page.screenshot(path=screens / "beds-2-one-less.png", full_page=True)
            await page.click("#save")
            assert "Enregistré." in await page.content()
            await page.screenshot(path=screens / "beds-3-saved.png", full_page=True)
            # On a phone each unit is a card: nothing scrolls sideways, one bed less still
            # takes two clicks.
            await page.set_viewport_size({"width": 390, "height": 844})
            assert await page.evaluate(
                "(() => { const w = document.querySelector('#units').closest('.table-wrap');"
                " return w.scrollWidth <= w.clientWidth + 1"
                " && document.documentElement.scrollWidth <= window.innerWidth; })()"
            )
            label = page.locator(f"#unit-{unit.id} td[data-label='Disponibles']")
            assert await label.count() == 1
            await label.locator("button.minus").click()
            await page.screenshot(path=screens / "beds-6-form-phone.png", full_page=True)
            await page.click("#save")
            assert "Enregistré." in await page.content()
            state = await running.service.store.states(unit_ids=[unit.id])
            assert state[0].counts == Counts(110, 0, 102, 8, 40) and state[0].source == "form"
            assert refusals == []
        finally:
            await browser.close()


async def test_minus_with_no_bed_available_changes_nothing(running: Running) -> None:
    """ "−" under Available at 0 takes no bed: occupied stays as it was (it went up by one on
    every click) and the row is not marked changed."""
    await running.person("infirmiere", "staff", f"finess:{PITIE}")
    unit = await running.service.store.unit_by_code(PITIE, "REA")
    assert unit is not None
    await running.service.update(
        Access("national", "national"), Actor("seed", "national"), unit.id,
        Counts(110, 0, 110, 0, 40), Source.API,
    )  # fmt: skip
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
            await page.goto(f"{running.url}/beds/")
            await sign_in(page, running, "infirmiere")
            minus = f"#unit-{unit.id} button.minus[data-target='u{unit.id}-available']"
            await page.click(minus)
            await page.click(minus)
            assert await page.input_value(f"#u{unit.id}-available") == "0"
            assert await page.input_value(f"#u{unit.id}-occupied") == "110"
            assert await page.text_content("#pending") == ""
            # "+" then "−": back where it started.
            await page.click(f"#unit-{unit.id} button.plus[data-target='u{unit.id}-available']")
            assert await page.input_value(f"#u{unit.id}-occupied") == "109"
            await page.click(minus)
            assert await page.input_value(f"#u{unit.id}-available") == "0"
            assert await page.input_value(f"#u{unit.id}-occupied") == "110"
        finally:
            await browser.close()


async def test_regional_dashboard_with_map_and_curves(running: Running, screens: Path) -> None:
    await running.person("ars.idf", "ars", "reg:11")
    national, seed = Access("national", "national"), Actor("seed", "national")
    for finess, covid in ((PITIE, 130), (BICETRE, 30)):
        unit = await running.service.store.unit_by_code(finess, "REA")
        assert unit is not None
        initial = unit.initial
        for day in range(3):
            c = max(0, min(covid - 20 * (2 - day), initial + 40))
            await running.service.update(
                national, seed, unit.id, Counts(initial, 40, c, initial + 40 - c, c), Source.API
            )
            await running.service.snapshot()
            if day < 2:
                running.clock.advance(86400)
        running.clock.now -= 2 * 86400
    running.clock.advance(2 * 86400)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
            await page.goto(f"{running.url}/beds/")
            await sign_in(page, running, "ars.idf")
            assert page.url.endswith("/beds/dashboard?territory=reg:11")
            assert await page.text_content("#territory") == "Tension hospitalière: Île-de-France"
            assert (
                await page.locator("svg.map path[data-dep='75']").get_attribute("fill")
                == "#f7c66b"  # 130 / 207 initial: alert
            )
            assert await page.locator("svg.curve polyline").count() == 1
            # The pictures speak the reader's language too (their words were English).
            curve_words = await page.locator("svg.curve").text_content() or ""
            assert "alerte 60 %" in curve_words and "crise 80 %" in curve_words
            assert "alert " not in curve_words and "crisis" not in curve_words
            assert "100 % 100 %" not in curve_words
            assert await page.text_content("#curve-title") == "Taux de tension, 7 derniers jours"
            assert (
                await page.text_content("#map-title") == "Tension par département : Île-de-France"
            )
            assert await page.locator("#part-75").count() == 1
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "beds-4-dashboard.png", full_page=True)
            # The 7-day sparklines stay inside their cells and the table inside the page, at
            # desktop and phone widths.
            assert await page.locator("#part-75 td.spark svg").count() == 1
            assert await overflows(page) == {"table": False, "sparklines": []}
            await page.set_viewport_size({"width": 390, "height": 844})
            assert await overflows(page) == {"table": False, "sparklines": []}
            assert await page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            )  # the page itself never scrolls sideways: on a phone each row is a card
            await page.screenshot(path=screens / "beds-5-dashboard-phone.png", full_page=True)
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.click("#part-75 a")
            assert await page.text_content("#territory") == "Tension hospitalière: Paris"
        finally:
            await browser.close()
