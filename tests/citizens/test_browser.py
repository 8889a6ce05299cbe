"""The pages in Debian's Chromium: the shared advice cases through the page's own script,
the proof that no answer leaves the page, the map search, the iframe, axe-core's checks, and
the screenshots of docs/citizens.md."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from citizens.advice import load_cases, shipped_rules
from citizens.app import open_accounts
from citizens.commands import SAMPLE_DIRECTORY
from citizens.directory import parse_declaration
from citizens.export import export_advice
from citizens.settings import Settings
from citizens.store import DirectoryStore
from kit.audit import AuditFilter
from tests.citizens.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    Running,
    add_moderator,
)

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (pip)")
axe_api = pytest.importorskip("axe_playwright_python.async_playwright", reason="axe (pip)")
pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="no Debian chromium")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def serious_violations(page: Any) -> list[str]:
    results = await axe_api.Axe().run(page)
    return [
        f"{v['id']}: {[n['target'] for n in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def fits_the_width(page: Any) -> bool:
    """No horizontal scrolling: nothing is wider than the viewport (a phone's)."""
    return bool(await page.evaluate("document.documentElement.scrollWidth <= innerWidth"))


async def fill_answers(page: Any, answers: dict[str, Any]) -> None:
    """Answer the form as a person would, from a case's answers."""
    questions = {q["id"]: q for q in shipped_rules().document["questions"]}
    for qid, value in answers.items():
        kind = questions[qid]["type"]
        if kind == "integer":
            await page.fill(f"#q-{qid}", str(value))
        elif kind == "departement":
            await page.select_option(f"#q-{qid}", value)
        elif kind == "boolean":
            await page.check(f"#q-{qid}-{'yes' if value else 'no'}")
        elif kind == "choice":
            await page.check(f"#q-{qid}-{value}")
        else:
            for item in value:
                await page.check(f"#q-{qid}-{item}")


async def test_shared_cases_in_the_browser_and_no_answer_leaves_the_page(
    running: Running, browser: Any, screens: Path
) -> None:
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{running.url}/citizens/advice/")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await context.set_offline(True)  # and it works offline once loaded
    cases = load_cases()
    for n, case in enumerate(cases):
        if n:
            await page.evaluate("document.getElementById('advice-form').reset()")
        await fill_answers(page, case["answers"])
        await page.click("#advice-submit")
        got = await page.eval_on_selector_all("[data-rule]", "els => els.map(e => e.dataset.rule)")
        assert got == case["advice"], case["name"]
        if case["name"] == "household contact, not tested":
            await page.screenshot(path=screens / "citizens-advice-result.png", full_page=True)
    # the engine alone, called with the cases' answers exactly, agrees too
    for case in cases:
        result = await page.evaluate(
            "answers => window.MesConseils.evaluate(window.MesConseils.rules, answers)",
            case["answers"],
        )
        assert result["advice"] == case["advice"]
    assert requests == [], "the page made requests after it loaded"
    async with page.expect_download() as download_info:
        await page.click("#advice-save")
    download = await download_info.value
    saved = (await download.path()).read_text(encoding="utf-8")
    assert "Votre situation" in saved and download.suggested_filename.endswith(".html")
    assert requests == []
    await context.close()


async def test_the_static_export_works_from_files_under_its_own_policy(
    browser: Any, tmp_path: Path
) -> None:
    """``robert advice export``'s files, opened from disk: the page's hashed inline script
    runs under its <meta> CSP (a refused script would leave no advice), gives the shared
    cases' advice, and makes no request."""
    export_advice(tmp_path / "site", "https://robert.example.org/citizens/sites/")
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "Content Security" in m.text else None)
    await page.goto((tmp_path / "site" / "index.html").as_uri())
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for case in load_cases()[:3]:
        await page.evaluate("document.getElementById('advice-form').reset()")
        await fill_answers(page, case["answers"])
        await page.click("#advice-submit")
        got = await page.eval_on_selector_all("[data-rule]", "els => els.map(e => e.dataset.rule)")
        assert got == case["advice"], case["name"]
    assert requests == [] and refusals == []
    await page.click("a[hreflang=en]")
    assert page.url.endswith("/site/en.html")
    assert await page.text_content("#advice-submit") == "See my advice"
    await context.close()


