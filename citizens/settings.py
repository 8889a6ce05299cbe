"""The citizen services' one typed settings object: defaults, ``CITIZENS_*`` variables, flags."""

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

DATA = Path(__file__).resolve().parent / "data"
SHIPPED_SITES = DATA / "sites.csv"
"""The synthetic sites shipped with the package (``data/README.md``), used when no file is set."""


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert citizens serve`` and of the ``robert citizens`` commands."""

    ENV_PREFIX: ClassVar[str] = "CITIZENS_"
    TITLE: ClassVar[str] = "citizen services"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8088, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded database and the secret")
    database: str = setting(
        "", "sqlite:///path/citizens.db or postgresql://user@host/db (default: SQLite in DATA_DIR)"
    )
    secret: str = setting(
        "",
        "secret that moderators' sessions and TOTP secrets are encrypted with (default: one "
        "kept in DATA_DIR/citizens.secret)",
        secret=True,
    )
    sites_file: str = setting(
        "",
        "test sites in the open-data CSV layout (docs/citizens.md); re-read when it changes "
        "(default: the synthetic sites shipped with the package)",
    )
    sites_check_every: float = setting(30.0, "seconds between checks of the sites file")
    embed_ancestors: str = setting(
        "*",
        "sites allowed to embed the test-site page in an iframe (CSP frame-ancestors "
        "sources, space-separated; '*' for any)",
    )
    public_url: str = setting(
        "",
        "the address people reach the service at behind a TLS proxy (https://host): its "
        "origin is trusted by the CSRF check, session cookies are Secure, the embed code "
        "shows it (default: the request's own address)",
    )
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data directory."""
        return self.database or f"sqlite:///{(self.data_path / 'citizens.db').resolve()}"

    @property
    def sites_path(self) -> Path:
        """The sites file read at start and watched."""
        return Path(self.sites_file) if self.sites_file else SHIPPED_SITES

    @property
    def public_origin(self) -> str:
        """``scheme://host[:port]`` of ``public_url``, or empty."""
        return self.public_url.rstrip("/")

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        check_log_level("log_level", self.log_level)
        if not 1.0 <= self.sites_check_every <= 86400.0:
            raise SettingsError("sites_check_every must be between 1 and 86400 seconds")
        check_origin("public_url", self.public_url)
        ancestors = self.embed_ancestors.split()
        if not ancestors or any(";" in a or "," in a or "'" in a for a in ancestors):
            raise SettingsError(
                "embed_ancestors must be CSP sources separated by spaces, e.g. "
                "'https://www.example.fr https://*.example.org' or '*'"
            )
