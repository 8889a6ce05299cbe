"""Each service's ``users add`` and ``apikeys add`` offer (in ``--help``) and take only the
roles its code accepts: its people's (what ``require_user`` and its pages check) and its API
keys' (what each ``require_api_key`` of the service, and ``kit.events``' feed, accept). Another
service's role is refused in one line, before any database is opened (in-process)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cli.main import main

ROLES: dict[str, tuple[set[str], set[str]]] = {
    # service: (people's roles, API keys' roles)
    "beds": (
        {"staff", "samu", "ars", "national"},  # beds.access.PEOPLE_ROLES
        # updater, reader; the others through the API's _caller (dashboards, find, units)
        {"staff", "updater", "samu", "ars", "national", "reader"},
    ),
    "sidep": (
        {"biologist", "tester", "doctor", "cpam_agent", "spf_analyst", "admin"},
        {"lab", "admin", "event-reader"},  # INTAKE_KEY_ROLES and kit.events.READER_ROLE
    ),
    "codes": (
        {"lab", "doctor", "admin"},  # codes.model.Role
        {"lab", "doctor", "admin", "robert-server"},  # organisations' keys, the ROBERT server's
    ),
    "contact": (
        {"doctor", "cpam_agent", "cpam_doctor", "ars_agent", "pharmacist", "biologist"}
        | {"spf_analyst", "admin"},  # contact.access.ROLES
        # CASE_ROLES | CHECK_ROLES | EXPORT_ROLES: no API route takes an admin key
        {"doctor", "cpam_agent", "cpam_doctor", "ars_agent", "pharmacist", "biologist"}
        | {"spf_analyst"},
    ),
    "drugs": ({"pharmacist", "ars", "national"}, {"pharmacist", "ars", "national"}),
    "citizens": ({"moderator"}, set()),  # no API takes a key
    "samu": (
        {"regulator", "ars", "zone", "national", "hospital", "admin"},
        {"regulator", "ars", "zone", "national", "hospital", "admin", "board"},
    ),
    "sivic": (
        {"staff", "ars", "national", "admin"},
        {"staff", "hospital", "ars", "national", "admin", "board-reader"},
    ),
}
EVERY_ROLE = set().union(*(people | keys for people, keys in ROLES.values()))
WHOSE = {"users": "people", "apikeys": "API keys"}


def _named(text: str) -> set[str]:
    """The roles (of any service) that ``text`` names as whole words."""
    return {r for r in EVERY_ROLE if re.search(rf"(?<![\w-]){re.escape(r)}(?![\w-])", text)}


def _role_help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--help"])
    assert exit.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    return text.rsplit("--role ROLE ", 1)[1].split(" --scope SCOPE", 1)[0]


@pytest.mark.parametrize("service", sorted(ROLES))
def test_the_help_offers_exactly_the_service_s_roles(
    service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    people, keys = ROLES[service]
    assert _named(_role_help(capsys, service, "users", "add")) == people
    offered = _role_help(capsys, service, "apikeys", "add")
    assert _named(offered) == keys
    if keys:  # the kit's wording, every role in order
        assert offered == "one of: " + ", ".join(sorted(keys))
    else:
        assert offered == "none: this service takes no such role"


def _refusal(
    service: str, command: str, role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    data = tmp_path / "data"
    password = tmp_path / "password"
    password.write_text("correct horse battery staple\n")
    person = ("x.y", "--name", "X Y", "--password-file", str(password), "--scope", "org:X")
    argv = [service, command, "add", *(person if command == "users" else ("machine",))]
    assert main([*argv, "--role", role, "--data-dir", str(data)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not data.exists()  # refused before the database is opened
    return err.strip()


@pytest.mark.parametrize("service", sorted(ROLES))
def test_another_service_s_role_is_refused_in_one_line(
    service: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people, keys = ROLES[service]
    for command, own in (("users", people), ("apikeys", keys)):
        role = "lab" if "lab" not in own else "updater"
        err = _refusal(service, command, role, tmp_path, capsys)
        refused = f"robert: {role!r} is not a role of this service's {WHOSE[command]}"
        if not own:  # citizens' keys: the service takes none
            assert err == f"robert: this service has no {WHOSE[command]}: nothing takes such a role"
            continue
        assert err == f"{refused}: " + ", ".join(sorted(own))


def test_a_lab_key_for_the_bed_service_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refusal("beds", "apikeys", "lab", tmp_path, capsys)
    assert err == (
        "robert: 'lab' is not a role of this service's API keys: "
        "ars, national, reader, samu, staff, updater"
    )


DOCUMENTED = [  # the keys and people README.md, docs/ and deploy/ tell operators to create
    "beds apikeys add drugs --role reader",
    "beds apikeys add samu --role reader",
    "beds users add ars.idf --name 'ARS IdF' --role ars --scope reg:11",
    "codes apikeys add robert --role robert-server",
    "codes apikeys add sidep --role lab",
    "contact users add agent.cpam75 --name 'Agent CPAM 75' --role cpam_agent --scope dep:75",
    "samu users add regul.75 --name 'SAMU 75' --role regulator --scope samu:75",
    "sidep users add agent1 --name 'Agent CPAM' --role cpam_agent",
    "sidep users add pharma --name 'Pharmacie X' --role tester --scope finess:750012345",
    "sidep apikeys add 'Labo Y' --role lab --scope finess:690001234",
    "sidep apikeys add 'Contact Covid' --role event-reader",
    "sivic apikeys add 'SAMU board' --role board-reader --scope national",
    "sivic users add soignant --name 'Full Name' --role staff --scope finess:750100125",
    "citizens users add camille --name 'Camille Martin' --role moderator",
]


def test_the_documented_commands_still_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = tmp_path / "password"
    password.write_text("correct horse battery staple\n")
    for command in DOCUMENTED:
        argv = shlex.split(command)
        extra = ["--password-file", str(password)] if argv[1] == "users" else []
        data = ["--data-dir", str(tmp_path / argv[0])]
        assert main([*argv, *extra, *data]) == 0, (argv, capsys.readouterr().err)
        assert "created " in capsys.readouterr().out
