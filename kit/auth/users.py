"""People's accounts: a password (argon2id) and a time-based one-time code (TOTP, RFC 6238).

- Passwords: at least 12 characters, hashed with argon2-cffi's ``PasswordHasher`` (argon2id,
  its RFC 9106 parameters), re-hashed at the next sign-in when the parameters change. Hashing
  runs in a thread: it takes tens of milliseconds and 64 MiB by design.
- TOTP: a 160-bit secret per person, stored encrypted (Fernet, key derived from the service
  secret), shown once at enrolment as a QR code and as text; a code is accepted within one
  30-second step either way (``valid_window=1``) and never twice: the last accepted step is
  stored and only a later one passes (a conditional UPDATE, so two racing requests cannot
  both pass).
- ``scope`` (``finess:750712184``, ``dep:75``, ``national``...) is stored and returned; the
  services interpret it.

Administrative changes are audited in the same transaction, naming who made them.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.audit import CONSOLE, Action, Actor, AuditLog
from kit.db import Database
from kit.i18n import DEFAULT_TIME_ZONE, is_time_zone
from kit.keys import TOTP_SECRETS, fernet_for
from kit.schema import users as users_table

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; a megabyte of password is an attack
TOTP_DIGITS = 6
TOTP_PERIOD = 30

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
_ROLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_CODE = re.compile(r"[0-9]{6}")


class AccountError(ValueError):
    """A refused account operation; the message is safe to show to an administrator."""


class BadCredentials(AccountError):
    """Unknown user, wrong password or disabled account: deliberately one error, so that the
    answer does not tell which."""

    def __init__(self) -> None:
        super().__init__("wrong user name or password")


class CodeCheck(StrEnum):
    """The outcome of a TOTP code."""

    OK = "ok"
    WRONG = "wrong"
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in (never the password hash nor the TOTP secret)."""

    id: int
    username: str
    display_name: str
    role: str
    scope: str
    time_zone: str
    enabled: bool
    totp_confirmed: bool
    created_at: datetime
    password_changed_at: datetime

    @property
    def actor(self) -> str:
        """How the audit log names this person."""
        return self.username

    def as_actor(self) -> Actor:
        """This person as an audit ``Actor``."""
        return Actor(self.username, self.role)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a person needs to set up their authenticator app; shown once."""

    username: str
    secret: str
    uri: str

    @property
    def grouped_secret(self) -> str:
        """The base32 secret in groups of four, easier to type."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def normalise_username(username: str) -> str:
    """The stored form of a user name: trimmed, lower case."""
    return username.strip().lower()


