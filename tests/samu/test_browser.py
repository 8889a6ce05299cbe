"""The board in real headless Chromium (Debian's): two pages of Paris watching one event
see a new message within a second without reloading, a page of Lyon does not; the post form
keeps a message in the browser while the board is offline and sends it once when back, even
when an answer is lost. Screenshots go to the test's temporary directory, or to
``$KIT_SCREENSHOTS``."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest

from samu.commands import CONSOLE, OPERATOR
from tests.samu.conftest import PASSWORD, Running

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (pip)")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="no Debian chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KIT_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def signed_in(browser: Any, running: Running, username: str, path: str) -> Any:
    """A new browser context signed in as ``username`` (password, then TOTP), at ``path``."""
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Content Security" in m.text else None)
    page.refusals = refusals
    await page.goto(f"{running.url}{path}")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    await page.fill("#code", pyotp.TOTP(running.secrets[username]).at(running.clock()))
    await page.click("#confirm")
    await page.wait_for_url(f"{running.url}{path}")
    await page.wait_for_selector("#live.on")
    return page


async def until_outbox(page: Any, length: int, seconds: float = 15.0) -> None:
    """Wait until the page's offline outbox holds ``length`` messages (read by the test: the
    page's policy forbids the string evaluation ``wait_for_function`` would use)."""
    deadline = time.monotonic() + seconds
    read = "() => JSON.parse(localStorage.getItem('samu-outbox') || '[]').length"
    while await page.evaluate(read) != length:
        assert time.monotonic() < deadline, f"the outbox never held {length} message(s)"
        await asyncio.sleep(0.05)


async def test_two_pages_see_a_message_live(running: Running, screens: Path) -> None:
    event = await running.service.open_event(
        OPERATOR, CONSOLE, "Attentat gare du Nord", "attack", "75", 48.88, 2.355
    )
    for name, role, scope in (
        ("regul.a", "regulator", "samu:75"),
        ("regul.b", "regulator", "samu:75"),
        ("regul.lyon", "regulator", "samu:69"),
    ):
        await running.person(name, role, scope)
    national = await running.api_key("board", "national")
    path = f"/samu/events/{event.id}"
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            a, b, lyon = [
                await signed_in(browser, running, name, path)
                for name in ("regul.a", "regul.b", "regul.lyon")
            ]
            while running.service.live.count(event.id) < 3:
                await asyncio.sleep(0.01)
            async with aiohttp.ClientSession() as client:
                log = f"{running.url}/samu/api/v1/events/{event.id}/log"
                auth = {"Authorization": f"Bearer {national}"}
                start = time.monotonic()
                async with client.post(
                    log, json={"text": "PMA ouvert rue de Dunkerque", "to": "samu:75"}, headers=auth
                ) as r:
                    first = (await r.json())["id"]
                await asyncio.gather(
                    *(page.wait_for_selector(f"#entry-{first}", timeout=5000) for page in (a, b))
                )
                elapsed = time.monotonic() - start
                async with client.post(
                    log, json={"text": "Message national", "to": "national"}, headers=auth
                ) as r:
                    second = (await r.json())["id"]
            assert elapsed < 1.0, f"{elapsed:.3f} s from posting to both pages"
            # Lyon's page gets the national message, never the one for Paris.
            await lyon.wait_for_selector(f"#entry-{second}", timeout=5000)
            assert await lyon.locator(f"#entry-{first}").count() == 0
            assert "PMA ouvert" in await a.inner_text(f"#entry-{first}")
            assert await a.locator("svg.map #event-departement").count() == 1
            await a.wait_for_selector(f"#entry-{second}")
            # Not available: neither SI-VIC nor the bed service is configured here.
            assert await a.locator("#counts-unavailable").count() == 1
            assert await a.locator("#tension-unavailable").count() == 1
            await a.screenshot(path=screens / "samu-1-board-paris.png", full_page=True)
            await lyon.screenshot(path=screens / "samu-2-board-lyon.png", full_page=True)
            # A page posts: the other sees it live too.
            await b.fill("#text", "Deux équipes SMUR engagées")
            await b.select_option("#to", "samu:75")
            await b.click("#post")
            await a.wait_for_selector("li:has-text('Deux équipes SMUR engagées')", timeout=5000)
            assert a.refusals == [] and b.refusals == []
        finally:
            await browser.close()


async def test_offline_messages_are_sent_once_when_back(running: Running, screens: Path) -> None:
    event = await running.service.open_event(OPERATOR, CONSOLE, "Crue", "flood", "94", 48.79, 2.45)
    await running.person("regul.94", "regulator", "samu:94")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await signed_in(browser, running, "regul.94", f"/samu/events/{event.id}")
            context = page.context
            # Offline: the message stays in the browser.
            await context.set_offline(True)
            await page.fill("#text", "Evacuation de l'EHPAD en cours")
            await page.click("#post")
            await until_outbox(page, 1)
            assert "1" in await page.inner_text("#outbox")
            await page.screenshot(path=screens / "samu-3-offline.png", full_page=True)
            assert await running.service.log(OPERATOR, event.id) == []
            # Back online, the first answer is lost on its way back: the board stored the
            # message but the page does not know, so it sends it again with the same id.
            lost: list[str] = []

            async def lose_answer(route: Any) -> None:
                if not lost:
                    await route.fetch()  # the board receives and stores it...
                    lost.append(route.request.post_data)
                    await route.abort()  # ...but the answer never reaches the page
                else:
                    await route.continue_()

            await page.route("**/api/v1/events/*/log", lose_answer)
            await context.set_offline(False)
            await until_outbox(page, 0)
            await page.wait_for_selector("li:has-text('Evacuation de')", timeout=5000)
            assert len(lost) == 1
            entries = await running.service.log(OPERATOR, event.id)
            assert [e.text for e in entries] == ["Evacuation de l'EHPAD en cours"]
            assert entries[0].client_id in lost[0]
            assert await page.locator("li:has-text('Evacuation de')").count() == 1
            await page.screenshot(path=screens / "samu-4-synced.png", full_page=True)
        finally:
            await browser.close()


