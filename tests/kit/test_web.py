"""kit.web: the environment (service templates first, strict), error pages, the QR code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jinja2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from PIL import Image

from kit.http import Conflict, add_fallback
from kit.web import Pages, add_page, content_security_policy, qr_svg, render, setup_pages


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    (folder / "kit").mkdir(parents=True)
    (folder / "svc").mkdir()
    (folder / "svc" / "page.html").write_text(
        '{% extends "kit/base.html" %}{% block main %}<p id="v">{{ value }}</p>{% endblock %}'
    )
    (folder / "svc" / "broken.html").write_text("{{ missing_variable }}")
    return folder


@pytest.fixture
async def site(templates: Path) -> AsyncIterator[str]:
    app = web.Application()
    setup_pages(app, Pages("Service", templates=templates))

    async def page(request: web.Request) -> web.StreamResponse:
        return await render(request, "svc/page.html", value="<b>x</b>")

    async def conflict(request: web.Request) -> web.StreamResponse:
        raise Conflict("this record was closed")

    async def broken(request: web.Request) -> web.StreamResponse:
        return await render(request, "svc/broken.html")

    add_page(app, "GET", "/page", page)
    add_page(app, "GET", "/conflict", conflict)
    add_page(app, "GET", "/broken", broken)
    add_fallback(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_values_are_escaped(site: str) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{site}/page") as r:
        assert '<p id="v">&lt;b&gt;x&lt;/b&gt;</p>' in await r.text()


async def test_refusals_are_pages_or_json(site: str) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(f"{site}/conflict") as r:
            page = await r.text()
            assert r.status == 409 and r.content_type == "text/html"
            assert 'id="error">this record was closed<' in page
            assert "Content-Security-Policy" in r.headers
        async with client.get(f"{site}/conflict", headers={"Accept": "application/json"}) as r:
            assert (r.status, (await r.json())["error"]) == (409, "conflict")


async def test_an_undefined_variable_is_our_fault_not_a_blank(
    site: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as client, client.get(f"{site}/broken") as r:
        assert r.status == 500 and "Traceback" not in await r.text()
    assert "UndefinedError" in caplog.text


def test_a_service_template_overrides_the_kits(templates: Path) -> None:
    (templates / "kit" / "error.html").write_text("service's own error page {{ message }}")
    pages = Pages("Service", templates=templates)
    request = make_mocked_request("GET", "/")
    html = pages.render_now(request, "kit/error.html", 404, error_status=404, message="gone")
    assert html.text == "service's own error page gone"
    env = pages.environment("fr")
    assert isinstance(env.undefined, type) and issubclass(env.undefined, jinja2.StrictUndefined)
    assert env.autoescape is True


def test_embeddable_pages_say_so() -> None:
    assert "frame-ancestors 'none'" in content_security_policy("n")
    assert "frame-ancestors 'self'" in content_security_policy("n", embeddable=True)


def test_the_qr_code_reads_back(tmp_path: Path) -> None:
    import zxingcpp

    text = "otpauth://totp/SI-DEP:dr.martin?secret=JBSWY3DPEHPK3PXP&issuer=SI-DEP"
    svg = str(qr_svg(text, "QR <code>"))
    assert 'aria-label="QR &lt;code&gt;"' in svg and "style=" not in svg
    # Rasterise the SVG path by hand: each "Mx,yh1v1h-1z" is one dark module.
    size = int(svg.split('viewBox="0 0 ')[1].split(" ")[0])
    image = Image.new("L", (size * 8, size * 8), 255)
    for square in svg.split('d="')[1].split('"')[0].split("z")[:-1]:
        x, y = (int(v) for v in square[1:].split("h")[0].split(","))
        image.paste(0, (x * 8, y * 8, x * 8 + 8, y * 8 + 8))
    [found] = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert found.text == text
