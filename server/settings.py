"""The server's one typed settings object: defaults, then ``ROBERT_<NAME>`` variables, then flags.

Every field documents itself; ``robert serve --help`` lists them all with their variables.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocol.ebid import FRANCE
from protocol.epochs import ntp_from_datetime


def _opt(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """Configuration of ``robert serve`` and ``robert worker``."""

    host: str = _opt("127.0.0.1", "address to listen on")
    port: int = _opt(8080, "TCP port to listen on")
    data_dir: str = _opt("data", "directory of the embedded store and, by default, the keys")
    store: str = _opt(
        "", "sqlite:///path/robert.db or redis://host:port/db (default: SQLite in DATA_DIR)"
    )
    keys_dir: str = _opt("", "directory of the server keys (default: DATA_DIR/keys)")
    time_start: str = _opt("2020-06-01T00:00:00Z", "service start, ISO 8601 UTC (epoch 0)")
    status_min_interval: int = _opt(1800, "seconds between two useful status requests; 0 disables")
    risk_threshold: float = _opt(0.1, "risk at which a registration is notified")
    hello_tolerance: int = _opt(180, "seconds a HELLO's time may differ from its reception")
    clock_tolerance: int = _opt(60, "seconds a phone's clock may differ from the server's")
    captcha: str = _opt("pow", "registration gate: 'pow' (proof of work) or 'off'")
    pow_difficulty: int = _opt(16, "leading zero bits the proof of work needs")
    country_code: int = _opt(FRANCE, "this server's country code (France: 0x21)")
    tuple_days: int = _opt(4, "days of tuples handed out (the current one and the next ones)")
    tuple_refresh_days: int = _opt(2, "send fresh tuples when fewer than this many days remain")
    key_retention_days: int = _opt(14, "days a K_S is kept after its day (reports reach back)")
    keys_ahead_days: int = _opt(5, "days of future K_S generated ahead")
    embedded_worker: bool = _opt(True, "run the report worker inside 'serve' (embedded default)")
    reclaim_after_ms: int = _opt(
        60_000, "ms a claimed report may stay unacknowledged before another worker takes it"
    )
    workers: int = _opt(1, "server processes sharing the port (SO_REUSEPORT)")
    max_report_bytes: int = _opt(8 * 1024 * 1024, "largest accepted report body")
    access_log: bool = _opt(False, "write an access log (never with client addresses)")
    log_level: str = _opt("INFO", "logging level")

    @property
    def data_path(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)

    @property
    def store_url(self) -> str:
        """The store URL, defaulting to a SQLite file in the data directory."""
        return self.store or f"sqlite:///{(self.data_path / 'robert.db').resolve()}"

    @property
    def keys_path(self) -> Path:
        """Where the server keys live."""
        return Path(self.keys_dir) if self.keys_dir else self.data_path / "keys"

    @property
    def time_start_ntp(self) -> int:
        """The service start in NTP seconds."""
        moment = datetime.fromisoformat(self.time_start.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return ntp_from_datetime(moment)

    @property
    def status_min_gap_epochs(self) -> int:
        """The status interval in whole epochs, rounded up."""
        return -(-self.status_min_interval // 900)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field, its help naming the environment variable."""
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            env = "ROBERT_" + f.name.upper()
            text = f"{f.metadata['help']} [{env}, default: {f.default!r}]"
            if f.type in ("bool", bool):
                parser.add_argument(
                    flag,
                    dest=f.name,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=text,
                )
            else:
                parser.add_argument(
                    flag, dest=f.name, default=None, help=text, type=_parser_of(f.type)
                )

    @classmethod
    def from_sources(
        cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Defaults, overridden by ``ROBERT_*`` variables, overridden by flags."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get("ROBERT_" + f.name.upper())
            if raw is not None:
                try:
                    values[f.name] = _parser_of(f.type)(raw)
                except ValueError as exc:
                    raise ValueError(f"ROBERT_{f.name.upper()}: {exc}") from None
            flag_value = getattr(args, f.name, None) if args is not None else None
            if flag_value is not None:
                values[f.name] = flag_value
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        if self.captcha not in ("pow", "off"):
            raise ValueError("captcha must be 'pow' or 'off'")
        if not 0 <= self.country_code <= 255:
            raise ValueError("country_code must fit in one byte")
        if self.tuple_days < 1 or self.workers < 1 or self.status_min_interval < 0:
            raise ValueError("tuple_days and workers must be >= 1, status_min_interval >= 0")
        self.time_start_ntp  # noqa: B018 - parses, raising ValueError on a bad date

    def describe(self) -> str:
        """One line per setting for the start-up log; credentials in URLs are masked."""
        lines = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "store" and "@" in str(value):
                scheme, _, rest = str(value).partition("://")
                value = f"{scheme}://***@{rest.rpartition('@')[2]}"
            lines.append(f"{f.name}={value}")
        return " ".join(lines)


def _parser_of(type_name: Any) -> Any:
    name = type_name if isinstance(type_name, str) else type_name.__name__
    if name == "int":
        return lambda v: int(v, 0)
    if name == "float":
        return float
    if name == "bool":
        return _bool
    return str


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")
