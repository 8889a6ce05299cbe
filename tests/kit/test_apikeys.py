"""kit.auth.apikeys: keys shown once, stored as SHA-256, revocable; the Bearer guard."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from kit.auth import ApiKeyStore, require_api_key, setup_api_keys
from kit.db import Database
from kit.http import Unauthorized, add_route, json_response
from kit.schema import api_keys as keys_table


class Now:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 10, 4, 8, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
def store(db: Database, now: Now) -> ApiKeyStore:
    return ApiKeyStore(db, "sidep", clock=now)


async def test_a_key_is_shown_once_and_stored_hashed(store: ApiKeyStore, db: Database) -> None:
    record, key = await store.create("Laboratoire Cerballiance Paris", "lab", "finess:750712184")
    prefix, key_id, secret = key.split("_", 2)
    assert (prefix, int(key_id)) == ("sidep", record.id) and len(secret) >= 43
    async with db.connect() as conn:
        stored = (await conn.execute(sa.select(keys_table.c.key_hash))).scalar_one()
    assert stored == hashlib.sha256(secret.encode()).digest()
    principal = await store.authenticate(key)
    assert (principal.kind, principal.role, principal.scope) == (
        "api_key",
        "lab",
        "finess:750712184",
    )
    assert principal.actor == f"apikey:{record.id}"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
        lambda k: "robert" + k[len("sidep") :],
        lambda k: k.split("_", 2)[0] + "_999_" + k.split("_", 2)[2],
        lambda k: k.rsplit("_", 1)[0],
        lambda k: "",
        lambda k: "sidep_1e9_x",
    ],
)
async def test_wrong_keys_are_refused(
    sqlite_db: Database, now: Now, mangle: Callable[[str], str]
) -> None:
    store = ApiKeyStore(sqlite_db, "sidep", clock=now)
    _, key = await store.create("lab", "lab")
    with pytest.raises(Unauthorized, match="invalid API key"):
        await store.authenticate(mangle(key))


async def test_revoked_keys_stop_working(store: ApiKeyStore) -> None:
    record, key = await store.create("lab", "lab")
    await store.revoke(record.id)
    with pytest.raises(Unauthorized, match="revoked") as caught:
        await store.authenticate(key)
    assert caught.value.code == "revoked_api_key"
    with pytest.raises(ValueError, match="already revoked"):
        await store.revoke(record.id)
    with pytest.raises(ValueError, match="no API key 99"):
        await store.revoke(99)
    [listed] = await store.list()
    assert listed.revoked_at is not None
    actions = [e.action for e in await store.audit.query(store.db)]
    assert actions == ["revoke", "create"]


async def test_last_use_is_kept_at_a_minute_resolution(store: ApiKeyStore, now: Now) -> None:
    _, key = await store.create("reader", "event-reader")
    started = now.now
    await store.authenticate(key)
    now.now += timedelta(seconds=30)
    await store.authenticate(key)
    [listed] = await store.list()
    assert listed.last_used_at == started
    now.now += timedelta(seconds=31)
    await store.authenticate(key)
    [listed] = await store.list()
    assert listed.last_used_at == now.now


def test_prefixes_are_checked(db: Database) -> None:
    with pytest.raises(ValueError, match="prefix"):
        ApiKeyStore(db, "si_dep")


@pytest.fixture
async def api(store: ApiKeyStore) -> AsyncIterator[str]:
    app = web.Application()
    setup_api_keys(app, store)

    async def whoami(request: web.Request) -> web.Response:
        principal = await require_api_key(request, roles={"event-reader"})
        return json_response({"actor": principal.actor})

    add_route(app, "GET", "/whoami", whoami)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/whoami"))
    finally:
        await server.close()


async def test_the_bearer_guard(store: ApiKeyStore, api: str) -> None:
    reader, reader_key = await store.create("contact-covid", "event-reader")
    _, lab_key = await store.create("lab", "lab")
    async with aiohttp.ClientSession() as client:
        async with client.get(api) as r:
            assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
        async with client.get(api, headers={"Authorization": "Bearer sidep_1_nope"}) as r:
            assert (r.status, (await r.json())["error"]) == (401, "bad_api_key")
            assert "WWW-Authenticate" in r.headers
        async with client.get(api, headers={"Authorization": f"Bearer {lab_key}"}) as r:
            assert (r.status, (await r.json())["error"]) == (403, "forbidden")
        async with client.get(api, headers={"Authorization": f"bearer {reader_key}"}) as r:
            assert (r.status, await r.json()) == (200, {"actor": f"apikey:{reader.id}"})
