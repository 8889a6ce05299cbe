"""SI-DEP's one typed settings object: defaults, ``SIDEP_*`` variables, flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from kit import notify
from kit.settings import ServiceSettings, SettingsError, check_log_level, check_port, setting


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert sidep serve`` and of the ``robert sidep`` commands."""

    ENV_PREFIX: ClassVar[str] = "SIDEP_"
    TITLE: ClassVar[str] = "SI-DEP (lab results)"

    host: str = setting("127.0.0.1", "address to listen on (HTTP and MLLP)")
    port: int = setting(8082, "TCP port of the HTTP service")
    mllp_port: int = setting(2575, "TCP port of the HL7 MLLP listener (0: no listener)")
    data_dir: str = setting("data", "directory of the embedded database and key files")
    database: str = setting(
        "", "sqlite:///path/sidep.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions and TOTP secrets are encrypted with (default: one kept in "
        "DATA_DIR/sidep.secret)",
        secret=True,
    )
    pseudonym_key_file: str = setting(
        "", "file of the key of the patients' pseudonyms (default: DATA_DIR/pseudonym.key)"
    )
    purge_days: int = setting(90, "identifying data is purged this many days after sampling")
    codes_url: str = setting(
        "", "base URL of the code service (empty: the code service of this process, if any)"
    )
    codes_api_key: str = setting("", "API key (role lab) of the code service", secret=True)
    outbox_dir: str = setting(
        "", "directory the file notification outbox writes to (default: DATA_DIR/outbox)"
    )
    smtp_url: str = setting(
        "",
        "SMTP server of the patients' e-mails: smtp://[user:password@]host[:port] (STARTTLS), "
        "smtps://... (TLS) or smtp://host?security=none (empty: e-mails to the file outbox)",
        secret=True,
    )
    mail_from: str = setting("SI-DEP <noreply@localhost>", "sender (From) of the e-mails")
    sms_url: str = setting(
        "", "URL of the HTTP SMS gateway (JSON POST; empty: SMS to the file outbox)"
    )
    sms_token: str = setting("", "bearer token of the SMS gateway", secret=True)
    sites_url: str = setting(
        "",
        "base URL of the citizens service, whose test sites the positive's notice lists "
        "(e.g. http://127.0.0.1:8080/citizens; empty: none listed)",
    )
    commit_batch: int = setting(500, "most messages committed together by the MLLP listener")
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'sidep.db').resolve()}"

    @property
    def pseudonym_key_path(self) -> Path:
        """Where the pseudonym key is kept."""
        return (
            Path(self.pseudonym_key_file)
            if self.pseudonym_key_file
            else (self.data_path / "pseudonym.key")
        )

    @property
    def outbox_path(self) -> Path:
        """Where the file outbox writes notifications."""
        return Path(self.outbox_dir) if self.outbox_dir else self.data_path / "outbox"

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        if self.mllp_port:
            check_port("mllp_port", self.mllp_port)
        check_log_level("log_level", self.log_level)
        if self.purge_days < 1:
            raise SettingsError("purge_days must be at least 1")
        if not 1 <= self.commit_batch <= 10_000:
            raise SettingsError("commit_batch must be 1..10000")
        if self.codes_url and not self.codes_api_key:
            raise SettingsError("codes_url needs codes_api_key (an API key of role lab)")
        try:
            self.transports()
        except ValueError as exc:
            raise SettingsError(f"notifications: {exc}") from None
        if self.sites_url and urlsplit(self.sites_url).scheme not in ("http", "https"):
            raise SettingsError("sites_url must start with http:// or https://")

    def transports(self) -> dict[notify.Channel, notify.Transport]:
        """Each channel's transport: SMTP and the SMS gateway where set, else the outbox."""
        return notify.transports(
            self.outbox_path, self.mail_from, smtp_url=self.smtp_url, sms_url=self.sms_url,
            sms_token=self.sms_token,
        )  # fmt: skip
