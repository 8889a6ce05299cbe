"""Relational storage of one service: a SQLAlchemy async engine on SQLite or PostgreSQL, and its
schema migrations run by Alembic.

A service's database holds the kit's tables (users, audit log, outbox...) and its own. Each
set of tables has its own Alembic script directory and its own version table, and ``migrate``
runs them in order: the kit's first (``alembic_version_kit``), then the service's
(``alembic_version_<service>``)::

    db = Database(settings.database_url)        # sqlite:///data/sidep.db or postgresql://...
    await db.migrate(Migrations("sidep", Path(__file__).parent / "migrations"))
    async with db.begin() as conn:              # one transaction: commits, or rolls back
        await conn.execute(...)

A service's migrations folder is made by ``python -m kit.db init sidep/migrations``; its
``env.py`` is three lines calling ``run_migrations_env``; a new revision is
``python -m kit.db revision sidep/migrations -m "lab results"``.

SQLite: one file, WAL journal (readers never wait for the writer), foreign keys enforced, a busy
timeout instead of an immediate "database is locked". ``begin()`` opens ``BEGIN IMMEDIATE``:
a write transaction takes the write lock when it starts, so two writers queue on the busy
timeout rather than one failing when it upgrades a read lock. ``connect()`` is for reads.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kit.settings import mask_url

KIT_MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

BUSY_TIMEOUT_SECONDS = 15.0
"""How long a SQLite writer waits for another's lock before failing."""

_BEGIN_MODE = "kit_sqlite_begin"


CLOSE_WAIT_SECONDS = 5.0
"""How long ``close`` waits for connections still in use to come back before closing."""


class DatabaseError(ValueError):
    """A database that cannot be used as configured: bad URL, unwritable file. One line."""


class DatabaseUnreachable(DatabaseError):
    """A database that did not let us in: down, unknown host, unknown role or database. The
    message names it by its URL, password masked."""


class DatabaseClosed(RuntimeError):
    """The database was closed: a task that outlived its service asked for a connection."""


# --- URLs ----------------------------------------------------------------------------------------
def engine_url(url: str) -> URL:
    """The SQLAlchemy async URL of a service database URL.

    ``sqlite:///relative.db`` and ``sqlite:////absolute.db`` (SQLAlchemy's convention: the path
    is what follows the third slash) become ``sqlite+aiosqlite``; ``postgresql://user@host:port/db``
    becomes ``postgresql+asyncpg``. Anything else is refused with a ``DatabaseError``.
    """
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseError(f"not a database URL: {mask_url(url)!r}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "aiosqlite"):
        if not parsed.database or parsed.database == ":memory:" or parsed.host:
            raise DatabaseError("a sqlite URL needs a file path: sqlite:///path/to/file.db")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres") and driver in ("", "asyncpg"):
        if not parsed.database:
            raise DatabaseError("a postgresql URL needs a database name: postgresql://host/db")
        return parsed.set(drivername="postgresql+asyncpg")
    raise DatabaseError(
        f"unsupported database URL {mask_url(url)!r}: use sqlite:///path.db or postgresql://..."
    )


_OS_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}


def _prepare_sqlite_file(path: Path) -> None:
    """Create the file's directory if missing; refuse, in one line, a place we cannot write."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the database directory {path.parent}: {exc.strerror}"
        ) from None
    # Opening for append creates nothing new but fails as writing would (also for root on a
    # read-only file system, which os.access would not tell).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError as exc:
        what = "read-only" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else "unusable"
        raise DatabaseError(f"the database file {path} is {what}: {exc.strerror}") from None
    os.close(fd)


# --- the database ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Migrations:
    """One set of tables' Alembic script directory; ``name`` names its version table."""

    name: str
    location: Path

    @property
    def version_table(self) -> str:
        """``alembic_version_<name>``."""
        return f"alembic_version_{self.name}"


KIT_MIGRATIONS = Migrations("kit", KIT_MIGRATIONS_DIR)
"""The kit's own tables: users, API keys, audit log, outbox, cursors, notifications."""


