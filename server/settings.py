"""The server's one typed settings object: defaults, then ``ROBERT_<NAME>`` variables, then flags.

Every field documents itself; ``robert serve --help`` lists them all with their variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from kit.settings import ServiceSettings, SettingsError, check_log_level, check_port, setting
from protocol.auth import CLOCK_TOLERANCE
from protocol.ebid import FRANCE
from protocol.epochs import epochs_covering, ntp_from_datetime
from protocol.hello import DEFAULT_TOLERANCE
from protocol.scoring import CONTAGIOUS_PERIOD_DAYS
from server.limits import parse_networks

CAPTCHA_MODES = ("image", "pow", "off")
"""The registration gates: the apps' captcha (image or audio), the proof of work, none.

The default is ``image``: a deployed server exists for the real apps, which know no other gate,
and a registration open to scripts would let anyone mint identities (and HELLOs) at will. Load
tests, the simulator and our own phones choose ``pow`` or ``off`` explicitly."""


@dataclass(frozen=True, slots=True)
class Settings(ServiceSettings):
    """Configuration of ``robert serve`` and ``robert worker``."""

    ENV_PREFIX: ClassVar[str] = "ROBERT_"
    TITLE: ClassVar[str] = "ROBERT server"

    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8080, "TCP port to listen on")
    data_dir: str = setting("data", "directory of the embedded store and, by default, the keys")
    store: str = setting(
        "", "sqlite:///path/robert.db or redis://host:port/db (default: SQLite in DATA_DIR)"
    )
    keys_dir: str = setting("", "directory of the server keys (default: DATA_DIR/keys)")
    time_start: str = setting("2020-06-01T00:00:00Z", "service start, ISO 8601 UTC (epoch 0)")
    status_min_interval: int = setting(
        1800, "seconds between two useful status requests; 0 disables"
    )
    risk_threshold: float = setting(0.1, "risk at which a registration is notified")
    hello_tolerance: int = setting(
        DEFAULT_TOLERANCE, "seconds a HELLO's time may differ from its reception"
    )
    clock_tolerance: int = setting(
        CLOCK_TOLERANCE, "seconds a phone's clock may differ from the server's"
    )
    captcha: str = setting(
        "image",
        "registration gate: 'image' (image or audio captcha, what the apps show), 'pow' (proof "
        "of work: load tests, our own phones) or 'off' (any answer passes)",
        choices=CAPTCHA_MODES,
    )
    pow_difficulty: int = setting(16, "leading zero bits the proof of work needs")
    captcha_lifetime: int = setting(300, "seconds a captcha can be answered")
    captcha_attempts: int = setting(3, "wrong answers after which a captcha is void")
    report_token_minutes: int = setting(5, "lifetime of a report validation token")
    analytics_token_minutes: int = setting(360, "lifetime of an analytics token")
    declaration_token_days: int = setting(30, "lifetime of a declaration token")
    country_code: int = setting(FRANCE, "this server's country code (France: 0x21)")
    tuple_days: int = setting(4, "days of tuples handed out (the current one and the next ones)")
    key_retention_days: int = setting(
        CONTAGIOUS_PERIOD_DAYS, "days a K_S is kept after its day (reports reach back)"
    )
    keys_ahead_days: int = setting(5, "days of future K_S generated ahead")
    embedded_worker: bool = setting(True, "run the report worker inside 'serve' (embedded default)")
    reclaim_after_ms: int = setting(
        5_000, "ms a claimed report may stay unacknowledged before another worker takes it"
    )
    worker_pause: float = setting(
        2.0,
        "seconds the report worker waits between two looks at the queue (drawn between half "
        "and one and a half times this), instead of waking on each report: its work then "
        "does not follow a real report's answer, which a dummy's would not (0: wake on each)",
    )
    workers: int = setting(1, "server processes sharing the port (SO_REUSEPORT)")
    max_report_bytes: int = setting(8 * 1024 * 1024, "largest accepted report body")
    codes_url: str = setting(
        "", "URL of the code service reports check codes with (default: in this process)"
    )
    codes_api_key: str = setting(
        "", "API key (role robert-server) for the code service at CODES_URL", secret=True
    )
    trusted_proxies: str = setting(
        "",
        "comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For "
        "names the client (empty: the TCP peer is the client)",
    )
    code_failures_per_client: int = setting(10, "failed submission codes a client may try an hour")
    code_failures_per_prefix: int = setting(
        200, "failed submission codes an hour for codes sharing their first two characters"
    )
    code_failures_overall: int = setting(20_000, "failed submission codes an hour, all clients")
    max_in_flight: int = setting(
        1024, "requests one process works on at once; more are answered 503 with Retry-After"
    )
    max_registering: int = setting(
        256,
        "registrations one process works on at once (each costs an ECDH and a bundle); more "
        "are answered 503 with Retry-After",
    )
    idle_trim: float = setting(
        5.0,
        "seconds without a request after which a process gives the memory a burst used back "
        "to the system (garbage collection, then glibc's malloc_trim); 0 turns it off",
    )
    max_connections: int = setting(4096, "open client connections per process; more are closed")
    header_timeout: float = setting(
        10.0,
        "seconds a connection may go without a complete request head, from its opening or its "
        "last answer (slowloris, idle keep-alive; keep the proxy's own keep-alive below it)",
    )
    body_timeout: float = setting(30.0, "seconds a client may take to send a request's body")
    parse_slots: int = setting(2, "large bodies parsed at once, off the event loop")
    parse_wait: float = setting(
        5.0, "seconds a large body waits for a parse slot before a 503 with Retry-After"
    )
    store_wait: float = setting(
        2.0, "seconds a request waits for a store connection before a 503 (Redis)"
    )
    store_connections: int = setting(64, "Redis connections per process (besides the fast one)")
    access_log: bool = setting(False, "write an access log (never with client addresses)")
    log_level: str = setting("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")

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
        return epochs_covering(self.status_min_interval)

    def validate(self) -> None:
        """Refuse settings that cannot work, with a message naming the setting."""
        check_port("port", self.port)
        if self.captcha not in CAPTCHA_MODES:
            raise SettingsError("captcha must be 'image', 'pow' or 'off'")
        if self.captcha_lifetime < 1 or self.captcha_attempts < 1:
            raise SettingsError("captcha_lifetime and captcha_attempts must be >= 1")
        if min(self.report_token_minutes, self.analytics_token_minutes) < 1:
            raise SettingsError("token lifetimes must be >= 1")
        if self.declaration_token_days < 1:
            raise SettingsError("token lifetimes must be >= 1")
        check_log_level("log_level", self.log_level)
        if not 0 <= self.country_code <= 255:
            raise SettingsError("country_code must fit in one byte")
        if self.idle_trim < 0:
            raise SettingsError("idle_trim must be >= 0")
        if self.tuple_days < 1 or self.workers < 1 or self.status_min_interval < 0:
            raise SettingsError("tuple_days and workers must be >= 1, status_min_interval >= 0")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"trusted_proxies: {exc}") from None
        if (
            min(
                self.code_failures_per_client,
                self.code_failures_per_prefix,
                self.code_failures_overall,
                self.max_in_flight,
                self.max_registering,
                self.max_connections,
                self.parse_slots,
                self.store_connections,
            )
            < 1
        ):
            raise SettingsError("code failure, in-flight, connection and slot limits must be >= 1")
        if min(self.header_timeout, self.body_timeout, self.store_wait, self.parse_wait) <= 0:
            raise SettingsError("timeouts, store_wait and parse_wait must be > 0")
        if self.codes_url and not self.codes_api_key:
            raise SettingsError("codes_url needs codes_api_key (a key of role robert-server)")
        try:
            start = self.time_start_ntp
        except ValueError:
            raise SettingsError(
                f"time_start is not an ISO 8601 time: {self.time_start!r}"
            ) from None
        if start % 86_400:
            # The apps learn the service start from GET /clock as a date (serviceStartDate).
            raise SettingsError(f"time_start must be a midnight UTC: {self.time_start!r}")
