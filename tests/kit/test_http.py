"""How every service is mounted (``kit.http.mount_service``) and served alone
(``kit.http.standalone``): redirects to its home, JSON 404 outside it."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kit.http import standalone


async def test_a_service_alone_redirects_home_and_answers_json_elsewhere() -> None:
    app = web.Application()

    async def home(request: web.Request) -> web.Response:
        return web.Response(text="home")

    app.router.add_get("/", home)
    async with TestClient(TestServer(standalone("/demo", app))) as client:
        for path in ("/", "/demo"):
            r = await client.get(path, allow_redirects=False)
            assert r.status == 303 and r.headers["Location"] == "/demo/"
        r = await client.get("/demo/")
        assert r.status == 200 and await r.text() == "home"
        r = await client.get("/elsewhere")
        assert r.status == 404 and r.content_type == "application/json"
