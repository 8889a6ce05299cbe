"""``robert sidep ...``: SI-DEP's commands.

``serve`` runs the HTTP service and the MLLP listener; ``ingest`` stores lab files and
messages (one transaction per file: whole or nothing); ``results`` prints the stored results;
``export --pseudonymised`` the rows without identity; ``purge`` applies the retention now;
``notices`` makes the pending result notices (with the code service of ``SIDEP_CODES_URL``);
``users`` and ``apikeys`` are the kit's account commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from kit.audit import CONSOLE
from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory
from kit.http import HttpError
from sidep.model import Refusal, SourceFormat
from sidep.service import Counts, SidepService, pseudonymised_json, result_json
from sidep.settings import Settings

T = TypeVar("T")
log = logging.getLogger("sidep")
FORMATS = ("auto", "hl7", "fhir", "hprim", "csv")


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add SI-DEP's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_sources(args)
    if not settings.database:
        writable_directory(settings.data_path, "data directory")
    return settings


def _run(args: argparse.Namespace, job: Callable[[SidepService], Awaitable[T]]) -> T:
    from sidep.app import open_service

    settings = _settings(args)

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
    """Run SI-DEP alone: HTTP and MLLP."""
    from sidep.app import LINKS, standalone_app

    settings = _settings(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    if not settings.codes_url:
        log.warning("no SIDEP_CODES_URL: notices of positives wait for a code service")

    async def serve() -> None:
        await serve_app(
            standalone_app(settings), Listener(settings.host, settings.port, LINKS), "SI-DEP"
        )

    asyncio.run(serve())
    return 0


def _paths(names: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file())
        else:
            found.append(path)
    return found


def cmd_ingest(args: argparse.Namespace) -> int:
    """Store lab files: one transaction per file; refusals printed one a line."""
    from sidep.intake import Intake

    fmt = None if args.format == "auto" else SourceFormat(args.format)
    intake = Intake()

    async def job(service: SidepService) -> Counts:
        total = Counts()
        for path in _paths(args.paths):
            try:
                data = path.read_bytes()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                total += Counts(refusals=(Refusal(str(path), f"cannot read: {reason}"),))
                continue
            parsed = await asyncio.to_thread(intake.parse, data, str(path), fmt)
            total += await service.ingest(parsed, CONSOLE)
        if service.issuer is not None:
            await service.process_notices()
        return total

    counts = _run(args, job)
    print(counts.line())
    for refusal in counts.refusals:
        print(f"{refusal.where}: {refusal.reason}")
    return 1 if counts.refusals else 0


def cmd_results(args: argparse.Namespace) -> int:
    """Print every stored result (identifying: the operator's view; audited)."""
    rows = _run(args, lambda service: service.all_results(CONSOLE))
    for row in rows:
        if args.json:
            print(json.dumps(result_json(row), ensure_ascii=False))
        else:
            name = " ".join(n for n in (row.last_name, row.first_name) if n) or "-"
            print(
                f"{row.lab}\t{row.sample_id}\t{row.loinc}\t{row.method}\t{row.result}\t"
                f"{row.sampled_at.isoformat()}\t{row.status}\t{row.dep or '-'}\t{name}"
            )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Print the pseudonymised results, one JSON object a line."""
    if not args.pseudonymised:
        raise CommandError("only the pseudonymised export exists: add --pseudonymised")

    async def job(service: SidepService) -> int:
        from sidep.access import SPF_ANALYST, Access

        after, written = 0, 0
        while True:
            page = await service.results(Access(SPF_ANALYST), CONSOLE, after_id=after, limit=5000)
            for row in page:
                sys.stdout.write(json.dumps(pseudonymised_json(row)) + "\n")
            written += len(page)
            if len(page) < 5000:
                return written
            after = page[-1].id

    _run(args, job)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Purge now the identity of persons sampled longer ago than the retention."""
    purged = _run(args, lambda service: service.purge(CONSOLE))
    print(f"identity of {purged} persons purged")
    return 0


def cmd_notices(args: argparse.Namespace) -> int:
    """Make the pending notices of positives (needs SIDEP_CODES_URL)."""

    async def job(service: SidepService) -> int:
        if service.issuer is None:
            raise CommandError("set --codes-url and --codes-api-key (the code service)")
        done, total = -1, 0
        while done:
            done = await service.process_notices()
            total += done
        return total

    print(f"{_run(args, job)} notices made")
    return 0


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{name} must be YYYY-MM-DD") from None


def cmd_indicators(args: argparse.Namespace) -> int:
    """Santé publique France's indicator files from the stored tests (or ``--tests FILE``)."""
    from sidep import indicators

    until, since = _day(args.until, "--until"), _day(args.since, "--since")
    population = Path(args.population) if args.population else indicators.SHIPPED_POPULATION
    if not population.is_file():
        raise CommandError(f"no population file {population}")
    area_population = Path(args.area_population) if args.area_population else None
    if area_population is not None and not area_population.is_file():
        raise CommandError(f"no area population file {area_population}")
    given = {
        name: getattr(args, name)
        for name in ("min_population", "min_positives", "min_tested")
        if getattr(args, name) is not None
    }
    if given and area_population is None:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
        raise CommandError(f"{flags} need --area-population (the classes below the département)")
    for name, value in given.items():
        if value < 0:
            raise CommandError(f"--{name.replace('_', '-')} must be 0 or more")
    thresholds = indicators.Thresholds(**given)
    out = Path(args.out)
    writable_directory(out, "output directory")
    with tempfile.TemporaryDirectory(prefix="sidep-indicators-") as scratch:
        source = Path(args.tests) if args.tests else Path(scratch) / "tests.csv"
        if args.tests:
            if not source.is_file():
                raise CommandError(f"no tests file {source}")
        else:
            _run(args, lambda service: service.write_indicator_input(source, CONSOLE))
        try:
            written = indicators.compute(
                source, population, out, until=until, since=since,
                area_population=area_population, thresholds=thresholds,
            )  # fmt: skip
        except indicators.InputError as exc:
            raise CommandError(str(exc)) from None
        except Exception as exc:  # duckdb's errors: a bad input file, said in one line
            raise CommandError(f"cannot compute the indicators: {type(exc).__name__}") from None
    for name, rows in sorted(written.rows.items()):
        print(f"{out / name}: {rows} rows")
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add the ``sidep`` command group to the ``robert`` command."""
    from kit.auth.commands import Roles, add_account_commands
    from kit.events import READER_ROLE
    from sidep.access import INTAKE_KEY_ROLES, PEOPLE_ROLES
    from sidep.app import open_accounts
    from sidep.store import MIGRATIONS

    top = subparsers.add_parser(
        "sidep",
        help="SI-DEP: lab results, positives, indicators",
        description="SI-DEP: every lab's COVID-19 test results (HL7 v2 over MLLP and HTTP, "
        "FHIR, HPRIM, CSV), positives turned into codes, notices and events. Every command "
        "works on the service's database (--data-dir or --database).",
    )
    sub = top.add_subparsers(dest="sidep_command", required=True, metavar="COMMAND")
    with_settings(sub.add_parser("serve", help="run SI-DEP (HTTP and MLLP)")).set_defaults(
        func=cmd_serve
    )
    ingest = sub.add_parser("ingest", help="store lab files (exit 1 if anything was refused)")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files, or folders of files")
    ingest.add_argument("--format", choices=FORMATS, default="auto")
    with_settings(ingest).set_defaults(func=cmd_ingest)
    results = sub.add_parser("results", help="print the stored results")
    results.add_argument("--json", action="store_true", help="one JSON object a line")
    with_settings(results).set_defaults(func=cmd_results)
    export = sub.add_parser("export", help="print the pseudonymised results (JSON lines)")
    export.add_argument("--pseudonymised", action="store_true", help="required")
    with_settings(export).set_defaults(func=cmd_export)
    with_settings(sub.add_parser("purge", help="apply the retention now")).set_defaults(
        func=cmd_purge
    )
    with_settings(sub.add_parser("notices", help="make the pending notices")).set_defaults(
        func=cmd_notices
    )
    figures = sub.add_parser(
        "indicators", help="Santé publique France's indicator files (sp-pos-quot, indicateurs)"
    )
    figures.add_argument("--population", help="dep;cl_age90;pop (default: the 2020 one shipped)")
    figures.add_argument("--out", required=True, help="directory of the files")
    figures.add_argument("--until", help="last sampling day counted (YYYY-MM-DD)")
    figures.add_argument("--since", help="first day written (YYYY-MM-DD)")
    figures.add_argument(
        "--tests", help="person;day;dep;age;result[;area] file instead of the store"
    )
    figures.add_argument(
        "--area-population",
        metavar="FILE",
        help="area;pop file: also write sg-area-classes.csv, the classes below the département "
        "(area: the result's postcode)",
    )
    for flag, default, what in (
        ("--min-population", 5000, "inhabitants"),
        ("--min-positives", 5, "positives over the 7 days"),
        ("--min-tested", 10, "persons tested over the 7 days"),
    ):
        figures.add_argument(
            flag, type=int, metavar="N",
            help=f"an area's classes are blank under N {what} (default {default})",
        )  # fmt: skip
    with_settings(figures).set_defaults(func=cmd_indicators)
    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(users=PEOPLE_ROLES, keys=INTAKE_KEY_ROLES | {READER_ROLE}),
    )
