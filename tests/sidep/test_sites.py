"""The positive's notice lists the test sites near the person, asked of the citizens service
over HTTP (a small server answering as its ``/api/v1/sites`` does); unset, failing, slow or
talking nonsense, the notice goes out without them, on time."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from kit.audit import Actor
from kit.schema import notification_attachments, notifications
from sidep.service import SidepService
from sidep.sites import SiteFinder
from tests.sidep.conftest import lab_result, parsed

LAB_ACTOR = Actor("finess:750012345", "lab")
SITES = [
    {
        "id": "s1", "name": "Laboratoire des Gobelins", "address": "12 avenue des Gobelins",
        "postcode": "75013", "commune": "Paris 13e", "lat": 48.83, "lon": 2.35,
        "kinds": ["PCR"], "walk_in": True, "appointment_url": None, "distance_km": 0.42,
        "phone": None, "hours": None, "public": True,
    },
    {
        "id": "s2", "name": "Pharmacie de la Place d'Italie", "address": "3 place d'Italie",
        "postcode": "75013", "commune": "Paris 13e", "lat": 48.83, "lon": 2.36,
        "kinds": ["ANTIGEN"], "walk_in": False, "appointment_url": None, "distance_km": 1.5,
        "phone": None, "hours": None, "public": True,
    },
]  # fmt: skip

ASKED = web.AppKey("asked", list[dict[str, str]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def citizens_like(request: web.Request) -> web.Response:
    request.app[ASKED].append(dict(request.query))
    origin = {"label": "75013", "lat": 48.83, "lon": 2.35, "precision": "postcode"}
    return web.json_response({"sites": SITES, "origin": origin})


async def _server(handler: Handler) -> tuple[TestServer, web.Application]:
    app = web.Application()
    app[ASKED] = []
    app.router.add_get("/citizens/api/v1/sites", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, app


@pytest.fixture
async def citizens() -> AsyncIterator[tuple[str, web.Application]]:
    server, app = await _server(citizens_like)
    try:
        yield str(server.make_url("/citizens")), app
    finally:
        await server.close()


async def _sent(service: SidepService) -> dict[str, str]:
    """The queued e-mail and SMS bodies, and the PDF's text, by channel."""
    async with service.store.db.connect() as conn:
        rows = (await conn.execute(sa.select(notifications.c.channel, notifications.c.body))).all()
        pdfs = (await conn.execute(sa.select(notification_attachments.c.content))).scalars()
        pdf = b"".join(pdfs)
    text = b"".join(
        zlib.decompress(chunk.split(b"stream\n", 1)[1].rsplit(b"\nendstream", 1)[0])
        for chunk in pdf.split(b"endobj")
        if b"/FlateDecode" in chunk and b"stream\n" in chunk and b"/Subtype /Image" not in chunk
    )
    return {**{channel: body for channel, body in rows}, "pdf": text.decode("latin-1")}


async def test_the_notice_lists_the_nearest_sites_and_links_the_search(
    service: SidepService, citizens: tuple[str, web.Application]
) -> None:
    url, app = citizens
    service.sites = SiteFinder(url)
    await service.ingest(parsed(lab_result("S1")), LAB_ACTOR)  # postcode 75013
    assert await service.process_notices() == 1
    assert app[ASKED] == [{"postcode": "75013", "limit": "3"}]
    sent = await _sent(service)
    link = f"{url}/sites/?where=75013"
    mail = sent["email"]
    assert "Laboratoire des Gobelins, 12 avenue des Gobelins, 75013 Paris 13e (0,4 km)" in mail
    assert "Pharmacie de la Place d'Italie, 3 place d'Italie, 75013 Paris 13e (1,5 km)" in mail
    assert link in mail
    assert sent["sms"].isascii() and link in sent["sms"]
    assert "Laboratoire des Gobelins" in sent["pdf"] and "0,4 km" in sent["pdf"]
    assert link in sent["pdf"]


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)
    return await citizens_like(request)


async def _broken(request: web.Request) -> web.Response:
    return web.Response(status=500, text="oops")


async def _nonsense(request: web.Request) -> web.Response:
    return web.json_response({"sites": [{"name": 3}, "x", {"address": "no name"}]})


async def _not_json(request: web.Request) -> web.Response:
    return web.Response(text="<html>maintenance</html>", content_type="text/html")


@pytest.mark.parametrize("handler", [_slow, _broken, _nonsense, _not_json])
async def test_without_an_answer_the_notice_goes_out_without_the_sites(
    service: SidepService, handler: Handler
) -> None:
    server, _app = await _server(handler)
    try:
        url = str(server.make_url("/citizens"))
        service.sites = SiteFinder(url, timeout=0.5)
        await service.ingest(parsed(lab_result("S1")), LAB_ACTOR)
        started = time.monotonic()
        assert await service.process_notices() == 1
        assert time.monotonic() - started < 3
        sent = await _sent(service)
        assert "Gobelins" not in sent["email"] and "POSITIF" in sent["email"]
        assert f"{url}/sites/?where=75013" in sent["email"]  # the search page still linked
    finally:
        await server.close()


