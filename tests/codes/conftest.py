"""Fixtures of the code service: the service on each database (SQLite, PostgreSQL), and the
ROBERT server with the code service mounted beside it, as ``robert dev`` runs them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from cli.dev import build_app
from client_sim.clock import VirtualClock
from codes.app import new_service
from codes.service import CodeService
from codes.settings import Settings as CodesSettings
from kit.testing import database_url
from server.settings import Settings
from tests.server.conftest import Running

__all__ = ["database_url"]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC))


@pytest.fixture
async def service(database_url: str, clock: VirtualClock) -> AsyncIterator[CodeService]:
    """The code service on a fresh database of each kind, opened."""
    opened = new_service(CodesSettings(database=database_url), clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


class CodesServer(Running):
    """A started ROBERT server with the code service mounted at /codes."""


@pytest.fixture
async def running(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[CodesServer]:
    """``robert dev``'s application on SQLite files in tmp_path."""
    settings = Settings(data_dir=str(tmp_path), captcha="off", embedded_worker=False)
    app = build_app(settings, clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    from server.api.appkeys import SERVICE

    try:
        yield CodesServer(server, app[SERVICE].codes)  # type: ignore[arg-type]
    finally:
        await server.close()


def read_qr(image: object) -> list[str]:
    """The texts of the QR codes in an image. Only QR is looked for: a QR pattern can also
    read, by chance, as a 1D barcode (about one image in a hundred), which is not a finding."""
    import zxingcpp

    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    return [f.text for f in found]
