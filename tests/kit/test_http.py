"""How every service is mounted (``kit.http.mount_service``) and served alone
(``kit.http.standalone``): redirects to its home, JSON 404 outside it; the one id parser
(``kit.http.row_id``)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kit.http import (
    ROW_ID_MAX,
    BadRequest,
    HttpError,
    NotFound,
    add_route,
    error_body,
    open_error,
    row_id,
    standalone,
)


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


def test_row_id_one_rule_404_in_a_path_400_in_a_query_or_body() -> None:
    assert ROW_ID_MAX == 2**31 - 1
    assert row_id("42", "case", "path") == 42
    assert row_id("0042", "case", "query") == 42
    assert row_id(str(ROW_ID_MAX), "case", "path") == ROW_ID_MAX
    assert row_id(7, "event", "body") == 7
    assert row_id("0", "after", "query", least=0) == 0
    with pytest.raises(NotFound) as refused:
        row_id("9" * 11, "case", "path", missing="no_case")
    assert (refused.value.code, refused.value.message) == ("no_case", "no such case")
    too_large = (str(ROW_ID_MAX + 1), "9" * 20, "9" * 5000, "0")
    for text in too_large:
        with pytest.raises(NotFound):
            row_id(text, "case", "path")
        with pytest.raises(BadRequest, match="an id from 1 to 2147483647"):
            row_id(text, "case", "query")
    for number in (0, -1, ROW_ID_MAX + 1, 10**20):
        with pytest.raises(BadRequest, match="an id from"):
            row_id(number, "event", "body")
    # "²".isdigit() is true and int("²") raises; " 5", "+5", "1_000" pass int() but are no id
    for text in ("abc", "", "²", "١٢", " 5", "+5", "-5", "1_000", "5.0"):
        for where in ("path", "query"):
            with pytest.raises(BadRequest, match="must be a number"):
                row_id(text, "case", where)  # type: ignore[arg-type]
    for value in (True, "5", 5.0, None, [5]):
        with pytest.raises(BadRequest, match="must be a number"):
            row_id(value, "event", "body")


class _Ambiguous(HttpError):
    status, code = 400, "ambiguous"

    def body(self) -> dict[str, object]:
        return super().body() | {"candidates": ["a", "b"]}


async def test_an_error_s_body_is_its_answer_and_open_errors_carry_cors() -> None:
    """``HttpError.body`` is what ``error_response`` sends (a refusal may say more), and
    ``open_error`` renders a public API's refusals readable by other sites' pages."""
    app = web.Application()

    async def refuse(request: web.Request) -> web.Response:
        if "more" in request.query:
            raise _Ambiguous("two of them")
        raise BadRequest("no", "bad_thing")

    add_route(app, "GET", "/open", refuse, render=open_error)
    add_route(app, "GET", "/closed", refuse)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/open?more=1")
        assert r.status == 400 and r.headers["Access-Control-Allow-Origin"] == "*"
        assert await r.json() == {
            "success": False,
            "error": "ambiguous",
            "message": "two of them",
            "candidates": ["a", "b"],
        }
        r = await client.get("/open")
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert await r.json() == error_body("bad_thing", "no")
        r = await client.get("/closed?more=1")
        assert r.status == 400 and "Access-Control-Allow-Origin" not in r.headers
        assert (await r.json())["candidates"] == ["a", "b"]