async def test_events_and_transfers_pages(running: Running, screens: Path) -> None:
    axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="axe (pip)")
    await running.person("ars.idf", "ars", "region:11")
    await running.person("chef.bicetre", "hospital", "finess:940100043")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(locale="fr-FR")
            page = await context.new_page()
            await page.goto(f"{running.url}/samu/")
            await page.fill("#username", "ars.idf")
            await page.fill("#password", PASSWORD)
            await page.click("#login")
            await page.fill("#code", pyotp.TOTP(running.secrets["ars.idf"]).at(running.clock()))
            await page.click("#confirm")
            # Open an event from the page: the board opens.
            await page.fill("#title", "Canicule")
            await page.fill("#kind", "heatwave")
            await page.fill("#departement", "93")
            await page.fill("#lat", "48.91")
            await page.fill("#lon", "2.48")
            await page.click("#open-event")
            await page.wait_for_selector("#live.on")
            assert "Canicule" in await page.inner_text("h1")
            violations = await axe_api.Axe().run(page)
            serious = [v["id"] for v in violations.response["violations"]
                       if v["impact"] in ("serious", "critical")]  # fmt: skip
            assert serious == []
            await page.goto(f"{running.url}/samu/")
            assert "Canicule" in await page.inner_text("#events")
            await page.screenshot(path=screens / "samu-5-events.png", full_page=True)
            # Request a transfer; the receiving hospital's staff accept it on their page.
            await page.goto(f"{running.url}/samu/transfers")
            fields = (("patient", "MARTIN Paul 1948-03-01"), ("from_finess", "930110051"),
                      ("to_finess", "940100043"), ("departement", "93"),
                      ("reason", "réanimation pleine"))  # fmt: skip
            for field, value in fields:
                await page.fill(f"#{field}", value)
            await page.click("#request-transfer")
            assert "MARTIN Paul" in await page.inner_text("#transfers")
            assert "Transfert demandé." in await page.inner_text("main")
            await page.screenshot(path=screens / "samu-6-transfers.png", full_page=True)
            staff = await (await browser.new_context(locale="fr-FR")).new_page()
            await staff.goto(f"{running.url}/samu/")
            await staff.fill("#username", "chef.bicetre")
            await staff.fill("#password", PASSWORD)
            await staff.click("#login")
            code = pyotp.TOTP(running.secrets["chef.bicetre"]).at(running.clock())
            await staff.fill("#code", code)
            await staff.click("#confirm")
            await staff.wait_for_url(f"{running.url}/samu/transfers")
            await staff.click("#transfers button[value='accepted']")
            assert "accepté" in await staff.inner_text("#transfers .status")
            (transfer,) = await running.service.store.transfers()
            assert transfer.status.value == "accepted"
        finally:
            await browser.close()


async def test_a_long_log_shows_the_latest_and_pages_back(running: Running, screens: Path) -> None:
    """250 entries: the board shows the latest 200 and links to the 50 before them (a page of
    the past, without the live feed); both pages pass axe."""
    axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="axe (pip)")
    event = await running.service.open_event(
        OPERATOR, CONSOLE, "Inondations de la Seine", "flood", "75", 48.85, 2.35
    )
    for i in range(250):
        await running.service.post(OPERATOR, CONSOLE, event.id, f"Point de situation {i}")
    await running.person("regul.long", "regulator", "samu:75")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await signed_in(browser, running, "regul.long", f"/samu/events/{event.id}")
            assert await page.locator("#log li").count() == 200
            assert await page.inner_text("#log li:last-child .text") == "Point de situation 249"
            await page.click("#earlier")
            await page.wait_for_selector("#latest")
            assert await page.locator("#log li").count() == 50
            assert await page.inner_text("#log li:first-child .text") == "Point de situation 0"
            assert await page.locator("#earlier").count() == 0
            assert await page.locator("#live").count() == 0  # no live feed on the past,
            assert await page.locator("#post-form").count() == 0  # nor the form (on the latest)
            violations = await axe_api.Axe().run(page)
            serious = [v["id"] for v in violations.response["violations"]
                       if v["impact"] in ("serious", "critical")]  # fmt: skip
            assert serious == []
            await page.screenshot(path=screens / "samu-7-earlier-entries.png", full_page=True)
            await page.click("#latest")
            await page.wait_for_selector("#live.on")
            # A live entry's time as the server writes the others: Paris time, in French
            # (the browser runs in UTC: it was 04:08:00, beside the others' 05:08).
            live, _ = await running.service.post(OPERATOR, CONSOLE, event.id, "En direct")
            meta = await (await page.wait_for_selector(f"#entry-{live.id} .meta")).inner_text()
            assert "jeudi 10 décembre 2026" in meta and "05:08" in meta, meta
            assert page.refusals == []
        finally:
            await browser.close()
