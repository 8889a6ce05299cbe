"""kit.auth.users on both backends: argon2id passwords, encrypted TOTP secrets, codes accepted
once, administrative changes audited."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from kit.audit import Actor, AuditFilter
from kit.auth import AccountError, BadCredentials, CodeCheck, UserStore
from kit.db import Database
from kit.schema import users as users_table
from tests.kit.demo import FAST_HASHER, PASSWORD, SECRET, Clock

T0 = 1_796_875_680.0


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(db: Database, clock: Clock) -> UserStore:
    return UserStore(db, SECRET, "SI-DEP", hasher=FAST_HASHER, clock=clock)


async def new_user(store: UserStore, username: str = "dr.martin") -> tuple[int, str]:
    user, enrolment = await store.create(
        username, display_name="Dr Anne Martin", role="doctor", scope="finess:750712184",
        password=PASSWORD,
    )  # fmt: skip
    return user.id, enrolment.secret


async def test_create_returns_the_enrolment_once(store: UserStore) -> None:
    user, enrolment = await store.create(
        " Dr.Martin ", display_name="Dr Anne Martin", role="doctor", scope="finess:750712184",
        password=PASSWORD, time_zone="Indian/Reunion",
    )  # fmt: skip
    assert (user.username, user.role, user.scope) == ("dr.martin", "doctor", "finess:750712184")
    assert (user.time_zone, user.enabled, user.totp_confirmed) == ("Indian/Reunion", True, False)
    uri = urlsplit(enrolment.uri)
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/SI-DEP:dr.martin")
    assert parse_qs(uri.query) == {"secret": [enrolment.secret], "issuer": ["SI-DEP"]}
    assert len(enrolment.secret) == 32  # 160 bits
    assert await store.find("DR.MARTIN") == user and await store.get(user.id) == user
    assert [u.username for u in await store.list()] == ["dr.martin"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", "a", "user name is 2 to 64"),
        ("username", "dr martin", "user name is 2 to 64"),
        ("role", "Doctor", "a role is"),
        ("password", "short pass", "at least 12"),
        ("time_zone", "Mars/Olympus", "unknown time zone"),
        ("display_name", " ", "display name"),
    ],
)
async def test_create_refuses_bad_fields(
    sqlite_db: Database, clock: Clock, field: str, value: str, message: str
) -> None:
    store = UserStore(sqlite_db, SECRET, "SI-DEP", hasher=FAST_HASHER, clock=clock)
    fields = {
        "username": "dr.martin",
        "display_name": "Dr Anne Martin",
        "role": "doctor",
        "scope": "dep:75",
        "password": PASSWORD,
    } | {field: value}
    username = fields.pop("username")
    with pytest.raises(AccountError, match=message):
        await store.create(username, **fields)
    assert await store.list() == []


async def test_user_names_are_unique(store: UserStore) -> None:
    await new_user(store)
    with pytest.raises(AccountError, match="exists already"):
        await new_user(store, "DR.MARTIN")


async def test_passwords(store: UserStore, db: Database) -> None:
    user_id, _ = await new_user(store)
    assert (await store.authenticate("Dr.Martin", PASSWORD)).id == user_id
    for username, password in (("dr.martin", PASSWORD + "!"), ("nobody", PASSWORD)):
        with pytest.raises(BadCredentials, match=r"^wrong user name or password$"):
            await store.authenticate(username, password)
    async with db.connect() as conn:
        stored = (await conn.execute(sa.select(users_table.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    await store.disable("dr.martin")
    with pytest.raises(BadCredentials):
        await store.authenticate("dr.martin", PASSWORD)
    await store.enable("dr.martin")
    await store.reset_password("dr.martin", "a brand new passphrase")
    with pytest.raises(BadCredentials):
        await store.authenticate("dr.martin", PASSWORD)
    assert (await store.authenticate("dr.martin", "a brand new passphrase")).id == user_id
    with pytest.raises(AccountError, match="at least 12"):
        await store.reset_password("dr.martin", "too short")


async def test_hashes_are_upgraded_when_the_parameters_change(
    store: UserStore, db: Database, clock: Clock
) -> None:
    await new_user(store)  # made with cheap test parameters
    production = UserStore(db, SECRET, "SI-DEP", hasher=PasswordHasher(), clock=clock)
    await production.authenticate("dr.martin", PASSWORD)
    async with db.connect() as conn:
        stored = (await conn.execute(sa.select(users_table.c.password_hash))).scalar_one()
    assert not production.hasher.check_needs_rehash(stored)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    await production.authenticate("dr.martin", PASSWORD)  # the new hash verifies


async def test_codes_are_accepted_within_one_step_and_only_once(
    store: UserStore, clock: Clock
) -> None:
    user_id, secret = await new_user(store)
    totp = pyotp.TOTP(secret)
    assert await store.verify_totp(user_id, totp.at(clock())) == CodeCheck.WRONG  # not enrolled
    assert await store.confirm_totp(user_id, totp.at(clock())) == CodeCheck.OK
    assert await store.confirm_totp(user_id, totp.at(clock() + 30)) == CodeCheck.WRONG  # done
    assert await store.verify_totp(user_id, totp.at(clock())) == CodeCheck.REPLAYED
    clock.advance(30)
    assert await store.verify_totp(user_id, totp.at(clock() - 30)) == CodeCheck.REPLAYED
    assert await store.verify_totp(user_id, "123") == CodeCheck.WRONG
    code = totp.at(clock() + 30)  # the next step's code, one step early: accepted
    assert await store.verify_totp(user_id, code[:3] + " " + code[3:]) == CodeCheck.OK
    assert await store.verify_totp(user_id, totp.at(clock())) == CodeCheck.REPLAYED  # older
    clock.advance(120)
    assert await store.verify_totp(user_id, totp.at(clock() + 60)) == CodeCheck.WRONG
    assert await store.verify_totp(user_id, totp.at(clock() - 60)) == CodeCheck.WRONG


async def test_two_racing_requests_with_one_code_pass_once(store: UserStore, clock: Clock) -> None:
    user_id, secret = await new_user(store)
    await store.confirm_totp(user_id, pyotp.TOTP(secret).at(clock()))
    clock.advance(30)
    code = pyotp.TOTP(secret).at(clock())
    results = await asyncio.gather(*(store.verify_totp(user_id, code) for _ in range(4)))
    assert sorted(results) == [CodeCheck.OK] + [CodeCheck.REPLAYED] * 3


async def test_totp_secrets_are_encrypted_with_the_service_secret(
    store: UserStore, db: Database, clock: Clock
) -> None:
    user_id, secret = await new_user(store)
    async with db.connect() as conn:
        sealed = (await conn.execute(sa.select(users_table.c.totp_secret))).scalar_one()
    assert secret not in sealed
    other = UserStore(db, "another service secret, also long enough", "X", clock=clock)
    with pytest.raises(AccountError, match="service secret changed"):
        await other.enrolment(user_id)
    assert (await store.enrolment(user_id)).secret == secret


async def test_reset_totp_needs_a_new_enrolment(store: UserStore, clock: Clock) -> None:
    user_id, old = await new_user(store)
    await store.confirm_totp(user_id, pyotp.TOTP(old).at(clock()))
    with pytest.raises(AccountError, match="no enrolment pending"):
        await store.enrolment(user_id)
    clock.advance(30)
    enrolment = await store.reset_totp("dr.martin")
    assert enrolment.secret != old and not (await store.get(user_id)).totp_confirmed  # type: ignore[union-attr]
    assert await store.confirm_totp(user_id, pyotp.TOTP(old).at(clock())) == CodeCheck.WRONG
    new_code = pyotp.TOTP(enrolment.secret).at(clock())
    assert await store.confirm_totp(user_id, new_code) == CodeCheck.OK


async def test_changes_are_audited_with_their_author(store: UserStore) -> None:
    user_id, _ = await new_user(store)
    admin = Actor("admin.ars", "admin")
    await store.disable("dr.martin", by=admin)
    await store.reset_totp("dr.martin", by=admin)
    with pytest.raises(AccountError, match="no user ghost"):
        await store.disable("ghost", by=admin)
    entries = await store.audit.query(store.db, AuditFilter(object_type="user"))
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("admin.ars", "reset_totp", str(user_id)),
        ("admin.ars", "disable", str(user_id)),
        ("console", "create", str(user_id)),
    ]
