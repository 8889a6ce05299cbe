"""``robert sivic ...``: SI-VIC's commands.

``serve`` runs the service alone; ``import FILE`` applies a hospitals' intake file;
``snapshot --date DATE --out DIR`` checks and writes the day's open-data files; ``check FILE``
checks a published ``donnees-hospitalieres-covid19`` file (ours or SpF's); ``counts`` prints a
territory's counts; ``events`` lists or opens events; ``users`` and ``apikeys`` are the kit's
account commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from kit.audit import CONSOLE
from kit.cli import (
    CommandError,
    Listener,
    row_id_arg,
    serve_app,
    setup_logging,
    writable_directory,
)
from kit.http import HttpError
from sivic.access import ADMIN, Access
from sivic.opendata import (
    FileError,
    check_age_rows,
    check_rows,
    read_age,
    read_hospital,
    read_new,
)
from sivic.service import SivicService
from sivic.settings import Settings

T = TypeVar("T")
log = logging.getLogger("sivic")
OPERATOR = Access(ADMIN, "")


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add SI-VIC's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def _run(args: argparse.Namespace, job: Callable[[SivicService], Awaitable[T]]) -> T:
    from sivic.app import open_service

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


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a date is YYYY-MM-DD") from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Run SI-VIC alone."""
    from sivic.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def serve() -> None:
        await serve_app(
            standalone_app(settings), Listener(settings.host, settings.port, LINKS), "SI-VIC"
        )

    asyncio.run(serve())
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Apply an intake file: the good lines, the refused ones listed on stderr."""
    try:
        text = Path(args.file).read_bytes().decode("utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{args.file}: not UTF-8") from None
    report = _run(args, lambda service: service.import_text(OPERATOR, CONSOLE, text, args.event))
    for error in report.refused:
        print(f"{args.file}: {error}", file=sys.stderr)
    print(f"{args.file}: {report.summary()}")
    return 1 if report.refused else 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Check and write the day's open-data files (nothing is written if a check fails)."""
    day = args.date

    async def job(service: SivicService) -> Any:
        return await service.publish(day or service.today(), Path(args.out), CONSOLE, args.event)

    result = _run(args, job)
    if result.problems:
        for problem in result.problems:
            print(f"refused: {problem}", file=sys.stderr)
        raise CommandError(
            f"open data of {result.day} not published: {len(result.problems)} problems"
        )
    for path in result.files:
        print(path)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check a published file: the main one, the age classes' or the daily new ones (either
    date style, either layout)."""
    try:
        text = Path(args.file).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{args.file}: not UTF-8") from None
    header = text.split("\n", 1)[0]
    try:
        if "cl_age90" in header:
            ages = read_age(text)
            count, problems = len(ages), check_age_rows(ages)
        elif "incid_hosp" in header:
            new = read_new(text)
            count = len(new)
            problems = [
                f"{n.dep} {n.jour}: a negative count"
                for n in new
                if min(n.incid_hosp, n.incid_rea, n.incid_dc, n.incid_rad) < 0
            ]
        else:
            rows = read_hospital(text)
            count, problems = len(rows), check_rows(rows)
    except FileError as exc:
        raise CommandError(f"{args.file}: {exc}") from None
    for problem in problems:
        print(problem)
    print(f"{args.file}: {count} rows, {len(problems)} problems")
    return 1 if problems else 0


def cmd_counts(args: argparse.Namespace) -> int:
    """Print a territory's counts (the SAMU board's JSON)."""
    figures = _run(args, lambda service: service.counts(OPERATOR, args.dep, args.region))
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    """List the events, open or close one."""

    async def job(service: SivicService) -> list[str]:
        if args.open:
            await service.create_event(OPERATOR, CONSOLE, args.kind, args.open)
        if args.close is not None:
            await service.close_event(OPERATOR, CONSOLE, args.close)
        return [
            f"{e.id}\t{e.kind.value}\t{e.name}\t{'closed' if e.closed_at else 'open'}"
            for e in await service.events()
        ]

    for line in _run(args, job):
        print(line)
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add the ``sivic`` command group to the ``robert`` command."""
    from kit.auth.commands import Roles, add_account_commands
    from sivic.access import (
        COUNT_ROLES,
        EVENT_ROLES,
        PATIENT_ROLES,
        PEOPLE_ROLES,
        WRITE_ROLES,
    )
    from sivic.app import open_accounts
    from sivic.store import MIGRATIONS

    top = subparsers.add_parser(
        "sivic",
        help="SI-VIC: hospitalised victims and COVID inpatients, daily open data",
        description="Hospitals register victims of an event and COVID inpatients (identity and "
        "care episode, no medical data); the daily snapshot writes Santé publique France's "
        "hospital open-data files. Every command works on the service's database "
        "(--data-dir or --database).",
    )
    sub = top.add_subparsers(dest="sivic_command", required=True, metavar="COMMAND")
    with_settings(sub.add_parser("serve", help="run SI-VIC alone")).set_defaults(func=cmd_serve)
    intake = sub.add_parser("import", help="apply an intake file (finess;dep;patient_id;...)")
    intake.add_argument(
        "file",
        help="the hospitals' file: UTF-8, ';', header finess;dep;patient_id;birth_date;sex;"
        "unit;status;status_date;covid, one line per patient's current state",
    )
    intake.add_argument(
        "--event", type=row_id_arg("event"), help="event id (default: the COVID-19 event)"
    )
    with_settings(intake).set_defaults(func=cmd_import)
    snapshot = sub.add_parser("snapshot", help="check and write the day's open-data files")
    snapshot.add_argument("--date", type=_day, help="YYYY-MM-DD (default: today, UTC)")
    snapshot.add_argument("--out", required=True, help="directory of the files")
    snapshot.add_argument(
        "--event", type=row_id_arg("event"), help="event id (default: the COVID-19 event)"
    )
    with_settings(snapshot).set_defaults(func=cmd_snapshot)
    check = sub.add_parser("check", help="check a published donnees-hospitalieres-* file")
    check.add_argument(
        "file", help="a donnees-hospitalieres-* file (the main one, new ones or age classes)"
    )
    check.set_defaults(func=cmd_check)
    counts = sub.add_parser("counts", help="a territory's counts (JSON)")
    where = counts.add_mutually_exclusive_group()
    where.add_argument("--dep", help="a département (75, 2A, 971)")
    where.add_argument("--region", help="a region (11)")
    with_settings(counts).set_defaults(func=cmd_counts)
    events = sub.add_parser("events", help="list the events, open or close one")
    events.add_argument("--open", metavar="NAME", help="open an event of this name")
    events.add_argument("--close", metavar="ID", type=row_id_arg("event"), help="close this event")
    events.add_argument(
        "--kind", default="attack", help="attack, health_situation or epidemic (with --open)"
    )
    with_settings(events).set_defaults(func=cmd_events)
    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(
            users=PEOPLE_ROLES, keys=PATIENT_ROLES | WRITE_ROLES | COUNT_ROLES | EVENT_ROLES
        ),
    )
