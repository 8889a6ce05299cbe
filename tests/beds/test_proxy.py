"""Behind nginx terminating TLS (deploy/nginx/robert.conf): with ``public_url`` the session
cookie is Secure, a sign-in posted from the public origin passes the CSRF check and one from
another origin does not; the same setting for the drug service."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from beds import app as beds_app
from beds.settings import Settings as BedSettings
from drugs import app as drugs_app
from drugs.settings import Settings as DrugSettings
from kit.settings import SettingsError
from tests.beds.conftest import SECRET

PUBLIC = "https://robert.example.org"


async def test_beds_behind_a_tls_proxy_trust_the_public_origin(tmp_path: Path) -> None:
    settings = BedSettings(
        database=f"sqlite:///{tmp_path / 'beds.db'}", secret=SECRET, public_url=PUBLIC
    )
    root = web.Application()
    beds_app.mount(root, beds_app.create_app(settings))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/beds/login") as r:
                page = await r.text()
                cookie = r.cookies["beds_session"]
            assert cookie["secure"] and cookie["path"] == "/beds/" and cookie["httponly"]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            form = {"csrf_token": token.group(1), "username": "nobody", "password": "wrong"}
            for origin, refused in ((PUBLIC, False), ("https://evil.example.net", True)):
                headers = {"Origin": origin, "Cookie": f"beds_session={cookie.value}"}
                async with session.post(
                    f"{url}/beds/login", data=form, headers=headers, allow_redirects=False
                ) as r:
                    # From the public origin: the CSRF check passes, the password is wrong.
                    assert (r.status == 403) is refused, (origin, r.status)
    finally:
        await server.close()


def test_drugs_session_policy_behind_a_tls_proxy() -> None:
    policy = drugs_app.session_policy(DrugSettings(public_url=PUBLIC))
    assert policy.secure is True and policy.trusted_origins == frozenset({PUBLIC})
    assert policy.cookie_name == "drugs_session" and policy.path == "/drugs/"
    plain = drugs_app.session_policy(DrugSettings())
    assert plain.secure is None and plain.trusted_origins == frozenset()


@pytest.mark.parametrize("value", ["robert.example.org", "https://robert.example.org/beds"])
@pytest.mark.parametrize("settings", [BedSettings, DrugSettings])
def test_public_url_must_be_an_origin(
    value: str, settings: type[BedSettings] | type[DrugSettings]
) -> None:
    with pytest.raises(SettingsError, match="public_url"):
        settings(public_url=value).validate()
