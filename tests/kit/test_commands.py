"""kit.auth.commands: the account commands as a service's command line runs them."""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import pyotp
import pytest

from kit.auth import Accounts
from kit.auth.commands import PersonRules, Roles, add_account_commands
from kit.cli import CommandError
from kit.db import Database
from tests.kit.demo import FAST_HASHER, PASSWORD, SECRET


def parser_for(url: str) -> argparse.ArgumentParser:
    """A service's command line: its own options, then the kit's account commands."""
    parser = argparse.ArgumentParser(prog="sidep")
    parser.add_argument("--database", default=url)
    sub = parser.add_subparsers(dest="command", required=True)
    add_account_commands(
        sub, lambda args: Accounts(Database(args.database), SECRET, "SI-DEP", hasher=FAST_HASHER)
    )
    return parser


def run(parser: argparse.ArgumentParser, *argv: str) -> None:
    args = parser.parse_args(argv)
    args.func(args)


@pytest.fixture
def parser(tmp_path: Path) -> argparse.ArgumentParser:
    url = f"sqlite:///{tmp_path}/sidep.db"

    async def migrate() -> None:
        db = Database(url)
        await db.migrate()
        await db.close()

    asyncio.run(migrate())
    return parser_for(url)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(PASSWORD + "\n")
    return path


