"""The pages of labs, doctors and administrators over HTTP (no browser): roles and scopes,
field errors, downloads and their checksum, dates in words, CSRF, audit."""

from __future__ import annotations

import csv
import hashlib
import io
import re

import aiohttp
import pytest

from codes.links import authorities_from_json, verify_link
from codes.model import Role
from codes.pages import parse_day
from kit.audit import AuditFilter
from protocol.codes import CodeKind, parse_code
from tests.codes.conftest import PASSWORD, Issuer, browser_session, csrf_of, person, sign_in


def error_of(html: str, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]*)<', html)
    return match.group(1) if match else ""


def value_of(html: str, field: str) -> str:
    match = re.search(rf'id="{field}" name="{field}" type="[a-z]+" value="([^"]*)"', html)
    assert match, f"no field {field}"
    return match.group(1)


def flash_of(html: str) -> str:
    match = re.search(r'class="notice (?:success|error|info)" role="[a-z]+"><p>([^<]*)<', html)
    return match.group(1) if match else ""


async def signed_in(issuer: Issuer, username: str, org_name: str, role: Role) -> str:
    """Create the organisation if needed and a person of it; their TOTP secret."""
    org = await issuer.service.store.get_org(org_name)
    if org is None:
        org = await issuer.service.create_org(org_name, role, f"Organisation {org_name}")
    return await person(issuer.accounts, username, org)


async def post_form(
    client: aiohttp.ClientSession, url: str, page: str, form: dict[str, str]
) -> aiohttp.ClientResponse:
    """POST ``form`` with the CSRF token of ``page`` (a page of the same session)."""
    async with client.get(page) as r:
        token = csrf_of(await r.text())
    return await client.post(url, data={"csrf_token": token, **form}, allow_redirects=False)


async def test_each_person_lands_on_their_own_page_and_no_other(issuer: Issuer) -> None:
    secrets = {
        "lab": await signed_in(issuer, "tech.lab", "LAB1", Role.LAB),
        "doctor": await signed_in(issuer, "dr.martin", "DOC1", Role.DOCTOR),
        "admin": await signed_in(issuer, "root.admin", "HQ", Role.ADMIN),
    }
    users = {"lab": "tech.lab", "doctor": "dr.martin", "admin": "root.admin"}
    for role, secret in secrets.items():
        async with browser_session() as client:
            async with client.get(f"{issuer.url}/codes/lab", allow_redirects=False) as r:
                assert (r.status, r.headers["Location"]) == (
                    303,
                    "/codes/login?next=%2Fcodes%2Flab",
                )
            landing = await sign_in(client, issuer.url, users[role], secret, issuer.clock)
            assert landing == "/codes/"
            async with client.get(f"{issuer.url}/codes/", allow_redirects=False) as r:
                assert r.headers["Location"] == f"/codes/{role}"
            for other in {"lab", "doctor", "admin"} - {role}:
                async with client.get(f"{issuer.url}/codes/{other}") as r:
                    assert r.status == 403, other
                    assert "Accès refusé" in await r.text()
            async with client.get(f"{issuer.url}/codes/{role}") as r:
                assert r.status == 200
                cookie = r.cookies.get("codes_session") or client.cookie_jar.filter_cookies(
                    issuer.url + "/codes/"
                ).get("codes_session")
                assert cookie is not None


async def test_an_account_whose_organisation_is_gone_or_of_another_role_is_refused(
    issuer: Issuer,
) -> None:
    org = await issuer.service.create_org("LAB1", Role.LAB, "Labo")
    _, enrolment = await issuer.accounts.users.create(
        "tech.lost", display_name="Lost", role="doctor", scope="org:LAB1", password=PASSWORD
    )
    assert org.role is Role.LAB  # the account says doctor: no organisation of that kind
    async with browser_session() as client:
        await sign_in(client, issuer.url, "tech.lost", enrolment.secret, issuer.clock)
        async with client.get(f"{issuer.url}/codes/doctor") as r:
            assert r.status == 403
            assert "n’appartient à aucune organisation" in await r.text()


