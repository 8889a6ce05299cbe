"""The pharmacist's stock form and the ARS's regional page in a real headless Chromium
(Debian's), with axe-core's accessibility rules; people sign in with password and TOTP.
Screenshots go to the test's temporary directory, or to ``$KIT_SCREENSHOTS``."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from drugs import app as drugs_app
from drugs.critical_care import NoCriticalCare
from drugs.service import Access, DrugService
from drugs.settings import Settings
from kit.audit import Actor
from kit.auth.people import Accounts
from tests.drugs.conftest import PLACES, T0

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (pip)")
axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="axe (pip)")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="no Debian chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
SECRET = "the drug service's test secret, long enough to derive keys"
PASSWORD = "correct horse battery staple"
PITIE, BICETRE = "750100125", "940100043"


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KIT_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Site:
    def __init__(self, url: str, service: DrugService, accounts: Accounts) -> None:
        self.url, self.service, self.accounts = url, service, accounts
        self.secrets: dict[str, str] = {}

    async def person(self, username: str, role: str, scope: str) -> None:
        _, enrolment = await self.accounts.users.create(
            username, display_name=username.title(), role=role, scope=scope, password=PASSWORD
        )
        self.secrets[username] = enrolment.secret

    async def sign_in(self, page: Any, username: str) -> None:
        await page.goto(f"{self.url}/drugs/")
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await page.click("#login")
        await page.fill("#code", pyotp.TOTP(self.secrets[username]).at(T0))
        await page.click("#confirm")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    settings = Settings(database=f"sqlite:///{tmp_path / 'drugs.db'}", secret=SECRET)
    service = drugs_app.new_service(settings, lambda: T0, NoCriticalCare())
    await service.open()
    await service.load_places(PLACES.read_text(encoding="utf-8"))
    accounts = Accounts(
        service.store.db,
        SECRET,
        "MaPUI",
        api_key_prefix=drugs_app.API_KEY_PREFIX,
        hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
        clock=lambda: T0,
    )
    root = web.Application()
    drugs_app.mount(root, drugs_app.create_app(settings, service, accounts, lambda: T0))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        yield Site(str(server.make_url("")).rstrip("/"), service, accounts)
    finally:
        await server.close()
        await service.close()


async def serious_violations(page: Any) -> list[str]:
    results = await axe_api.Axe().run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def test_pharmacist_reports_and_the_ars_sees_the_move(site: Site, screens: Path) -> None:
    await site.person("pharmacien", "pharmacist", f"finess:{PITIE}")
    await site.person("ars.idf", "ars", "reg:11")
    await site.service.report(
        Access("national", "national"), Actor("seed", "national"), BICETRE, "PROP-500-50", 600, 10
    )
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                locale="fr-FR", viewport={"width": 1280, "height": 900}
            )
            page = await context.new_page()
            refusals: list[str] = []
            page.on(
                "console",
                lambda m: refusals.append(m.text) if "Content Security" in m.text else None,
            )
            await site.sign_in(page, "pharmacien")
            assert page.url == f"{site.url}/drugs/establishments/{PITIE}"
            await page.fill("#PROP-500-50-stock", "5")
            await page.fill("#PROP-500-50-use", "2,5")  # a French decimal comma
            await page.click("#save")
            assert page.url == f"{site.url}/drugs/establishments/{PITIE}"
            row = page.locator("#drug-PROP-500-50")
            assert "2.0" in await row.inner_text()  # 5 / 2.5 days of cover
            assert await row.locator(".alert-critical").count() == 1
            # A drug never reported shows so, not as "ok".
            assert "non déclaré" in await page.locator("#drug-ATRA-50-5").inner_text()
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "drugs-1-stocks.png", full_page=True)
            await page.fill("#PROP-500-50-stock", "cinq")
            await page.click("#save")
            assert await page.locator("#error").count() == 1
            # The service's refusals in French on the French page (they were in English).
            await page.fill("#PROP-500-50-stock", "-1")
            await page.click("#save")
            assert await page.text_content("#error p") == (
                "le stock est un nombre entier d’unités, 0 ou plus"
            )
            await page.set_input_files(
                "#file",
                files=[
                    {
                        "name": "export.csv",
                        "mimeType": "text/csv",
                        "buffer": b"code;stock;daily_use\nKETAMINE 50 mg/5 mL;3;1\n",
                    }
                ],
            )
            await page.click("#send-file")
            assert await page.text_content("#error p") == (
                "ligne 2 : 'KETAMINE 50 mg/5 mL' n’est ni un médicament virtuel ni un produit connu"
            )
            await page.set_input_files(
                "#file",
                files=[{"name": "e.csv", "mimeType": "text/csv", "buffer": b"a;b\n1;2\n"}],
            )
            await page.click("#send-file")
            assert await page.text_content("#error p") == "les colonnes sont code, stock, daily_use"
            await page.goto(f"{site.url}/drugs/establishments/{BICETRE}")
            assert await page.locator("#stocks").count() == 0  # another establishment's
            await context.clear_cookies()

            await site.sign_in(page, "ars.idf")
            assert page.url == f"{site.url}/drugs/regions/11"
            moves = await page.locator("#moves-PROP-500-50 li").all_inner_texts()
            assert len(moves) == 1 and moves[0].startswith("30 ")
            assert f"KREMLIN BICETRE APHP ({BICETRE}) → " in moves[0]
            assert f"PITIE SALPETRIERE ({PITIE}). Le premier a 60.0 jours de couverture" in moves[0]
            assert "il lui manque 30 unités" in moves[0]
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "drugs-2-region.png", full_page=True)
            assert refusals == []
        finally:
            await browser.close()
