"""The drug service's one typed settings object: defaults, ``DRUGS_*`` variables, flags."""

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
    """Configuration of ``robert drugs serve`` and of the ``robert drugs`` commands."""

    ENV_PREFIX: ClassVar[str] = "DRUGS_"
    TITLE: ClassVar[str] = "drug service (MaPUI)"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8085, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database")
    database: str = setting(
        "", "sqlite:///path/drugs.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions and TOTP secrets are encrypted with (default: one kept in "
        "DATA_DIR/drugs.secret)",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    public_url: str = setting(
        "",
        "the address people reach the service at behind a TLS proxy (https://host): its "
        "origin is trusted by the CSRF check and session cookies are Secure (default: the "
        "request's own address)",
    )
    low_days: float = setting(7.0, "days of cover under which a stock is low")
    critical_days: float = setting(3.0, "days of cover under which a stock is critical")
    beds_url: str = setting("", "the bed service's URL, for patients in critical care")
    beds_api_key: str = setting("", "an API key of the bed service (role reader)", secret=True)

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'drugs.db').resolve()}"

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``, or empty."""
        return self.public_url.rstrip("/")

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        check_log_level("log_level", self.log_level)
        check_origin("public_url", self.public_url)
        if not 0 < self.critical_days <= self.low_days:
            raise SettingsError("thresholds must satisfy 0 < critical_days <= low_days")