async def test_issue_errors_say_what_to_do_and_keep_the_input(issuer: Issuer) -> None:
    secret = await signed_in(issuer, "tech.lab", "LAB1", Role.LAB)
    async with browser_session() as client:
        await sign_in(client, issuer.url, "tech.lab", secret, issuer.clock)
        page, issue = f"{issuer.url}/codes/lab", f"{issuer.url}/codes/lab/issue"
        async with client.get(page) as r:
            html = await r.text()
        assert value_of(html, "test_date") == "2026-03-02" and value_of(html, "count") == "10"
        cases = [
            (
                {"count": "0", "test_date": "2026-03-03"},
                "count",
                "Saisissez un nombre de 1 à 1000.",
            ),
            (  # "²".isdigit() is true and int("²") raised: a 500
                {"count": "²", "test_date": "2026-03-02"},
                "count",
                "Saisissez un nombre de 1 à 1000.",
            ),
            (
                {"count": "5", "test_date": "2026-03-03"},
                "test_date",
                "La date du test ne peut pas être après aujourd’hui (lundi 2 mars 2026). "
                "Vérifiez la date.",
            ),
            (
                {"count": "5", "test_date": "2026-01-15"},
                "test_date",
                "Le test doit dater des 30 derniers jours : du samedi 31 janvier 2026 ou après.",
            ),
            (
                {"count": "5", "test_date": "hier"},
                "test_date",
                "Saisissez la date du test, par exemple 01/03/2026.",
            ),
        ]
        for form, field, message in cases:
            async with await post_form(client, issue, page, form) as r:
                html = await r.text()
                assert r.status == 422
            assert error_of(html, field) == message
            assert value_of(html, "count") == form["count"]  # what the user typed, kept
            assert value_of(html, "test_date") == form["test_date"]
            assert 'aria-invalid="true"' in html and 'id="form-errors"' in html
        async with client.get(f"{page}?lang=en") as r:
            assert r.status == 200
        form = {"count": "1001", "test_date": "2026-03-03"}
        async with await post_form(client, issue, page, form) as r:
            html = await r.text()
        assert error_of(html, "count") == "Type a number of codes from 1 to 1000."
        assert error_of(html, "test_date").startswith(
            "The date of the test cannot be after today (Monday, 2 March 2026)."
        )
        async with await post_form(
            client, issue, page, {"count": "3", "test_date": "01/03/2026"}
        ) as r:
            assert r.status == 303
            batch_page = r.headers["Location"]
        async with client.get(f"{issuer.url}{batch_page}") as r:
            html = await r.text()
        assert flash_of(html) == "3 codes issued."
    [batch] = await issuer.service.batches(await issuer.service.get_org("LAB1"))
    assert (batch.count, batch.test_date, batch.valid) == (3, "2026-03-01", 3)


def test_dates_are_read_as_the_field_sends_them_or_as_people_write_them() -> None:
    assert parse_day("2026-03-01") == "2026-03-01"
    assert parse_day("1/3/2026") == "2026-03-01"
    assert parse_day("01.03.2026") == "2026-03-01"
    assert parse_day("31/02/2026") == "31/02/2026"  # not a day: the service refuses it
    assert parse_day("yesterday") == "yesterday"


async def test_a_lab_downloads_its_batch_as_csv_with_a_checksum_and_sees_dates_in_words(
    issuer: Issuer,
) -> None:
    lab = await issuer.service.create_org("LAB1", Role.LAB, "Laboratoire Biomed")
    secret = await person(issuer.accounts, "tech.reunion", lab, time_zone="Indian/Reunion")
    async with browser_session() as client:
        await sign_in(client, issuer.url, "tech.reunion", secret, issuer.clock)
        page = f"{issuer.url}/codes/lab"
        form = {"count": "4", "test_date": "2026-03-02"}
        async with await post_form(client, f"{page}/issue", page, form) as r:
            batch_url = f"{issuer.url}{r.headers['Location']}"
        async with client.get(batch_url) as r:
            html = await r.text()
        # Issued 2026-03-02 09:00:37 UTC, valid 7 days: 13:00 in Réunion (UTC+4).
        assert 'id="expires-at">lundi 9 mars 2026, 13:00<' in html
        assert 'id="test-day">lundi 2 mars 2026<' in html
        shown = re.search(r'id="sha256">([0-9a-f]{64})<', html)
        async with client.get(f"{batch_url}/codes.csv") as r:
            assert r.headers["Content-Type"].startswith("text/csv")
            assert "attachment" in r.headers["Content-Disposition"]
            body = await r.read()
        async with client.get(f"{batch_url}/codes.csv.sha256") as r:
            checksum = await r.text()
        async with client.get(f"{issuer.url}/codes/api/v1/authorities") as r:
            authorities = authorities_from_json(await r.json())
    digest = hashlib.sha256(body).hexdigest()
    assert shown is not None and shown.group(1) == digest
    assert checksum == f"{digest}  codes-LAB1-{batch_url.rsplit('/', 1)[1]}.csv\n"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 4
    for row in rows:
        assert parse_code(row["code"])[0] is CodeKind.LONG
        assert row["expires_at"] == "2026-03-09T09:00:37Z"  # machines get the machine form
        assert verify_link(row["link"], authorities).code == row["code"]


