"""The code service's one typed settings object: defaults, ``CODES_*`` variables, flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from kit.settings import ServiceSettings, check_log_level, check_port, setting


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert codes serve`` and of the ``robert codes`` commands."""

    ENV_PREFIX: ClassVar[str] = "CODES_"
    TITLE: ClassVar[str] = "code service"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8081, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database")
    database: str = setting(
        "", "sqlite:///path/codes.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions and TOTP secrets are encrypted with (default: one kept in "
        "DATA_DIR/codes.secret)",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'codes.db').resolve()}"

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)

        check_log_level("log_level", self.log_level)