async def test_advice_form_errors_keyboard_and_accessibility(
    running: Running, browser: Any, screens: Path
) -> None:
    context = await browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740})
    page = await context.new_page()
    await page.goto(f"{running.url}/citizens/advice/")
    assert await serious_violations(page) == []
    assert await fits_the_width(page)
    await page.screenshot(path=screens / "citizens-advice-phone.png", full_page=True)
    await page.click("#advice-submit")
    assert await page.get_attribute("#q-age", "aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.id") == "advice-errors"
    assert await serious_violations(page) == []
    await page.keyboard.press("Tab")  # from the summary to its first link, then to the field
    assert await page.evaluate("document.activeElement.getAttribute('href')") == "#q-age-field"
    await page.keyboard.press("Enter")
    assert await page.evaluate("location.hash") == "#q-age-field"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "q-age"
    await page.keyboard.type("70")
    await page.keyboard.press("Enter")  # submits from the keyboard: two answers still missing
    assert await page.get_attribute("#q-age", "aria-invalid") is None
    links = await page.locator("#advice-errors a").evaluate_all("a => a.map(e => e.hash)")
    assert links == ["#q-test-field", "#q-contact-field"]
    await context.close()


async def test_sites_search_map_and_around_me(
    running: Running, browser: Any, screens: Path
) -> None:
    context = await browser.new_context(
        locale="fr-FR",
        viewport={"width": 1280, "height": 900},
        geolocation={"latitude": 45.764, "longitude": 4.8357},
        permissions=["geolocation"],
    )
    page = await context.new_page()
    await page.goto(f"{running.url}/citizens/sites/")
    assert await serious_violations(page) == []
    await page.fill("#where", "75011")
    await page.check("#kind-pcr")
    await page.click("#search")
    assert await page.locator("#sites li").count() == 10
    assert await page.locator("svg.sitemap a.marker").count() == 10
    assert re.fullmatch(r"\d+,\d km", await page.locator("#sites .distance").first.inner_text())
    assert await serious_violations(page) == []
    await page.screenshot(path=screens / "citizens-sites.png", full_page=True)
    # keyboard: a marker of the map is reachable and leads to its entry in the list
    first = page.locator("svg.sitemap a.marker").last  # drawn last: the nearest, number 1
    await first.focus()
    await page.keyboard.press("Enter")
    assert page.url.endswith("#site-" + (await page.get_attribute("#sites li", "id") or "")[5:])
    await page.click("#around-me")
    await page.wait_for_url("**lat=45.76400**")
    assert "Lyon" in (await page.text_content("#sites li") or "")
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await fits_the_width(page)
    await page.screenshot(path=screens / "citizens-sites-phone.png", full_page=True)
    await context.close()


@pytest.fixture
async def other_site() -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """Another web site, a town hall's, on its own HTTP server and origin: ``localhost`` (a
    different site from ``127.0.0.1``, where the service runs). It serves one page, given
    as HTML; the fixture returns that page's address.

    The host page is served for real rather than fulfilled by Playwright's ``page.route``:
    a routed response has no IP address, so Chromium (Local Network Access, enforced since
    version 142) treats it as a public site and refuses to let it frame a loopback address,
    showing its error page in the iframe whatever the framed page's CSP says."""
    html: list[str] = [""]

    async def host(request: web.Request) -> web.Response:
        return web.Response(text=html[0], content_type="text/html")

    app = web.Application()
    app.router.add_get("/mairie", host)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()

    async def serve(page: str) -> str:
        html[0] = page
        return str(server.make_url("/mairie")).replace("127.0.0.1", "localhost")

    try:
        yield serve
    finally:
        await server.close()


