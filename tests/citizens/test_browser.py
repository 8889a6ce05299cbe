"""The pages in Debian's Chromium: the shared advice cases through the page's own script,
the proof that no answer leaves the page, the map search, the iframe, axe-core's checks, and
the screenshots of docs/citizens.md."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from citizens.advice import load_cases, shipped_rules
from tests.citizens.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENS, Running

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
    running: Running, browser: Any
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
            await page.screenshot(path=SCREENS / "citizens-advice-result.png", full_page=True)
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


async def test_advice_form_errors_keyboard_and_accessibility(
    running: Running, browser: Any
) -> None:
    context = await browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740})
    page = await context.new_page()
    await page.goto(f"{running.url}/citizens/advice/")
    assert await serious_violations(page) == []
    await page.screenshot(path=SCREENS / "citizens-advice-phone.png", full_page=True)
    await page.click("#advice-submit")
    assert await page.get_attribute("#q-age", "aria-invalid") == "true"
    assert await page.evaluate("document.activeElement.id") == "advice-errors"
    assert await serious_violations(page) == []
    await page.keyboard.press("Tab")  # the summary's first link, then the form
    await context.close()


async def test_sites_search_map_and_around_me(running: Running, browser: Any) -> None:
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
    assert await serious_violations(page) == []
    await page.screenshot(path=SCREENS / "citizens-sites.png", full_page=True)
    # keyboard: a marker of the map is reachable and leads to its entry in the list
    first = page.locator("svg.sitemap a.marker").last  # drawn last: the nearest, number 1
    await first.focus()
    await page.keyboard.press("Enter")
    assert page.url.endswith("#site-" + (await page.get_attribute("#sites li", "id") or "")[5:])
    await page.click("#around-me")
    await page.wait_for_url("**lat=45.76400**")
    assert "Lyon" in (await page.text_content("#sites li") or "")
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.screenshot(path=SCREENS / "citizens-sites-phone.png", full_page=True)
    await context.close()


@pytest.mark.xfail(
    strict=True,
    reason="open bug: Chromium shows chrome-error for both iframes from a page routed on "
    "localhost; not yet known whether the CSP 'frame-ancestors *' or the test's set-up",
)
async def test_the_embed_page_works_inside_another_sites_iframe(
    running: Running, browser: Any
) -> None:
    """Another origin (localhost rather than 127.0.0.1) frames the embeddable page; the full
    page refuses to be framed."""
    other = running.url.replace("127.0.0.1", "localhost")
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1000, "height": 900})
    page = await context.new_page()
    host_page = (
        "<!doctype html><html lang='fr'><title>Mairie</title><h1>Site de la mairie</h1>"
        f"<iframe id='embed' title='Lieux de test' width='900' height='700' "
        f"src='{running.url}/citizens/sites/embed?where=Rennes'></iframe>"
        f"<iframe id='full' title='Page complète' src='{running.url}/citizens/sites/'></iframe>"
    )
    await page.route(
        f"{other}/host", lambda route: route.fulfill(body=host_page, content_type="text/html")
    )
    await page.goto(f"{other}/host")
    frame = page.frame_locator("#embed")
    await frame.locator("#sites li").first.wait_for()
    assert "Rennes" in (await frame.locator("#results-title").text_content() or "")
    await frame.locator("#kind-antigen").check()
    await frame.locator("#search").click()
    await frame.locator("#sites li").first.wait_for()
    full = page.frame(url=f"{running.url}/citizens/sites/")
    assert full is None or await full.evaluate("document.body ? document.body.innerText : ''") == ""
    await page.screenshot(path=SCREENS / "citizens-embed.png", full_page=True)
    await context.close()


async def test_index_and_directory_pages_are_accessible(running: Running, browser: Any) -> None:
    from citizens.app import open_accounts
    from citizens.commands import SAMPLE_DIRECTORY
    from citizens.directory import parse_declaration
    from citizens.store import DirectoryStore
    import json

    accounts = open_accounts(running.settings)
    store = DirectoryStore(accounts.db, accounts.audit)
    declarations = [
        parse_declaration(s) for s in json.loads(SAMPLE_DIRECTORY.read_text())["services"]
    ]
    await store.submit_many(declarations, publish=True)
    await store.close()
    context = await browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    for path, name in (("/citizens/", "citizens-index"), ("/citizens/directory/", "citizens-directory"),
                       ("/citizens/directory/submit", "citizens-submit")):  # fmt: skip
        await page.goto(running.url + path)
        assert await serious_violations(page) == [], path
        await page.screenshot(path=SCREENS / f"{name}.png", full_page=True)
    await page.goto(f"{running.url}/citizens/directory/?q=teleconsult&region=53")
    names = await page.locator("#services h3").all_text_contents()
    assert names == ["MédiVisio"]  # national; Cabinet Connecté serves other regions only
    await page.goto(f"{running.url}/citizens/directory/submit")
    await page.fill("#name", "X")
    await page.click("#submit")
    assert await page.get_attribute("#name", "aria-invalid") == "true"
    assert await page.input_value("#name") == "X"
    assert await serious_violations(page) == []
    await page.screenshot(path=SCREENS / "citizens-submit-errors.png", full_page=True)
    await context.close()
