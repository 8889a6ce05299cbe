"""A long log (1,200 entries, more than a page of 500) read whole: the stream's catch-up, the
JSON API page by page, ``robert samu log``, and the board page showing the latest entries
with a link to the earlier ones; ids too large for the tables are 404/400, never a 500; the
live feed sends an entry whose id is lower than one it already sent (out-of-order commits) and
remembers only the latest ids it sent."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

import samu.web
from cli.main import main
from samu.commands import CONSOLE, OPERATOR
from samu.model import Entry
from samu.store import PAGE
from samu.web import BOARD_ENTRIES, RecentIds
from tests.samu.conftest import Running
from tests.samu.test_web import bearer, next_event

MANY = 1200


async def many_entries(running: Running) -> int:
    """An event with ``MANY`` national messages ``m0`` ... ``m1199``."""
    service = running.service
    event = await service.open_event(OPERATOR, CONSOLE, "Big", "attack", "75", 48.8, 2.3)
    for i in range(MANY):
        await service.post(OPERATOR, CONSOLE, event.id, f"m{i}", "national")
    return event.id


async def test_a_long_log_is_read_whole(running: Running) -> None:
    event = await many_entries(running)
    assert PAGE < MANY and len(await running.service.log(OPERATOR, event, limit=PAGE)) == PAGE
    everything = await running.service.log(OPERATOR, event)
    assert [e.text for e in everything] == [f"m{i}" for i in range(MANY)]
    paris = await running.api_key("board", "samu:75")
    base = f"{running.url}/samu/api/v1/events/{event}"
    async with aiohttp.ClientSession() as client:
        # The stream's catch-up: every entry, then the live ones.
        async with client.get(f"{base}/stream", headers=bearer(paris)) as feed:
            got = [(await asyncio.wait_for(next_event(feed), 5))["text"] for _ in range(MANY)]
            assert got == [f"m{i}" for i in range(MANY)]
            await running.service.post(OPERATOR, CONSOLE, event, "live one", "national")
            assert (await asyncio.wait_for(next_event(feed), 5))["text"] == "live one"
        # The JSON API by pages: next_after until null.
        texts: list[str] = []
        after: int | None = 0
        while after is not None:
            async with client.get(f"{base}/log?after={after}", headers=bearer(paris)) as r:
                assert r.status == 200
                body = await r.json()
            assert len(body["entries"]) <= PAGE
            texts += [e["text"] for e in body["entries"]]
            after = body["next_after"]
        assert texts == [f"m{i}" for i in range(MANY)] + ["live one"]


async def test_the_board_page_shows_the_latest_and_links_to_earlier(running: Running) -> None:
    event = await many_entries(running)
    await running.person("regul.75", "regulator", "samu:75")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        await running.sign_in(client, "regul.75")
        seen: list[str] = []
        url: str | None = f"{running.url}/samu/events/{event}"
        pages = 0
        while url is not None:
            async with client.get(url) as r:
                assert r.status == 200
                html = await r.text()
            texts = re.findall(r'<span class="text">([^<]*)</span>', html)
            assert 0 < len(texts) <= BOARD_ENTRIES
            seen = texts + seen
            earlier = re.search(r'href="([^"]*\?before=\d+)" id="earlier"', html)
            if pages:
                assert 'id="latest"' in html and "data-archive" in html
            else:
                assert texts[-1] == f"m{MANY - 1}" and "data-archive" not in html
            url = f"{running.url}{earlier.group(1)}" if earlier else None
            pages += 1
        assert seen == [f"m{i}" for i in range(MANY)]
        assert pages == -(-MANY // BOARD_ENTRIES)


def test_robert_samu_log_prints_every_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "samu"))
    assert main(["samu", "events", "--open", "Big", "--departement", "75",
                 "--lat", "48.8", "--lon", "2.3", *data]) == 0  # fmt: skip

    async def fill() -> None:
        from samu.app import new_service
        from samu.settings import Settings

        service = new_service(Settings(data_dir=str(tmp_path / "samu")))
        await service.open()
        try:
            for i in range(MANY):
                await service.post(OPERATOR, CONSOLE, 1, f"m{i}", "national")
        finally:
            await service.close()

    asyncio.run(fill())
    capsys.readouterr()
    assert main(["samu", "log", "1", *data]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit("\t", 1)[1] for line in lines] == [f"m{i}" for i in range(MANY)]
    assert main(["samu", "log", "1", "--after", "1190", *data]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 10
    with pytest.raises(SystemExit):
        main(["samu", "log", "99999999999999999999", *data])
    assert "no such event" in capsys.readouterr().err


async def test_ids_too_large_are_404_or_400(running: Running) -> None:
    national = await running.api_key("board", "national")
    big = "99999999999999999999"
    base = f"{running.url}/samu/api/v1"
    async with aiohttp.ClientSession() as client:
        for path in (f"events/{big}", f"events/{big}/log", f"transfers/{big}"):
            async with client.get(f"{base}/{path}", headers=bearer(national)) as r:
                assert r.status == 404, path
                assert (await r.json())["success"] is False
        async with client.post(
            f"{base}/events/{big}/log", json={"text": "x"}, headers=bearer(national)
        ) as r:
            assert r.status == 404
        event = await running.service.open_event(OPERATOR, CONSOLE, "E", "x", "75", 48.8, 2.3)
        async with client.get(f"{base}/events/%C2%B2", headers=bearer(national)) as r:
            assert r.status == 400  # "²".isdigit() is true, and int("²") raises
        for query in (f"log?after={big}", f"log?after=-{big}", f"stream?after={big}",
                      "log?after=%C2%B2", "log?after=1_0"):  # fmt: skip
            url = f"{base}/events/{event.id}/{query}"
            async with client.get(url, headers=bearer(national)) as r:
                assert r.status == 400, query
        async with client.post(
            f"{base}/events/{event.id}/log", json={"text": "x", "annotates": 10**20},
            headers=bearer(national),
        ) as r:  # fmt: skip
            assert r.status == 400
        async with client.post(
            f"{base}/transfers",
            json={"patient": "P", "from_finess": "750100125", "to_finess": "940100043",
                  "departement": "75", "event": 10**20},
            headers=bearer(national),
        ) as r:  # fmt: skip
            assert r.status == 400


async def test_the_feed_sends_an_entry_lower_than_one_already_sent(running: Running) -> None:
    """With several processes, entry 7 may be committed (and relayed) after entry 8."""
    national = await running.api_key("board", "national")
    event = await running.service.open_event(OPERATOR, CONSOLE, "E", "x", "75", 48.8, 2.3)
    first, _ = await running.service.post(OPERATOR, CONSOLE, event.id, "first", "national")
    at = datetime(2026, 12, 10, tzinfo=UTC)

    def entry(entry_id: int, text: str) -> Entry:
        n = "national"
        return Entry(entry_id, event.id, f"id{entry_id}", at, "x", n, n, text, None)

    async with (
        aiohttp.ClientSession() as client,
        client.get(
            f"{running.url}/samu/api/v1/events/{event.id}/stream", headers=bearer(national)
        ) as feed,
    ):
        assert (await asyncio.wait_for(next_event(feed), 5))["text"] == "first"
        running.service.live.publish(entry(first.id + 2, "committed first"))
        running.service.live.publish(entry(first.id + 1, "committed second"))
        running.service.live.publish(entry(first.id, "first, again"))  # sent: skipped
        running.service.live.publish(entry(first.id + 3, "next"))
        got = [(await asyncio.wait_for(next_event(feed), 5))["text"] for _ in range(3)]
    assert got == ["committed first", "committed second", "next"]


async def test_the_feed_remembers_only_the_latest_ids_it_sent(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A board open for days: the ids the stream keeps to skip duplicates are the latest
    SENT_KEPT (1,024), not every one ever sent. Here 4: an entry sent 5 entries ago is
    forgotten (sent again if it came again), the latest are still skipped."""
    monkeypatch.setattr(samu.web, "SENT_KEPT", 4)
    national = await running.api_key("board", "national")
    event = await running.service.open_event(OPERATOR, CONSOLE, "E", "x", "75", 48.8, 2.3)
    first, _ = await running.service.post(OPERATOR, CONSOLE, event.id, "first", "national")
    at = datetime(2026, 12, 10, tzinfo=UTC)

    def entry(entry_id: int, text: str) -> Entry:
        n = "national"
        return Entry(entry_id, event.id, f"id{entry_id}", at, "x", n, n, text, None)

    async with (
        aiohttp.ClientSession() as client,
        client.get(
            f"{running.url}/samu/api/v1/events/{event.id}/stream", headers=bearer(national)
        ) as feed,
    ):
        assert (await asyncio.wait_for(next_event(feed), 5))["text"] == "first"
        for n in range(1, 5):
            running.service.live.publish(entry(first.id + n, f"m{n}"))
        running.service.live.publish(entry(first.id + 4, "m4, again"))  # among the 4: skipped
        running.service.live.publish(entry(first.id, "first, again"))  # 5 ago: forgotten
        got = [(await asyncio.wait_for(next_event(feed), 5))["text"] for _ in range(5)]
    assert got == ["m1", "m2", "m3", "m4", "first, again"]


def test_recent_ids_keep_the_latest() -> None:
    recent = RecentIds(3)
    for entry_id in (1, 2, 3, 3, 4):
        recent.add(entry_id)
    assert len(recent) == 3 and 1 not in recent and all(i in recent for i in (2, 3, 4))
    for entry_id in range(10, 5000):
        recent.add(entry_id)
    assert len(recent) == 3 and len(recent._order) == 3
