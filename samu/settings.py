"""The board's one typed settings object: defaults, ``SAMU_*`` variables, flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from kit.settings import ServiceSettings, SettingsError, check_log_level, check_port, setting


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert samu serve`` and of the ``robert samu`` commands."""

    ENV_PREFIX: ClassVar[str] = "SAMU_"
    TITLE: ClassVar[str] = "SAMU board (SI-SAMU)"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8087, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database")
    database: str = setting(
        "", "sqlite:///path/samu.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions and TOTP secrets are encrypted with (default: one kept in "
        "DATA_DIR/samu.secret)",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    public_url: str = setting(
        "",
        "the address people reach the board at behind a TLS proxy (https://host): trusted by "
        "the CSRF check, session cookies Secure",
    )
    sivic_url: str = setting("", "SI-VIC's address (http://host:port) for the event's counts")
    sivic_key: str = setting("", "an SI-VIC API key of role board-reader", secret=True)
    beds_url: str = setting("", "the bed service's address for the event's bed tension")
    beds_key: str = setting("", "a bed-service API key of role reader", secret=True)
    redis_url: str = setting(
        "",
        "redis://host:port/db relaying new messages between the board's processes (default: "
        "one process, no relay)",
    )
    heartbeat_seconds: float = setting(15.0, "a comment on each live feed this often")

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'samu.db').resolve()}"

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``, or empty."""
        return self.public_url.rstrip("/")

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        check_log_level("log_level", self.log_level)
        if self.redis_url and urlsplit(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError("redis_url must be a redis:// address")
        for name in ("public_url", "sivic_url", "beds_url"):
            value = getattr(self, name)
            if value and urlsplit(value).scheme not in ("http", "https"):
                raise SettingsError(f"{name} must be an http(s) address")
        if self.heartbeat_seconds <= 0:
            raise SettingsError("heartbeat_seconds must be positive")