async def test_the_count_field_has_bounds_and_an_unknown_layout_is_refused(issuer: Issuer) -> None:
    """maxlength does nothing on a number field: the range is min and max. A layout the
    handouts do not have is a 400 saying which exist (it used to print cards), and no export
    is recorded for it."""
    secret = await signed_in(issuer, "tech.lab", "LAB1", Role.LAB)
    async with browser_session() as client:
        await sign_in(client, issuer.url, "tech.lab", secret, issuer.clock)
        page = f"{issuer.url}/codes/lab"
        async with client.get(page) as r:
            html = await r.text()
        [count] = re.findall(r'<input id="count"[^>]*>', html)
        assert 'type="number"' in count and 'min="1"' in count and 'max="1000"' in count
        assert "maxlength" not in count  # the kit's field macro, given min and max
        assert 'inputmode="numeric"' in count and 'aria-describedby="count-hint"' in count
        form = {"count": "2", "test_date": "2026-03-02"}
        async with await post_form(client, f"{page}/issue", page, form) as r:
            batch_url = f"{issuer.url}{r.headers['Location']}"
        for suffix in (
            "handout.pdf?layout=poster",
            "handout.html?layout=",
            "handout.pdf?layout=Grid",
        ):
            async with client.get(f"{batch_url}/{suffix}") as r:
                assert r.status == 400, suffix
                assert r.content_type == "text/html"
                assert "Cette mise en page n’existe pas : « page »" in await r.text()
        headers = {"Accept": "application/json"}
        async with client.get(f"{batch_url}/handout.pdf?layout=poster", headers=headers) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_request"
        entries = await issuer.service.store.audit.query(issuer.service.store.db, AuditFilter())
        assert not [e for e in entries if e.action == "export"]
        for suffix, kind in (
            ("handout.pdf", "application/pdf"),
            ("handout.html?layout=page", "text/html"),
        ):
            async with client.get(f"{batch_url}/{suffix}") as r:
                assert r.status == 200 and r.content_type == kind, suffix


async def test_a_lab_sees_verifies_and_revokes_only_its_own_codes(issuer: Issuer) -> None:
    first = await signed_in(issuer, "tech.one", "LAB1", Role.LAB)
    second = await signed_in(issuer, "tech.two", "LAB2", Role.LAB)
    lab1 = await issuer.service.get_org("LAB1")
    one, used = await issuer.service.issue(lab1, CodeKind.LONG, 2)
    assert await issuer.service.consume(used.record.code) == "accepted"
    batch = f"{issuer.url}/codes/lab/batches/{one.record.batch}"
    async with browser_session() as client:
        await sign_in(client, issuer.url, "tech.two", second, issuer.clock)
        page = f"{issuer.url}/codes/lab"
        for suffix in ("", "/codes.csv", "/handout.pdf", "/handout.html?layout=page"):
            async with client.get(batch + suffix) as r:
                assert r.status == 404, suffix
        form = {"code": one.record.code, "batch": one.record.batch or ""}
        async with await post_form(client, f"{page}/revoke", page, form) as r:
            assert r.status == 303
        async with client.get(page) as r:
            assert flash_of(await r.text()) == "Ce code n’est pas un de vos codes."
        async with await post_form(client, f"{page}/verify", page, {"code": one.record.code}) as r:
            html = await r.text()
        assert 'id="verified"' in html and "n’est pas un code de votre laboratoire" in html
    assert await issuer.service.check(one.record.code) == "valid"

    async with browser_session() as client:
        await sign_in(client, issuer.url, "tech.one", first, issuer.clock)
        async with client.get(batch) as r:
            html = await r.text()
        assert html.count('class="state valid"') == 1 and html.count('class="state used"') == 1
        form = {"code": used.record.code, "batch": used.record.batch or ""}
        async with await post_form(client, f"{page}/revoke", page, form) as r:
            assert r.headers["Location"] == f"/codes/lab/batches/{used.record.batch}"
        async with client.get(batch) as r:
            assert "a déjà été utilisé : il ne peut pas être révoqué" in flash_of(await r.text())
        form = {"code": one.record.code, "batch": one.record.batch or ""}
        async with await post_form(client, f"{page}/revoke", batch, form) as r:
            assert r.status == 303
        async with client.get(batch) as r:
            html = await r.text()
        assert flash_of(html) == f"Code {one.record.code} révoqué : l’application le refusera."
        async with await post_form(client, f"{page}/verify", page, {"code": "ABC"}) as r:
            html = await r.text()
            assert r.status == 422
        assert error_of(html, "code").startswith("Saisissez le code tel qu’il est imprimé")
        assert value_of(html, "code") == "ABC"
        async with await post_form(client, f"{page}/verify", page, {"code": one.record.code}) as r:
            html = await r.text()
        assert "Révoqué : l’application le refuse." in html
    entries = await issuer.service.store.audit.query(issuer.service.store.db, AuditFilter())
    by_people = {(e.actor, e.action) for e in entries if e.actor.startswith("tech.")}
    assert {("tech.one", "read"), ("tech.one", "revoke"), ("tech.one", "verify")} <= by_people
    assert ("tech.two", "revoke") not in by_people  # refused: nothing changed
    assert not any(one.record.code in repr(e) for e in entries)


