"""SI-DEP with the real code service in one process (``cli/wiring.py``): a positive gets a
long code of the organisation SIDEP, valid in the code service, in its notice."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cli.wiring import SidepCodeIssuer
from codes.app import create_app as codes_create_app
from codes.app import mount as codes_mount
from codes.app import new_service as codes_service
from codes.model import Role
from codes.settings import Settings as CodesSettings
from kit.audit import Actor
from protocol.codes import CodeKind, parse_code
from sidep.issuer import ORG_NAME, CodeRefused, HttpCodeIssuer
from sidep.service import SidepService
from tests.sidep.conftest import NOW, lab_result, parsed


async def test_the_in_process_issuer_issues_long_codes(tmp_path: Path) -> None:
    codes = codes_service(CodesSettings(database=f"sqlite:///{tmp_path / 'codes.db'}"))
    await codes.open()
    try:
        issuer = SidepCodeIssuer(codes)
        issued = await issuer.issue_long(date.today())
        kind, canonical = parse_code(issued.code)
        assert kind is CodeKind.LONG
        assert await codes.check(canonical) == "valid"
        assert "code=" in issued.link
        assert (await codes.get_org(ORG_NAME)).role is Role.LAB
        with pytest.raises(CodeRefused):
            await issuer.issue_long(date.today() - timedelta(days=60))
    finally:
        await codes.close()


async def test_the_http_issuer_against_the_code_service(tmp_path: Path) -> None:
    settings = CodesSettings(database=f"sqlite:///{tmp_path / 'codes.db'}")
    codes = codes_service(settings)
    await codes.open()
    _, key = await codes.add_org(ORG_NAME, Role.LAB)
    root = web.Application()
    codes_mount(root, codes_create_app(settings, codes))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        issuer = HttpCodeIssuer(str(server.make_url("")), key)
        issued = await issuer.issue_long(date.today())
        assert parse_code(issued.code)[0] is CodeKind.LONG
        with pytest.raises(CodeRefused):
            await issuer.issue_long(date.today() - timedelta(days=60))
    finally:
        await server.close()
        await codes.close()


async def test_a_positive_gets_a_real_code(service: SidepService, tmp_path: Path) -> None:
    codes = codes_service(CodesSettings(database=f"sqlite:///{tmp_path / 'codes.db'}"))
    await codes.open()
    try:
        service.issuer = SidepCodeIssuer(codes)
        service.clock = time.time
        real_now = datetime.now(UTC)
        days_ago = (NOW - real_now) / timedelta(days=1) + 1 / 24  # an hour ago, really
        await service.ingest(parsed(lab_result("S1", days_ago=days_ago)), Actor("lab", "lab"))
        assert await service.process_notices() == 1
        listed = await codes.list(ORG_NAME)
        assert len(listed) == 1 and listed[0][0].kind is CodeKind.LONG
    finally:
        await codes.close()