class Database:
    """One service's relational database (SQLite file or PostgreSQL), with its migrations."""

    def __init__(
        self, url: str, *, pool_size: int = 5, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.url = engine_url(url)
        self.backend: str = self.url.get_backend_name()
        if self.backend == "sqlite":
            assert self.url.database is not None
            _prepare_sqlite_file(Path(self.url.database))
            self.engine: AsyncEngine = create_async_engine(self.url)
            _configure_sqlite(self.engine, busy_timeout)
        else:
            self.engine = create_async_engine(self.url, pool_size=pool_size, pool_pre_ping=True)
        self._reader = self.engine.execution_options(**{_BEGIN_MODE: "DEFERRED"})
        self._closed = False

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """``async with db.begin() as conn``: one transaction, committed at the end of the
        block, rolled back if it raises. Writes go through here."""
        self._check_open()
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """``async with db.connect() as conn``: a connection for reads (on SQLite its
        transactions do not take the write lock)."""
        self._check_open()
        async with self._reader.connect() as conn:
            yield conn

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with self.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (OSError, sa.exc.SQLAlchemyError):
            return False
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosed(f"{self!r} is closed")

    async def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Close every connection: those in use are waited for (up to ``wait`` seconds), since
        the pool closes only the idle ones and one given back later would never be closed.
        Afterwards ``begin`` and ``connect`` raise ``DatabaseClosed``; ``migrate`` reopens."""
        self._closed = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while self._in_use() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        await self.engine.dispose()

    def _in_use(self) -> int:
        checkedout = getattr(self.engine.pool, "checkedout", None)
        return int(checkedout()) if checkedout is not None else 0

    async def migrate(self, *services: Migrations) -> None:
        """Bring the kit's tables, then each of ``services``' tables, to their latest revision,
        each set in one transaction of its own. Opens a closed database again."""
        self._closed = False
        await self._reach()
        for migrations in (KIT_MIGRATIONS, *services):
            async with self.engine.begin() as conn:
                await conn.run_sync(_upgrade, migrations)

    async def _reach(self) -> None:
        """Open one connection; a database that refuses it is a ``DatabaseUnreachable`` naming
        it (what the driver raised alone, "connection refused", would not say which)."""
        where = self.url.set(drivername=self.backend).render_as_string(hide_password=True)
        try:
            async with self.engine.connect():
                pass
        except OSError as exc:
            reason = _OS_REASONS.get(exc.errno or -1) or exc.strerror or str(exc)
            if isinstance(exc, TimeoutError) and not reason:
                reason = "timed out"
            raise DatabaseUnreachable(f"cannot reach the database at {where}: {reason}") from None
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
            raise DatabaseUnreachable(f"cannot use the database at {where}: {reason}") from None

    async def revisions(self) -> dict[str, str | None]:
        """Each migrated set's current revision, by version table."""
        async with self.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            found: dict[str, str | None] = {}
            for name in sorted(n for n in names if n.startswith("alembic_version_")):
                table = sa.table(name, sa.column("version_num"))
                found[name] = (await conn.execute(sa.select(table.c.version_num))).scalar()
            return found


def _configure_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    """WAL, foreign keys, busy timeout on every new connection; transactions begun by us.

    pysqlite begins transactions itself, late and never for DDL; turning that off and emitting
    BEGIN from SQLAlchemy's ``begin`` event is SQLAlchemy's documented recipe."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode but for power loss
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


# --- time --------------------------------------------------------------------------------------
class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on both backends (SQLite stores naive text otherwise).

    A naive datetime is refused: its time zone would be a guess."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give it a time zone (datetime.now(UTC))")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, aware, in UTC (what every kit table stores)."""
    return datetime.now(UTC)


# --- Alembic -----------------------------------------------------------------------------------
def _config(migrations: Migrations) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations.location))
    config.attributes["version_table"] = migrations.version_table
    return config


def _upgrade(connection: sa.Connection, migrations: Migrations) -> None:
    if not (migrations.location / "env.py").is_file():
        raise DatabaseError(f"no migrations at {migrations.location} (no env.py)")
    config = _config(migrations)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_migrations_env(context: Any) -> None:
    """The body of every migrations folder's ``env.py``: run the migrations on the connection
    and version table ``Database.migrate`` passes (three lines in ``env.py``)::

        from alembic import context
        from kit.db import run_migrations_env
        run_migrations_env(context)

    ``context`` is ``alembic.context``, the proxy of the running ``EnvironmentContext``.
    """
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise DatabaseError("migrations run through kit.db.Database.migrate(), not the alembic CLI")
    context.configure(
        connection=connection,
        version_table=context.config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite's ALTER is limited
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_ENV_PY = '''"""Alembic environment of these migrations: run by kit.db.Database.migrate()."""

from alembic import context

from kit.db import run_migrations_env

run_migrations_env(context)
'''


def init_migrations(directory: Path) -> None:
    """Create a service's migrations folder: ``env.py``, ``script.py.mako``, ``versions/``."""
    if (directory / "env.py").exists():
        raise DatabaseError(f"{directory} already holds migrations")
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    (directory / "env.py").write_text(_ENV_PY)
    (directory / "script.py.mako").write_text((KIT_MIGRATIONS_DIR / "script.py.mako").read_text())


def new_migration(directory: Path, message: str) -> Path:
    """Write a new, empty revision in a migrations folder; its path."""
    if not (directory / "script.py.mako").is_file():
        raise DatabaseError(f"{directory} is not a migrations folder (python -m kit.db init)")
    config = Config()
    config.set_main_option("script_location", str(directory))
    script = command.revision(config, message)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kit.db init DIR`` | ``revision DIR -m MESSAGE`` | ``migrate URL [NAME=DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m kit.db", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create a migrations folder")
    init.add_argument("directory", type=Path)
    rev = sub.add_parser("revision", help="add an empty revision to a migrations folder")
    rev.add_argument("directory", type=Path)
    rev.add_argument("-m", "--message", required=True)
    mig = sub.add_parser("migrate", help="migrate a database: the kit's tables, then each set")
    mig.add_argument("url")
    mig.add_argument("sets", nargs="*", metavar="NAME=DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "init":
            init_migrations(args.directory)
        elif args.command == "revision":
            print(new_migration(args.directory, args.message))
        else:
            sets = [Migrations(n, Path(d)) for n, _, d in (s.partition("=") for s in args.sets)]
            asyncio.run(_migrate(args.url, sets))
    except DatabaseError as exc:
        print(f"kit.db: {exc}", file=sys.stderr)
        return 1
    return 0


async def _migrate(url: str, sets: Sequence[Migrations]) -> None:
    db = Database(url)
    try:
        await db.migrate(*sets)
        for table, revision in (await db.revisions()).items():
            print(f"{table}: {revision}")
    finally:
        await db.close()


if __name__ == "__main__":
    raise SystemExit(main())
