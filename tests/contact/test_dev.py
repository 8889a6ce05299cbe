"""Contact Covid inside ``robert dev``: mounted at /contact beside the other services, and the
wiring hook for SI-DEP's feed."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from cli import wiring
from cli.dev import build_app
from kit.db import Database
from server.settings import Settings


async def test_mounted_in_robert_dev(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), captcha="off", embedded_worker=False)
    server = TestServer(build_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(server.make_url("/contact/health")) as r:
                assert r.status == 200 and (await r.json()) == {"status": "ok"}
            async with s.get(server.make_url("/contact/api/v1/cases")) as r:
                assert r.status == 401
    finally:
        await server.close()
    assert (tmp_path / "contact.db").exists()


async def test_feed_source_hook(tmp_path: Path) -> None:
    assert wiring.contact_feed_source(None) is None
    db = Database(f"sqlite:///{tmp_path / 'sidep.db'}")
    await db.migrate()
    try:
        fetch = wiring.contact_feed_source(db)
        assert fetch is not None
        batch = await fetch(0, 10)
        assert batch.events == [] and batch.head == 0
    finally:
        await db.close()
