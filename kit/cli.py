"""What every service's commands share: errors a person caused turned into one line, and a
long-running server's life (listen, log where, stop cleanly on SIGINT/SIGTERM).

A command raises ``CommandError`` with a sentence saying what went wrong and what to do; the
top-level handler (``run``) prints ``<prog>: <sentence>`` on standard error and exits 1. The
errors people cause without a command noticing (a port in use, a directory that cannot be
written, a bad setting, a bad or unreachable database) are turned into the same kind of line
there, so nobody sees a traceback for them.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kit.connections import ConnectionLimits, LimitedRunner
from kit.http import HttpError, row_id
from kit.settings import SettingsError

log = logging.getLogger("kit.cli")


def row_id_arg(name: str, least: int = 1) -> Callable[[str], int]:
    """An argparse ``type`` for a row's id on the command line, by ``kit.http.row_id``'s rule
    (ASCII digits, from ``least`` to ``ROW_ID_MAX``, the database's integer): a bad one is
    refused by argparse in one line, "no such NAME" or "NAME must be a number"."""

    def parse(text: str) -> int:
        try:
            return row_id(text, name, "path", least=least)
        except HttpError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    return parse


class CommandError(Exception):
    """A failure the person running the command can fix; the message says how."""


_OS_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "address not available on this machine",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or directory",
    errno.ENOSPC: "no space left on device",
    errno.ECONNREFUSED: "connection refused",
    errno.ENOTDIR: "not a directory",
    errno.EISDIR: "is a directory",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: what it was about and why, without a traceback."""
    reason = _OS_REASONS.get(exc.errno or -1) or exc.strerror or type(exc).__name__
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {reason}" if where else reason


def run(
    prog: str, func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace
) -> int:
    """Run a command, turning the errors a person causes into one line; the exit status."""
    try:
        status = func(args)
    except CommandError as exc:
        return fail(prog, str(exc))
    except HttpError as exc:  # a service refused what the command asked, as it would online
        return fail(prog, exc.message)
    except SettingsError as exc:
        return fail(prog, f"bad setting: {exc}")
    except OSError as exc:
        return fail(prog, describe_os_error(exc))
    except ValueError as exc:
        database_error = _database_error(exc)
        if database_error is None:
            raise
        return fail(prog, database_error)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    return int(status or 0)


def _database_error(exc: ValueError) -> str | None:
    """The line for a ``kit.db.DatabaseError`` (bad URL, unwritable file, a database that
    refuses us), None for any other ValueError. ``kit.db`` is looked up, not imported: a
    command that never loaded it (and SQLAlchemy) cannot have raised its errors."""
    db = sys.modules.get("kit.db")
    if db is None or not isinstance(exc, db.DatabaseError):
        return None
    return str(exc) if isinstance(exc, db.DatabaseUnreachable) else f"bad database: {exc}"


def fail(prog: str, message: str) -> int:
    """Print ``prog: message`` on standard error; exit status 1."""
    print(f"{prog}: {message}", file=sys.stderr)
    return 1


def setup_logging(level: str) -> None:
    """Log lines with time, level and logger name, at ``level``."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic tells every migration step at INFO; a service start needs none of that.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))


def writable_directory(path: os.PathLike[str] | str, what: str) -> None:
    """Create ``path`` if missing and check it can be written; CommandError otherwise."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        exc.filename = None
        raise CommandError(f"cannot create the {what} {path}: {describe_os_error(exc)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CommandError(f"cannot write to the {what} {path}: permission denied")


@dataclass(frozen=True, slots=True)
class Listener:
    """Where a server listens, and what to print about it."""

    host: str
    port: int
    links: Sequence[tuple[str, str]] = ()
    """(path, what it is) to log at start, e.g. ("/", "index"), ("/health", "health check")."""

    def url(self, path: str = "/") -> str:
        """The URL of ``path`` on this listener."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"


async def serve_app(
    app: web.Application,
    listener: Listener,
    name: str,
    reuse_port: bool = False,
    access_log: logging.Logger | None = None,
    limits: ConnectionLimits | None = None,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM: log the URLs at start and a line at exit.

    With ``limits``, connections are capped and slow heads cut (``kit.connections``). A port
    in use, an address that is not ours or a port we may not bind becomes a ``CommandError``
    with that sentence."""
    options: dict[str, Any] = {"access_log": access_log, "access_log_format": "%r %s %b %Tf"}
    runner = (
        web.AppRunner(app, **options) if limits is None else LimitedRunner(app, limits, **options)
    )
    await runner.setup()
    site = web.TCPSite(runner, listener.host, listener.port, reuse_port=reuse_port or None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        hint = " (choose another with --port)" if exc.errno == errno.EADDRINUSE else ""
        raise CommandError(
            f"cannot listen on {listener.host}:{listener.port}: {describe_os_error(exc)}{hint}"
        ) from None
    log.info("%s listening on %s (pid %d)", name, listener.url(), os.getpid())
    for path, what in listener.links:
        log.info("  %-28s %s", what, listener.url(path))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("%s shutting down", name)
        await runner.cleanup()
        log.info("%s stopped", name)
