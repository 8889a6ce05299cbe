"""``robert samu ...``: the board's commands.

``serve`` runs the board alone; ``events`` lists the events (``--open TITLE`` opens one);
``post`` appends a message to an event's log; ``log`` prints an event's log; ``users`` and
``apikeys`` are the kit's account commands. The console acts with the national scope and is
named ``console`` in the log and the audit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kit.audit import Actor
from kit.cli import (
    CommandError,
    Listener,
    row_id_arg,
    serve_app,
    setup_logging,
    writable_directory,
)
from kit.http import HttpError
from samu.access import NATIONAL, Access
from samu.service import SamuService, iso_utc
from samu.settings import Settings

T = TypeVar("T")
log = logging.getLogger("samu")
OPERATOR = Access(NATIONAL, "national")
CONSOLE = Actor("console", NATIONAL)


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the board's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def _run(args: argparse.Namespace, job: Callable[[SamuService], Awaitable[T]]) -> T:
    from samu.app import new_service

    settings = Settings.from_sources(args)
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def main() -> T:
        service = new_service(settings)
        await service.open()
        try:
            return await job(service)
        finally:
            await service.close()

    try:
        return asyncio.run(main())
    except HttpError as exc:  # a refusal of the service: its message, one line
        raise CommandError(exc.message) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the board alone."""
    from samu.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def serve() -> None:
        await serve_app(
            standalone_app(settings), Listener(settings.host, settings.port, LINKS), "SAMU board"
        )

    asyncio.run(serve())
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """List the events, or open one."""
    if args.close is not None:
        event = _run(args, lambda s: s.close_event(OPERATOR, CONSOLE, args.close))
        print(f"event {event.id} closed: {event.title}")
        return 0
    if args.open:
        if not (args.departement and args.lat is not None and args.lon is not None):
            raise CommandError("--open needs --departement, --lat and --lon")
        event = _run(
            args,
            lambda s: s.open_event(
                OPERATOR, CONSOLE, args.open, args.kind, args.departement, args.lat, args.lon
            ),
        )
        print(f"event {event.id} opened: {event.title} ({event.departement})")
        return 0
    for e in _run(args, lambda s: s.events(OPERATOR)):
        print(f"{e.id}\t{e.status.value}\t{e.departement}\t{e.lat},{e.lon}\t{e.kind}\t{e.title}")
    return 0


def cmd_post(args: argparse.Namespace) -> int:
    """Append a message to an event's log. A board running in another process shows it on a
    page's next load, or at once when ``SAMU_REDIS_URL`` relays between processes."""
    entry, new = _run(
        args,
        lambda s: s.post(
            OPERATOR, CONSOLE, args.event, args.text, args.to, args.client_id, args.annotates
        ),
    )
    print(f"entry {entry.id} {'stored' if new else 'already stored'} ({entry.client_id})")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    """Print an event's whole log, oldest first, page by page (as it is read)."""

    async def job(service: SamuService) -> None:
        async for page in service.log_pages(OPERATOR, args.event, args.after):
            for e in page:
                note = f" [annotates {e.annotates}]" if e.annotates else ""
                print(
                    f"{e.id}\t{iso_utc(e.at)}\t{e.author}\t{e.sender_scope}->{e.target_scope}"
                    f"{note}\t{e.text}"
                )

    _run(args, job)
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add the ``samu`` command group to the ``robert`` command."""
    from kit.auth.commands import Roles, add_account_commands
    from samu.access import BOARD_ROLES, PEOPLE_ROLES, TRANSFER_ROLES
    from samu.app import open_accounts
    from samu.store import MIGRATIONS

    top = subparsers.add_parser(
        "samu",
        help="the SAMU board (SI-SAMU): serve, events, post, log, accounts",
        description="The board shared by SAMU, ARS, defence zones and the national crisis "
        "centre: events on a map, scoped messages, the append-only log, transfers. Every "
        "command works on the board's database (--data-dir or --database).",
    )
    sub = top.add_subparsers(dest="samu_command", required=True, metavar="COMMAND")
    with_settings(sub.add_parser("serve", help="run the board alone")).set_defaults(func=cmd_serve)
    events = sub.add_parser("events", help="list the events, or open one (--open TITLE)")
    events.add_argument("--open", metavar="TITLE", help="open an event with this title")
    events.add_argument("--close", type=row_id_arg("event"), metavar="ID", help="close this event")
    events.add_argument("--kind", default="exceptional", help="attack, accident, epidemic...")
    events.add_argument("--departement", help="the event's département (75, 2A, 971...)")
    events.add_argument("--lat", type=float, help="latitude (WGS84)")
    events.add_argument("--lon", type=float, help="longitude (WGS84)")
    with_settings(events).set_defaults(func=cmd_events)
    post = sub.add_parser("post", help="append a message to an event's log")
    post.add_argument("event", type=row_id_arg("event"))
    post.add_argument("text")
    post.add_argument("--to", help="the scope addressed (default national)")
    post.add_argument("--client-id", help="a UUID: posting it again stores nothing new")
    post.add_argument("--annotates", type=row_id_arg("entry"), help="the entry this one annotates")
    with_settings(post).set_defaults(func=cmd_post)
    log_cmd = sub.add_parser("log", help="print an event's log")
    log_cmd.add_argument("event", type=row_id_arg("event"))
    log_cmd.add_argument(
        "--after", type=row_id_arg("entry", least=0), default=0, help="entries after this id"
    )
    with_settings(log_cmd).set_defaults(func=cmd_log)
    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(users=PEOPLE_ROLES, keys=BOARD_ROLES | TRANSFER_ROLES),
    )
