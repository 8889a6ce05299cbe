"""Failed submission codes: the real client behind the proxy, a limiter that cannot be raced,
and buckets one attacker cannot empty for anyone else."""

from __future__ import annotations

import asyncio
import io
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from client_sim.clock import VirtualClock
from protocol.codes import CodeKind
from server.app import create_app
from server.limits import client_address, parse_networks
from server.settings import Settings
from server.store import Store, open_store
from server.store.base import Budget
from tests.server.conftest import Running, backend_url, code_service

LIMITS_REDIS_DB = 13
PROXY = parse_networks("127.0.0.1, 10.0.0.0/8, ::1")


# --- the client's address ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", [], "203.0.113.9"),  # no proxy
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),  # untrusted peer: header ignored
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # nginx on the same host
        ("127.0.0.1", [], "127.0.0.1"),  # the proxy itself asked (health checks)
        # The client wrote the left entries: only the right-most untrusted hop counts.
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1, 10.1.2.3"], "198.51.100.1"),
        ("::1", ["2001:db8::7"], "2001:db8::7"),
        ("127.0.0.1", ["10.0.0.1, 127.0.0.1"], "10.0.0.1"),  # every hop trusted: the first
    ],
)
def test_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, PROXY) == expected


def test_no_trusted_proxy_means_the_peer() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"
    assert client_address(None, ["198.51.100.1"], PROXY) == "?"


def test_parse_networks() -> None:
    assert parse_networks(" 127.0.0.1 ,, 10.0.0.0/8") == (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("10.0.0.0/8"),
    )
    with pytest.raises(ValueError, match="'nginx'"):
        parse_networks("nginx")


def test_trusted_proxies_setting_is_checked(tmp_path: Path) -> None:
    from kit.settings import SettingsError

    with pytest.raises(SettingsError, match="trusted_proxies"):
        Settings(data_dir=str(tmp_path), trusted_proxies="10.0.0.0/33").validate()


# --- the store's buckets -----------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    with backend_url(request.param, tmp_path, LIMITS_REDIS_DB) as url:
        opened = open_store(url, 8, 1.0)
        await opened.open()
        try:
            yield opened
        finally:
            await opened.close()


async def test_take_is_atomic_under_a_burst(store: Store) -> None:
    """50 concurrent takes from a bucket of 10: exactly 10 pass."""
    budget = [Budget("c-burst", 10, 3600.0)]
    waits = await asyncio.gather(*(store.take_budget(budget, 1000.0) for _ in range(50)))
    assert sum(1 for wait in waits if wait == 0) == 10
    assert all(wait > 0 for wait in waits if wait != 0)
    # One token comes back every 360 s.
    assert min(w for w in waits if w) == pytest.approx(360, abs=1)
    assert await store.take_budget(budget, 1000.0 + 361) == 0
    assert await store.take_budget(budget, 1000.0 + 362) > 0


async def test_take_is_all_or_nothing_and_refund(store: Store) -> None:
    small, large = Budget("small", 1, 60.0), Budget("large", 5, 60.0)
    assert await store.take_budget([small, large], 0.0) == 0
    assert await store.take_budget([small, large], 0.0) == pytest.approx(60, abs=0.01)
    # The refused take charged nothing: the large bucket still has 4.
    for _ in range(4):
        assert await store.take_budget([large], 0.0) == 0
    assert await store.take_budget([large], 0.0) > 0
    await store.refund_budget([small, large], 0.0)
    assert await store.take_budget([small, large], 0.0) == 0
    await store.refund_budget([small], 0.0)
    await store.refund_budget([small], 0.0)  # never above the burst
    assert await store.take_budget([small], 0.0) == 0
    assert await store.take_budget([small], 0.0) > 0


# --- over HTTP ---------------------------------------------------------------------------------
class Counted:
    """The code service, counting the codes it was asked."""

    def __init__(self, codes: Any) -> None:
        self.codes = codes
        self.asked = 0

    async def open(self) -> None:
        await self.codes.open()

    async def close(self) -> None:
        await self.codes.close()

    async def consume(self, code: str) -> str:
        self.asked += 1
        outcome: str = await self.codes.consume(code)
        return outcome

    async def release(self, code: str) -> None:
        await self.codes.release(code)


