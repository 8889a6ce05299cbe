"""The board over real HTTP: the JSON API with API keys, idempotent posting, the live feed
(server-sent events) reaching the right scopes only, and the links to SI-VIC and the bed
service through small servers speaking their contracts."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from samu.links import HttpCounts, HttpTension
from tests.samu.conftest import Clock, Running, start_board


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def open_event(running: Running, client: aiohttp.ClientSession, dep: str = "75") -> int:
    national = await running.api_key("national", "national")
    async with client.post(
        f"{running.url}/samu/api/v1/events",
        json={"title": "Attentat", "kind": "attack", "departement": dep, "lat": 48.87, "lon": 2.36},
        headers=bearer(national),
    ) as r:
        assert r.status == 201, await r.text()
        body = await r.json()
    assert body["region"] == "11" and body["status"] == "open"
    return int(body["id"])


async def next_event(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The next server-sent event's data (comments and retry lines skipped)."""
    data = None
    while True:
        line = (await response.content.readline()).decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and data is not None:
            return data


async def test_posting_is_idempotent_and_scoped(running: Running) -> None:
    paris = await running.api_key("board", "samu:75")
    lyon = await running.api_key("board", "samu:69")
    async with aiohttp.ClientSession() as client:
        event = await open_event(running, client)
        log = f"{running.url}/samu/api/v1/events/{event}/log"
        message = {"text": "12 victims at the station", "to": "region:11"}
        message["client_id"] = str(uuid.uuid4())
        async with client.post(log, json=message, headers=bearer(paris)) as r:
            assert r.status == 201
            first = await r.json()
        async with client.post(log, json=message, headers=bearer(paris)) as r:
            assert r.status == 200  # a resend: the entry stored first, nothing new
            assert await r.json() == first
        async with client.get(log, headers=bearer(paris)) as r:
            assert [e["id"] for e in (await r.json())["entries"]] == [first["id"]]
        async with client.get(log, headers=bearer(lyon)) as r:
            assert (await r.json())["entries"] == []
        # Refusals are JSON 4xx.
        async with client.post(
            log, json={"text": "x", "to": "samu:69"}, headers=bearer(paris)
        ) as r:
            assert r.status == 403 and (await r.json())["error"]
        async with client.post(
            log, json={"text": "x", "client_id": "nope"}, headers=bearer(paris)
        ) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_client_id"
        async with client.post(log, data=b"{", headers=bearer(paris)) as r:
            assert r.status == 400
        async with client.get(
            f"{running.url}/samu/api/v1/events/999/log", headers=bearer(paris)
        ) as r:
            assert r.status == 404
        async with client.get(log) as r:
            assert r.status == 401


async def test_the_live_feed_reaches_the_right_scopes(running: Running) -> None:
    paris = await running.api_key("board", "samu:75")
    lyon = await running.api_key("board", "samu:69")
    national = await running.api_key("board", "national")
    async with aiohttp.ClientSession() as client:
        event = await open_event(running, client)
        base = f"{running.url}/samu/api/v1/events/{event}"
        async with (
            client.get(f"{base}/stream", headers=bearer(paris)) as paris_feed,
            client.get(f"{base}/stream", headers=bearer(lyon)) as lyon_feed,
        ):
            assert paris_feed.headers["Content-Type"] == "text/event-stream"
            while running.service.live.count(event) < 2:
                await asyncio.sleep(0.01)
            async with client.post(
                f"{base}/log", json={"text": "for Paris", "to": "samu:75"}, headers=bearer(national)
            ) as r:
                assert r.status == 201
            async with client.post(
                f"{base}/log", json={"text": "for all", "to": "national"}, headers=bearer(national)
            ) as r:
                assert r.status == 201
            got = await asyncio.wait_for(next_event(paris_feed), 5)
            assert (got["text"], got["to"]) == ("for Paris", "samu:75")
            assert (await asyncio.wait_for(next_event(paris_feed), 5))["text"] == "for all"
            # Lyon's first event is the national one: the message for Paris never came.
            assert (await asyncio.wait_for(next_event(lyon_feed), 5))["text"] == "for all"
        # A page reconnecting with Last-Event-ID gets what it missed, as its scope allows.
        async with client.get(
            f"{base}/stream", headers={**bearer(lyon), "Last-Event-ID": "0"}
        ) as again:
            assert (await asyncio.wait_for(next_event(again), 5))["text"] == "for all"