async def test_the_embed_page_works_inside_another_sites_iframe(
    running: Running, browser: Any, other_site: Callable[[str], Awaitable[str]], screens: Path
) -> None:
    """Another site frames the embeddable page, which searches, filters and draws its map
    there; the same site cannot frame the full page (CSP ``frame-ancestors 'none'``)."""
    host_url = await other_site(
        "<!doctype html><html lang='fr'><meta charset='utf-8'><title>Mairie de Rennes</title>"
        "<h1>Mairie de Rennes : se faire tester</h1>"
        f"<iframe id='embed' title='Lieux de test' width='900' height='760' "
        f"src='{running.url}/citizens/sites/embed?where=Rennes'></iframe>"
        f"<iframe id='full' title='Page complète' width='300' height='200' "
        f"src='{running.url}/citizens/sites/'></iframe></html>"
    )
    context = await browser.new_context(locale="fr-FR", viewport={"width": 960, "height": 1000})
    page = await context.new_page()
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None)
    await page.goto(host_url)
    assert urlsplit(page.url).hostname == "localhost"
    frame = page.frame_locator("#embed")
    await frame.locator("#sites li").first.wait_for()
    assert "Rennes" in (await frame.locator("#results-title").text_content() or "")
    assert await frame.locator("svg.sitemap a.marker").count() == 10
    embed = next(f for f in page.frames if "/citizens/sites/embed" in f.url)
    assert await embed.evaluate("window.top !== window.self")
    await frame.locator("#kind-antigen").check()
    await frame.locator("#walk-in").check()
    await frame.locator("#search").click()
    await embed.wait_for_url("**kind=ANTIGEN**")  # the frame navigates, the host page stays
    assert urlsplit(page.url).hostname == "localhost"
    await frame.locator("#sites li").first.wait_for()
    for tags in await frame.locator("#sites li").all_inner_texts():
        assert "Antigénique" in tags and "Sans rendez-vous" in tags
    # the full page: refused by Chromium, which shows its error page in that frame instead
    [full] = [f for f in page.frames if f not in (page.main_frame, embed)]
    assert full.url == "chrome-error://chromewebdata/"
    assert [r for r in refusals if "violates" in r and "frame-ancestors 'none'" in r]
    await page.screenshot(path=screens / "citizens-embed.png", full_page=True)
    await context.close()


async def seed_directory(settings: Settings) -> None:
    """The sample declarations, published (as ``robert citizens directory seed`` does)."""
    accounts = open_accounts(settings)
    store = DirectoryStore(accounts.db, accounts.audit)
    samples = json.loads(SAMPLE_DIRECTORY.read_text(encoding="utf-8"))["services"]
    await store.submit_many([parse_declaration(s) for s in samples], publish=True)
    await store.close()


async def test_index_and_directory_pages_are_accessible(
    running: Running, browser: Any, screens: Path
) -> None:
    await seed_directory(running.settings)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    for path, name in (
        ("/citizens/", "citizens-index"),
        ("/citizens/directory/", "citizens-directory"),
        ("/citizens/directory/submit", "citizens-submit"),
    ):
        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.goto(running.url + path)
        assert await serious_violations(page) == [], path
        await page.screenshot(path=screens / f"{name}.png", full_page=True)
        await page.set_viewport_size({"width": 375, "height": 740})
        assert await fits_the_width(page), path
        assert await serious_violations(page) == [], path
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(f"{running.url}/citizens/directory/")
    await page.fill("#q", "téléconsult")
    await page.select_option("#region", "53")
    await page.click("#filter")
    names = await page.locator("#services h3").all_text_contents()
    assert names == ["MédiVisio"]  # national; Cabinet Connecté serves other regions only
    await page.goto(f"{running.url}/citizens/directory/submit")
    await page.fill("#name", "X")
    await page.click("#submit")
    assert await page.get_attribute("#name", "aria-invalid") == "true"
    assert await page.input_value("#name") == "X"
    assert await serious_violations(page) == []
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await fits_the_width(page)
    await page.screenshot(path=screens / "citizens-submit-errors-phone.png", full_page=True)
    await context.close()


