"""kit.auth's pages and guards over HTTP: the two-step sign-in, enrolment, CSRF, open
redirects, rate limits, timeouts, roles, sign-out, cookies and headers."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_session import Session
from hypothesis import given
from hypothesis import strategies as st

from kit.audit import AuditFilter
from kit.auth import LoginLimits, SessionPolicy, safe_next
from kit.auth.sessions import SessionCookies, session_storage
from kit.keys import SecretError
from kit.ratelimit import Limit
from tests.kit.demo import PASSWORD, Clock, Demo, running_demo

T0 = 1_796_875_680.0  # 2026-12-10 04:08 UTC


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def demo(tmp_path: Path, clock: Clock) -> AsyncIterator[Demo]:
    limits = LoginLimits(per_user=Limit(4, 900), per_client=Limit(8, 900))
    async with running_demo(f"sqlite:///{tmp_path}/demo.db", clock, limits=limits) as running:
        yield running


def browser() -> aiohttp.ClientSession:
    # unsafe=True: the server is on an IP address, whose cookies aiohttp drops otherwise.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def error_of(html: str) -> str:
    match = re.search(r'id="error">([^<]*)<', html) or re.search(
        r'class="error-text" id="code-error">([^<]*)<', html
    )
    return match.group(1) if match else ""


async def sign_in_password(
    client: aiohttp.ClientSession, demo: Demo, username: str, password: str, next_: str = "/"
) -> aiohttp.ClientResponse:
    async with client.get(f"{demo.url}/login") as r:
        token = csrf_of(await r.text())
    form = {"csrf_token": token, "username": username, "password": password, "next": next_}
    return await client.post(f"{demo.url}/login", data=form, allow_redirects=False)


async def enrolled_user(demo: Demo, username: str = "dr.martin", role: str = "doctor") -> str:
    """Create a user and confirm their TOTP directly; their TOTP secret."""
    user, enrolment = await demo.accounts.users.create(
        username, display_name="Dr Anne Martin", role=role, scope="dep:75", password=PASSWORD
    )
    code = pyotp.TOTP(enrolment.secret).at(demo.clock())
    assert (await demo.accounts.users.confirm_totp(user.id, code)).value == "ok"
    demo.clock.advance(30)  # the next code is a new step
    return enrolment.secret


async def sign_in(client: aiohttp.ClientSession, demo: Demo, secret: str, next_: str = "/") -> str:
    """Both steps; the final location."""
    async with await sign_in_password(client, demo, "dr.martin", PASSWORD, next_) as r:
        assert (r.status, r.headers["Location"]) == (303, "/login/code")
    async with client.get(f"{demo.url}/login/code") as r:
        token = csrf_of(await r.text())
    code = pyotp.TOTP(secret).at(demo.clock())
    form = {"csrf_token": token, "code": code}
    async with client.post(f"{demo.url}/login/code", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        return r.headers["Location"]


# --- the whole sign-in ----------------------------------------------------------------------------
async def test_first_sign_in_enrols_then_lands_on_the_page(demo: Demo) -> None:
    await demo.accounts.users.create(
        "dr.martin", display_name="Dr Anne Martin", role="doctor", scope="dep:75",
        password=PASSWORD,
    )  # fmt: skip
    async with browser() as client:
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login?next=%2F")
        async with await sign_in_password(client, demo, "dr.martin", "wrong password!") as r:
            assert r.status == 401
            assert error_of(await r.text()) == "Identifiant ou mot de passe incorrect."
        async with await sign_in_password(client, demo, "DR.Martin ", PASSWORD) as r:
            assert (r.status, r.headers["Location"]) == (303, "/login/enrol")
        async with client.get(f"{demo.url}/login/enrol") as r:
            page = await r.text()
        assert "<svg" in page and 'role="img"' in page
        secret = re.search(r'id="secret">([A-Z2-7 ]+)<', page)
        assert secret is not None
        totp = pyotp.TOTP(secret.group(1).replace(" ", ""))
        wrong = f"{(int(totp.at(demo.clock())) + 1) % 1_000_000:06d}"
        form = {"csrf_token": csrf_of(page), "code": wrong}
        async with client.post(f"{demo.url}/login/enrol", data=form) as r:
            assert r.status == 401
            assert "Ce code n’est pas valide" in error_of(await r.text())
        form["code"] = totp.at(demo.clock())
        async with client.post(f"{demo.url}/login/enrol", data=form, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, "/")
        async with client.get(f"{demo.url}/") as r:
            assert r.status == 200
            page = await r.text()
    assert "Dr Anne Martin" in page and "jeudi 10 décembre 2026, 05:08" in page
    entries = await demo.accounts.audit.query(demo.accounts.db)
    assert [(e.action, e.detail) for e in reversed(entries)] == [
        ("create", "role doctor"),
        ("login_failed", "wrong password"),
        ("login_failed", "wrong code"),
        ("login", "password and new authenticator"),
        ("read", ""),
    ]


async def test_unknown_user_gets_the_same_answer_and_is_audited_without_a_name(
    demo: Demo,
) -> None:
    await enrolled_user(demo)
    async with browser() as client:
        async with await sign_in_password(client, demo, "nobody.here", PASSWORD) as r:
            assert r.status == 401
            unknown = error_of(await r.text())
        async with await sign_in_password(client, demo, "dr.martin", "wrong password!") as r:
            wrong = error_of(await r.text())
    assert unknown == wrong == "Identifiant ou mot de passe incorrect."
    [entry, _] = await demo.accounts.audit.query(
        demo.accounts.db, AuditFilter(action="login_failed")
    )
    failures = await demo.accounts.audit.query(demo.accounts.db, AuditFilter(actor="anonymous"))
    assert [(e.object_id, e.detail) for e in failures] == [("unknown", "unknown user name")]
    assert "nobody" not in repr(failures) and entry.actor == "dr.martin"


async def test_a_code_is_accepted_only_once(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
    async with browser() as other:  # same code, same 30 s, another browser: refused
        async with await sign_in_password(other, demo, "dr.martin", PASSWORD) as r:
            assert r.headers["Location"] == "/login/code"
        async with other.get(f"{demo.url}/login/code") as r:
            token = csrf_of(await r.text())
        form = {"csrf_token": token, "code": pyotp.TOTP(secret).at(demo.clock())}
        async with other.post(f"{demo.url}/login/code", data=form) as r:
            assert r.status == 401
    [entry] = await demo.accounts.audit.query(demo.accounts.db, AuditFilter(action="login_failed"))
    assert entry.detail == "replayed code"


async def test_the_password_step_alone_opens_nothing(demo: Demo) -> None:
    await enrolled_user(demo)
    async with browser() as client:
        async with await sign_in_password(client, demo, "dr.martin", PASSWORD):
            pass
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.headers["Location"].startswith("/login")
        demo.clock.advance(6 * 60)  # the pending step times out
        async with client.get(f"{demo.url}/login/code", allow_redirects=False) as r:
            assert r.headers["Location"] == "/login"


# --- where the sign-in leads ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("asked", "landing"),
    [
        ("/?tab=open", "/?tab=open"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/login", "/"),
    ],
)
async def test_sign_in_returns_only_to_this_site(demo: Demo, asked: str, landing: str) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        assert await sign_in(client, demo, secret, asked) == landing


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example",
        "///evil.example",
        "https://evil.example",
        "http:/evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\r\nLocation: //evil",
        "evil.example",
        "",
        " /cases",
        "/\t/evil.example",
    ],
)
def test_safe_next_refuses_other_places(value: str) -> None:
    assert safe_next(value, "/home") == "/home"


def test_safe_next_keeps_allowed_paths() -> None:
    assert safe_next("/cases/42?x=1#notes", "/") == "/cases/42?x=1#notes"
    assert safe_next("/admin/users", "/", allowed=("/cases/",)) == "/"
    assert safe_next("/cases/42", "/", allowed=("/cases/",)) == "/cases/42"
    assert safe_next("/cases", "/", allowed=("/cases/",)) == "/cases"


@given(st.text(max_size=60))
def test_safe_next_never_leaves_the_site(value: str) -> None:
    target = safe_next(value, "/")
    assert target.startswith("/") and not target.startswith("//")
    assert "\\" not in target and not any(ord(c) < 0x20 for c in target)


# --- CSRF -----------------------------------------------------------------------------------------
async def test_unsafe_requests_need_the_token_and_this_origin(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
        async with client.get(f"{demo.url}/") as r:
            token = csrf_of(await r.text())
        note = {"note": "rappel J+7"}
        async with client.post(f"{demo.url}/notes", data=note) as r:
            assert r.status == 403
            assert "formulaire a expiré" in await r.text()
        async with client.post(f"{demo.url}/notes", data=note | {"csrf_token": "forged"}) as r:
            assert r.status == 403
        foreign = {"Origin": "https://evil.example"}
        async with client.post(
            f"{demo.url}/notes", data=note | {"csrf_token": token}, headers=foreign
        ) as r:
            assert r.status == 403
        cross = {"Sec-Fetch-Site": "cross-site"}
        async with client.post(
            f"{demo.url}/notes", data=note | {"csrf_token": token}, headers=cross
        ) as r:
            assert r.status == 403
        async with client.post(
            f"{demo.url}/api/me", headers={"Accept": "application/json", "X-CSRF-Token": "no"}
        ) as r:
            assert (r.status, (await r.json())["error"]) == (403, "csrf")
        async with client.post(
            f"{demo.url}/api/me", headers={"Accept": "application/json", "X-CSRF-Token": token}
        ) as r:
            assert (r.status, (await r.json())["username"]) == (200, "dr.martin")
        own = {"Origin": demo.url, "Sec-Fetch-Site": "same-origin"}
        async with client.post(
            f"{demo.url}/notes", data=note | {"csrf_token": token}, headers=own
        ) as r:
            assert r.status == 200 and "Note enregistrée." in await r.text()


async def test_the_login_form_itself_needs_the_token(demo: Demo) -> None:
    await enrolled_user(demo)
    async with browser() as client:
        form = {"username": "dr.martin", "password": PASSWORD, "next": "/"}
        async with client.post(f"{demo.url}/login", data=form) as r:
            assert r.status == 403
            assert error_of(await r.text()).startswith("Le formulaire a expiré")


async def test_a_form_with_an_error_keeps_the_input(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
        async with client.get(f"{demo.url}/") as r:
            token = csrf_of(await r.text())
        long_note = "x" * 201
        async with client.post(
            f"{demo.url}/notes", data={"note": long_note, "csrf_token": token}
        ) as r:
            page = await r.text()
    assert r.status == 422
    assert f'value="{long_note}"' in page and 'aria-invalid="true"' in page
    assert 'aria-describedby="note-hint note-error"' in page
    assert "Une note fait de 1 à 200 caractères." in page


# --- limits ---------------------------------------------------------------------------------------
async def test_failed_passwords_are_limited_per_user_name(demo: Demo) -> None:
    await enrolled_user(demo)
    async with browser() as client:
        for _ in range(4):
            async with await sign_in_password(client, demo, "dr.martin", "wrong password!") as r:
                assert r.status == 401
        async with await sign_in_password(client, demo, "dr.martin", PASSWORD) as r:
            assert r.status == 429 and int(r.headers["Retry-After"]) > 0
            assert "Trop de tentatives" in error_of(await r.text())


async def test_successes_give_their_token_back(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    for _ in range(6):  # more than the per-user burst of 4
        async with browser() as client:
            await sign_in(client, demo, secret)
        demo.clock.advance(30)


async def test_failed_passwords_are_limited_per_client(demo: Demo) -> None:
    async with browser() as client:
        for n in range(8):
            async with await sign_in_password(client, demo, f"user{n}", "wrong password!") as r:
                assert r.status == 401
        async with await sign_in_password(client, demo, "someone.else", "wrong password!") as r:
            assert r.status == 429


async def test_wrong_codes_are_limited_too(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        async with await sign_in_password(client, demo, "dr.martin", PASSWORD):
            pass
        async with client.get(f"{demo.url}/login/code") as r:
            token = csrf_of(await r.text())
        for _ in range(4):
            form = {"csrf_token": token, "code": "000000"}
            async with client.post(f"{demo.url}/login/code", data=form) as r:
                assert r.status == 401
        right = {"csrf_token": token, "code": pyotp.TOTP(secret).at(demo.clock())}
        async with client.post(f"{demo.url}/login/code", data=right, allow_redirects=False) as r:
            assert r.headers["Location"] == "/login"  # limited: back to the start, not in


# --- sessions -------------------------------------------------------------------------------------
async def test_idle_sessions_end(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
        demo.clock.advance(29 * 60)
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.status == 200
        demo.clock.advance(29 * 60)  # active 29 minutes ago: still in
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.status == 200
        demo.clock.advance(31 * 60)
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")


async def test_sessions_end_after_twelve_hours_however_active(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
        for _ in range(12 * 4 - 1):
            demo.clock.advance(15 * 60)
            async with client.get(f"{demo.url}/api/me") as r:
                assert r.status == 200
        demo.clock.advance(15 * 60 + 1)
        async with client.get(f"{demo.url}/api/me", headers={"Accept": "application/json"}) as r:
            assert (r.status, (await r.json())["error"]) == (401, "login_required")


async def test_disabling_or_resetting_ends_open_sessions(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
        demo.clock.advance(1)
        await demo.accounts.users.reset_password("dr.martin", "another long password")
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.status == 303
    async with browser() as client:
        async with await sign_in_password(client, demo, "dr.martin", "another long password"):
            pass
        async with client.get(f"{demo.url}/login/code") as r:
            token = csrf_of(await r.text())
        demo.clock.advance(30)
        form = {"csrf_token": token, "code": pyotp.TOTP(secret).at(demo.clock())}
        async with client.post(f"{demo.url}/login/code", data=form) as r:
            assert r.status == 200
        await demo.accounts.users.disable("dr.martin")
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.status == 303


async def test_sign_out(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        await sign_in(client, demo, secret)
        async with client.get(f"{demo.url}/") as r:
            token = csrf_of(await r.text())
        async with client.post(f"{demo.url}/logout", data={"csrf_token": "forged"}) as r:
            assert r.status == 403
        async with client.post(f"{demo.url}/logout", data={"csrf_token": token}) as r:
            assert str(r.url).endswith("/login") and "Vous êtes déconnecté(e)." in await r.text()
        async with client.get(f"{demo.url}/", allow_redirects=False) as r:
            assert r.status == 303
    [entry] = await demo.accounts.audit.query(demo.accounts.db, AuditFilter(action="logout"))
    assert entry.actor == "dr.martin"


async def test_a_role_not_allowed_is_refused(demo: Demo) -> None:
    secret = await enrolled_user(demo, role="cpam_agent")
    async with browser() as client:
        await sign_in(client, demo, secret)
        async with client.get(f"{demo.url}/") as r:
            assert r.status == 403
            assert "Accès refusé" in await r.text()
        async with client.get(f"{demo.url}/api/me") as r:
            assert r.status == 200  # the JSON endpoint takes any role


async def test_api_requests_get_json_401(demo: Demo) -> None:
    async with browser() as client, client.get(f"{demo.url}/api/me") as r:
        assert r.status == 401 and (await r.json())["error"] == "login_required"


# --- cookies and headers --------------------------------------------------------------------------
async def test_session_cookie_attributes(demo: Demo) -> None:
    secret = await enrolled_user(demo)
    async with browser() as client:
        async with await sign_in_password(client, demo, "dr.martin", PASSWORD) as r:
            header = r.headers["Set-Cookie"]
        await sign_in(client, demo, secret)
    cookie = SimpleCookie(header)["kit_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"] and not cookie["max-age"]  # plain HTTP; ends with the browser


async def test_cookies_are_secure_over_https() -> None:
    storage = SessionCookies(b"k" * 32, SessionPolicy())
    session = Session(None, data=None, new=True)
    session["uid"] = 1
    for scheme, secure in (("http", ""), ("https", True)):
        request = make_mocked_request("GET", "/").clone(scheme=scheme)
        response = web.Response()
        await storage.save_session(request, response, session)
        assert response.cookies["kit_session"]["secure"] == secure


async def test_pages_carry_the_security_headers(demo: Demo) -> None:
    async with browser() as client, client.get(f"{demo.url}/login") as r:
        page = await r.text()
        headers = r.headers
    csp = headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<style nonce="{nonce.group(1)}">' in page
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp and "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', page), "an external resource"


async def test_language_from_query_cookie_then_browser(demo: Demo) -> None:
    async with browser() as client:
        async with client.get(f"{demo.url}/login") as r:
            assert '<html lang="fr">' in await r.text()
        async with client.get(f"{demo.url}/login", headers={"Accept-Language": "en-GB,en"}) as r:
            assert "User name" in await r.text()
        async with client.get(f"{demo.url}/login?lang=en") as r:
            assert "Password" in await r.text()
        async with client.get(f"{demo.url}/login") as r:  # remembered by the cookie
            assert '<html lang="en">' in await r.text()
        async with client.get(f"{demo.url}/login?lang=fr") as r:
            assert "Mot de passe" in await r.text()


def test_demo_clock_starts_on_the_documented_moment() -> None:
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(T0)) == "2026-12-10 04:08"


async def test_without_a_secret_sessions_use_a_process_key_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = session_storage(""), session_storage("")
    assert "sessions will not survive a restart" in caplog.text
    session = Session(None, data=None, new=True)
    session["uid"] = 1
    response = web.Response()
    await first.save_session(make_mocked_request("GET", "/"), response, session)
    cookie = response.cookies["kit_session"].value
    request = make_mocked_request("GET", "/", headers={"Cookie": f"kit_session={cookie}"})
    assert not (await first.load_session(request)).empty
    assert (await second.load_session(request)).empty  # another process cannot read it
    with pytest.raises(SecretError, match="at least 32 characters"):
        session_storage("too short")


async def test_sign_in_works_for_a_service_mounted_under_a_prefix(
    tmp_path: Path, clock: Clock
) -> None:
    """A service is a sub-application mounted at its prefix: its sign-in routes are relative
    to it, every link, form action and redirect carries the prefix, its cookie stays there."""
    from aiohttp.test_utils import TestServer

    from kit.auth import Accounts, People, require_user
    from kit.db import Database
    from kit.web import Pages, add_page, render, setup_pages
    from tests.kit.demo import FAST_HASHER, HERE, SECRET, UPDATED

    db = Database(f"sqlite:///{tmp_path}/svc.db")
    await db.migrate()
    accounts = Accounts(db, SECRET, "Svc", hasher=FAST_HASHER, clock=clock)
    await accounts.users.create(
        "dr.martin", display_name="Dr Anne Martin", role="doctor", scope="", password=PASSWORD
    )
    service = web.Application()
    pages = Pages("Svc", templates=HERE / "templates", locale=HERE / "locale")
    setup_pages(service, pages)
    policy = SessionPolicy(cookie_name="svc_session", path="/svc/")
    People(
        accounts, policy=policy, home="/svc/", next_prefixes=("/svc/",), mounted_at="/svc"
    ).setup(service, pages)

    async def home(request: web.Request) -> web.StreamResponse:
        await require_user(request)
        return await render(
            request, "demo/home.html", updated=UPDATED, rows=[], note="", error=None
        )

    add_page(service, "GET", "/", home)
    root = web.Application()
    root.add_subapp("/svc", service)
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:
        async with browser() as client:
            async with client.get(f"{url}/svc/", allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/svc/login?next=%2Fsvc%2F")
            async with client.get(f"{url}/svc/login?next=%2Fsvc%2F") as r:
                page = await r.text()
            assert 'action="/svc/login"' in page
            form = {"csrf_token": csrf_of(page), "username": "dr.martin", "password": PASSWORD}
            form["next"] = "/svc/"
            async with client.post(f"{url}/svc/login", data=form, allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/svc/login/enrol")
                assert "Path=/svc/" in r.headers["Set-Cookie"]
                assert "svc_session=" in r.headers["Set-Cookie"]
            async with client.get(f"{url}/svc/login/enrol") as r:
                page = await r.text()
            secret = re.search(r'id="secret">([A-Z2-7 ]+)<', page)
            assert secret is not None and 'action="/svc/login/enrol"' in page
            code = pyotp.TOTP(secret.group(1).replace(" ", "")).at(clock())
            form = {"csrf_token": csrf_of(page), "code": code}
            async with client.post(f"{url}/svc/login/enrol", data=form, allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (303, "/svc/")
            async with client.get(f"{url}/svc/") as r:
                assert r.status == 200 and "/svc/logout" in await r.text()
    finally:
        await server.close()
        await db.close()
