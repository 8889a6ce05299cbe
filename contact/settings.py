"""Contact Covid's one typed settings object: defaults, ``CONTACT_*`` variables, flags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from contact.rules import TimeRules
from kit.notify import Channel, Transport, transports
from kit.settings import ServiceSettings, SettingsError, check_log_level, check_port, setting


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert contact serve`` and of the ``robert contact`` commands."""

    ENV_PREFIX: ClassVar[str] = "CONTACT_"
    TITLE: ClassVar[str] = "Contact Covid"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8083, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database and keys")
    database: str = setting(
        "", "sqlite:///path/contact.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions and TOTP secrets are encrypted with (default: one kept in "
        "DATA_DIR/contact.secret)",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    pseudonym_key_file: str = setting(
        "", "file of the pseudonym key shared with SI-DEP (default: DATA_DIR/pseudonym.key)"
    )
    auto_open_after_hours: float = setting(
        24.0, "hours after an SI-DEP positive before a level-2 case is opened automatically"
    )
    sla_hours: float = setting(24.0, "hours within which level 2 takes a case over")
    handover_after_hours: float = setting(
        24.0, "hours after which a doctor's case not handed over goes to level 2 by itself"
    )
    symptomatic_before_hours: float = setting(48.0, "contagious window before symptom onset")
    asymptomatic_before_hours: float = setting(
        48.0, "contagious window before sampling for people without symptoms"
    )
    contact_isolation_days: int = setting(7, "a contact isolates this long after last contact")
    case_isolation_days: int = setting(7, "a case isolates this long after onset (or sampling)")
    retention_days: int = setting(90, "identifying data is purged this long after collection")
    cluster_min_cases: int = setting(3, "cases sharing a setting that make a cluster")
    cluster_window_days: int = setting(7, "days within which a cluster's cases fall")
    job_seconds: float = setting(60.0, "how often the auto-open and purge jobs run")
    sidep_url: str = setting(
        "", "SI-DEP's event feed (https://.../sidep/api/v1/events); empty: not consumed"
    )
    sidep_api_key: str = setting("", "API key of role event-reader at SI-DEP", secret=True)
    notify_dir: str = setting(
        "",
        "write letters, and SMS and e-mails without a gateway, as files here "
        "(default: DATA_DIR/outbox)",
    )
    smtp_url: str = setting(
        "",
        "send e-mails through this server: smtp://user:password@host[:587] (STARTTLS), "
        "smtps://...:465, smtp://host:25?security=none; empty: files in the outbox",
        secret=True,
    )
    mail_from: str = setting("contact-covid@localhost", "sender address of the e-mails")
    sms_url: str = setting(
        "", "send SMS through this HTTP gateway (https://...); empty: files in the outbox"
    )
    sms_token: str = setting("", "bearer token of the SMS gateway", secret=True)

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'contact.db').resolve()}"

    @property
    def pseudonym_key_path(self) -> Path:
        """Where the pseudonym key is kept."""
        return (
            Path(self.pseudonym_key_file)
            if self.pseudonym_key_file
            else (self.data_path / "pseudonym.key")
        )

    @property
    def rules(self) -> TimeRules:
        """The time rules these settings give."""
        return TimeRules(
            symptomatic_before=timedelta(hours=self.symptomatic_before_hours),
            asymptomatic_before=timedelta(hours=self.asymptomatic_before_hours),
            contact_isolation=timedelta(days=self.contact_isolation_days),
            case_isolation=timedelta(days=self.case_isolation_days),
            sla=timedelta(hours=self.sla_hours),
        )

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        check_log_level("log_level", self.log_level)
        for name in ("auto_open_after_hours", "sla_hours", "handover_after_hours", "job_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")
        if self.retention_days < 1 or self.cluster_min_cases < 2:
            raise SettingsError("retention_days >= 1 and cluster_min_cases >= 2")
        if self.sidep_url and not self.sidep_api_key:
            raise SettingsError("sidep_url needs sidep_api_key (an event-reader key)")
        try:
            self.transports()
        except ValueError as exc:  # names the part at fault, never the password
            raise SettingsError(f"notifications: {exc}") from None

    @property
    def outbox(self) -> Path:
        """Where letters (and SMS and e-mails without a gateway) are written."""
        return Path(self.notify_dir) if self.notify_dir else self.data_path / "outbox"

    def transports(self) -> dict[Channel, Transport]:
        """Each channel's transport: SMTP and the SMS gateway when configured, files in the
        outbox otherwise (``kit.notify.transports``); ValueError on a bad URL."""
        return transports(
            self.outbox, self.mail_from, smtp_url=self.smtp_url, sms_url=self.sms_url,
            sms_token=self.sms_token,
        )  # fmt: skip