async def test_a_declaration_is_published_by_a_moderator_signed_in_with_a_code(
    running: Running, browser: Any, screens: Path
) -> None:
    """A publisher declares a service; it is not public until a moderator, signed in with
    a password and a TOTP code, publishes it; the decision is audited with their name."""
    totp = await add_moderator(running.settings)
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{running.url}/citizens/directory/submit")
    await page.fill("#name", "TéléSoin Bretagne")
    await page.fill("#publisher", "Association Santé Ouest")
    await page.fill("#url", "https://telesoin-bretagne.example.org/")
    await page.fill("#description", "Séances de kinésithérapie et d'orthophonie en vidéo.")
    await page.check("#features-telecare")
    await page.check("#audiences-patients")
    await page.check("#regions-53")
    await page.check("#installation-browser")
    await page.check("#security-hds")
    await page.fill("#contact_email", "contact@telesoin-bretagne.example.org")
    await page.click("#submit")
    assert "examinée" in (await page.text_content(".notice") or "")
    await page.goto(f"{running.url}/citizens/directory/?q=telesoin")
    assert await page.locator("#services h3").count() == 0  # not public yet

    await page.goto(f"{running.url}/citizens/directory/moderation")
    assert page.url == f"{running.url}/citizens/login?next=%2Fcitizens%2Fdirectory%2Fmoderation"
    await page.fill("#username", "modo")
    await page.fill("#password", PASSWORD)
    await page.click("#login")
    assert page.url.startswith(f"{running.url}/citizens/login/code")
    await page.fill("#code", totp.now())
    await page.click("#verify")
    assert page.url == f"{running.url}/citizens/directory/moderation"
    assert await page.text_content("#signed-in") == "Camille Modératrice"
    [cookie] = [c for c in await context.cookies() if c["name"] == "citizens_session"]
    assert cookie["path"] == "/citizens/" and cookie["httpOnly"]
    assert "TéléSoin Bretagne" in (await page.text_content("#pending") or "")
    assert "contact@telesoin-bretagne.example.org" in (await page.text_content("#pending") or "")
    assert await serious_violations(page) == []
    await page.screenshot(path=screens / "citizens-moderation.png", full_page=True)
    await page.set_viewport_size({"width": 375, "height": 740})  # a moderator's phone
    assert await fits_the_width(page)
    assert await serious_violations(page) == []
    await page.screenshot(path=screens / "citizens-moderation-phone.png", full_page=True)
    await page.goto(f"{running.url}/citizens/directory/moderation?lang=en")
    assert await page.get_attribute("html", "lang") == "en"
    assert await fits_the_width(page)
    assert await serious_violations(page) == []
    await page.set_viewport_size({"width": 1280, "height": 900})
    assert await serious_violations(page) == []
    await page.click("#pending li button[value=publish]")
    assert page.url == f"{running.url}/citizens/directory/moderation"
    assert await page.locator("#none-pending").count() == 1

    await page.goto(f"{running.url}/citizens/directory/?q=telesoin")
    assert await page.locator("#services h3").all_text_contents() == ["TéléSoin Bretagne"]
    api = await page.request.get(f"{running.url}/citizens/api/v1/directory?q=telesoin")
    [entry] = (await api.json())["services"]
    assert entry["regions"] == ["53"] and "contact_email" not in entry
    await page.click("#logout")
    await page.goto(f"{running.url}/citizens/directory/moderation")
    assert page.url.startswith(f"{running.url}/citizens/login")
    await context.close()

    accounts = open_accounts(running.settings)
    entries = await accounts.audit.query(
        accounts.db, AuditFilter(object_type="directory_entry"), limit=10
    )
    await accounts.db.close()
    assert [(e.actor, e.action) for e in entries][:2] == [
        ("modo", "validate"),
        ("publisher", "create"),
    ]


