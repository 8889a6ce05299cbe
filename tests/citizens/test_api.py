"""The service over real HTTP: the sites API of the contract, its errors, the pages' headers
(only the embeddable page may be framed by other sites), the reload under load."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import aiohttp
import pytest

from citizens.settings import SHIPPED_SITES, Settings
from kit.settings import SettingsError
from tests.citizens.conftest import SECRET, Running, start


async def get(url: str) -> tuple[int, dict[str, str], object]:
    async with aiohttp.ClientSession() as session, session.get(url) as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, dict(r.headers), body


async def test_sites_api_answers_the_contract(running: Running) -> None:
    status, headers, body = await get(f"{running.url}/citizens/api/v1/sites?postcode=75011&limit=3")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert isinstance(body, dict)
    sites = body["sites"]
    assert len(sites) == 3
    for site in sites:
        assert {"id", "name", "address", "postcode", "commune", "lat", "lon", "kinds",
                "walk_in", "appointment_url", "distance_km"} <= site.keys()  # fmt: skip
        assert set(site["kinds"]) <= {"PCR", "ANTIGEN"} and isinstance(site["walk_in"], bool)
    distances = [s["distance_km"] for s in sites]
    assert distances == sorted(distances) and distances[0] < 2
    assert body["origin"]["label"].startswith("Paris 11e")


async def test_sites_api_filters_and_other_origins(running: Running) -> None:
    base = f"{running.url}/citizens/api/v1/sites"
    _, _, body = await get(f"{base}?commune=Lyon&kind=PCR&walk_in=1&limit=5")
    assert isinstance(body, dict) and body["sites"]
    assert all("PCR" in s["kinds"] and s["walk_in"] for s in body["sites"])
    _, _, near = await get(f"{base}?lat=43.2965&lon=5.3811&limit=1")
    assert isinstance(near, dict) and near["sites"][0]["commune"] == "Marseille"


async def test_sites_api_errors_are_json_4xx(running: Running) -> None:
    """Each refusal says why in JSON, readable by another site's page as the answers are
    (CORS on the errors too: a browser hides an answer without it)."""
    base = f"{running.url}/citizens/api/v1/sites"
    for query, status, code in (
        ("", 400, "missing_place"),
        ("?postcode=7501", 400, "bad_postcode"),
        ("?postcode=99999", 404, "unknown_place"),
        ("?commune=Atlantis", 404, "unknown_place"),
        ("?lat=91&lon=2", 400, "bad_coordinates"),
        ("?lat=nan&lon=2", 400, "bad_coordinates"),
        ("?postcode=75011&kind=SEROLOGY", 400, "bad_kind"),
        ("?postcode=75011&limit=1000", 400, "bad_limit"),
        ("?postcode=75011&commune=Paris", 400, "missing_place"),
    ):
        got, headers, body = await get(base + query)
        assert (got, body["error"]) == (status, code), query  # type: ignore[index]
        assert headers["Access-Control-Allow-Origin"] == "*", query


async def test_only_the_embed_page_may_be_framed_elsewhere(running: Running) -> None:
    _, headers, page = await get(f"{running.url}/citizens/sites/?where=75011")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert 'id="sites"' in str(page)
    _, headers, page = await get(f"{running.url}/citizens/sites/embed?where=75011")
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "X-Frame-Options" not in headers
    assert "connect-src" not in csp and "default-src 'none'" in csp
    assert "<svg" in str(page) and 'target="_blank"' in str(page)
    _, headers, _ = await get(f"{running.url}/citizens/advice/")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


async def test_a_page_search_that_finds_no_place_keeps_the_input(running: Running) -> None:
    status, _, page = await get(f"{running.url}/citizens/sites/?where=Atlantis")
    assert status == 404 and 'value="Atlantis"' in str(page) and 'aria-invalid="true"' in str(page)


async def test_sites_are_reloaded_without_downtime(running: Running) -> None:
    """Requests keep succeeding while the file is replaced (by a rename) and re-read; the
    new sites appear, and a broken file leaves them served."""
    url = f"{running.url}/citizens/api/v1/sites?postcode=75011&limit=1"
    original = running.sites_file.read_text(encoding="utf-8")
    statuses: list[int] = []
    stop = asyncio.Event()

    async def hammer() -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                async with session.get(url) as r:
                    statuses.append(r.status)

    task = asyncio.create_task(hammer())
    new = running.sites_file.with_suffix(".new")
    header, *_ = original.splitlines()
    new.write_text(
        f"{header}\nNEW1;Centre Voltaire;1 bd Voltaire;75011;Paris;;48.85834;2.37952;PCR;oui;"
        ";;;tout public;2020-11-03\n" + "\n".join(original.splitlines()[1:]) + "\n",
        encoding="utf-8",
    )
    new.replace(running.sites_file)
    for _ in range(60):
        _, _, body = await get(url)
        if body["sites"][0]["id"] == "NEW1":  # type: ignore[index]
            break
        await asyncio.sleep(0.1)
    assert body["sites"][0]["id"] == "NEW1"  # type: ignore[index]
    running.sites_file.write_text("not a sites file", encoding="utf-8")
    await asyncio.sleep(1.5)
    _, _, meta = await get(f"{running.url}/citizens/api/v1/sites/meta")
    assert "missing column" in meta["last_error"]  # type: ignore[index]
    _, _, body = await get(url)
    assert body["sites"][0]["id"] == "NEW1"  # type: ignore[index]
    stop.set()
    await task
    assert len(statuses) > 20 and set(statuses) == {200}
    shutil.copy(SHIPPED_SITES, running.sites_file)


async def test_health_and_redirects(running: Running) -> None:
    status, _, body = await get(f"{running.url}/citizens/health")
    assert status == 200 and body["status"] == "ok"  # type: ignore[index]
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{running.url}/citizens/sites?where=75011", allow_redirects=False
        ) as r:
            assert r.status == 303 and r.headers["Location"] == "/citizens/sites/?where=75011"
        async with session.get(f"{running.url}/citizens/nowhere") as r:
            assert r.status == 404


async def test_a_declaration_without_any_box_ticked_gets_the_form_again(running: Running) -> None:
    """A form posted with no checkbox ticked has no such field at all: the page comes back
    with its errors and the typed input (it once was a 500)."""
    url = f"{running.url}/citizens/directory/submit"
    jar = aiohttp.CookieJar(unsafe=True)  # keep the session cookie of an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(url) as r:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await r.text())
        assert token is not None
        form = {"csrf_token": token.group(1), "name": "Téléconsult'Ouest"}
        async with session.post(url, data=form, headers={"Origin": running.url}) as r:
            page = await r.text()
            assert r.status == 422
    assert "Téléconsult&#39;Ouest" in page and 'id="features-error"' in page


async def test_behind_a_tls_proxy_the_public_origin_is_trusted(tmp_path: Path) -> None:
    """With ``public_url`` (nginx terminating TLS in front), the session cookie is Secure and
    scoped to /citizens/, a form posted from the public origin passes the CSRF check, one
    from another origin does not, and the embed code shows the public address."""
    settings = Settings(
        data_dir=str(tmp_path), secret=SECRET, public_url="https://robert.example.org"
    )
    server, url = await start(settings)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/citizens/directory/submit") as r:
                page = await r.text()
                cookie = r.cookies["citizens_session"]
            assert cookie["secure"] and cookie["path"] == "/citizens/" and cookie["httponly"]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            form = {"csrf_token": token.group(1), "name": "Téléconsult'Ouest"}
            for origin, status in (
                ("https://robert.example.org", 422),  # the form again, with its errors
                ("https://evil.example.net", 403),
            ):
                headers = {"Origin": origin, "Cookie": f"citizens_session={cookie.value}"}
                async with session.post(
                    f"{url}/citizens/directory/submit", data=form, headers=headers
                ) as r:
                    assert r.status == status, origin
            async with session.get(f"{url}/citizens/sites/") as r:
                assert "https://robert.example.org/citizens/sites/embed" in await r.text()
    finally:
        await server.close()


@pytest.mark.parametrize("value", ["robert.example.org", "https://robert.example.org/citizens"])
def test_public_url_must_be_an_origin(value: str) -> None:
    with pytest.raises(SettingsError, match="public_url"):
        Settings(public_url=value).validate()


REUNION_SITES = (
    "id;name;address;postcode;commune;lat;lon;kinds;walk_in\n"
    "R1;Labo du Barachois (fictif);1 rue de Paris;97400;Saint-Denis;-20.8789;55.4504;PCR;non\n"
    "R2;Pharmacie Saint-Pierre (fictive);2 rue X;97410;Saint-Pierre;-21.3393;55.4781;ANTIGEN;oui\n"
    "M1;Laboratoire de Mamoudzou (fictif);3 rue Y;97600;Mamoudzou;-12.7806;45.2278;PCR;oui\n"
)


async def test_overseas_postcodes_and_communes_are_found(running: Running) -> None:
    """97400 is Saint-Denis (La Réunion), from communes.csv's overseas rows; a search there
    lists no site across the ocean (the shipped sites are all in metropolitan France), and
    the page says why there is no map."""
    base = f"{running.url}/citizens/api/v1/sites"
    status, _, body = await get(f"{base}?postcode=97400&limit=3")
    assert status == 200 and isinstance(body, dict)
    assert body["origin"]["label"] == "Saint-Denis (97400)"
    assert body["origin"]["precision"] == "commune" and body["origin"]["lat"] < -20
    assert body["sites"] == []  # not Paris, 9,000 km away
    for query, label in (
        ("commune=Mamoudzou", "Mamoudzou (976)"),
        ("postcode=97200", "Fort-de-France (97200)"),
        ("postcode=97300", "Cayenne (97300)"),
        ("postcode=97110", "Pointe-à-Pitre (97110)"),
        ("commune=Le%20Tampon", "Le Tampon (974)"),
    ):
        status, _, body = await get(f"{base}?{query}")
        assert status == 200 and body["origin"]["label"] == label, query  # type: ignore[index]
    status, _, page = await get(f"{running.url}/citizens/sites/?where=97400")
    assert status == 200 and 'id="overseas-note"' in str(page) and "<svg" not in str(page)
    assert 'id="no-results"' in str(page)


async def test_overseas_results_are_listed_without_the_map(running: Running) -> None:
    running.sites_file.write_text(REUNION_SITES, encoding="utf-8")
    base = f"{running.url}/citizens/api/v1/sites"
    for _ in range(50):  # the file is re-read every second
        _, _, body = await get(f"{base}?postcode=97400&limit=3")
        if isinstance(body, dict) and body["sites"]:
            break
        await asyncio.sleep(0.1)
    assert isinstance(body, dict)
    assert [s["id"] for s in body["sites"]] == ["R1", "R2"]  # Mamoudzou is 1,400 km away
    assert body["sites"][1]["distance_km"] == pytest.approx(51.9, abs=1)
    for path in ("/citizens/sites/?where=97400", "/citizens/sites/embed?where=97410"):
        status, _, page = await get(running.url + path)
        assert status == 200 and "<svg" not in str(page), path
        assert 'id="overseas-note"' in str(page) and 'id="site-R1"' in str(page), path
    _, _, page = await get(f"{running.url}/citizens/sites/?where=Mamoudzou")
    assert 'id="site-M1"' in str(page) and 'id="site-R1"' not in str(page)


async def test_a_commune_name_several_communes_share_is_not_guessed(running: Running) -> None:
    """Saint-Denis is in Seine-Saint-Denis and in La Réunion: the API answers 400 with the
    candidates and their postcodes, the page asks which, linking each by its postcode."""
    base = f"{running.url}/citizens/api/v1/sites"
    status, headers, body = await get(f"{base}?commune=saint-denis&limit=3")
    assert status == 400 and isinstance(body, dict) and body["error"] == "ambiguous_commune"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert [(c["name"], c["departement"], c["postcodes"][0]) for c in body["candidates"]] == [
        ("Saint-Denis", "974", "97400"),
        ("Saint-Denis", "93", "93200"),
    ]
    assert "give the postcode" in body["message"]
    status, _, body = await get(f"{base}?commune=Saint-Pierre")  # 974 and 972 (97250)
    assert status == 400 and body["error"] == "ambiguous_commune"  # type: ignore[index]
    status, _, body = await get(f"{base}?commune=Rennes")  # one Rennes: found as before
    assert status == 200 and body["origin"]["label"] == "Rennes (35)"  # type: ignore[index]
    status, _, page = await get(f"{running.url}/citizens/sites/?where=Saint-Denis&kind=PCR")
    assert status == 422 and 'aria-invalid="true"' in str(page)
    assert "Plusieurs communes portent ce nom" in str(page)
    assert 'href="/citizens/sites/?lang=fr&amp;where=93200&amp;kind=PCR"' in str(page)
    assert 'href="/citizens/sites/?lang=fr&amp;where=97400&amp;kind=PCR"' in str(page)
    status, _, page = await get(f"{running.url}/citizens/sites/embed?where=Saint-Denis")
    assert status == 422 and 'href="/citizens/sites/embed?lang=fr&amp;where=93200"' in str(page)


async def test_directory_api_refuses_unknown_parameters(running: Running) -> None:
    base = f"{running.url}/citizens/api/v1/directory"
    status, _, body = await get(f"{base}?region=53&free=1&q=soin")
    assert status == 200 and body == {"services": []}
    status, headers, body = await get(f"{base}?regions=53&free=1&page=2")
    assert status == 400 and isinstance(body, dict) and body["error"] == "unknown_parameter"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert body["message"].startswith("unknown parameter(s): page, regions (known: q, feature")
    status, _, body = await get(f"{base}?region=99")
    assert status == 400 and body["error"] == "bad_region"  # type: ignore[index]
