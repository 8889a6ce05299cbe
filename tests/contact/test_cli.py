"""``robert contact ...``: accounts, purge and the pseudonymised export on a data directory."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from cli.main import main
from contact.access import Access
from contact.app import open_service
from contact.service import CaseInput
from contact.settings import Settings
from kit.identity import pseudonym
from kit.keys import derive_key
from tests.contact.conftest import person


def test_purge_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")

    async def seed() -> None:
        service = await open_service(Settings(data_dir=data))
        try:
            await service.open_case(
                Access("dr.a", "doctor"),
                CaseInput(person("Dupont", "Élodie"), diagnosis_date=date(2020, 10, 22),
                          onset_date=date(2020, 10, 20)),
            )  # fmt: skip
        finally:
            await service.close()

    asyncio.run(seed())
    assert main(["contact", "auto-open", "--data-dir", data]) == 0
    assert "0 doctors' cases handed to level 2, 0 cases opened" in capsys.readouterr().out
    assert main(["contact", "purge", "--data-dir", data]) == 0
    assert "of 0 persons purged" in capsys.readouterr().out  # collected today
    out = tmp_path / "export.csv"
    assert main(["contact", "export", "--pseudonymised", "-o", str(out), "--data-dir", data]) == 0
    text = out.read_text()
    assert text.startswith("record;role;pseudonym") and "Dupont" not in text
    assert len(text.splitlines()[1].split(";")[2]) == 64
    # SI-DEP's pseudonym of the same person under the same key file (sidep.app.pseudonym_key:
    # HKDF of the file's secret, purpose "sidep pseudonym v1"): the two exports link
    secret = (tmp_path / "data" / "pseudonym.key").read_text().strip()
    key = derive_key(secret, "sidep pseudonym v1")
    expected = pseudonym(key, "Dupont", "Élodie", date(1980, 1, 1))
    assert text.splitlines()[1].split(";")[2] == expected
    assert main(["contact", "export", "--data-dir", data]) != 0  # --pseudonymised required
    assert "add --pseudonymised" in capsys.readouterr().err


def test_users_add(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    secret = tmp_path / "password"
    secret.write_text("correct horse battery staple\n")
    code = main(["contact", "users", "add", "agent.cpam", "--name", "Agent", "--role",
                 "cpam_agent", "--scope", "dep:75", "--password-file", str(secret),
                 "--data-dir", data])  # fmt: skip
    assert code == 0
    assert "otpauth://" in capsys.readouterr().out


def test_help_texts_say_what_is_built(capsys: pytest.CaptureFixture[str]) -> None:
    from contact import bench

    with pytest.raises(SystemExit):
        main(["contact", "export", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "pseudonym shared with SI-DEP" in out and "no name, NIR" in out
    with pytest.raises(SystemExit):
        bench.main(["search", "--help"])
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "trigram" not in out and "64,000" not in out
    assert "GIN index of word prefixes" in out and "66 first names" in out
