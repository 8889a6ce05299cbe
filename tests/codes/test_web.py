"""The three journeys in Debian's Chromium, on ``robert dev``'s application: a lab technician,
a doctor and an administrator, each signing in with a password and an authenticator code;
axe-core's accessibility rules on every page (no violation of any impact: minor, moderate,
serious or critical), the keyboard, a phone-sized screen.

Screenshots go to the test's temporary directory, or to ``$CODES_SCREENSHOTS`` when set
(``CODES_SCREENSHOTS=docs/screens pytest tests/codes/test_web.py`` refreshes the
documentation's images).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from PIL import Image

from codes.model import Role
from tests.codes.conftest import PASSWORD, CodesServer, person, read_qr

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright (pip) is needed for the browser tests"
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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CODES_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class Visit:
    """One person's browser tab: pages checked with axe-core, screenshots, CSP refusals."""

    def __init__(self, page: Any, screens: Path, prefix: str) -> None:
        self.page = page
        self.screens = screens
        self.prefix = prefix
        self.refused: list[str] = []
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    async def check(self, name: str, full_page: bool = True) -> None:
        """No accessibility violation of any impact (minor ones too); a screenshot."""
        results = await axe_api.Axe().run(self.page)
        violations = [
            f"{v['impact']} {v['id']}: {[n['target'] for n in v['nodes']]}"
            for v in results.response["violations"]
        ]
        assert violations == [], name
        path = self.screens / f"{self.prefix}-{name}.png"
        await self.page.screenshot(path=path, full_page=full_page)

    async def text(self, selector: str) -> str:
        return " ".join((await self.page.text_content(selector) or "").split())


async def sign_in(visit: Visit, running: CodesServer, username: str, secret: str) -> None:
    """The two steps, enrolling the authenticator app on this first sign-in."""
    page = visit.page
    await page.goto(f"{running.url}/codes/")
    assert page.url == f"{running.url}/codes/login?next=%2Fcodes%2F"
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    assert page.url == f"{running.url}/codes/login/enrol"
    shown = (await page.text_content("#secret") or "").replace(" ", "")
    assert shown == secret
    await page.fill("#code", pyotp.TOTP(secret).at(running.clock()))
    await page.click("#confirm")
    running.clock.advance(30)


def seconds_left(countdown: str) -> int:
    """The seconds a countdown shows ("Valable encore 58 min 59 s")."""
    match = re.fullmatch(r"Valable encore (\d+) min (\d\d) s", countdown)
    assert match, countdown
    return int(match.group(1)) * 60 + int(match.group(2))


async def report(running: CodesServer, code: str) -> tuple[int, str]:
    """What the ROBERT server answers a phone declaring with ``code``."""
    async with aiohttp.ClientSession() as session:
        body = {"token": code, "contacts": []}
        async with session.post(f"{running.url}/api/v6/report", json=body) as r:
            return r.status, (await r.json()).get("error", "")


