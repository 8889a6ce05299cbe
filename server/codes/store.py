"""Organisations, the issued-code index and the audit log, beside the main store.

The ``Store`` interface (``server/store``) keeps the codes themselves; this module adds what
only the code service needs, in the SAME database chosen by the same URL: its own tables in the
SQLite file (own connection, WAL), its own keys in Redis (``org:{name}``, ``orgs``,
``codes:by-org:{name}``, ``audit`` stream, ``codes:secret``). One interface, one class per
backend, as in ``server/store``.
"""

from __future__ import annotations

import abc
import asyncio
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from server.codes.model import Action, AuditEntry, Organisation, Role
from server.store.sqlite import not_a_cursor

T = TypeVar("T")

INDEX_RETENTION = 8 * 86_400
"""Seconds an issued code stays listable (the longest lifetime plus a day)."""


class IssuerStore(abc.ABC):
    """Storage of the code service. Times are whatever the caller passes (NTP for codes)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create the schema; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def secret(self) -> bytes:
        """A 32-byte deployment secret, created once and shared by every process."""

    @abc.abstractmethod
    async def add_org(self, org: Organisation) -> bool:
        """Store a new organisation; False if the name is taken."""

    @abc.abstractmethod
    async def get_org(self, name: str) -> Organisation | None:
        """The organisation called ``name``, or None."""

    @abc.abstractmethod
    async def list_orgs(self) -> list[Organisation]:
        """Every organisation, by name."""

    @abc.abstractmethod
    async def index_codes(self, org: str, codes: Sequence[tuple[str, int]]) -> None:
        """Remember (code, issued_at) as issued by ``org``, for listing; prunes old entries."""

    @abc.abstractmethod
    async def list_codes(self, org: str | None, limit: int) -> list[tuple[str, str]]:
        """(org, code) of the most recently issued codes, newest first."""

    @abc.abstractmethod
    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries to the audit log (never updated nor deleted here)."""

    @abc.abstractmethod
    async def list_audit(self, org: str | None, limit: int) -> list[AuditEntry]:
        """The latest audit entries, newest first."""


def open_issuer_store(url: str) -> IssuerStore:
    """The backend for the main store's URL (``sqlite:///path``, ``redis://`` or a cluster)."""
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and sep and rest:
        return SqliteIssuerStore(rest)
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        return RedisIssuerStore(url)
    raise ValueError(f"unsupported store URL for the code service: {url.split('@')[-1]!r}")


