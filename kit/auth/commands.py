"""``users ...`` and ``apikeys ...``: the account commands every service adds to its own CLI.

A service passes its sub-parsers, a callable opening its ``Accounts`` from the parsed
arguments (its settings give the database URL and the secret) and its own roles, those of its
people and those of its API keys::

    add_account_commands(
        subparsers,
        lambda args: open_accounts(Settings.from_sources(args)),
        roles=Roles(users={"biologist", "doctor", "admin"}, keys={"lab", "event-reader"}),
    )

``--role`` then names those roles in ``--help`` and takes no other (one line otherwise). A
service that gives no ``roles`` takes any well-formed role, as before. A service whose
people must meet more than a role (an organisation that exists, say) passes ``people=
PersonRules(check=..., role_help=..., scope_help=...)``: the check runs on the open, migrated
database before anyone is created or a password asked, and the two texts replace the kit's in
``users add --help``.

and dispatches as usual (``args.func(args)``). Each command opens the accounts, does one thing,
closes the database, and is audited under the actor ``console``. A failure is one line on
stderr and exit status 1. Passwords are read with ``getpass`` (or from ``--password-file``),
never from the command line, where ``ps`` and the shell history would keep them; with no
terminal to ask at (a script, a service unit) and no file, the command says so in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import os
import sys
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qrcode
import sqlalchemy as sa

from kit.auth.people import Accounts
from kit.auth.users import AccountError, Enrolment, check_password
from kit.cli import CommandError
from kit.db import Migrations
from kit.i18n import DEFAULT_TIME_ZONE
from kit.keys import SecretError

OpenAccounts = Callable[[argparse.Namespace], Accounts]
Job = Callable[[Accounts, argparse.Namespace], Awaitable[None]]


@dataclass(frozen=True, slots=True, init=False)
class Roles:
    """A service's own roles: its people's (``users add --role``) and its API keys'
    (``apikeys add --role``)."""

    users: tuple[str, ...]
    keys: tuple[str, ...]

    def __init__(self, users: Collection[str], keys: Collection[str]) -> None:
        object.__setattr__(self, "users", tuple(sorted(users)))
        object.__setattr__(self, "keys", tuple(sorted(keys)))


SCOPE_HELP = "where the role applies, as this service writes it (e.g. dep:75)"

PersonCheck = Callable[[Accounts, argparse.Namespace], Awaitable[None]]
"""A service's own check of the person ``users add`` is about to create, given the accounts
(open, their database migrated) and the parsed arguments; it refuses by raising
``CommandError`` (one line on stderr, exit status 1)."""


@dataclass(frozen=True, slots=True)
class PersonRules:
    """What a service asks of the people ``users add`` creates beyond a role of its own: a
    check run before anyone is created or a password asked, and how ``--role`` and ``--scope``
    read in ``--help``."""

    check: PersonCheck | None = None
    role_help: str | None = None
    """``--role``'s help; the kit's (the service's roles) if None."""
    scope_help: str = SCOPE_HELP


def _role_help(roles: Sequence[str] | None) -> str:
    if roles is None:
        return "the role, as this service's pages and API check it"
    if not roles:
        return "none: this service takes no such role"
    return "one of: " + ", ".join(roles)


def _check_role(role: str, roles: Sequence[str], whose: str) -> None:
    """Refuse, before the database is opened or a password asked, a role not the service's."""
    if not roles:
        raise CommandError(f"this service has no {whose}: nothing takes such a role")
    if role not in roles:
        raise CommandError(f"{role!r} is not a role of this service's {whose}: {', '.join(roles)}")


def add_account_commands(
    subparsers: Any,
    open_accounts: OpenAccounts,
    configure: Callable[[argparse.ArgumentParser], object] | None = None,
    migrations: Sequence[Migrations] = (),
    roles: Roles | None = None,
    people: PersonRules = PersonRules(),
) -> None:
    """Add ``users`` and ``apikeys`` (each with its sub-commands) to ``subparsers``;
    ``configure`` is applied to each command's parser (to add the service's settings), and
    the database is brought to the kit's and ``migrations``' latest revision first, as the
    service itself does when it starts. With ``roles``, ``--role`` offers and takes only the
    service's own; ``people`` adds the service's own check of a new person (``PersonRules``)."""
    user_roles = roles.users if roles is not None else None
    key_roles = roles.keys if roles is not None else None

    def command(
        parent: Any,
        name: str,
        job: Job,
        help: str,
        role_of: str = "",
        check: PersonCheck | None = None,
    ) -> argparse.ArgumentParser:
        allowed = {"people": user_roles, "API keys": key_roles}.get(role_of)

        def func(args: argparse.Namespace) -> int:
            if allowed is not None:
                _check_role(args.role, allowed, role_of)
            return _run(open_accounts, job, args, migrations, check)

        parser: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        parser.set_defaults(func=func)
        if configure is not None:
            configure(parser)
        return parser

    users = subparsers.add_parser("users", help="people who sign in to the pages")
    users_sub = users.add_subparsers(dest="users_command", metavar="COMMAND", required=True)
    add = command(
        users_sub,
        "add",
        _users_add,
        "create a user; print their TOTP enrolment once",
        "people",
        people.check,
    )
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name, as shown in the pages")
    add.add_argument("--role", required=True, help=people.role_help or _role_help(user_roles))
    add.add_argument("--scope", default="", help=people.scope_help)
    add.add_argument("--time-zone", default=DEFAULT_TIME_ZONE, help="for dates in the pages")
    add.add_argument("--password-file", type=Path, help="read the password from this file")
    command(users_sub, "list", _users_list, "list the users (never their secrets)")
    for name, job, text in (
        ("disable", _users_disable, "refuse a user's sign-ins and end their sessions"),
        ("enable", _users_enable, "allow a disabled user to sign in again"),
        ("reset-totp", _users_reset_totp, "new authenticator enrolment (a lost phone)"),
    ):
        command(users_sub, name, job, text).add_argument("username")
    reset = command(users_sub, "reset-password", _users_reset_password, "set a new password")
    reset.add_argument("username")
    reset.add_argument("--password-file", type=Path, help="read the password from this file")

    keys = subparsers.add_parser("apikeys", help="API keys of machines")
    keys_sub = keys.add_subparsers(dest="apikeys_command", metavar="COMMAND", required=True)
    key_add = command(keys_sub, "add", _keys_add, "create an API key; print it once", "API keys")
    key_add.add_argument("name", help="whose key: the system that will use it")
    key_add.add_argument("--role", required=True, help=_role_help(key_roles))
    key_add.add_argument("--scope", default="", help=SCOPE_HELP)
    command(keys_sub, "list", _keys_list, "list the API keys (never the keys)")
    revoke = command(keys_sub, "revoke", _keys_revoke, "revoke an API key for good")
    revoke.add_argument("id", type=int)


def _run(
    open_accounts: OpenAccounts,
    job: Job,
    args: argparse.Namespace,
    migrations: Sequence[Migrations] = (),
    check: PersonCheck | None = None,
) -> int:
    async def main() -> None:
        accounts = open_accounts(args)
        try:
            await accounts.db.migrate(*migrations)
            if check is not None:
                await check(accounts, args)
            await job(accounts, args)
        finally:
            await accounts.db.close()

    try:
        asyncio.run(main())
    except (AccountError, SecretError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    except (OSError, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        # The driver's message may quote SQL parameters (user names): only its kind is shown.
        kind = type(getattr(exc, "orig", None) or exc).__name__
        raise CommandError(f"the database refused ({kind}); is it reachable?") from None
    return 0


def _password(args: argparse.Namespace) -> str:
    path: Path | None = args.password_file
    if path is not None:
        try:
            return path.read_text().splitlines()[0]
        except (OSError, IndexError):
            raise AccountError(f"cannot read a password from {path}") from None
    if not _terminal():
        raise AccountError(NO_PASSWORD)
    try:
        password = getpass.getpass("Password: ")
        check_password(password)
        again = getpass.getpass("Password again: ")
    except EOFError:  # end of input (Ctrl-D) instead of a password
        raise AccountError(NO_PASSWORD) from None
    if again != password:
        raise AccountError("the two passwords differ")
    return password


NO_PASSWORD = "no password given: type it at a terminal or use --password-file FILE"


def _terminal() -> bool:
    """Whether ``getpass`` can ask someone: the process's terminal (what it opens first) or a
    standard input that is one. Without either it would read standard input with a warning
    that the password may be echoed, and end in EOFError on an empty one."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return sys.stdin is not None and sys.stdin.isatty()
    os.close(fd)
    return True


def _print_enrolment(enrolment: Enrolment) -> None:
    print("Authenticator enrolment (shown once; the user may also enrol at first sign-in):")
    print(f"  key: {enrolment.grouped_secret}")
    print(f"  URI: {enrolment.uri}")
    if sys.stdout.isatty():
        code = qrcode.QRCode(border=2)
        code.add_data(enrolment.uri)
        text = io.StringIO()
        code.print_ascii(out=text, invert=True)
        print(text.getvalue())


async def _users_add(accounts: Accounts, args: argparse.Namespace) -> None:
    user, enrolment = await accounts.users.create(
        args.username,
        display_name=args.name,
        role=args.role,
        scope=args.scope,
        password=_password(args),
        time_zone=args.time_zone,
    )
    print(f"created user {user.id}: {user.username} ({user.role}, scope {user.scope or '-'})")
    _print_enrolment(enrolment)


async def _users_list(accounts: Accounts, args: argparse.Namespace) -> None:
    print(f"{'id':>5}  {'user name':<24} {'role':<16} {'scope':<20} state")
    for u in await accounts.users.list():
        state = ("enabled" if u.enabled else "disabled") + (
            "" if u.totp_confirmed else ", TOTP not enrolled"
        )
        print(f"{u.id:>5}  {u.username:<24} {u.role:<16} {u.scope or '-':<20} {state}")


async def _users_disable(accounts: Accounts, args: argparse.Namespace) -> None:
    user = await accounts.users.disable(args.username)
    print(f"disabled {user.username}")


async def _users_enable(accounts: Accounts, args: argparse.Namespace) -> None:
    user = await accounts.users.enable(args.username)
    print(f"enabled {user.username}")


async def _users_reset_password(accounts: Accounts, args: argparse.Namespace) -> None:
    if await accounts.users.find(args.username) is None:
        raise AccountError(f"no user {args.username}")
    user = await accounts.users.reset_password(args.username, _password(args))
    print(f"new password set for {user.username}; their open sessions end")


async def _users_reset_totp(accounts: Accounts, args: argparse.Namespace) -> None:
    enrolment = await accounts.users.reset_totp(args.username)
    print(f"new authenticator to enrol for {enrolment.username}; their open sessions end")
    _print_enrolment(enrolment)


async def _keys_add(accounts: Accounts, args: argparse.Namespace) -> None:
    key, secret = await accounts.api_keys.create(args.name, args.role, args.scope)
    print(f"created API key {key.id} for {key.name} ({key.role}); shown once, keep it safe:")
    print(secret)


async def _keys_list(accounts: Accounts, args: argparse.Namespace) -> None:
    print(f"{'id':>5}  {'name':<28} {'role':<16} {'scope':<20} state")
    for k in await accounts.api_keys.list():
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        if k.last_used_at and not k.revoked_at:
            state += f", last used {k.last_used_at:%Y-%m-%d %H:%M} UTC"
        print(f"{k.id:>5}  {k.name:<28} {k.role:<16} {k.scope or '-':<20} {state}")


async def _keys_revoke(accounts: Accounts, args: argparse.Namespace) -> None:
    key = await accounts.api_keys.revoke(args.id)
    print(f"revoked API key {key.id} ({key.name})")