@pytest.fixture
async def behind_proxy(
    make_settings: Callable[..., Settings], clock: VirtualClock
) -> AsyncIterator[tuple[Running, Counted]]:
    settings = make_settings(trusted_proxies="127.0.0.1")
    codes = code_service(Path(settings.data_dir), clock)
    counted = Counted(codes)
    server = TestServer(create_app(settings, counted, clock=clock), host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(server, codes), counted
    finally:
        await server.close()


WRONG = "0f0e0d0c-0b0a-4909-8807-060504030201"


async def post_report(
    session: aiohttp.ClientSession, running: Running, token: str, client: str, contacts: Any = ()
) -> tuple[int, dict[str, Any], str | None]:
    body = orjson.dumps({"token": token, "contacts": list(contacts)})
    async with session.post(
        f"{running.url}/api/v6/report",
        data=io.BytesIO(body),
        headers={"X-Forwarded-For": client, "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.json(), response.headers.get("Retry-After")


async def test_a_burst_of_wrong_codes_passes_exactly_the_budget(
    behind_proxy: tuple[Running, Counted],
) -> None:
    """50 concurrent wrong codes from one client: 10 reach the code service, 40 are refused
    429 with Retry-After; another client behind the same proxy still reports."""
    running, counted = behind_proxy
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(post_report(session, running, WRONG, "198.51.100.7") for _ in range(50))
        )
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [401] * 10 + [429] * 40
        assert counted.asked == 10
        assert all(int(after or 0) >= 1 for status, _, after in answers if status == 429)
        assert {body["error"] for status, body, _ in answers if status == 429} == {
            "too_many_attempts"
        }
        # The attacker's next try is refused before its body is read or its code asked.
        status, _, _ = await post_report(session, running, WRONG, "198.51.100.7")
        assert (status, counted.asked) == (429, 10)
        # Someone else behind the same proxy is not locked out, and a good code is free.
        good = await running.code()
        status, body, _ = await post_report(session, running, good, "203.0.113.50")
        assert (status, body["success"]) == (200, True)
        for _ in range(9):
            status, _, _ = await post_report(session, running, WRONG, "203.0.113.50")
            assert status == 401
        status, _, _ = await post_report(session, running, WRONG, "203.0.113.50")
        assert status == 401  # the accepted code gave its token back: 10 failures allowed


async def test_many_addresses_meet_the_prefix_bucket(
    make_settings: Callable[..., Settings], clock: VirtualClock
) -> None:
    """Guesses spread over many addresses still meet the per-prefix bucket, and codes of
    other prefixes are not affected."""
    settings = make_settings(trusted_proxies="127.0.0.1", code_failures_per_prefix=20)
    codes = code_service(Path(settings.data_dir), clock)
    server = TestServer(create_app(settings, codes, clock=clock), host="127.0.0.1")
    await server.start_server()
    running = Running(server, codes)
    try:
        async with aiohttp.ClientSession() as session:
            answers = await asyncio.gather(
                *(post_report(session, running, WRONG, f"198.51.100.{i}") for i in range(40))
            )
            assert sorted(status for status, _, _ in answers) == [401] * 20 + [429] * 20
            other = "a" + WRONG[1:]
            status, _, _ = await post_report(session, running, other, "198.51.100.200")
            assert status == 401
    finally:
        await server.close()


async def test_the_peer_is_the_client_without_trusted_proxies(running: Running) -> None:
    """X-Forwarded-For from an untrusted peer is ignored: changing it does not reset the
    budget."""
    async with aiohttp.ClientSession() as session:
        statuses = [
            (await post_report(session, running, WRONG, f"198.51.100.{i}"))[0] for i in range(11)
        ]
    assert statuses == [401] * 10 + [429]


async def test_a_wrong_code_does_not_parse_the_contacts(
    behind_proxy: tuple[Running, Counted], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code is checked before the contacts are parsed; a large upload is parsed off the
    event loop."""
    import server.api.routes as routes_module
    import server.service as service_module

    running, _ = behind_proxy
    parsed: list[int] = []
    bodies: list[int] = []
    real = service_module.parse_contacts
    real_json = routes_module.parse_json_object

    def counting(items: Any, *args: Any) -> Any:
        parsed.append(len(items))
        return real(items, *args)

    def counting_json(body: bytes, *args: Any) -> Any:
        bodies.append(len(body))
        return real_json(body, *args)

    monkeypatch.setattr(service_module, "parse_contacts", counting)
    monkeypatch.setattr(routes_module, "parse_json_object", counting_json)
    junk = [{"ebid": "A" * 12, "ecc": "AA==", "ids": []}] * 30_000  # about 1.4 MB
    async with aiohttp.ClientSession() as session:
        status, body, _ = await post_report(session, running, WRONG, "198.51.100.8", junk)
        assert (status, body["error"]) == (401, "code_unknown")
        assert parsed == [] and bodies == []  # the token came first: nothing parsed
        good = await running.code(CodeKind.SHORT)
        status, body, _ = await post_report(session, running, good, "198.51.100.8", junk)
        assert status == 400 and parsed == [30_000] and len(bodies) == 1
        # The malformed upload did not burn the code.
        status, body, _ = await post_report(session, running, good, "198.51.100.8", [])
        assert status == 200


@pytest.mark.parametrize(
    ("body", "token"),
    [
        (b'{"token": "ABCDEF", "contacts": []}', "ABCDEF"),
        (b'  {\n "token":"ABCDEF" ,"contacts":[]}', "ABCDEF"),
        (b'{"contacts": [], "token": "ABCDEF"}', "ABCDEF"),
        (b'{"contacts": [], "token": "ABCDEF"}\n', "ABCDEF"),
        # A member of a nested object is neither first nor last of the top-level one.
        (b'{"contacts": [{"token": "X"}], "x": {"token": "ABCDEF"}}', None),
        (b'{"contacts": [{"token": "X", "a": 1}]}', None),
        (b'{"token": "AB\\"C", "contacts": []}', None),  # escapes: parse instead
        (b'{"token": 12, "contacts": []}', None),
        (b"[]", None),
    ],
)
def test_peek_token(body: bytes, token: str | None) -> None:
    from server.api.routes import peek_token

    assert peek_token(body) == token
