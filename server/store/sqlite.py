"""The embedded store: one SQLite file, for a single server or a small deployment.

Every operation runs on one dedicated thread that owns the only connection, so operations are
serialised within the process; each write runs in a ``BEGIN IMMEDIATE`` transaction so it is
also atomic against another process (the CLI worker) sharing the file.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from protocol.epochs import unix_from_ntp
from protocol.types import IdA, MacKey, TupleKey
from server.store.base import (
    NEVER,
    Budget,
    Captcha,
    PushInfo,
    QueuedReport,
    Registration,
    RiskState,
    StatusOutcome,
    StatusRecorded,
    Store,
    StoreUnavailable,
    exposure_tag,
)

T = TypeVar("T")

POLL_SECONDS = 0.05
"""How often an empty queue is polled while ``claim_reports`` blocks."""

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process holding the file's write lock."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    id_a BLOB PRIMARY KEY,
    k_a BLOB NOT NULL,
    k_ea BLOB NOT NULL,
    last_status_epoch INTEGER NOT NULL,
    last_status_time INTEGER NOT NULL,
    at_risk INTEGER NOT NULL,
    risk_level INTEGER NOT NULL,
    last_contact_epoch INTEGER NOT NULL,
    last_scoring_epoch INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exposures (
    id_a BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    report_id TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (id_a, epoch, report_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS push_infos (
    id_a BLOB PRIMARY KEY,
    token TEXT NOT NULL,
    locale TEXT NOT NULL,
    timezone TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS captchas (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    answer TEXT NOT NULL,
    locale TEXT NOT NULL,
    expires INTEGER NOT NULL,
    attempts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budgets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated REAL NOT NULL,
    full_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_requests (
    id_a BLOB NOT NULL,
    kind INTEGER NOT NULL,
    time INTEGER NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (id_a, kind, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL,
    claimed_by TEXT,
    claimed_at_ms INTEGER
);
"""

_REGISTRATION_COLUMNS = (
    "id_a, k_a, k_ea, last_status_epoch, last_status_time,"
    " at_risk, risk_level, last_contact_epoch, last_scoring_epoch"
)
_INSERT_REGISTRATION = (
    f"INSERT OR IGNORE INTO registrations ({_REGISTRATION_COLUMNS}) VALUES ({'?,' * 8}?)"
)
_CAPTCHA_COLUMNS = "id, kind, answer, locale, expires, attempts"

DROPPED_COLUMNS = ("tuples_until_epoch",)
"""Columns of earlier versions of the schema, dropped when a file is opened: every status
answer now carries fresh tuples, so how far a phone's tuples reach is no longer kept."""


def _connect(path: str) -> sqlite3.Connection:
    """Open the file in autocommit mode (transactions are explicit) and create the schema."""
    # The file holds every registration's keys: readable by its owner only, WAL files too.
    if path != ":memory:":
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).touch(mode=0o600, exist_ok=True)
            os.chmod(path + suffix, 0o600)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    # Deleted rows (processed reports) are overwritten with zeros, not left in free pages.
    conn.execute("PRAGMA secure_delete = ON")
    conn.executescript(SCHEMA)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(registrations)")}
    for column in DROPPED_COLUMNS:
        if column in columns:
            conn.execute(f"ALTER TABLE registrations DROP COLUMN {column}")
    return conn