async def test_lab_journey(
    running: CodesServer, chromium: Any, screens: Path, tmp_path: Path
) -> None:
    """Sign in with two factors, get a field error, issue 10 codes, download the sheets and
    the CSV with its checksum, revoke one and see it refused; keyboard and phone."""
    lab = await running.codes.create_org(
        "LABO-BIOMED-11",
        Role.LAB,
        "Laboratoire Biomed Paris 11",
        "12 boulevard Voltaire\n75011 Paris\nTél. 01 43 55 00 00",
    )
    secret = await person(running.accounts, "jeanne.dupont", lab, display_name="Jeanne Dupont")
    context = await chromium.new_context(locale="fr-FR", viewport=DESKTOP, accept_downloads=True)
    visit = Visit(await context.new_page(), screens, "codes-lab")
    page = visit.page
    await page.goto(f"{running.url}/codes/")
    await visit.check("1-login")
    await sign_in(visit, running, "jeanne.dupont", secret)
    assert page.url == f"{running.url}/codes/lab"
    assert await visit.text("h1") == "Codes pour vos patients"
    assert await visit.text("#signed-in-role") == "laboratoire"
    assert await page.input_value("#test_date") == "2026-03-02"
    await visit.check("2-home")

    await page.fill("#count", "0")
    await page.fill("#test_date", "2026-03-05")
    await page.click("#issue")
    assert await visit.text("#count-error") == "Saisissez un nombre de 1 à 1000."
    assert (await visit.text("#test_date-error")).startswith(
        "La date du test ne peut pas être après aujourd’hui (lundi 2 mars 2026)."
    )
    assert await page.input_value("#test_date") == "2026-03-05"  # kept as typed
    await visit.check("3-field-errors")

    await page.fill("#count", "10")
    await page.fill("#test_date", "2026-03-01")
    await page.click("#issue")
    assert re.fullmatch(rf"{running.url}/codes/lab/batches/[0-9a-f]{{16}}", page.url)
    assert await visit.text(".notice.success") == "10 codes émis."
    assert await page.locator("#codes tbody tr").count() == 10
    assert await visit.text("#expires-at") == "lundi 9 mars 2026, 10:00"
    assert await visit.text("#test-day") == "dimanche 1 mars 2026"
    await visit.check("4-batch")

    async with page.expect_download() as info:
        await page.click("#csv")
    body = Path(await (await info.value).path()).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    assert await visit.text("#sha256") == digest
    lines = body.decode().splitlines()
    assert lines[0] == "code,type,test_date,org,expires_at,link" and len(lines) == 11
    async with page.expect_download() as info:
        await page.click("#csv-sha256")
    checksum = Path(await (await info.value).path()).read_text()
    assert checksum.split() == [digest, (await info.value).suggested_filename[:-7]]
    async with page.expect_download() as info:
        await page.click("#pdf-grid")
    pdf = Path(await (await info.value).path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    codes = [line.split(",")[0] for line in lines[1:]]
    if shutil.which("pdftoppm"):  # else test_handout.py says why it skips
        sheet = tmp_path / "sheet.pdf"
        sheet.write_bytes(pdf)
        command = ["pdftoppm", "-r", "150", "-png", "-singlefile", str(sheet), str(sheet)]
        subprocess.run(command, check=True)
        with Image.open(tmp_path / "sheet.pdf.png") as image:
            found = read_qr(image)
        assert len(found) == 8 and all(any(f"code={c}&" in f for c in codes) for f in found)

    await page.click("#html-page")
    await visit.check("5-handout-html", full_page=False)
    first_qr = await page.locator(".qr svg").first.screenshot()
    with Image.open(io.BytesIO(first_qr)) as image:
        [link] = read_qr(image)
    assert "stopcovid://" not in await page.inner_text("body")  # only inside the QR code
    await page.click("#back")
    await page.click("#html-grid")
    await visit.check("5-handout-html-grid", full_page=False)
    assert await page.locator(".card").count() == 10
    await page.click("#back")

    revoked = codes[0]
    row = page.locator(f"#row-{revoked}")
    await row.get_by_role("button").click()
    assert (
        await visit.text(".notice.success")
        == f"Code {revoked} révoqué : l’application le refusera."
    )
    assert await visit.text(f"#row-{revoked} .state") == "révoqué"
    assert await report(running, revoked) == (401, "code_revoked")
    assert await report(running, codes[1]) == (200, "")

    await page.click("text=Retour aux codes")
    await page.fill("#code", revoked)
    await page.click("#verify")
    assert "Révoqué : l’application le refuse." in await visit.text("#verified")
    await visit.check("6-verified")

    # The keyboard alone: the skip link first, then the form, submitted with Enter.
    await page.goto(f"{running.url}/codes/lab")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    await page.keyboard.press("Enter")
    for _ in range(3):  # the main menu's link, then into the form
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "count":
            break
    assert await page.evaluate("document.activeElement.id") == "count"
    await page.keyboard.press("Control+A")
    await page.keyboard.type("2")
    await page.keyboard.press("Enter")
    assert await visit.text(".notice.success") == "2 codes émis."

    await page.set_viewport_size(PHONE)
    await visit.check("7-batch-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert visit.refused == [], "the page's CSP refused some of the page itself"
    await context.close()
    assert link.startswith("stopcovid://")


async def test_doctor_journey(running: CodesServer, chromium: Any, screens: Path) -> None:
    """Sign in; one short code, large, with its countdown and expiry; a new code; the
    patient declares with it."""
    practice = await running.codes.create_org(
        "CABINET-MARTIN",
        Role.DOCTOR,
        "Cabinet du Dr Anne Martin",
        "3 rue de la Roquette\n75011 Paris",
    )
    secret = await person(running.accounts, "dr.martin", practice, display_name="Dr Anne Martin")
    context = await chromium.new_context(locale="fr-FR", viewport=DESKTOP)
    visit = Visit(await context.new_page(), screens, "codes-doctor")
    page = visit.page
    # The page's clocks (Date, performance.now, timers) under the test's control: they still
    # flow (axe-core needs timers), and run_for moves them on at once.
    await page.clock.install()
    await sign_in(visit, running, "dr.martin", secret)
    assert page.url == f"{running.url}/codes/doctor"
    await visit.check("1-start")

    await page.click("#new-code")
    code = await visit.text("#short-code")
    assert re.fullmatch(r"[A-Z2-9]{6}", code)
    assert await visit.text("#countdown") == "Valable encore 60 min 00 s"
    assert (
        await visit.text("#expires") == "Valable jusqu’au lundi 2 mars 2026, 11:00, une seule fois."
    )
    await visit.check("2-code")
    # Read before the clicks: the page #back loads shows the server's figure again (its clock
    # is virtual and stands still), whenever the read would happen.
    before = seconds_left(await visit.text("#countdown"))
    await page.click("#print")
    await visit.check("2-handout-html", full_page=False)
    assert await page.locator(".paper.handout .code").text_content() == code
    await page.click("#back")
    await page.clock.run_for(61_000)
    after = seconds_left(await visit.text("#countdown"))
    # The page redraws 20 ms past each second: 61 s on it shows 60 s less when the clock lands
    # in those 20 ms, else 61, or 62 with the second the test itself may take. A frozen
    # countdown shows 0.
    assert 60 <= before - after <= 62, (before, after)
    await page.clock.run_for(3540_000)
    assert (
        await visit.text("#countdown")
        == "Ce code a expiré. Donnez un nouveau code à votre patient."
    )
    assert "expired" in (await page.get_attribute("#short-code", "class") or "")
    await visit.check("3-expired")

    await page.click("#new-code")
    fresh = await visit.text("#short-code")
    assert fresh != code and await visit.text("#countdown") == "Valable encore 60 min 00 s"
    assert await report(running, fresh) == (200, "")  # the patient declares
    await page.reload()
    assert await visit.text("#countdown") == "Votre patient s’est déclaré avec ce code."

    await page.set_viewport_size(PHONE)
    await page.click("#new-code")
    await visit.check("4-code-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert visit.refused == [], "the page's CSP refused some of the page itself"
    await context.close()


async def test_administrator_journey(running: CodesServer, chromium: Any, screens: Path) -> None:
    """Sign in; create an organisation (a field error first), add its first person, make an
    API key and use it, revoke it, disable the person; the page in English."""
    hq = await running.codes.create_org("OPERATEUR", Role.ADMIN, "Opérateur national")
    secret = await person(running.accounts, "admin", hq, display_name="Camille Admin")
    context = await chromium.new_context(locale="fr-FR", viewport=DESKTOP)
    visit = Visit(await context.new_page(), screens, "codes-admin")
    page = visit.page
    await sign_in(visit, running, "admin", secret)
    assert page.url == f"{running.url}/codes/admin"
    await visit.check("1-organisations")

    await page.fill("#name", "labo biomed")
    await page.select_option("#role", "lab")
    await page.fill("#address", "12 boulevard Voltaire\n75011 Paris")
    await page.click("#create-org")
    assert "sans espaces ni accents" in await visit.text("#name-error")
    assert await visit.text("#title-error") == (
        "Saisissez le nom complet, tel que les feuilles remises aux patients l’impriment."
    )
    assert await page.input_value("#address") == "12 boulevard Voltaire\n75011 Paris"
    await visit.check("2-field-errors")
    await page.fill("#name", "LABO-BIOMED-11")
    await page.fill("#title", "Laboratoire Biomed Paris 11")
    await page.click("#create-org")
    assert page.url == f"{running.url}/codes/admin/orgs/LABO-BIOMED-11"

    await page.fill("#username", "jeanne.dupont")
    await page.fill("#display_name", "Jeanne Dupont")
    await page.fill("#password", "a long enough password")
    await page.select_option("#time_zone", "Indian/Reunion")
    await page.click("#add-person")
    assert (await visit.text(".notice.success")).startswith("jeanne.dupont peut se connecter")
    await page.click("#new-key-button")
    key = await visit.text("#new-key")
    await visit.check("3-organisation")
    async with aiohttp.ClientSession() as session:
        url = f"{running.url}/codes/api/v1/codes"
        headers = {"Authorization": f"Bearer {key}"}
        async with session.post(url, json={"type": "long"}, headers=headers) as r:
            assert r.status == 200
        await page.reload()  # the key is shown once
        assert await page.locator("#new-key").count() == 0
        await page.locator("#keys").get_by_role("button").click()
        assert "révoquée" in await visit.text("#keys")
        async with session.post(url, json={"type": "long"}, headers=headers) as r:
            assert r.status == 401
    await page.click("#disable-jeanne\\.dupont")
    assert await visit.text("#user-jeanne\\.dupont td:nth-child(3)") == "ne peut pas se connecter"

    await page.click("a[hreflang=en]")
    assert await visit.text("h1") == "Laboratoire Biomed Paris 11"
    assert await visit.text("#people-title") == "People"
    await visit.check("4-organisation-en")
    await page.set_viewport_size(PHONE)
    await page.goto(f"{running.url}/codes/admin")
    await visit.check("5-organisations-phone")
    assert visit.refused == [], "the page's CSP refused some of the page itself"
    await context.close()
    user = await running.accounts.users.find("jeanne.dupont")
    assert user is not None and (user.scope, user.time_zone) == (
        "org:LABO-BIOMED-11",
        "Indian/Reunion",
    )
