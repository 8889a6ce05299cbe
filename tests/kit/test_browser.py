"""The sign-in pages in a real headless Chromium (Debian's), with axe-core's accessibility rules.

Screenshots go to the test's temporary directory, or to ``$KIT_SCREENSHOTS`` when set (to look
at them: ``KIT_SCREENSHOTS=/tmp/kit-screens pytest tests/kit/test_browser.py``).
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from PIL import Image

from tests.kit.demo import PASSWORD, Clock, Demo, running_demo

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright (pip) is needed for the browser test"
)
axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="axe (pip)")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian chromium is not installed (apt-get install chromium)",
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("KIT_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    async with running_demo(f"sqlite:///{tmp_path}/demo.db", Clock(T0)) as running:
        yield running


async def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations of the page, as 'rule: nodes' lines."""
    results = await axe_api.Axe().run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def read_qr(png: bytes) -> list[str]:
    import zxingcpp

    image = Image.open(io.BytesIO(png))
    return [f.text for f in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


async def test_sign_in_enrol_land_and_sign_out_in_chromium(demo: Demo, screens: Path) -> None:
    await demo.accounts.users.create(
        "dr.martin", display_name="Dr Anne Martin", role="doctor", scope="dep:75",
        password=PASSWORD,
    )  # fmt: skip
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                locale="fr-FR", viewport={"width": 1280, "height": 800}
            )
            page = await context.new_page()
            refusals: list[str] = []
            page.on(
                "console",
                lambda m: refusals.append(m.text) if "Content Security Policy" in m.text else None,
            )
            await page.goto(f"{demo.url}/")
            assert page.url == f"{demo.url}/login?next=%2F"
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "1-login.png", full_page=True)

            await page.fill("#username", "dr.martin")
            await page.fill("#password", "not the password")
            await page.click("#login")
            assert await page.text_content("#error") == "Identifiant ou mot de passe incorrect."
            assert await page.input_value("#username") == "dr.martin"
            assert await page.input_value("#password") == ""
            await page.screenshot(path=screens / "2-wrong-password.png", full_page=True)

            await page.fill("#password", PASSWORD)
            await page.click("#login")
            assert page.url == f"{demo.url}/login/enrol"
            secret = (await page.text_content("#secret") or "").replace(" ", "")
            qr_png = await page.locator("#qr svg").screenshot()
            [uri] = read_qr(qr_png)
            assert pyotp.parse_uri(uri).secret == secret
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "3-enrol.png", full_page=True)

            totp = pyotp.TOTP(secret)
            wrong = f"{(int(totp.at(demo.clock())) + 1) % 1_000_000:06d}"
            await page.fill("#code", wrong)
            await page.click("#confirm")
            assert "Ce code n’est pas valide" in (await page.text_content("#code-error") or "")
            assert await page.get_attribute("#code", "aria-invalid") == "true"
            await page.screenshot(path=screens / "4-wrong-code.png", full_page=True)

            await page.fill("#code", totp.at(demo.clock()))
            await page.click("#confirm")
            assert page.url == f"{demo.url}/"
            assert await page.text_content("h1") == "Dossiers"
            assert await page.text_content("#updated") == "jeudi 10 décembre 2026, 05:08"
            assert await page.text_content("#signed-in") == "Dr Anne Martin"
            assert await page.text_content("#signed-in-role") == "médecin"
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "5-home.png", full_page=True)
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies["kit_session"]["httpOnly"]
            assert cookies["kit_session"]["sameSite"] == "Lax"

            await page.set_viewport_size({"width": 375, "height": 740})
            await page.screenshot(path=screens / "6-home-phone.png", full_page=True)
            await page.keyboard.press("Tab")
            focused = await page.evaluate("document.activeElement.textContent")
            assert focused == "Aller au contenu"  # the skip link comes first
            await page.screenshot(path=screens / "7-skip-link-focused.png")

            await page.click("#logout")
            assert page.url == f"{demo.url}/login"
            assert "Vous êtes déconnecté(e)." in await page.content()
            await page.goto(f"{demo.url}/")
            assert page.url.startswith(f"{demo.url}/login")
            assert refusals == [], "the page's CSP refused some of the page itself"
        finally:
            await browser.close()


async def test_english_login_page_is_accessible_on_a_phone(demo: Demo, screens: Path) -> None:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 375, "height": 740}, locale="en-GB")
            await page.goto(f"{demo.url}/login")
            assert await page.text_content("h1") == "Sign in"
            assert await serious_violations(page) == []
            await page.screenshot(path=screens / "8-login-en-phone.png", full_page=True)
        finally:
            await browser.close()