async def test_a_doctor_gets_one_short_code_with_the_time_it_has_left(issuer: Issuer) -> None:
    secret = await signed_in(issuer, "dr.martin", "DOC1", Role.DOCTOR)
    async with browser_session() as client:
        await sign_in(client, issuer.url, "dr.martin", secret, issuer.clock)
        page = f"{issuer.url}/codes/doctor"
        async with client.get(page) as r:
            assert 'id="short-code"' not in await r.text()
        async with await post_form(client, f"{page}/new", page, {}) as r:
            assert (r.status, r.headers["Location"]) == (303, "/codes/doctor")
        async with client.get(page) as r:
            html = await r.text()
        code = re.search(r'id="short-code"[^>]*>([A-Z0-9]+)<', html)
        assert code is not None and parse_code(code.group(1))[0] is CodeKind.SHORT
        assert 'data-seconds="3600"' in html and "Valable encore 60 min 00 s" in html
        assert "Valable jusqu’au lundi 2 mars 2026, 11:00, une seule fois." in html
        issuer.clock.advance(1800)
        async with client.get(page) as r:
            assert 'data-seconds="1800"' in await r.text()
        async with client.get(f"{page}/handout.pdf") as r:
            assert (await r.read()).startswith(b"%PDF")
        issuer.clock.advance(1800)
        async with client.get(page) as r:
            html = await r.text()
        assert "Ce code a expiré. Donnez un nouveau code à votre patient." in html
        assert 'class="short-code expired"' in html
        async with await post_form(client, f"{page}/new", page, {}) as r:
            assert r.status == 303
        async with client.get(page) as r:
            again = re.search(r'id="short-code"[^>]*>([A-Z0-9]+)<', await r.text())
        assert again is not None and again.group(1) != code.group(1)
        async with await post_form(client, f"{page}/new", page, {}) as r:
            assert r.status == 303
    doctor = await issuer.service.get_org("DOC1")
    assert {r.kind for r, _ in await issuer.service.list("DOC1")} == {CodeKind.SHORT}
    assert not doctor.may_issue(CodeKind.LONG)