# --- SQLite ----------------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS issuer_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS issuer_orgs (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    key_hash BLOB NOT NULL,
    signing_seed BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issuer_codes (
    org TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (org, issued_at, code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issuer_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    org TEXT NOT NULL,
    action TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS issuer_audit_org ON issuer_audit (org, id);
"""


def _org_of(row: Sequence[Any]) -> Organisation:
    return Organisation(row[0], Role(row[1]), bytes(row[2]), bytes(row[3]), row[4])


class SqliteIssuerStore(IssuerStore):
    """Tables ``issuer_*`` in the SQLite file of the main store, on one dedicated thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        if self._executor is None or self._conn is None:
            raise RuntimeError("SqliteIssuerStore is not open")
        conn = self._conn

        def transaction() -> T:
            conn.execute("BEGIN IMMEDIATE")  # atomic against other processes on the file
            try:
                result = fn(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        def call() -> T:
            result = transaction() if write else fn(conn)
            return not_a_cursor(result)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        if self._conn is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="issuer-sqlite")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
            return conn

        self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        if self._conn is None or self._executor is None:
            return
        conn, self._conn = self._conn, None
        await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def secret(self) -> bytes:
        fresh = secrets.token_bytes(32)

        def step(conn: sqlite3.Connection) -> bytes:
            conn.execute(
                "INSERT OR IGNORE INTO issuer_meta (name, value) VALUES ('secret', ?)", (fresh,)
            )
            row = conn.execute("SELECT value FROM issuer_meta WHERE name = 'secret'").fetchone()
            return bytes(row[0])

        return await self._run(step, write=True)

    async def add_org(self, org: Organisation) -> bool:
        sql = (
            "INSERT OR IGNORE INTO issuer_orgs (name, role, key_hash, signing_seed, created_at)"
            " VALUES (?, ?, ?, ?, ?)"
        )
        row = (org.name, org.role.value, org.key_hash, org.signing_seed, org.created_at)
        return await self._run(lambda c: c.execute(sql, row).rowcount == 1, write=True)

    async def get_org(self, name: str) -> Organisation | None:
        sql = "SELECT name, role, key_hash, signing_seed, created_at FROM issuer_orgs WHERE name=?"
        row = await self._run(lambda c: c.execute(sql, (name,)).fetchone())
        return _org_of(row) if row else None

    async def list_orgs(self) -> list[Organisation]:
        sql = "SELECT name, role, key_hash, signing_seed, created_at FROM issuer_orgs ORDER BY 1"
        return [_org_of(r) for r in await self._run(lambda c: c.execute(sql).fetchall())]

    async def index_codes(self, org: str, codes: Sequence[tuple[str, int]]) -> None:
        if not codes:
            return
        rows = [(org, issued_at, code) for code, issued_at in codes]
        horizon = max(t for _, t in codes) - INDEX_RETENTION

        def step(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM issuer_codes WHERE org = ? AND issued_at < ?", (org, horizon))
            conn.executemany(
                "INSERT OR IGNORE INTO issuer_codes (org, issued_at, code) VALUES (?, ?, ?)", rows
            )

        await self._run(step, write=True)

    async def list_codes(self, org: str | None, limit: int) -> list[tuple[str, str]]:
        if org is None:
            sql, args = (
                "SELECT org, code FROM issuer_codes ORDER BY issued_at DESC LIMIT ?",
                (limit,),
            )
        else:
            sql = "SELECT org, code FROM issuer_codes WHERE org = ? ORDER BY issued_at DESC LIMIT ?"
            args = (org, limit)  # type: ignore[assignment]
        rows = await self._run(lambda c: c.execute(sql, args).fetchall())
        return [(r[0], r[1]) for r in rows]

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        rows = [(e.at, e.org, e.action.value, e.code_hash, e.outcome) for e in entries]
        sql = (
            "INSERT INTO issuer_audit (at, org, action, code_hash, outcome) VALUES (?, ?, ?, ?, ?)"
        )
        if rows:
            # ``.rowcount``, not the cursor: a cursor returned to the event loop's thread is
            # finalised there, racing with the store thread ("bad parameter or other API
            # misuse" from SQLite, seen in a full test run).
            await self._run(lambda c: c.executemany(sql, rows).rowcount, write=True)

    async def list_audit(self, org: str | None, limit: int) -> list[AuditEntry]:
        cols = "SELECT at, org, action, code_hash, outcome FROM issuer_audit"
        if org is None:
            sql, args = f"{cols} ORDER BY id DESC LIMIT ?", (limit,)
        else:
            sql, args = f"{cols} WHERE org = ? ORDER BY id DESC LIMIT ?", (org, limit)  # type: ignore[assignment]
        rows = await self._run(lambda c: c.execute(sql, args).fetchall())
        return [AuditEntry(r[0], r[1], Action(r[2]), r[3], r[4]) for r in rows]


# --- Redis -----------------------------------------------------------------------------------
class RedisIssuerStore(IssuerStore):
    """Own keys in the Redis database of the main store (no overlap with its key names)."""

    CHUNK = 10_000

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        # One hash tag for every key of the code service: its multi-key steps stay in one
        # slot on a Redis Cluster (the volume is small: organisations and an index of codes).
        self.prefix = prefix + "{codes}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The connected ``redis.asyncio`` client."""
        if self._client is None:
            raise RuntimeError("RedisIssuerStore is not open")
        return self._client

    def _org_key(self, name: str) -> str:
        return f"{self.prefix}org:{name}"

    def _index_key(self, org: str) -> str:
        return f"{self.prefix}codes:by-org:{org}"

    async def open(self) -> None:
        if self._client is None:
            from server.store.redis import connect_client

            self._client = connect_client(self.url)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def secret(self) -> bytes:
        key = f"{self.prefix}codes:secret"
        await self.client.set(key, secrets.token_bytes(32), nx=True)
        return bytes(await self.client.get(key))

    async def add_org(self, org: Organisation) -> bool:
        fields = {
            "role": org.role.value,
            "key_hash": org.key_hash,
            "seed": org.signing_seed,
            "created_at": org.created_at,
        }
        # HSETNX on one field claims the name atomically; the rest follows in one MULTI.
        if not await self.client.hsetnx(self._org_key(org.name), "role", org.role.value):
            return False
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self._org_key(org.name), mapping=fields)
            pipe.sadd(f"{self.prefix}orgs", org.name)
            await pipe.execute()
        return True

    async def get_org(self, name: str) -> Organisation | None:
        reply = await self.client.hgetall(self._org_key(name))
        if b"seed" not in reply:
            return None
        return Organisation(
            name,
            Role(reply[b"role"].decode()),
            bytes(reply[b"key_hash"]),
            bytes(reply[b"seed"]),
            int(reply[b"created_at"]),
        )

    async def list_orgs(self) -> list[Organisation]:
        names = sorted(n.decode() for n in await self.client.smembers(f"{self.prefix}orgs"))
        found = [await self.get_org(n) for n in names]
        return [o for o in found if o is not None]

    async def index_codes(self, org: str, codes: Sequence[tuple[str, int]]) -> None:
        if not codes:
            return
        key = self._index_key(org)
        horizon = max(t for _, t in codes) - INDEX_RETENTION
        async with self.client.pipeline(transaction=False) as pipe:
            for start in range(0, len(codes), self.CHUNK):
                pipe.zadd(key, {c: t for c, t in codes[start : start + self.CHUNK]})
            pipe.zremrangebyscore(key, "-inf", f"({horizon}")
            pipe.sadd(f"{self.prefix}codes:orgs", org)
            await pipe.execute()

    async def list_codes(self, org: str | None, limit: int) -> list[tuple[str, str]]:
        if org is not None:
            orgs = [org]
        else:
            orgs = [o.decode() for o in await self.client.smembers(f"{self.prefix}codes:orgs")]
        found: list[tuple[float, str, str]] = []
        for name in orgs:
            reply = await self.client.zrevrange(
                self._index_key(name), 0, limit - 1, withscores=True
            )
            found += [(score, name, code.decode()) for code, score in reply]
        found.sort(reverse=True)
        return [(name, code) for _, name, code in found[:limit]]

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        stream = f"{self.prefix}audit"
        for start in range(0, len(entries), self.CHUNK):
            async with self.client.pipeline(transaction=False) as pipe:
                for e in entries[start : start + self.CHUNK]:
                    pipe.xadd(
                        stream,
                        {
                            "at": e.at,
                            "org": e.org,
                            "action": e.action.value,
                            "code": e.code_hash,
                            "outcome": e.outcome,
                        },
                    )
                await pipe.execute()

    async def list_audit(self, org: str | None, limit: int) -> list[AuditEntry]:
        # Scanned newest first and filtered here: the audit is read by operators, rarely.
        found: list[AuditEntry] = []
        last = "+"
        while len(found) < limit:
            batch = await self.client.xrevrange(f"{self.prefix}audit", last, "-", count=1000)
            if not batch:
                break
            for _entry_id, f in batch:
                entry = AuditEntry(
                    int(f[b"at"]),
                    f[b"org"].decode(),
                    Action(f[b"action"].decode()),
                    f[b"code"].decode(),
                    f[b"outcome"].decode(),
                )
                if org is None or entry.org == org:
                    found.append(entry)
            last = "(" + batch[-1][0].decode()
        return found[:limit]