async def test_transfers_over_http(running: Running) -> None:
    paris = await running.api_key("board", "samu:75")
    bicetre = await running.api_key("hospital", "finess:940100043")
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{running.url}/samu/api/v1/transfers",
            json={"patient": "DURAND Marie", "from_finess": "750100125",
                  "to_finess": "940100043", "departement": "75", "reason": "ECMO"},
            headers=bearer(paris),
        ) as r:  # fmt: skip
            assert r.status == 201
            transfer = await r.json()
        url = f"{running.url}/samu/api/v1/transfers/{transfer['id']}"
        async with client.post(
            f"{url}/status", json={"status": "accepted"}, headers=bearer(bicetre)
        ) as r:
            assert r.status == 200 and (await r.json())["status"] == "accepted"
        async with client.post(
            f"{url}/status", json={"status": "arrived"}, headers=bearer(paris)
        ) as r:
            assert r.status == 409
        async with client.get(f"{running.url}/samu/api/v1/transfers", headers=bearer(bicetre)) as r:
            assert [t["patient"] for t in (await r.json())["transfers"]] == ["DURAND Marie"]


SIVIC_KEY, BEDS_KEY = "sivic_test_key", "beds_test_key"
COUNTS = {
    "dep": "75", "region": "11", "date": "2020-04-08", "hosp": 4210, "rea": 1089, "conv": 2900,
    "ssr_usld": 200, "other": 21, "rad": 5201, "dc": 1190, "incid_hosp": 310, "incid_rea": 40,
    "incid_dc": 61, "incid_rad": 280, "as_of": "2020-04-08T18:00:00Z",
}  # fmt: skip
TENSION = {
    "territory": "dep:75", "covid_critical": 1089, "initial_capacity": 454,
    "tension_rate": 2.4, "occupied": 1200, "available": 15, "stale_units": 2,
    "as_of": "2020-04-08T18:05:00Z",
}  # fmt: skip


async def contract_servers() -> tuple[TestServer, list[dict[str, str]]]:
    """SI-VIC's counts and the beds' tension, as their contracts say (keys checked)."""
    asked: list[dict[str, str]] = []

    async def counts(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SIVIC_KEY}":
            return web.json_response({"error": "unauthorized"}, status=401)
        asked.append(dict(request.query))
        return web.json_response({**COUNTS, "dep": request.query.get("dep")})

    async def tension(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {BEDS_KEY}":
            return web.json_response({"error": "unauthorized"}, status=401)
        asked.append(dict(request.query))
        return web.json_response({**TENSION, "territory": request.query["territory"]})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="boom")

    app = web.Application()
    app.router.add_get("/sivic/api/v1/counts", counts)
    app.router.add_get("/beds/api/v1/tension", tension)
    app.router.add_get("/broken/sivic/api/v1/counts", broken)
    app.router.add_get("/broken/beds/api/v1/tension", broken)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, asked


async def test_the_board_shows_counts_and_tension(tmp_path: Path, clock: Clock) -> None:
    others, asked = await contract_servers()
    base = str(others.make_url("")).rstrip("/")
    board, server = await start_board(
        tmp_path, clock, HttpCounts(base, SIVIC_KEY), HttpTension(base, BEDS_KEY)
    )
    try:
        reader = await board.api_key("board", "samu:75")
        async with aiohttp.ClientSession() as client:
            event = await open_event(board, client)
            async with client.get(
                f"{board.url}/samu/api/v1/events/{event}", headers=bearer(reader)
            ) as r:
                body = await r.json()
        assert body["counts"] == COUNTS
        assert body["tension"] == TENSION
        assert {"dep": "75"} in asked and {"territory": "dep:75"} in asked
        # Failing or refusing services read as not available, never as an error.
        for source in (HttpCounts(f"{base}/broken", SIVIC_KEY), HttpCounts(base, "wrong")):
            assert await source.counts("75") is None
        assert await HttpTension(f"{base}/broken", BEDS_KEY).tension("75") is None
        assert await HttpTension("http://127.0.0.1:9", BEDS_KEY).tension(None) is None
    finally:
        await server.close()
        await board.service.close()
        await others.close()


async def test_unset_links_read_not_available(running: Running) -> None:
    reader = await running.api_key("board", "samu:75")
    async with aiohttp.ClientSession() as client:
        event = await open_event(running, client)
        async with client.get(
            f"{running.url}/samu/api/v1/events/{event}", headers=bearer(reader)
        ) as r:
            body = await r.json()
    assert r.status == 200 and body["counts"] is None and body["tension"] is None
    assert body["may_address"] == ["samu:75", "region:11", "zone:paris", "national"]
