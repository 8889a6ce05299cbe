"""The issuer page in a real headless Chromium: log in, issue, scan the QR code, report."""

from __future__ import annotations

import base64
import io
import shutil

import aiohttp
import pytest
from PIL import Image

from codes.links import authorities_from_json, verify_link
from codes.model import Role
from tests.codes.conftest import CodesServer, read_qr

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright (pip) is needed for the browser test"
)
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


async def test_issue_a_code_in_the_browser_and_report_with_it(running: CodesServer) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{running.url}/codes/")
            await page.fill("#api_key", "rk1.LAB1.wrong")
            await page.click("#login")
            assert await page.text_content("#error") == "Unknown API key."
            await page.fill("#api_key", key)
            await page.click("#login")
            await page.select_option("#kind", "long")
            await page.fill("#test_date", "2026-03-01")
            await page.click("#issue")
            src = await page.get_attribute("#qr", "src")
            shown = (await page.text_content("#code") or "").strip()
            cookies = await page.context.cookies()
        finally:
            await browser.close()
    assert src is not None and src.startswith("data:image/png;base64,")
    [cookie] = cookies
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    [found_text] = read_qr(image)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{running.url}/codes/api/v1/authorities") as r:
            claims = verify_link(found_text, authorities_from_json(await r.json()))
        assert claims.code == shown and claims.test_date == "2026-03-01"
        body = {"token": claims.code, "contacts": []}
        async with session.post(f"{running.url}/api/v6/report", json=body) as r:
            assert r.status == 200
        async with session.post(f"{running.url}/api/v6/report", json=body) as r:
            assert (r.status, (await r.json())["error"]) == (401, "code_used")


async def test_issue_without_csrf_token_is_refused(running: CodesServer) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    # unsafe=True: the test server is on an IP address, whose cookies aiohttp drops otherwise.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.post(
            f"{running.url}/codes/login", data={"api_key": key}, allow_redirects=False
        ) as r:
            assert r.status == 303
        form = {"kind": "long", "test_date": "2026-03-01", "csrf_token": "forged"}
        async with session.post(f"{running.url}/codes/issue", data=form) as r:
            assert r.status == 403
        form["csrf_token"] = "forged"
        async with session.get(f"{running.url}/codes/") as r:
            page = await r.text()
        form["csrf_token"] = page.split('name="csrf_token" value="')[1].split('"')[0]
        async with session.post(f"{running.url}/codes/issue", data=form) as r:
            assert r.status == 200 and 'id="qr"' in await r.text()
