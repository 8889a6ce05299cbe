"""``robert dev`` mounts the board beside the other services; in one process it reads the
bed tension from the bed service's object (``cli/wiring.py``), SI-VIC not wired yet."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from cli.dev import build_app
from samu.app import new_service, open_accounts
from samu.commands import CONSOLE, OPERATOR
from samu.settings import Settings as SamuSettings
from server.settings import Settings


async def test_robert_dev_mounts_the_board(tmp_path: Path) -> None:
    board = new_service(SamuSettings.beside(str(tmp_path)))
    await board.open()
    await board.open_event(OPERATOR, CONSOLE, "Crue", "flood", "75", 48.85, 2.35)
    await board.close()
    accounts = open_accounts(SamuSettings.beside(str(tmp_path)))
    _, key = await accounts.api_keys.create("test", "board", "samu:75")
    await accounts.db.close()
    app = build_app(Settings(data_dir=str(tmp_path), captcha="off", embedded_worker=False))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{url}/") as r:
                assert "/samu/" in await r.text()
            async with client.get(f"{url}/samu/health") as r:
                assert r.status == 200
            async with client.get(
                f"{url}/samu/api/v1/events/1", headers={"Authorization": f"Bearer {key}"}
            ) as r:
                body = await r.json()
        assert body["title"] == "Crue"
        assert body["tension"]["territory"] == "dep:75"  # from the bed service in-process
        assert body["counts"]["dep"] == "75"  # from SI-VIC in-process
    finally:
        await server.close()
