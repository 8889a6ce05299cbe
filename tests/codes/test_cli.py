"""The ``robert codes`` commands, in-process, on a temporary data dir."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from cli.main import main
from kit.i18n import format_datetime
from protocol.codes import CodeKind, parse_code
from tests.codes.conftest import read_qr


def run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> str:
    assert main(list(argv)) == status
    return capsys.readouterr().out


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    key = run(capsys, "codes", "orgs", "add", "--name", "LAB1", "--role", "lab", *data).strip()
    assert key.startswith("codes_")
    printed = run(capsys, "codes", "issue", "--org", "LAB1", "--count", "3", *data).split()
    assert len(printed) == 3 and all(parse_code(c)[0] is CodeKind.LONG for c in printed)

    qr_dir = tmp_path / "qr"
    sheet = tmp_path / "sheet.pdf"
    run(capsys, "codes", "issue", "--count", "2", "--out", str(sheet), "--qr", str(qr_dir), *data)
    assert sheet.read_bytes().startswith(b"%PDF")
    pngs = sorted(qr_dir.glob("*.png"))
    assert len(pngs) == 2
    [found_text] = read_qr(Image.open(io.BytesIO(pngs[0].read_bytes())))
    assert f"code={pngs[0].stem}&" in found_text and "org=ROBERT" in found_text
    html = tmp_path / "sheet.html"
    before = datetime.now(UTC)
    run(capsys, "codes", "issue", "--kind", "short", "--out", str(html), "--layout", "page",
        "--time-zone", "America/Cayenne", *data)  # fmt: skip
    after = datetime.now(UTC)
    text = html.read_text()
    assert text.count('class="paper handout"') == 1 and "<svg" in text
    assert "stopcovid://" not in text  # the link is only inside the QR code
    expiry = {  # a short code lasts an hour; the handout says when in Cayenne's time
        format_datetime(moment + timedelta(hours=1), "fr", "America/Cayenne")
        for moment in (before, after)
    }
    assert any(f"Valable jusqu’au {when}" in text for when in expiry)
    assert main(["codes", "issue", "--out", str(html), "--time-zone", "Mars/Base", *data]) == 1
    assert "--time-zone Mars/Base: not a time zone" in capsys.readouterr().err

    assert run(capsys, "codes", "verify", printed[0], *data).strip() == "valid"
    assert run(capsys, "codes", "revoke", printed[0], *data).strip() == f"revoked {printed[0]}"
    assert run(capsys, "codes", "verify", printed[0], *data, status=1).strip() == "revoked"
    assert run(capsys, "codes", "verify", "ABCDEF", *data, status=1).strip() == "unknown"

    listed = run(capsys, "codes", "list", "--org", "LAB1", *data).splitlines()
    states = {line.split("\t")[0]: line.split("\t")[2] for line in listed}
    assert states == {printed[0]: "revoked", printed[1]: "valid", printed[2]: "valid"}
    assert "LAB1\tlab\t" in run(capsys, "codes", "orgs", "list", *data)
    changed = run(capsys, "codes", "orgs", "set", "--name", "LAB1", "--title", "Labo Biomed",
                  "--address", "12 bd Voltaire\\n75011 Paris", *data)  # fmt: skip
    assert changed == "LAB1: Labo Biomed; 12 bd Voltaire, 75011 Paris\n"
    [lab1] = [o for o in run(capsys, "codes", "orgs", "list", *data).splitlines() if "LAB1" in o]
    assert lab1.endswith("\tLabo Biomed")
    by_lab = run(capsys, "codes", "audit", "--org", "LAB1", *data)  # what LAB1 did
    assert by_lab.count("\tissue\t") == 3 and "revoke" not in by_lab
    audit = run(capsys, "codes", "audit", *data)  # the operator revoked at the console
    assert "console\trevoke\tcode\t" in audit and printed[0] not in audit


def test_batch_writes_csv_and_checksum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    run(capsys, "codes", "orgs", "add", "--name", "LAB1", "--role", "lab", *data)
    out = tmp_path / "out"
    run(capsys, "codes", "batch", "--org", "LAB1", "--count", "2000", "--out", str(out), *data)
    body = (out / "codes.csv").read_bytes()
    lines = body.decode().splitlines()
    assert lines[0] == "code,type,test_date,org,expires_at,link" and len(lines) == 2001
    assert len({line.split(",")[0] for line in lines[1:]}) == 2000
    digest = (out / "codes.csv.sha256").read_text()
    assert digest == f"{hashlib.sha256(body).hexdigest()}  codes.csv\n"


def test_a_bad_sheet_path_is_refused_before_any_code_is_issued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    for out, reason in (
        (tmp_path / "sheet.docx", "a sheet is .pdf or .html, not .docx"),
        (tmp_path / "missing" / "sheet.pdf", "no directory"),
    ):
        assert main(["codes", "issue", "--count", "5", "--out", str(out), *data]) == 1
        error = capsys.readouterr().err
        assert reason in error and error.count("\n") == 1
    listed = run(capsys, "codes", "list", *data)
    assert listed == ""  # nothing was issued


def test_an_organisation_and_its_first_person_as_the_readme_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    out = run(capsys, "codes", "orgs", "add", "--name", "LABO-BIOMED-11", "--role", "lab",
              "--title", "Laboratoire Biomed Paris 11", "--address",
              "12 boulevard Voltaire\\n75011 Paris", "--no-key", *data)  # fmt: skip
    assert out == "organisation LABO-BIOMED-11 (lab) created\n"
    password = tmp_path / "password"
    password.write_text("a long enough password\n")
    out = run(capsys, "codes", "users", "add", "jeanne.dupont", "--name", "Jeanne Dupont",
              "--role", "lab", "--scope", "org:LABO-BIOMED-11", "--password-file",
              str(password), *data)  # fmt: skip
    assert "created user" in out and "otpauth://totp/Codes%20TousAntiCovid" in out
    assert "codes_" not in run(capsys, "codes", "apikeys", "list", *data)  # --no-key: none


def test_accounts_commands_and_the_robert_server_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    out = run(capsys, "codes", "apikeys", "add", "robert", "--role", "robert-server", *data)
    assert "codes_" in out
    assert "robert-server" in run(capsys, "codes", "apikeys", "list", *data)


def test_users_add_refuses_a_person_the_pages_would_turn_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A person's scope names an organisation that exists and whose role is theirs; anything
    else is refused in one line, before the user exists (and before a password is asked)."""
    data = ("--data-dir", str(tmp_path / "data"))
    run(capsys, "codes", "orgs", "add", "--name", "LAB1", "--role", "lab", "--no-key", *data)
    password = tmp_path / "password"
    password.write_text("a long enough password\n")
    for role, scope, reason in (
        ("lab", "org:NOPE", "--scope org:NOPE: no organisation NOPE"),
        ("doctor", "org:LAB1", "--role doctor: LAB1 is a lab organisation"),
        ("biologist", "org:LAB1", "'biologist' is not a role of this service's people: admin,"),
        ("lab", "dep:75", "--scope dep:75: a person acts for an organisation"),
        ("lab", "", "--scope (none): a person acts for an organisation"),
    ):
        argv = ["codes", "users", "add", "someone", "--name", "Some One", "--role", role,
                "--scope", scope, "--password-file", str(password), *data]  # fmt: skip
        assert main(argv) == 1, (role, scope)
        captured = capsys.readouterr()
        assert captured.out == ""
        assert reason in captured.err and captured.err.count("\n") == 1, captured.err
    assert "someone" not in run(capsys, "codes", "users", "list", *data)
    out = run(capsys, "codes", "users", "add", "someone", "--name", "Some One", "--role", "lab",
              "--scope", "org:LAB1", "--password-file", str(password), *data)  # fmt: skip
    assert "created user" in out and "(lab, scope org:LAB1)" in out


def test_every_option_of_issue_and_batch_says_what_it_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("issue", "batch"):
        with pytest.raises(SystemExit):
            main(["codes", command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--kind {short,long} long" in text, text
