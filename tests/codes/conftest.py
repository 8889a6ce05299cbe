"""Fixtures of the code service: each store backend (Redis database 14), an issuer, a server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from client_sim.clock import VirtualClock
from server.app import create_app
from server.codes.issuer import CodeIssuer
from server.codes.store import open_issuer_store
from server.codes.web import ISSUER
from server.settings import Settings
from server.store import open_store
from tests.server.conftest import Running, backend_url

CODES_REDIS_DB = 14


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend in turn (Redis database 14)."""
    with backend_url(request.param, tmp_path, CODES_REDIS_DB) as url:
        yield url


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC))


@pytest.fixture
async def issuer(store_url: str, clock: VirtualClock) -> AsyncIterator[CodeIssuer]:
    """A code service over freshly opened stores."""
    store, issuers = open_store(store_url), open_issuer_store(store_url)
    await store.open()
    await issuers.open()
    try:
        yield CodeIssuer(store, issuers, clock=clock)
    finally:
        await issuers.close()
        await store.close()


class CodesServer(Running):
    """A started ROBERT server with the code service mounted."""

    def __init__(self, server: TestServer) -> None:
        super().__init__(server)
        self.issuer: CodeIssuer = server.app[ISSUER]


@pytest.fixture
async def running(
    tmp_path: Path, store_url: str, clock: VirtualClock
) -> AsyncIterator[CodesServer]:
    settings = Settings(
        data_dir=str(tmp_path), store=store_url, captcha="off", embedded_worker=False
    )
    server = TestServer(create_app(settings, clock=clock), host="127.0.0.1")
    await server.start_server()
    try:
        yield CodesServer(server)
    finally:
        await server.close()


def read_qr(image: object) -> list[str]:
    """The texts of the QR codes in an image. Only QR is looked for: a QR pattern can also
    read, by chance, as a 1D barcode (about one image in a hundred), which is not a finding."""
    import zxingcpp

    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [f.text for f in found]