def describe(exc: BaseException) -> str:
    """Why a file could not be opened, in a few words."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def not_a_cursor(result: T) -> T:
    """Refuse to hand a cursor to the event loop's thread: it would be finalised there, racing
    with the store thread on the same connection (SQLite then reports "API misuse")."""
    if isinstance(result, sqlite3.Cursor):
        raise TypeError("store steps return values, not cursors")
    return result


BULK_CHUNK = 10_000
"""Registrations written per transaction by ``create_registrations``."""


def _row_of(r: Registration) -> tuple[Any, ...]:
    """A registration as a row in ``_REGISTRATION_COLUMNS`` order."""
    risk = r.risk
    return (
        bytes(r.id_a),
        r.k_a.material,
        r.k_ea.material,
        r.last_status_epoch,
        r.last_status_time,
        int(risk.at_risk),
        risk.risk_level,
        risk.last_contact_epoch,
        risk.last_scoring_epoch,
    )


def _registration_of(row: Sequence[Any]) -> Registration:
    """Rebuild a Registration from a row in ``_REGISTRATION_COLUMNS`` order."""
    return Registration(
        id_a=IdA(bytes(row[0])),
        k_a=MacKey(bytes(row[1])),
        k_ea=TupleKey(bytes(row[2])),
        last_status_epoch=row[3],
        last_status_time=row[4],
        risk=RiskState(bool(row[5]), row[6], row[7], row[8]),
    )


def _status_outcome(
    row: Sequence[int], epoch: int, time_: int, min_gap_epochs: int
) -> StatusOutcome | None:
    """The refusal for a status request given (last epoch, last time), or None to accept."""
    last_epoch, last_time = row
    if last_epoch == NEVER:
        return None
    if time_ == last_time:
        return StatusOutcome.REPLAYED
    if min_gap_epochs > 0 and epoch - last_epoch < min_gap_epochs:
        return StatusOutcome.TOO_SOON
    return None


def _push_of(row: Sequence[str] | None) -> PushInfo | None:
    return None if row is None else PushInfo(row[0], row[1], row[2])


_UPSERT_PUSH = (
    "INSERT INTO push_infos (id_a, token, locale, timezone) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (id_a) DO UPDATE SET token = excluded.token, locale = excluded.locale,"
    " timezone = excluded.timezone"
)


def _wall() -> float:
    """Unix seconds now (methods whose ``time`` argument hides the module)."""
    return time.time()


def _budget_level(conn: sqlite3.Connection, budget: Budget, now: float) -> float:
    """Tokens in a bucket at ``now`` (a bucket never seen is full)."""
    sql = "SELECT tokens, updated FROM budgets WHERE key = ?"
    row = conn.execute(sql, (budget.key,)).fetchone()
    if row is None:
        return float(budget.burst)
    refill = max(0.0, now - row[1]) * budget.burst / budget.per_seconds
    return float(min(float(budget.burst), row[0] + refill))


def _set_budget(conn: sqlite3.Connection, budget: Budget, tokens: float, now: float) -> None:
    full_at = now + (budget.burst - tokens) * budget.per_seconds / budget.burst
    conn.execute(
        "INSERT INTO budgets (key, tokens, updated, full_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,"
        " updated = excluded.updated, full_at = excluded.full_at",
        (budget.key, tokens, now, full_at),
    )


class SqliteStore(Store):
    """Store in one SQLite file (WAL, synchronous=NORMAL), driven from one worker thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    # --- plumbing ----------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the store thread; one at a time, in call order."""
        if self._executor is None:
            raise RuntimeError("SqliteStore is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection; only ever used on the store thread."""
        if self._conn is None:
            raise RuntimeError("SqliteStore is not open")
        return self._conn

    def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a write transaction (taken up front, against other
        processes), committed only if it returns."""
        conn = self._db
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn, *args)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return not_a_cursor(result)

    async def _transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` as one transaction on the store thread."""
        return await self._run(self._write, fn, *args)

    async def _query(self, sql: str, *params: Any) -> list[Any]:
        """All rows of a read-only statement."""
        return await self._run(lambda: self._db.execute(sql, params).fetchall())

    # --- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        """Start the store thread, open the file and create the schema; idempotent."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            self._conn = await self._run(_connect, self.path)
        except (sqlite3.Error, OSError) as exc:
            self._executor.shutdown(wait=True)
            self._executor = None
            reason = describe(exc)
            raise StoreUnavailable(f"cannot open the SQLite store {self.path}: {reason}") from None
        except BaseException:
            self._executor.shutdown(wait=True)
            self._executor = None
            raise

    async def close(self) -> None:
        """Close the connection on its own thread, then stop the thread."""
        if self._executor is None:
            return
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def ping(self) -> bool:
        """True if the file answers a trivial query."""
        try:
            return await self._query("SELECT 1") == [(1,)]
        except (sqlite3.Error, RuntimeError):
            return False

    # --- registrations -----------------------------------------------------------------
    async def create_registration(
        self, registration: Registration, push: PushInfo | None = None
    ) -> bool:
        """INSERT OR IGNORE (the primary key makes a duplicate ID_A a no-op), and the push
        information in the same transaction."""
        row = _row_of(registration)

        def step(conn: sqlite3.Connection) -> bool:
            if conn.execute(_INSERT_REGISTRATION, row).rowcount != 1:
                return False
            if push is not None:
                conn.execute(_UPSERT_PUSH, (row[0], push.token, push.locale, push.timezone))
            return True

        return await self._transaction(step)

    async def create_registrations(self, registrations: Sequence[Registration]) -> list[bool]:
        """INSERT OR IGNORE in one transaction per 10,000; then which rows are ours."""

        def insert(conn: sqlite3.Connection, chunk: Sequence[Registration]) -> list[bool]:
            inserted = conn.executemany(_INSERT_REGISTRATION, [_row_of(r) for r in chunk]).rowcount
            if inserted == len(chunk):
                return [True] * len(chunk)
            created = []
            for r in chunk:  # an ID_A existed already: only rows with our K_A are ours
                row = conn.execute(
                    "SELECT k_a FROM registrations WHERE id_a = ?", (bytes(r.id_a),)
                ).fetchone()
                created.append(row is not None and bytes(row[0]) == r.k_a.material)
            return created

        created: list[bool] = []
        for start in range(0, len(registrations), BULK_CHUNK):
            chunk = registrations[start : start + BULK_CHUNK]
            created += await self._transaction(lambda c, chunk=chunk: insert(c, chunk))
        return created

    async def get_registration(self, id_a: IdA) -> Registration | None:
        """The registration row, or None."""
        rows = await self._query(
            f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE id_a = ?", bytes(id_a)
        )
        return _registration_of(rows[0]) if rows else None

    async def get_keys(self, id_a: IdA) -> tuple[MacKey, TupleKey] | None:
        """The k_a and k_ea columns."""
        rows = await self._query("SELECT k_a, k_ea FROM registrations WHERE id_a = ?", bytes(id_a))
        return (MacKey(bytes(rows[0][0])), TupleKey(bytes(rows[0][1]))) if rows else None

    async def record_status(
        self,
        id_a: IdA,
        epoch: int,
        time: int,
        min_gap_epochs: int,
        with_push: bool = False,
    ) -> StatusRecorded:
        """Read, check replay and rate limit, then store, in one transaction."""

        def step(conn: sqlite3.Connection) -> StatusRecorded:
            row = conn.execute(
                f"SELECT {_REGISTRATION_COLUMNS} FROM registrations WHERE id_a = ?",
                (bytes(id_a),),
            ).fetchone()
            if row is None:
                return StatusRecorded(StatusOutcome.UNKNOWN, None)
            before = _registration_of(row)
            push = None
            if with_push:
                push = _push_of(
                    conn.execute(
                        "SELECT token, locale, timezone FROM push_infos WHERE id_a = ?",
                        (bytes(id_a),),
                    ).fetchone()
                )
            refusal = _status_outcome(
                (before.last_status_epoch, before.last_status_time), epoch, time, min_gap_epochs
            )
            if refusal is not None:
                return StatusRecorded(refusal, before, push)
            conn.execute(
                "UPDATE registrations SET last_status_epoch = ?, last_status_time = ?"
                " WHERE id_a = ?",
                (epoch, time, bytes(id_a)),
            )
            return StatusRecorded(StatusOutcome.ACCEPTED, before, push)

        return await self._transaction(step)

    async def set_push_info(self, id_a: IdA, push: PushInfo) -> bool:
        """Upsert, if the registration exists."""

        def step(conn: sqlite3.Connection) -> bool:
            if not conn.execute(
                "SELECT 1 FROM registrations WHERE id_a = ?", (bytes(id_a),)
            ).fetchone():
                return False
            conn.execute(_UPSERT_PUSH, (bytes(id_a), push.token, push.locale, push.timezone))
            return True

        return await self._transaction(step)

    async def get_push_info(self, id_a: IdA) -> PushInfo | None:
        """The row, or None."""
        rows = await self._query(
            "SELECT token, locale, timezone FROM push_infos WHERE id_a = ?", bytes(id_a)
        )
        return _push_of(rows[0]) if rows else None

    async def delete_registration(self, id_a: IdA) -> bool:
        """Delete the registration, its exposures and its push information together."""

        def step(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM exposures WHERE id_a = ?", (bytes(id_a),))
            conn.execute("DELETE FROM push_infos WHERE id_a = ?", (bytes(id_a),))
            return (
                conn.execute("DELETE FROM registrations WHERE id_a = ?", (bytes(id_a),)).rowcount
                == 1
            )

        return await self._transaction(step)

    async def delete_exposures(self, id_a: IdA) -> bool:
        """Clear the exposures and reset the risk columns to their defaults."""
        default = RiskState()

        def step(conn: sqlite3.Connection) -> bool:
            updated = conn.execute(
                "UPDATE registrations SET at_risk = ?, risk_level = ?, last_contact_epoch = ?,"
                " last_scoring_epoch = ? WHERE id_a = ?",
                (
                    int(default.at_risk),
                    default.risk_level,
                    default.last_contact_epoch,
                    default.last_scoring_epoch,
                    bytes(id_a),
                ),
            ).rowcount
            conn.execute("DELETE FROM exposures WHERE id_a = ?", (bytes(id_a),))
            return updated == 1

        return await self._transaction(step)

    async def count_registrations(self) -> int:
        """Exact count."""
        rows = await self._query("SELECT COUNT(*) FROM registrations")
        return int(rows[0][0])

    async def iter_exposed(self, batch: int = 1000) -> AsyncIterator[list[IdA]]:
        """Keyset pages of distinct ID_As, one query each, so the thread is never held long."""
        after = b""
        while True:
            rows = await self._query(
                "SELECT DISTINCT id_a FROM exposures WHERE id_a > ? ORDER BY id_a LIMIT ?",
                after,
                batch,
            )
            if not rows:
                return
            ids = [IdA(bytes(row[0])) for row in rows]
            yield ids
            after = ids[-1]

    # --- exposures and risk ------------------------------------------------------------
    async def add_exposures(
        self, id_a: IdA, report_id: str, scores: Sequence[tuple[int, float]]
    ) -> bool:
        """INSERT OR REPLACE under (id_a, epoch, report_id): a replayed report overwrites
        itself instead of adding up."""
        rows = [
            (bytes(id_a), epoch, exposure_tag(report_id, epoch), float(score))
            for epoch, score in scores
        ]

        def step(conn: sqlite3.Connection) -> bool:
            if not conn.execute(
                "SELECT 1 FROM registrations WHERE id_a = ?", (bytes(id_a),)
            ).fetchone():
                return False
            conn.executemany(
                "INSERT OR REPLACE INTO exposures (id_a, epoch, report_id, score)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )
            return True

        return await self._transaction(step)

    async def get_exposures(self, id_a: IdA) -> dict[int, float]:
        """Scores summed per epoch over reports."""
        rows = await self._query(
            "SELECT epoch, SUM(score) FROM exposures WHERE id_a = ? GROUP BY epoch", bytes(id_a)
        )
        return {int(epoch): float(total) for epoch, total in rows}

    async def set_risk(self, id_a: IdA, risk: RiskState) -> bool:
        """Overwrite the risk columns."""
        params = (
            int(risk.at_risk),
            risk.risk_level,
            risk.last_contact_epoch,
            risk.last_scoring_epoch,
            bytes(id_a),
        )
        sql = (
            "UPDATE registrations SET at_risk = ?, risk_level = ?, last_contact_epoch = ?,"
            " last_scoring_epoch = ? WHERE id_a = ?"
        )
        return await self._transaction(lambda c: c.execute(sql, params).rowcount == 1)

    async def purge_exposures(self, id_a: IdA, before_epoch: int) -> int:
        """Delete old entries of one registration."""
        sql = "DELETE FROM exposures WHERE id_a = ? AND epoch < ?"
        params = (bytes(id_a), before_epoch)
        return await self._transaction(lambda c: int(c.execute(sql, params).rowcount))

    # --- captchas ----------------------------------------------------------------------
    async def create_captcha(self, captcha: Captcha, lifetime: int) -> bool:
        """INSERT OR IGNORE (expired rows are purged by ``purge_captchas``)."""
        sql = f"INSERT OR IGNORE INTO captchas ({_CAPTCHA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        row = (
            captcha.id, captcha.kind, captcha.answer, captcha.locale, captcha.expires,
            captcha.attempts,
        )  # fmt: skip
        return await self._transaction(lambda c: c.execute(sql, row).rowcount == 1)

    async def get_captcha(self, captcha_id: str, now: int) -> Captcha | None:
        """The row, unless expired."""
        rows = await self._query(
            f"SELECT {_CAPTCHA_COLUMNS} FROM captchas WHERE id = ? AND expires >= ?",
            captcha_id,
            now,
        )
        return Captcha(*rows[0]) if rows else None

    async def use_captcha(self, captcha_id: str, now: int) -> bool:
        """DELETE of the unexpired row: one caller deletes it."""
        sql = "DELETE FROM captchas WHERE id = ? AND expires >= ?"
        return await self._transaction(lambda c: c.execute(sql, (captcha_id, now)).rowcount == 1)

    async def fail_captcha(self, captcha_id: str, max_attempts: int) -> int:
        """Count the attempt; delete the row at the limit."""

        def step(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "UPDATE captchas SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
                (captcha_id,),
            ).fetchone()
            if row is None:
                return 0
            if row[0] >= max_attempts:
                conn.execute("DELETE FROM captchas WHERE id = ?", (captcha_id,))
            return int(row[0])

        return await self._transaction(step)

    async def purge_captchas(self, now: int) -> int:
        """DELETE the expired rows; the limit buckets that are full again go too (Redis
        expires both by itself)."""

        def step(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM budgets WHERE full_at < ?", (unix_from_ntp(now),))
            conn.execute("DELETE FROM seen_requests WHERE expires < ?", (_wall(),))
            return int(conn.execute("DELETE FROM captchas WHERE expires < ?", (now,)).rowcount)

        return await self._transaction(step)

    async def first_request(self, id_a: IdA, kind: int, time: int, ttl: int) -> bool:
        """INSERT OR IGNORE of the (registration, kind, time) row, expired rows first."""
        now = _wall()

        def step(conn: sqlite3.Connection) -> bool:
            key = (bytes(id_a), kind, time)
            conn.execute(
                "DELETE FROM seen_requests WHERE id_a = ? AND kind = ? AND time = ?"
                " AND expires < ?",
                (*key, now),
            )
            sql = "INSERT OR IGNORE INTO seen_requests (id_a, kind, time, expires) VALUES (?,?,?,?)"
            return bool(conn.execute(sql, (*key, now + ttl)).rowcount == 1)

        return await self._transaction(step)

    # --- shared limits -------------------------------------------------------------------
    async def take_budget(self, budgets: Sequence[Budget], now: float) -> float:
        """Read every bucket, then charge all or none, in one write transaction (taken up
        front: another process cannot read between the check and the charge)."""

        def step(conn: sqlite3.Connection) -> float:
            levels = [_budget_level(conn, b, now) for b in budgets]
            wait = max(
                ((1.0 - t) * b.per_seconds / b.burst for b, t in zip(budgets, levels, strict=True)),
                default=0.0,
            )
            if wait > 0:
                return wait
            for budget, tokens in zip(budgets, levels, strict=True):
                _set_budget(conn, budget, tokens - 1.0, now)
            return 0.0

        return await self._transaction(step)

    async def refund_budget(self, budgets: Sequence[Budget], now: float) -> None:
        """One token back to each bucket, in one transaction."""

        def step(conn: sqlite3.Connection) -> None:
            for budget in budgets:
                tokens = _budget_level(conn, budget, now) + 1.0
                if tokens >= budget.burst:
                    conn.execute("DELETE FROM budgets WHERE key = ?", (budget.key,))
                else:
                    _set_budget(conn, budget, tokens, now)

        await self._transaction(step)

    # --- report queue ------------------------------------------------------------------
    async def enqueue_report(self, payload: bytes) -> str:
        """Insert a row; durable once the transaction commits."""
        sql = "INSERT INTO reports (payload) VALUES (?)"
        row_id = await self._transaction(lambda c: c.execute(sql, (payload,)).lastrowid)
        return str(row_id)

    def _claim(
        self, conn: sqlite3.Connection, consumer: str, count: int, reclaim_ms: int
    ) -> list[QueuedReport]:
        """Claim stale rows first, then unclaimed ones, oldest first."""
        now_ms = int(time.time() * 1000)
        rows = conn.execute(
            "SELECT id, payload FROM reports"
            " WHERE claimed_by IS NULL OR claimed_at_ms < ?"
            " ORDER BY claimed_by IS NULL, id LIMIT ?",
            (now_ms - reclaim_ms, count),
        ).fetchall()
        conn.executemany(
            "UPDATE reports SET claimed_by = ?, claimed_at_ms = ? WHERE id = ?",
            [(consumer, now_ms, row_id) for row_id, _ in rows],
        )
        return [QueuedReport(str(row_id), bytes(payload)) for row_id, payload in rows]

    async def claim_reports(
        self, consumer: str, count: int, block_ms: int, reclaim_after_ms: int
    ) -> list[QueuedReport]:
        """Claim in a transaction; while empty, poll every 50 ms until ``block_ms`` passed.

        The wait happens on the event loop, not the store thread, so other operations run.
        """
        deadline = time.monotonic() + block_ms / 1000
        while True:
            claimed = await self._transaction(self._claim, consumer, count, reclaim_after_ms)
            remaining = deadline - time.monotonic()
            if claimed or remaining <= 0:
                return claimed
            await asyncio.sleep(min(POLL_SECONDS, remaining))

    async def ack_report(self, report_id: str) -> None:
        """Delete the row; acknowledging twice is harmless."""
        sql = "DELETE FROM reports WHERE id = ?"
        # ``.rowcount``, not the cursor: a cursor handed back to the event loop's thread would
        # be finalised there, racing with this connection's own thread.
        await self._transaction(lambda c: c.execute(sql, (int(report_id),)).rowcount)

    async def pending_reports(self) -> int:
        """Rows not yet acknowledged, claimed or not."""
        rows = await self._query("SELECT COUNT(*) FROM reports")
        return int(rows[0][0])