def test_users_add_list_disable_reset(
    parser: argparse.ArgumentParser, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(parser, "users", "add", "dr.martin", "--name", "Dr Anne Martin", "--role", "doctor",
        "--scope", "finess:750712184", "--password-file", str(password_file))  # fmt: skip
    out = capsys.readouterr().out
    assert "created user 1: dr.martin (doctor, scope finess:750712184)" in out
    uri = re.search(r"URI: (otpauth://\S+)", out)
    assert uri is not None
    assert pyotp.parse_uri(uri.group(1)).issuer == "SI-DEP"
    assert PASSWORD not in out
    run(parser, "users", "list")
    assert re.search(
        r"1\s+dr\.martin\s+doctor\s+finess:750712184\s+enabled, TOTP not", capsys.readouterr().out
    )
    run(parser, "users", "disable", "dr.martin")
    run(parser, "users", "reset-totp", "dr.martin")
    run(parser, "users", "reset-password", "dr.martin", "--password-file", str(password_file))
    run(parser, "users", "list")
    assert "disabled" in capsys.readouterr().out.splitlines()[-1]


def test_apikeys_add_list_revoke(
    parser: argparse.ArgumentParser, capsys: pytest.CaptureFixture[str]
) -> None:
    run(parser, "apikeys", "add", "Contact Covid", "--role", "event-reader", "--scope", "national")
    out = capsys.readouterr().out
    key = out.splitlines()[-1]
    assert re.fullmatch(r"kit_1_[A-Za-z0-9_-]{43}", key)
    run(parser, "apikeys", "list")
    listed = capsys.readouterr().out
    assert "Contact Covid" in listed and "active" in listed and key not in listed
    run(parser, "apikeys", "revoke", "1")
    run(parser, "apikeys", "list")
    assert "revoked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["users", "disable", "ghost"], "no user ghost"),
        (["apikeys", "revoke", "7"], "no API key 7"),
        (["apikeys", "add", "x", "--role", "Bad Role"], "a role is a lower-case word"),
        (["users", "add", "x", "--name", "X", "--role", "doctor", "--password-file", "/nope"],
         "cannot read a password from /nope"),
    ],
)  # fmt: skip
def test_failures_are_one_line(
    parser: argparse.ArgumentParser, argv: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as caught:
        run(parser, *argv)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_the_commands_migrate_a_new_database_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(parser_for(f"sqlite:///{tmp_path}/empty.db"), "users", "list")
    assert "user name" in capsys.readouterr().out


def test_an_unreachable_database_is_one_line() -> None:
    with pytest.raises(CommandError) as caught:
        run(parser_for("postgresql://nobody:pw@127.0.0.1:1/none"), "users", "list")
    assert str(caught.value) == (
        "cannot reach the database at postgresql://nobody:***@127.0.0.1:1/none: connection refused"
    )


def test_passwords_are_asked_twice(
    parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PASSWORD, PASSWORD + " typo"])
    monkeypatch.setattr("kit.auth.commands._terminal", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(CommandError, match="the two passwords differ"):
        run(parser, "users", "add", "dr.martin", "--name", "Dr Martin", "--role", "doctor")


NO_PASSWORD = "no password given: type it at a terminal or use --password-file FILE"


def test_no_terminal_and_no_password_file_is_one_line(
    parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script or a service unit has no terminal: getpass would warn that the password may be
    echoed and read an empty standard input to an EOFError."""
    monkeypatch.setattr("kit.auth.commands._terminal", lambda: False)
    asked: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "")
    with pytest.raises(CommandError) as caught:
        run(parser, "users", "add", "dr.martin", "--name", "Dr Martin", "--role", "doctor")
    assert str(caught.value) == NO_PASSWORD and asked == []


def test_end_of_input_at_the_prompt_is_one_line(
    parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ctrl_d(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("kit.auth.commands._terminal", lambda: True)
    monkeypatch.setattr("getpass.getpass", ctrl_d)
    with pytest.raises(CommandError) as caught:
        run(parser, "users", "add", "dr.martin", "--name", "Dr Martin", "--role", "doctor")
    assert str(caught.value) == NO_PASSWORD


SIDEP_ROLES = Roles(users={"biologist", "doctor", "admin"}, keys={"lab", "event-reader"})
BEDS_ROLES = Roles(users={"staff", "samu", "ars", "national"}, keys={"updater", "reader"})


def service_parser(prog: str, url: str, roles: Roles) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--database", default=url)
    sub = parser.add_subparsers(dest="command", required=True)
    add_account_commands(
        sub,
        lambda args: Accounts(Database(args.database), SECRET, prog, hasher=FAST_HASHER),
        roles=roles,
    )
    return parser


@pytest.mark.parametrize(
    ("prog", "roles", "other"),
    [("sidep", SIDEP_ROLES, BEDS_ROLES), ("beds", BEDS_ROLES, SIDEP_ROLES)],
)
def test_each_service_offers_and_takes_only_its_own_roles(
    prog: str,
    roles: Roles,
    other: Roles,
    tmp_path: Path,
    password_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = service_parser(prog, f"sqlite:///{tmp_path}/{prog}.db", roles)
    for command, own, others in (
        (("users", "add"), roles.users, other.users),
        (("apikeys", "add"), roles.keys, other.keys),
    ):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
        offered = text.split("--role ROLE one of: ", 1)[1].split(" --", 1)[0]
        assert offered.split(", ") == list(own), text
        assert not set(others) & set(re.findall(r"[\w-]+", text)), text
    whose = {"users": "people", "apikeys": "API keys"}
    for role in (*other.users, "lab" if prog == "beds" else "updater"):
        with pytest.raises(CommandError) as caught:
            run(parser, "users", "add", "x.y", "--name", "X", "--role", role,
                "--password-file", str(password_file))  # fmt: skip
        assert str(caught.value) == (
            f"{role!r} is not a role of this service's {whose['users']}: {', '.join(roles.users)}"
        )
    for role in other.keys:
        with pytest.raises(CommandError, match=f"^{role!r} is not a role of this service's API"):
            run(parser, "apikeys", "add", "machine", "--role", role)
    assert not (tmp_path / f"{prog}.db").exists()  # refused before the database is opened
    run(parser, "users", "add", "x.y", "--name", "X", "--role", roles.users[0],
        "--password-file", str(password_file))  # fmt: skip
    run(parser, "apikeys", "add", "machine", "--role", roles.keys[0])
    assert "created API key" in capsys.readouterr().out


def test_without_roles_the_help_names_no_service_s_roles(
    parser: argparse.ArgumentParser, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (("users", "add"), ("apikeys", "add")):
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--help"])
        text = capsys.readouterr().out
        assert not any(role in text for role in ("doctor", "cpam_agent", "biologist", "lab,"))
    user = ("users", "add", "x.y", "--name", "X", "--password-file", str(password_file))
    for command in (user, ("apikeys", "add", "machine")):
        with pytest.raises(CommandError) as caught:  # nor does the refusal of a malformed role
            run(parser, *command, "--role", "Bad Role")
        assert str(caught.value) == (
            "a role is a lower-case word: a letter, then letters, digits, - or _ (64 at most)"
        )


def test_a_service_s_own_check_of_a_person_runs_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``PersonRules``: the service's check sees the open, migrated accounts; a refusal comes
    before a password is asked or anyone created, and its texts are ``users add``'s help."""
    seen: list[tuple[str, str]] = []

    async def check(accounts: Accounts, args: argparse.Namespace) -> None:
        users = await accounts.users.list()  # the kit's tables are there already
        seen.append((args.scope, str(len(users))))
        if not args.scope.startswith("org:"):
            raise CommandError(f"--scope {args.scope or '(none)'}: an organisation, org:NAME")

    url = f"sqlite:///{tmp_path}/codes.db"
    parser = argparse.ArgumentParser(prog="codes")
    parser.add_argument("--database", default=url)
    add_account_commands(
        parser.add_subparsers(dest="command", required=True),
        lambda args: Accounts(Database(args.database), SECRET, "Codes", hasher=FAST_HASHER),
        roles=Roles(users={"lab", "doctor"}, keys={"lab"}),
        people=PersonRules(check, "lab or doctor: the organisation's", "org:NAME: whose"),
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["users", "add", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--role ROLE lab or doctor: the organisation's" in text
    assert "--scope SCOPE org:NAME: whose" in text
    asked: list[str] = []
    monkeypatch.setattr("kit.auth.commands._terminal", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or PASSWORD)
    with pytest.raises(CommandError, match=r"^--scope dep:75: an organisation, org:NAME$"):
        run(parser, "users", "add", "x.y", "--name", "X", "--role", "lab", "--scope", "dep:75")
    assert asked == [] and seen == [("dep:75", "0")]
    run(parser, "users", "add", "x.y", "--name", "X", "--role", "lab", "--scope", "org:LAB1")
    assert len(asked) == 2 and seen[-1] == ("org:LAB1", "0")
    run(parser, "users", "list")
    assert "x.y" in capsys.readouterr().out