ENGLISH_PAGES = (
    "/citizens/?lang=en",
    "/citizens/advice/?lang=en",
    "/citizens/sites/?lang=en",
    "/citizens/sites/?lang=en&where=75011&kind=PCR",
    "/citizens/sites/?lang=en&where=99999",
    "/citizens/sites/embed?lang=en&where=Rennes",
    "/citizens/directory/?lang=en",
    "/citizens/directory/submit?lang=en",
    "/citizens/login?lang=en",
)


async def test_the_english_pages_are_accessible_too(running: Running, browser: Any) -> None:
    """axe-core on the English version of every public page, at a desktop's and a phone's
    width, plus the English pages' error states (advice and declaration)."""
    await seed_directory(running.settings)
    context = await browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    for path in ENGLISH_PAGES:
        for width, height in ((1280, 900), (375, 740)):
            await page.set_viewport_size({"width": width, "height": height})
            await page.goto(running.url + path)
            assert await page.get_attribute("html", "lang") == "en", path
            assert await serious_violations(page) == [], (path, width)
            assert await fits_the_width(page), (path, width)
    await page.goto(f"{running.url}/citizens/advice/?lang=en")
    await page.click("#advice-submit")
    assert await page.get_attribute("#q-age", "aria-invalid") == "true"
    assert await serious_violations(page) == []
    await fill_answers(page, load_cases()[4]["answers"])
    await page.click("#advice-submit")
    assert await page.locator("[data-rule]").count() > 0
    assert await serious_violations(page) == []
    await page.goto(f"{running.url}/citizens/directory/submit?lang=en")
    await page.fill("#name", "X")
    await page.click("#submit")
    assert await page.get_attribute("#name", "aria-invalid") == "true"
    assert await page.get_attribute("html", "lang") == "en"
    assert await serious_violations(page) == []
    await context.close()


async def test_overseas_and_ambiguous_searches_in_the_browser(
    running: Running, browser: Any, screens: Path
) -> None:
    """97400 (La Réunion) lists its sites without the metropolitan map; "Saint-Denis" asks
    which commune and a click on a candidate searches by its postcode. axe and the phone's
    width on both, in French and English."""
    from tests.citizens.test_api import REUNION_SITES

    running.sites_file.write_text(REUNION_SITES, encoding="utf-8")
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    for _ in range(50):  # the file is re-read every second
        await page.goto(f"{running.url}/citizens/sites/?where=97400")
        if await page.locator("#sites li").count():
            break
        await page.wait_for_timeout(100)
    assert await page.locator("#sites li").count() == 2
    assert await page.locator("svg.sitemap").count() == 0
    assert "Outre-mer" in (await page.text_content("#overseas-note") or "")
    assert await serious_violations(page) == []
    await page.screenshot(path=screens / "citizens-sites-overseas.png", full_page=True)
    await page.goto(f"{running.url}/citizens/sites/?where=Saint-Denis")
    assert await page.get_attribute("#where", "aria-invalid") == "true"
    assert await page.locator("#candidates a").count() == 2
    await page.set_viewport_size({"width": 375, "height": 740})
    assert await fits_the_width(page)
    assert await serious_violations(page) == []
    await page.screenshot(path=screens / "citizens-sites-ambiguous-phone.png", full_page=True)
    await page.click("#candidates a >> text=974")
    assert "where=97400" in page.url
    assert "Saint-Denis (97400)" in (await page.text_content("#results-title") or "")
    assert await fits_the_width(page)
    for where in ("97400", "Saint-Denis"):
        path = f"/citizens/sites/?lang=en&where={where}"
        await page.goto(running.url + path)
        assert await serious_violations(page) == [], path
    await context.close()
