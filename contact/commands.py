"""``robert contact ...``: Contact Covid's commands.

``serve`` runs the service alone; ``auto-open`` hands to level 2 the doctors' cases not
handed over in time and opens the level-2 cases of SI-DEP positives past their delay;
``purge`` erases identifying data past the retention; ``export --pseudonymised`` writes the
CSV for Santé publique France; ``users`` and ``apikeys`` are the kit's account commands
(roles: doctor, cpam_agent, cpam_doctor, ars_agent, pharmacist, biologist, spf_analyst,
admin).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from contact.access import ADMIN, Access
from contact.service import ContactService
from contact.settings import Settings
from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory
from kit.http import HttpError

T = TypeVar("T")
log = logging.getLogger("contact")
CONSOLE = Access("console", ADMIN)


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the service's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def _run(args: argparse.Namespace, job: Callable[[ContactService], Awaitable[T]]) -> T:
    from contact.app import open_service

    settings = Settings.from_sources(args)
    writable_directory(settings.data_path, "data directory")

    async def main() -> T:
        service = await open_service(settings)
        try:
            return await job(service)
        finally:
            await service.close()

    try:
        return asyncio.run(main())
    except HttpError as exc:
        raise CommandError(exc.message) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service alone."""
    from contact.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    writable_directory(settings.data_path, "data directory")

    async def serve() -> None:
        await serve_app(
            standalone_app(settings), Listener(settings.host, settings.port, LINKS), "Contact Covid"
        )

    asyncio.run(serve())
    return 0


def cmd_auto_open(args: argparse.Namespace) -> int:
    """Raise the doctors' cases not handed over in time, then open the level-2 cases whose
    SI-DEP positive waited past the delay."""
    handed, opened = _run(args, lambda service: service.run_jobs())
    print(f"{handed} doctors' cases handed to level 2, {opened} cases opened")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Erase the identifying data collected before the retention period."""
    purged = _run(args, lambda service: service.purge())
    print(f"identifying data of {purged} persons purged")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the pseudonymised export (CSV) to a file or the standard output."""
    if not args.pseudonymised:
        raise CommandError("only the pseudonymised export exists: add --pseudonymised")
    text = _run(args, lambda service: service.export_pseudonymised(CONSOLE))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {args.output}: {exc.strerror}") from None
        print(f"{text.count(chr(10)) - 1} lines written to {args.output}")
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add the ``contact`` command group to the ``robert`` command."""
    from contact.access import CASE_ROLES, CHECK_ROLES, EXPORT_ROLES, ROLES
    from contact.app import open_accounts
    from contact.store import MIGRATIONS
    from kit.auth.commands import Roles, add_account_commands

    top = subparsers.add_parser(
        "contact",
        help="Contact Covid: case investigations, contacts, prescriptions",
        description="Contact Covid: doctors open patient-zero records, health-insurance "
        "platforms call the contacts, the ARS follows clusters; labs and pharmacies check "
        "prescriptions. Every command works on the service's database (--data-dir or "
        "--database).",
    )
    sub = top.add_subparsers(dest="contact_command", required=True, metavar="COMMAND")
    with_settings(sub.add_parser("serve", help="run Contact Covid alone")).set_defaults(
        func=cmd_serve
    )
    with_settings(
        sub.add_parser(
            "auto-open",
            help="hand late doctors' cases to level 2; open level-2 cases of SI-DEP positives "
            "past the delay",
        )
    ).set_defaults(func=cmd_auto_open)
    with_settings(
        sub.add_parser("purge", help="erase identifying data past the retention (90 days)")
    ).set_defaults(func=cmd_purge)
    export = sub.add_parser("export", help="the pseudonymised export for Santé publique France")
    export.add_argument(
        "--pseudonymised",
        action="store_true",
        help="(required) one line per case and per contact, persons named by the keyed "
        "pseudonym shared with SI-DEP: no name, NIR, contact detail or birth date",
    )
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    with_settings(export).set_defaults(func=cmd_export)
    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(users=ROLES, keys=CASE_ROLES | CHECK_ROLES | EXPORT_ROLES),
    )