async def test_the_administrator_manages_organisations_people_and_keys(issuer: Issuer) -> None:
    secret = await signed_in(issuer, "root.admin", "HQ", Role.ADMIN)
    async with browser_session() as client:
        await sign_in(client, issuer.url, "root.admin", secret, issuer.clock)
        admin = f"{issuer.url}/codes/admin"
        bad = {"name": "labo biomed", "role": "lab", "title": "", "address": "a\nb\nc\nd\ne"}
        async with await post_form(client, f"{admin}/orgs", admin, bad) as r:
            html = await r.text()
            assert r.status == 422
        assert "sans espaces ni accents" in error_of(html, "name")
        assert error_of(html, "title").startswith("Saisissez le nom complet")
        assert error_of(html, "address").startswith("Raccourcissez l’adresse")
        assert value_of(html, "name") == "labo biomed"
        assert ">a\nb\nc\nd\ne</textarea>" in html  # kept as typed
        good = {
            "name": "LABO-BIOMED-11",
            "role": "lab",
            "title": "Laboratoire Biomed Paris 11",
            "address": "12 boulevard Voltaire\n75011 Paris",
        }
        async with await post_form(client, f"{admin}/orgs", admin, good) as r:
            assert r.headers["Location"] == "/codes/admin/orgs/LABO-BIOMED-11"
        async with await post_form(client, f"{admin}/orgs", admin, good) as r:
            assert error_of(await r.text(), "name").startswith("Ce nom court est déjà pris")
        org_page = f"{admin}/orgs/LABO-BIOMED-11"
        person_form = {
            "username": "Jeanne.Dupont",
            "display_name": "Jeanne Dupont",
            "password": "short",
            "time_zone": "Indian/Reunion",
        }
        async with await post_form(client, f"{org_page}/users", org_page, person_form) as r:
            html = await r.text()
        assert error_of(html, "password").startswith("Saisissez un mot de passe d’au moins 12")
        assert value_of(html, "username") == "Jeanne.Dupont"
        person_form["password"] = "a long enough password"
        async with await post_form(client, f"{org_page}/users", org_page, person_form) as r:
            assert r.status == 303
        async with await post_form(client, f"{org_page}/keys", org_page, {}) as r:
            assert r.headers["Location"] == "/codes/admin/orgs/LABO-BIOMED-11"
        async with client.get(org_page) as r:
            html = await r.text()
        key = re.search(r'id="new-key">([^<]+)<', html)
        assert key is not None
        async with client.get(org_page) as r:
            assert key.group(1) not in await r.text()  # shown once
        api = f"{issuer.url}/codes/api/v1/codes"
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        async with client.post(api, json={"type": "long"}, headers=headers) as r:
            assert r.status == 200
        [record] = [
            k for k in await issuer.accounts.api_keys.list() if k.scope == "org:LABO-BIOMED-11"
        ]
        for bad in ("%C2%B2", "9" * 5000):  # int("²") and int() of 5,000 digits raised: a 500
            async with await post_form(
                client, f"{issuer.url}/codes/admin/keys/{bad}/revoke", org_page, {}
            ) as r:
                assert r.status == 404, bad
        async with await post_form(
            client, f"{issuer.url}/codes/admin/keys/{record.id}/revoke", org_page, {}
        ) as r:
            assert r.headers["Location"] == "/codes/admin/orgs/LABO-BIOMED-11"
        async with client.post(api, json={"type": "long"}, headers=headers) as r:
            assert r.status == 401
        async with await post_form(
            client, f"{org_page}/users/jeanne.dupont/disable", org_page, {}
        ) as r:
            assert r.status == 303
    user = await issuer.accounts.users.find("jeanne.dupont")
    assert user is not None and not user.enabled
    assert (user.role, user.scope, user.time_zone) == (
        "lab",
        "org:LABO-BIOMED-11",
        "Indian/Reunion",
    )
    org = await issuer.service.get_org("LABO-BIOMED-11")
    assert org.address_lines == ["12 boulevard Voltaire", "75011 Paris"]
    entries = await issuer.service.store.audit.query(
        issuer.service.store.db, AuditFilter(actor="root.admin")
    )
    assert {e.action for e in entries} >= {"org_add", "create", "revoke", "disable"}


@pytest.mark.parametrize(
    "path", ["/codes/lab/issue", "/codes/doctor/new", "/codes/admin/orgs", "/codes/lab/revoke"]
)
async def test_changes_need_the_sessions_token(issuer: Issuer, path: str) -> None:
    role = {"lab": Role.LAB, "doctor": Role.DOCTOR, "admin": Role.ADMIN}[path.split("/")[2]]
    secret = await signed_in(issuer, "someone", "ORG1", role)
    async with browser_session() as client:
        await sign_in(client, issuer.url, "someone", secret, issuer.clock)
        form = {"csrf_token": "forged", "count": "1", "test_date": "2026-03-02"}
        async with client.post(f"{issuer.url}{path}", data=form) as r:
            assert r.status == 403
    assert await issuer.service.list("ORG1") == []
