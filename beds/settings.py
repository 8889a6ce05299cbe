"""The bed service's one typed settings object: defaults, ``BEDS_*`` variables, flags."""

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
    """Configuration of ``robert beds serve`` and of the ``robert beds`` commands."""

    ENV_PREFIX: ClassVar[str] = "BEDS_"
    TITLE: ClassVar[str] = "bed service (ROR)"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8084, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database")
    database: str = setting(
        "", "sqlite:///path/beds.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that sessions and TOTP secrets are encrypted with (default: one kept in "
        "DATA_DIR/beds.secret)",
        secret=True,
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    public_url: str = setting(
        "",
        "the address people reach the service at behind a TLS proxy (https://host): its "
        "origin is trusted by the CSRF check and session cookies are Secure (default: the "
        "request's own address)",
    )
    stale_minutes: float = setting(60.0, "a unit not updated for this long is marked stale")
    tension_alert: float = setting(0.6, "alert level of the tension rate (0.6: 60 per cent)")
    tension_crisis: float = setting(0.8, "crisis level of the tension rate (0.8: 80 per cent)")
    snapshot_minutes: float = setting(15.0, "how often the day's figures are kept")
    figures_cache_seconds: float = setting(
        1.0,
        "how long the summed figures are reused while this process records no update "
        "(updates of other processes show within this delay; 0: never reused)",
    )

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'beds.db').resolve()}"

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``, or empty."""
        return self.public_url.rstrip("/")

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        check_log_level("log_level", self.log_level)
        check_origin("public_url", self.public_url)
        if self.figures_cache_seconds < 0:
            raise SettingsError("figures_cache_seconds cannot be negative")
        if self.stale_minutes <= 0 or self.snapshot_minutes <= 0:
            raise SettingsError("stale_minutes and snapshot_minutes must be positive")
        if not 0 < self.tension_alert <= self.tension_crisis:
            raise SettingsError("thresholds must satisfy 0 < tension_alert <= tension_crisis")
