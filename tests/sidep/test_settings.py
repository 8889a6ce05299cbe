"""SI-DEP's settings: the patients' e-mails and SMS go through SMTP and an SMS gateway when
configured (the file outbox otherwise), the secrets masked in the start-up line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kit import notify
from kit.settings import SettingsError
from sidep.settings import Settings


def test_smtp_and_the_sms_gateway_are_chosen_from_the_settings(tmp_path: Path) -> None:
    settings = Settings.from_sources(
        environ={
            "SIDEP_DATA_DIR": str(tmp_path),
            "SIDEP_SMTP_URL": "smtps://sidep%40ars:s3cret-pw@mail.example.fr",
            "SIDEP_SMS_URL": "https://sms.example.fr/send",
            "SIDEP_SMS_TOKEN": "tok-123456",
            "SIDEP_MAIL_FROM": "SI-DEP <resultats@sidep.example.fr>",
        }
    )
    chosen = settings.transports()
    smtp = chosen[notify.Channel.EMAIL]
    assert isinstance(smtp, notify.SmtpTransport)
    assert (smtp.host, smtp.port, smtp.security) == ("mail.example.fr", 465, "tls")
    assert (smtp.username, smtp.password) == ("sidep@ars", "s3cret-pw")
    assert smtp.sender == "SI-DEP <resultats@sidep.example.fr>"
    assert isinstance(chosen[notify.Channel.SMS], notify.HttpSmsTransport)
    assert isinstance(chosen[notify.Channel.LETTER], notify.FileTransport)
    line = settings.describe()
    assert "s3cret-pw" not in line and "tok-123456" not in line
    assert "sms_url=https://sms.example.fr/send" in line


def test_without_them_everything_goes_to_the_file_outbox(tmp_path: Path) -> None:
    settings = Settings.from_sources(environ={"SIDEP_DATA_DIR": str(tmp_path)})
    chosen = settings.transports()
    assert all(isinstance(t, notify.FileTransport) for t in chosen.values())
    assert chosen[notify.Channel.EMAIL].directory == tmp_path / "outbox"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SIDEP_SMTP_URL": "http://mail.example.fr"}, "smtp:// or smtps://"),
        ({"SIDEP_SMS_URL": "https://sms.example.fr/send"}, "needs its token"),
        ({"SIDEP_SITES_URL": "ftp://x"}, "sites_url"),
        ({"SIDEP_MAIL_FROM": ""}, "mail_from"),
        ({"SIDEP_MAIL_FROM": "SI-DEP"}, "mail_from"),
    ],
)
def test_bad_notification_settings_are_refused_in_one_line(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message) as refused:
        Settings.from_sources(environ=environ)
    assert "\n" not in str(refused.value)


COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"


def _compose_defaults(service: str, prefix: str) -> dict[str, str]:
    """The service's ``prefix*`` variables in deploy/docker-compose.yml as compose resolves
    them when nothing is set: ``${X:-default}`` -> default."""
    environment = yaml.safe_load(COMPOSE.read_text())["services"][service]["environment"]
    return {
        key: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in environment.items()
        if key.startswith(prefix)
    }


def test_the_compose_file_s_defaults_are_valid_settings(tmp_path: Path) -> None:
    """An empty ``${X:-}`` in compose is a value, not an unset variable: the sender must default
    to the settings' own default, not to an empty From."""
    environ = _compose_defaults("sidep", "SIDEP_")
    environ["SIDEP_DATA_DIR"] = str(tmp_path)
    environ.pop("SIDEP_CODES_URL")  # needs its API key, which compose leaves to the operator
    assert Settings.from_sources(environ=environ).mail_from == "SI-DEP <noreply@localhost>"
