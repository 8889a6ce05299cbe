"""Through real HTTP: the issuer API, the report endpoint, QR images, rate limits."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from client_sim.clock import VirtualClock
from codes.app import open_service, standalone_app
from codes.links import authorities_from_json, verify_link
from codes.model import CodeState, Role
from codes.qr import qr_png, qr_svg
from codes.settings import Settings as CodesSettings
from server.app import create_app
from server.codegate import HttpCodeGate
from server.settings import Settings
from tests.codes.conftest import CodesServer, read_qr


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def issue(
    running: CodesServer, session: aiohttp.ClientSession, key: str, **body: object
) -> list[dict[str, str]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(f"{running.url}/codes/api/v1/codes", json=body, headers=headers) as r:
        answer = await r.json()
        assert r.status == 200, answer
        return list(answer["codes"])


async def report(
    running: CodesServer, session: aiohttp.ClientSession, code: str
) -> tuple[int, str]:
    body = {"token": code, "contacts": []}
    async with session.post(f"{running.url}/api/v6/report", json=body) as r:
        return r.status, (await r.json()).get("error", "")


async def test_concurrent_reports_with_one_code_exactly_one_succeeds(
    running: CodesServer, session: aiohttp.ClientSession
) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    for _ in range(3):
        [code] = await issue(running, session, key, type="long", testDate="2026-03-01")
        results = await asyncio.gather(*(report(running, session, code["code"]) for _ in range(4)))
        assert sorted(results)[0] == (200, "")
        assert sorted(results)[1:] == [(401, "code_used")] * 3


async def test_expired_and_revoked_codes_get_distinct_errors(
    running: CodesServer, session: aiohttp.ClientSession, clock: VirtualClock
) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    first, second = await issue(running, session, key, type="long", count=2)
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{running.url}/codes/api/v1/codes/revoke"
    async with session.post(url, json={"code": first["code"]}, headers=headers) as r:
        assert r.status == 200
    assert await report(running, session, first["code"]) == (401, "code_revoked")
    clock.advance(7 * 86_400 + 1)
    assert await report(running, session, second["code"]) == (401, "code_expired")


async def test_qr_decodes_to_a_link_signed_by_a_listed_authority(
    running: CodesServer, session: aiohttp.ClientSession
) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    [code] = await issue(running, session, key, type="long", testDate="2026-03-01")
    async with session.get(f"{running.url}/codes/api/v1/authorities") as r:
        authorities = authorities_from_json(await r.json())
    [found_text] = read_qr(Image.open(io.BytesIO(qr_png(code["link"]))))
    assert found_text == code["link"]
    claims = verify_link(found_text, authorities)
    assert (claims.code, claims.org, claims.test_date) == (code["code"], "LAB1", "2026-03-01")
    assert qr_svg(code["link"]).startswith("<svg")
    assert await report(running, session, claims.code) == (200, "")
    assert await report(running, session, claims.code) == (401, "code_used")


async def test_failed_reports_are_rate_limited_per_client(
    running: CodesServer, session: aiohttp.ClientSession
) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    [good] = await issue(running, session, key, type="long")
    for _ in range(10):
        assert await report(running, session, "0f8fad5b-d9cb-469f-a165-70867728950e") == (
            401,
            "code_unknown",
        )
    assert await report(running, session, "0f8fad5b-d9cb-469f-a165-70867728950e") == (
        429,
        "too_many_attempts",
    )
    # Even a good code waits: the client is blocked, not the code.
    assert await report(running, session, good["code"]) == (429, "too_many_attempts")


async def test_issuer_verify_is_authenticated_and_rate_limited(
    running: CodesServer, session: aiohttp.ClientSession
) -> None:
    _, key = await running.codes.add_org("LAB1", Role.LAB)
    [code] = await issue(running, session, key, type="long")
    url = f"{running.url}/codes/api/v1/codes/verify"
    async with session.post(url, json={"code": code["code"]}) as r:
        assert r.status == 401
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(url, json={"code": code["code"]}, headers=headers) as r:
        assert (await r.json())["state"] == "valid"
    statuses = []
    for _ in range(31):
        async with session.post(url, json={"code": "ABCDEF"}, headers=headers) as r:
            statuses.append(r.status)
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    async with session.get(f"{running.url}/codes/api/v1/codes", headers=headers) as r:
        assert [c["state"] for c in (await r.json())["codes"]] == ["valid"]


async def test_the_robert_server_consumes_codes_over_http(
    tmp_path: Path, clock: VirtualClock, session: aiohttp.ClientSession
) -> None:
    """Each service its own process: the ROBERT server reaches the code service over HTTP
    with a key of role robert-server; no other key may consume, and a code service that does
    not answer leaves the code untouched (503, Retry-After)."""
    codes_settings = CodesSettings(data_dir=str(tmp_path / "codes"))
    codes_server = TestServer(standalone_app(codes_settings), host="127.0.0.1")
    await codes_server.start_server()
    codes_url = str(codes_server.make_url("")).rstrip("/")
    service = await open_service(codes_settings, clock)
    _, robert_key = await service.api_keys.create("robert", "robert-server")
    _, lab_key = await service.add_org("LAB1", Role.LAB)
    await service.close()
    robert_settings = Settings(data_dir=str(tmp_path / "robert"), captcha="off")
    gate = HttpCodeGate(codes_url, robert_key)
    robert = TestServer(create_app(robert_settings, gate, clock=clock), host="127.0.0.1")
    await robert.start_server()
    robert_url = str(robert.make_url("")).rstrip("/")
    try:
        first, second = await _issue_at(session, codes_url, lab_key, count=2)

        async def report(code: str) -> tuple[int, str, str | None]:
            body = {"token": code, "contacts": []}
            async with session.post(f"{robert_url}/api/v6/report", json=body) as r:
                error = (await r.json()).get("error", "")
                return r.status, error, r.headers.get("Retry-After")

        assert await report(first) == (200, "", None)
        assert await report(first) == (401, "code_used", None)
        for key, status in ((lab_key, 403), ("codes_1_nonsense", 401), ("", 401)):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            url = f"{codes_url}/codes/api/v1/consume"
            async with session.post(url, json={"code": second}, headers=headers) as r:
                assert r.status == status
        await codes_server.close()
        status, error, retry = await report(second)
        assert (status, error) == (503, "codes_unavailable") and retry is not None
    finally:
        await robert.close()
        await codes_server.close()
    service = await open_service(codes_settings, clock)
    try:
        assert await service.check(second) is CodeState.VALID  # never half-consumed
    finally:
        await service.close()


async def _issue_at(
    session: aiohttp.ClientSession, codes_url: str, key: str, count: int
) -> list[str]:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"type": "long", "count": count}
    async with session.post(f"{codes_url}/codes/api/v1/codes", json=body, headers=headers) as r:
        answer = await r.json()
        assert r.status == 200, answer
        return [c["code"] for c in answer["codes"]]
