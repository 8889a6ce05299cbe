"""SI-VIC's one typed settings object: defaults, ``SIVIC_*`` variables, flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from kit.settings import (
    ServiceSettings,
    SettingsError,
    check_log_level,
    check_origin,
    check_port,
    setting,
)


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert sivic serve`` and of the ``robert sivic`` commands."""

    ENV_PREFIX: ClassVar[str] = "SIVIC_"
    TITLE: ClassVar[str] = "SI-VIC"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8086, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database")
    database: str = setting(
        "", "sqlite:///path/sivic.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions, TOTP secrets and identity pseudonyms are keyed with (default: "
        "one kept in DATA_DIR/sivic.secret)",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    publish_dir: str = setting(
        "", "directory the daily job writes the open-data files to (empty: no job)"
    )
    publish_minutes: float = setting(60.0, "how often the job rewrites the day's files")
    public_url: str = setting(
        "",
        "the origin people reach the service at behind a TLS proxy (https://host): trusted by "
        "the CSRF check, session cookies Secure (default: the request's own address)",
    )

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'sivic.db').resolve()}"

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        check_log_level("log_level", self.log_level)
        if self.publish_minutes <= 0:
            raise SettingsError("publish_minutes must be positive")
        check_origin("public_url", self.public_url)
