"""``robert drugs ...``: serve, register establishments, report stocks, allocate a quota,
redeployment suggestions, and the kit's account commands."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from drugs.service import NATIONAL, Access, DrugService
from drugs.settings import Settings
from kit.audit import CONSOLE
from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory
from kit.http import HttpError

T = TypeVar("T")
OPERATOR = Access(NATIONAL, "national")


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the drug service's settings to ``parser``."""
    Settings.add_arguments(parser)
    return parser


def _run(args: argparse.Namespace, job: Callable[[DrugService], Awaitable[T]]) -> T:
    from drugs.app import new_service

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


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the drug service alone."""
    from drugs.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    if not settings.database:
        writable_directory(settings.data_path, "data directory")
    listener = Listener(settings.host, settings.port, LINKS)
    asyncio.run(serve_app(standalone_app(settings), listener, "drug service"))
    return 0


def cmd_places(args: argparse.Namespace) -> int:
    """Register establishments from a CSV (finess, name, departement, region[, lat, lon])."""
    text = _read(args.file)
    print(f"{_run(args, lambda s: s.load_places(text))} establishments registered")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Record a pharmacy's export for an establishment."""
    text = _read(args.file)
    count = _run(args, lambda s: s.import_export(OPERATOR, CONSOLE, args.finess, text))
    print(f"{count} drugs reported for {args.finess}")
    return 0


def cmd_allocate(args: argparse.Namespace) -> int:
    """Split a week's national quota of a drug; print every step."""
    result = _run(args, lambda s: s.allocate(OPERATOR, CONSOLE, args.drug, args.quota))
    for title, lines in result.trace.steps:
        print(title)
        for line in lines:
            print(f"  {line}")
    return 0


def cmd_redeploy(args: argparse.Namespace) -> int:
    """Print the optimal moves of a drug within a region (JSON)."""
    from drugs.web import plan_json

    plan = _run(args, lambda s: s.redeployment(OPERATOR, args.region, args.drug))
    print(json.dumps(plan_json(plan), ensure_ascii=False, indent=2))
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add the ``drugs`` command group to the ``robert`` command."""
    from drugs.app import open_accounts
    from drugs.store import MIGRATIONS
    from drugs.web import PEOPLE_ROLES
    from kit.auth.commands import Roles, add_account_commands

    top = subparsers.add_parser(
        "drugs",
        help="hospital drug stocks (MaPUI): serve, report, allocate, redeploy, accounts",
        description="Stocks and daily use of the drugs under national allocation, days of "
        "cover and alerts, the weekly allocation of a national quota, regional redeployment.",
    )
    sub = top.add_subparsers(dest="drugs_command", required=True, metavar="COMMAND")
    with_settings(sub.add_parser("serve", help="run the drug service alone")).set_defaults(
        func=cmd_serve
    )
    places = sub.add_parser("places", help="register establishments from a CSV")
    places.add_argument(
        "file",
        help="CSV (UTF-8, separator ,) with the columns finess, name, departement, region "
        "(INSEE code) and optional lat, lon; beds/data/establishments.csv fits",
    )
    with_settings(places).set_defaults(func=cmd_places)
    report = sub.add_parser("report", help="record a pharmacy export (CSV)")
    report.add_argument("finess", help="the establishment's FINESS number (9 characters)")
    report.add_argument(
        "file",
        help="the pharmacy export, CSV (separator ; or ,) with the columns code (a virtual "
        "drug's code or a product name of drugs/data/virtual_drugs.csv), stock (whole units), "
        "daily_use (units per day, decimal comma accepted)",
    )
    with_settings(report).set_defaults(func=cmd_report)
    allocate = sub.add_parser("allocate", help="split a national quota, every step shown")
    allocate.add_argument("drug", help="a virtual drug's code (drugs/data/virtual_drugs.csv)")
    allocate.add_argument(
        "quota", type=int, help="the week's national quota, in whole units of the drug (0 or more)"
    )
    with_settings(allocate).set_defaults(func=cmd_allocate)
    redeploy = sub.add_parser("redeploy", help="optimal moves of a drug within a region")
    redeploy.add_argument("region", help="the region's INSEE code, e.g. 11 (Île-de-France)")
    redeploy.add_argument("drug", help="a virtual drug's code (drugs/data/virtual_drugs.csv)")
    with_settings(redeploy).set_defaults(func=cmd_redeploy)
    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(users=PEOPLE_ROLES, keys=PEOPLE_ROLES),
    )
