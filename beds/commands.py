"""``robert beds ...``: the bed service's commands.

``serve`` runs the service alone; ``load`` registers establishments (and their units) from a
reference file; ``tension`` prints a territory's figures; ``update`` records a file of counts;
``snapshot`` keeps today's figures; ``users`` and ``apikeys`` are the kit's account commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from beds.access import NATIONAL, Access
from beds.service import BedService
from beds.settings import Settings
from beds.territory import DATA
from kit.audit import CONSOLE
from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory
from kit.http import HttpError

T = TypeVar("T")
log = logging.getLogger("beds")
OPERATOR = Access(NATIONAL, "national")


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the bed service's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def _run(args: argparse.Namespace, job: Callable[[BedService], Awaitable[T]]) -> T:
    from beds.app import open_service

    settings = Settings.from_sources(args)
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def main() -> T:
        service = await open_service(settings)
        try:
            return await job(service)
        finally:
            await service.close()

    try:
        return asyncio.run(main())
    except HttpError as exc:  # a refusal of the service: its message, one line
        raise CommandError(exc.message) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the bed service alone."""
    from beds.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def serve() -> None:
        await serve_app(
            standalone_app(settings), Listener(settings.host, settings.port, LINKS), "bed service"
        )

    asyncio.run(serve())
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    """Register establishments (and a réanimation and an intensive-care unit each)."""
    path = Path(args.file) if args.file else DATA / "establishments.csv"
    if not path.is_file():
        raise CommandError(f"no file {path}")

    async def job(service: BedService) -> tuple[int, int]:
        try:
            return await service.load_establishments(path, with_units=not args.no_units)
        except (KeyError, ValueError) as exc:
            raise CommandError(f"{path}: not a reference file ({exc})") from None

    places, units = _run(args, job)
    print(f"{places} establishments, {units} new units from {path}")
    return 0


def cmd_tension(args: argparse.Namespace) -> int:
    """Print a territory's tension figures as JSON."""
    figures = _run(args, lambda service: service.tension(OPERATOR, args.territory))
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    """Record a file of counts (the columns of the upload)."""
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    recorded = _run(args, lambda service: service.import_file(OPERATOR, CONSOLE, text))
    print(f"{len(recorded)} updates recorded")
    return 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Keep today's figures of every département (the job does it every few minutes)."""
    count = _run(args, lambda service: service.snapshot())
    print(f"figures of {count} départements kept")
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add the ``beds`` command group to the ``robert`` command."""
    from beds.access import DASHBOARD_ROLES, EDIT_ROLES, FIND_ROLES, PEOPLE_ROLES
    from beds.app import open_accounts
    from beds.store import MIGRATIONS
    from kit.auth.commands import Roles, add_account_commands

    top = subparsers.add_parser(
        "beds",
        help="critical-care beds (ROR): serve, load establishments, tension, accounts",
        description="Critical-care bed capacity: hospital staff update their units, crisis "
        "cells read the tension of their territory, regulators find the nearest free bed. "
        "Every command works on the service's database (--data-dir or --database).",
    )
    sub = top.add_subparsers(dest="beds_command", required=True, metavar="COMMAND")
    with_settings(sub.add_parser("serve", help="run the bed service alone")).set_defaults(
        func=cmd_serve
    )
    load = sub.add_parser("load", help="register establishments from a reference file")
    load.add_argument("--file", help="CSV like beds/data/establishments.csv (the default)")
    load.add_argument("--no-units", action="store_true", help="establishments only")
    with_settings(load).set_defaults(func=cmd_load)
    tension = sub.add_parser("tension", help="a territory's tension figures (JSON)")
    tension.add_argument("territory", nargs="?", default="fr", help="fr, reg:NN or dep:NN")
    with_settings(tension).set_defaults(func=cmd_tension)
    update = sub.add_parser("update", help="record a CSV file of counts")
    update.add_argument(
        "file",
        help="CSV (separator ; or ,) with the columns finess, unit, installed, surge, occupied, "
        "available, covid and optional updated_at (ISO 8601)",
    )
    with_settings(update).set_defaults(func=cmd_update)
    with_settings(sub.add_parser("snapshot", help="keep today's figures")).set_defaults(
        func=cmd_snapshot
    )
    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(users=PEOPLE_ROLES, keys=DASHBOARD_ROLES | EDIT_ROLES | FIND_ROLES),
    )