async def test_an_unreachable_service_or_none_configured(service: SidepService) -> None:
    service.sites = SiteFinder("http://127.0.0.1:9/citizens", timeout=0.5)  # nothing listens
    await service.ingest(parsed(lab_result("S1")), LAB_ACTOR)
    assert await service.process_notices() == 1
    await service.sites.close()
    service.sites = None
    await service.ingest(parsed(lab_result("S2")), LAB_ACTOR)
    assert await service.process_notices() == 1
    async with service.store.db.connect() as conn:
        bodies = (
            await conn.execute(
                sa.select(notifications.c.body)
                .where(notifications.c.channel == "email")
                .order_by(notifications.c.id)
            )
        ).scalars()
        first, second = list(bodies)
    assert "Où se faire tester" in first and "Gobelins" not in first
    assert "Où se faire tester" not in second and "/sites/" not in second


def test_the_link_escapes_the_postcode() -> None:
    finder = SiteFinder("http://h/citizens/")
    assert finder.link("75 013&x=1") == "http://h/citizens/sites/?where=75%20013%26x%3D1"
    assert finder.link(None) == "http://h/citizens/sites/"


HUGE_DISTANCE = (
    '{"sites": [{"name": "Labo", "address": "1 rue A", "distance_km": 1' + "0" * 400 + "}]}"
)
DEEP = '{"sites": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.parametrize("body", [HUGE_DISTANCE, DEEP], ids=["huge-integer", "deeply-nested"])
async def test_an_odd_answer_does_not_block_the_notices(
    service: SidepService, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A huge integer (OverflowError in math.isfinite) or JSON nested too deep
    (RecursionError) is no answer: the notice goes out without the sites instead of staying
    pending at the head of the queue; the log names the error's kind, never the postcode."""

    async def odd(request: web.Request) -> web.Response:
        return web.Response(text=body, content_type="application/json")

    server, _app = await _server(odd)
    try:
        service.sites = SiteFinder(str(server.make_url("/citizens")), timeout=5)
        await service.ingest(parsed(lab_result("S1")), LAB_ACTOR)
        assert await service.process_notices() == 1
        sent = await _sent(service)
        assert "POSITIF" in sent["email"] and "Labo," not in sent["email"]
        warned = [r.getMessage() for r in caplog.records if r.name == "sidep"]
        assert any("Error" in m for m in warned) and not any("75013" in m for m in warned)
        await service.sites.close()
    finally:
        await server.close()


async def test_a_hung_service_is_not_asked_again_for_a_while(service: SidepService) -> None:
    """Notices are handled one after another: after a timeout the finder answers no sites at
    once for ``pause`` seconds (its clock), then asks again."""
    hung, asked = [True], [0]

    async def hangs_then_answers(request: web.Request) -> web.Response:
        asked[0] += 1
        if hung[0]:
            await asyncio.sleep(3)
        return await citizens_like(request)

    now = [1000.0]
    server, _app = await _server(hangs_then_answers)
    try:
        url = str(server.make_url("/citizens"))
        service.sites = SiteFinder(url, timeout=0.5, pause=60.0, clock=lambda: now[0])
        for sample in ("S1", "S2", "S3", "S4"):
            await service.ingest(parsed(lab_result(sample)), LAB_ACTOR)
        started = time.monotonic()
        assert await service.process_notices() == 4
        assert time.monotonic() - started < 1.5  # one timeout, not four
        assert asked[0] == 1
        hung[0] = False
        now[0] += 59.0
        assert (await service.sites.near("75013")).sites == ()
        assert asked[0] == 1
        now[0] += 2.0
        nearby = await service.sites.near("75013")
        assert nearby.sites[0].name == SITES[0]["name"]
        assert asked[0] == 2
        await service.sites.close()
    finally:
        await server.close()


async def test_a_postcode_the_service_cannot_place_pauses_nothing(service: SidepService) -> None:
    """400 or 404 is about one person's postcode, not an outage: that notice gets no sites and
    the next one is asked at once (a pause would drop the sites from everyone's notices)."""
    asked: list[str] = []

    async def refuses_one(request: web.Request) -> web.Response:
        asked.append(request.query["postcode"])
        if request.query["postcode"] == "00000":
            return web.json_response({"error": "unknown_place"}, status=404)
        if request.query["postcode"] == "7501":
            return web.json_response({"error": "bad_postcode"}, status=400)
        return await citizens_like(request)

    now = [1000.0]
    server, _app = await _server(refuses_one)
    try:
        finder = SiteFinder(str(server.make_url("/citizens")), pause=60.0, clock=lambda: now[0])
        assert (await finder.near("00000")).sites == ()
        assert (await finder.near("7501")).sites == ()
        assert (await finder.near("75013")).sites[0].name == SITES[0]["name"]
        assert asked == ["00000", "7501", "75013"]
        await finder.close()
    finally:
        await server.close()