def check_password(password: str) -> None:
    """Refuse a password shorter than 12 characters (or absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        scope=row.scope,
        time_zone=row.time_zone,
        enabled=row.enabled,
        totp_confirmed=row.totp_confirmed,
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
    )


class UserStore:
    """The ``kit_users`` table of one service."""

    def __init__(
        self,
        db: Database,
        secret: str,
        issuer: str,
        *,
        hasher: PasswordHasher | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.issuer = issuer
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self.audit = audit or AuditLog(clock=self.now)
        self._fernet = fernet_for(secret, TOTP_SECRETS)
        self._dummy_hash: str | None = None

    def now(self) -> datetime:
        """The store's clock as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- reading ---------------------------------------------------------------------------
    async def get(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(users_table).where(users_table.c.id == user_id))
            ).first()
        return None if row is None else _user(row)

    async def find(self, username: str) -> User | None:
        """The user with this user name (any case), or None."""
        async with self.db.connect() as conn:
            row = await self._row(conn, normalise_username(username))
        return None if row is None else _user(row)

    async def list(self) -> list[User]:
        """Every user, by user name."""
        async with self.db.connect() as conn:
            rows = await conn.execute(sa.select(users_table).order_by(users_table.c.username))
            return [_user(row) for row in rows]

    @staticmethod
    async def _row(conn: AsyncConnection, username: str) -> Any:
        query = sa.select(users_table).where(users_table.c.username == username)
        return (await conn.execute(query)).first()

    # --- creating --------------------------------------------------------------------------
    async def create(
        self,
        username: str,
        *,
        display_name: str,
        role: str,
        scope: str,
        password: str,
        time_zone: str = DEFAULT_TIME_ZONE,
        by: Actor = CONSOLE,
    ) -> tuple[User, Enrolment]:
        """A new, enabled user whose TOTP is to be confirmed at first sign-in; the
        enrolment (secret and provisioning URI) to show them once."""
        username = normalise_username(username)
        if not _USERNAME.fullmatch(username):
            raise AccountError(
                "a user name is 2 to 64 characters: letters, digits, '.', '_' or '-'"
            )
        if not _ROLE.fullmatch(role):
            raise AccountError(
                "a role is a lower-case word: a letter, then letters, digits, - or _ (64 at most)"
            )
        if not display_name.strip() or len(display_name) > 200:
            raise AccountError("a display name is 1 to 200 characters")
        if len(scope) > 200:
            raise AccountError("a scope is at most 200 characters")
        if not is_time_zone(time_zone):
            raise AccountError(f"unknown time zone {time_zone!r} (e.g. Europe/Paris)")
        check_password(password)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        totp_secret = pyotp.random_base32()
        now = self.now()
        async with self.db.begin() as conn:
            if await self._row(conn, username) is not None:
                raise AccountError(f"user {username} exists already")
            user_id = (
                await conn.execute(
                    sa.insert(users_table)
                    .values(
                        username=username,
                        display_name=display_name.strip(),
                        role=role,
                        scope=scope,
                        time_zone=time_zone,
                        password_hash=password_hash,
                        totp_secret=self._seal(totp_secret),
                        totp_confirmed=False,
                        totp_last_step=None,
                        enabled=True,
                        created_at=now,
                        password_changed_at=now,
                    )
                    .returning(users_table.c.id)
                )
            ).scalar_one()
            await self._audit(conn, by, Action.CREATE, user_id, f"role {role}")
            user = _user(await self._row(conn, username))
        return user, self._enrolment(username, totp_secret)

    # --- passwords -------------------------------------------------------------------------
    async def authenticate(self, username: str, password: str) -> User:
        """The enabled user with this user name and password, or ``BadCredentials``.

        An unknown user name costs the same hashing time as a wrong password, so timing does
        not tell which user names exist."""
        async with self.db.connect() as conn:
            row = await self._row(conn, normalise_username(username))
        if row is None or len(password) > MAX_PASSWORD_LENGTH:
            await asyncio.to_thread(self._verify, self._dummy(), password)
            raise BadCredentials()
        if not await asyncio.to_thread(self._verify, row.password_hash, password):
            raise BadCredentials()
        if not row.enabled:
            raise BadCredentials()
        if self.hasher.check_needs_rehash(row.password_hash):
            new_hash = await asyncio.to_thread(self.hasher.hash, password)
            async with self.db.begin() as conn:
                await conn.execute(
                    sa.update(users_table)
                    .where(users_table.c.id == row.id)
                    .values(password_hash=new_hash)
                )
        return _user(row)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(pyotp.random_base32())
        return self._dummy_hash

    async def reset_password(self, username: str, password: str, *, by: Actor = CONSOLE) -> User:
        """Set a new password; sessions opened before it end at their next request."""
        check_password(password)
        password_hash = await asyncio.to_thread(self.hasher.hash, password)
        return await self._change(
            username, by, Action.RESET_PASSWORD, password_hash=password_hash,
            password_changed_at=self.now(),
        )  # fmt: skip

    async def disable(self, username: str, *, by: Actor = CONSOLE) -> User:
        """Refuse the user's sign-ins and end their sessions at their next request."""
        return await self._change(username, by, Action.DISABLE, enabled=False)

    async def enable(self, username: str, *, by: Actor = CONSOLE) -> User:
        """Allow a disabled user to sign in again."""
        return await self._change(username, by, Action.UPDATE, "enabled", enabled=True)

    # --- TOTP ------------------------------------------------------------------------------
    async def reset_totp(self, username: str, *, by: Actor = CONSOLE) -> Enrolment:
        """A new TOTP secret to enrol at the next sign-in (a lost phone); the old codes stop
        working and open sessions end at their next request."""
        secret = pyotp.random_base32()
        user = await self._change(
            username, by, Action.RESET_TOTP, totp_secret=self._seal(secret),
            totp_confirmed=False, totp_last_step=None,
        )  # fmt: skip
        return self._enrolment(user.username, secret)

    async def enrolment(self, user_id: int) -> Enrolment:
        """The enrolment of a user who has not confirmed their TOTP yet."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(users_table).where(users_table.c.id == user_id))
            ).first()
        if row is None or row.totp_confirmed:
            raise AccountError("no enrolment pending")
        return self._enrolment(row.username, self._unseal(row.totp_secret))

    async def verify_totp(self, user_id: int, code: str) -> CodeCheck:
        """Check a code of a user whose TOTP is confirmed; a code is accepted once."""
        return await self._check_code(user_id, code, confirming=False)

    async def confirm_totp(self, user_id: int, code: str) -> CodeCheck:
        """Check the first code of a user's new authenticator app; on success the TOTP is
        confirmed and required from then on."""
        return await self._check_code(user_id, code, confirming=True)

    async def _check_code(self, user_id: int, code: str, *, confirming: bool) -> CodeCheck:
        code = code.replace(" ", "").strip()
        async with self.db.connect() as conn:
            row = (
                await conn.execute(sa.select(users_table).where(users_table.c.id == user_id))
            ).first()
        if row is None or not row.enabled or row.totp_confirmed == confirming:
            return CodeCheck.WRONG
        if not _CODE.fullmatch(code):
            return CodeCheck.WRONG
        step = self._matching_step(self._unseal(row.totp_secret), code)
        if step is None:
            return CodeCheck.WRONG
        # Only a step later than the last one accepted passes; the condition is in the UPDATE
        # itself, so of two concurrent requests with the same code exactly one succeeds.
        t = users_table
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.update(t)
                .where(t.c.id == user_id)
                .where(sa.or_(t.c.totp_last_step.is_(None), t.c.totp_last_step < step))
                .values(totp_last_step=step, totp_confirmed=True)
            )
        return CodeCheck.OK if result.rowcount == 1 else CodeCheck.REPLAYED

    def _matching_step(self, secret: str, code: str) -> int | None:
        """The time step (within one either way of now) whose code is ``code``."""
        totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
        now = self.clock()
        current = totp.timecode(datetime.fromtimestamp(now, UTC))
        for offset in (0, -1, 1):  # the same window as pyotp's verify(valid_window=1)
            if hmac.compare_digest(totp.generate_otp(current + offset), code):
                return current + offset
        return None

    # --- helpers ---------------------------------------------------------------------------
    def _enrolment(self, username: str, secret: str) -> Enrolment:
        uri = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
            name=username, issuer_name=self.issuer
        )
        return Enrolment(username, secret, uri)

    def _seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def _unseal(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise AccountError(
                "a TOTP secret does not decrypt: the service secret changed since it was stored"
            ) from None

    async def _change(
        self, username: str, by: Actor, action: Action, detail: str = "", **values: Any
    ) -> User:
        username = normalise_username(username)
        async with self.db.begin() as conn:
            row = await self._row(conn, username)
            if row is None:
                raise AccountError(f"no user {username}")
            await conn.execute(
                sa.update(users_table).where(users_table.c.id == row.id).values(**values)
            )
            await self._audit(conn, by, action, row.id, detail)
            return _user(await self._row(conn, username))

    async def _audit(
        self, conn: AsyncConnection, by: Actor, action: Action, user_id: int, detail: str
    ) -> None:
        await self.audit.append(
            conn, actor=by.name, role=by.role, action=action, object_type="user",
            object_id=user_id, detail=detail,
        )  # fmt: skip
