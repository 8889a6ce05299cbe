"""``robert codes ...``: the code service's commands, for its operator and for labs.

``serve`` runs the service alone; ``issue``, ``verify``, ``revoke``, ``list``, ``batch`` and
``audit`` work on its database directly (``--database`` or ``--data-dir``); ``orgs`` manages
the issuing organisations; ``users`` and ``apikeys`` are the kit's account commands.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from codes.handout import Layout
from codes.model import ORG_SCOPE_PREFIX, CodeState, Organisation, Role
from codes.service import CodeService
from codes.settings import Settings
from codes.store import CodeStore
from kit.audit import AuditFilter
from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory
from kit.i18n import DEFAULT_TIME_ZONE, is_time_zone
from protocol.codes import CodeKind

if TYPE_CHECKING:
    from kit.auth import Accounts

T = TypeVar("T")

DEFAULT_ORG = "ROBERT"
"""The operator's own authority, used when ``--org`` is not given (created as admin)."""

SHEET_SUFFIXES = (".pdf", ".html", ".htm")

log = logging.getLogger("codes")


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the code service's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def _run(args: argparse.Namespace, job: Callable[[CodeService], Awaitable[T]]) -> T:
    """Open the service's database for ``args``' settings, run ``job``, close it."""
    from codes.app import open_service

    settings = Settings.from_sources(args)
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def main() -> T:
        service = await open_service(settings)
        try:
            return await job(service)
        finally:
            await service.close()

    return asyncio.run(main())


# --- serve -------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    """Run the code service alone: its pages and API under ``/codes``, as the ROBERT
    server's code gate, nginx and ``robert dev`` reach them."""
    from codes.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def serve() -> None:
        app = standalone_app(settings)
        await serve_app(app, Listener(settings.host, settings.port, LINKS), "code service")

    asyncio.run(serve())
    return 0


# --- codes -------------------------------------------------------------------------------------
async def _org_for(service: CodeService, name: str | None) -> Organisation:
    if name is None:
        return await service.ensure_org(DEFAULT_ORG, Role.ADMIN)
    return await service.get_org(name)


def _check_sheet_path(out: str) -> Path:
    """Where a sheet goes: refuse, before any code is issued, a path whose extension we do not
    write or whose directory does not exist (issued codes nobody saw would stay live)."""
    path = Path(out)
    if path.suffix.lower() not in SHEET_SUFFIXES:
        raise CommandError(
            f"--out {out}: a sheet is .pdf or .html, not {path.suffix or 'without an extension'}"
        )
    if not path.parent.is_dir():
        raise CommandError(f"--out {out}: no directory {path.parent}")
    if path.is_dir():
        raise CommandError(f"--out {out}: is a directory")
    return path


def cmd_issue(args: argparse.Namespace) -> int:
    """Issue codes; print them, or write a printable sheet and/or one PNG per code."""
    if args.count < 1:
        raise CommandError("--count must be at least 1")
    sheet = _check_sheet_path(args.out) if args.out else None
    if args.qr:
        writable_directory(args.qr, "QR code directory")
    if not is_time_zone(args.time_zone):
        raise CommandError(f"--time-zone {args.time_zone}: not a time zone (Europe/Paris...)")

    async def job(service: CodeService) -> None:
        org = await _org_for(service, args.org)
        codes = await service.issue(org, CodeKind(args.kind), args.count, args.test_date)
        if args.qr:
            from codes.qr import write_pngs

            write_pngs(codes, Path(args.qr))
        if sheet is not None:
            from codes.handout import Layout, write_handout

            write_handout(org, codes, sheet, Layout(args.layout), args.time_zone)
            print(f"{len(codes)} {args.kind} code(s) of {org.name} written to {sheet}")
        else:
            sys.stdout.write("".join(f"{c.record.code}\n" for c in codes))

    _run(args, job)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Print a code's state without consuming it; exit status 0 only if valid."""
    state = _run(args, lambda service: service.check(args.code))
    print(state.value)
    return 0 if state is CodeState.VALID else 1


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke an unused code."""
    record = _run(args, lambda service: service.revoke(args.code))
    print(f"revoked {record.code}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """The latest codes with their state, one per line."""
    from codes.service import iso_utc

    listed = _run(args, lambda service: service.list(args.org, args.limit))
    for record, state in listed:
        print(
            f"{record.code}\t{record.kind}\t{state.value}\t{record.org}\t{record.test_date}"
            f"\t{iso_utc(record.expires_at)}"
        )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """The latest audit entries (codes appear only as keyed hashes)."""
    actor = f"org:{args.org}" if args.org else None

    async def job(service: CodeService) -> list[Any]:
        return await service.store.audit.query(
            service.store.db, AuditFilter(actor=actor), limit=args.limit
        )

    for e in _run(args, job):
        print(
            f"{e.at.isoformat()}\t{e.actor}\t{e.action}\t{e.object_type}\t{e.object_id}\t{e.detail}"
        )
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    """Pre-generate codes for a lab's system: DIR/codes.csv and DIR/codes.csv.sha256."""
    if args.count < 1:
        raise CommandError("--count must be at least 1")
    out = Path(args.out)
    writable_directory(out, "output directory")
    started = time.perf_counter()

    async def job(service: CodeService) -> int:
        from codes.export import checksum_line, codes_csv

        org = await service.get_org(args.org)
        codes = await service.issue(org, CodeKind(args.kind), args.count, args.test_date)
        data = codes_csv(codes)
        (out / "codes.csv").write_bytes(data)
        (out / "codes.csv.sha256").write_text(checksum_line(data, "codes.csv"))
        if args.qr:
            from codes.qr import write_pngs

            write_pngs(codes, out / "qr")
        return len(codes)

    count = _run(args, job)
    elapsed = time.perf_counter() - started
    print(f"{count} codes of {args.org} in {out / 'codes.csv'} ({elapsed:.1f} s)")
    return 0


# --- orgs --------------------------------------------------------------------------------------
def cmd_orgs_add(args: argparse.Namespace) -> int:
    """Create an organisation and print its API key (shown this once only), unless
    ``--no-key`` (an organisation whose people use the pages and whose system has no key)."""
    role = Role(args.role)
    address = args.address.replace("\\n", "\n")
    if args.no_key:
        org = _run(args, lambda service: service.create_org(args.name, role, args.title, address))
        print(f"organisation {org.name} ({org.role}) created")
        return 0
    org, key = _run(
        args, lambda service: service.add_org(args.name, role, title=args.title, address=address)
    )
    print(key)
    print(f"organisation {org.name} ({org.role}) created; store this API key now", file=sys.stderr)
    return 0


def cmd_orgs_set(args: argparse.Namespace) -> int:
    """Change what an organisation's handouts print: its full name and address."""

    async def job(service: CodeService) -> Organisation:
        org = await service.get_org(args.name)
        title = org.title if args.title is None else args.title
        address = org.address if args.address is None else args.address.replace("\\n", "\n")
        return await service.update_org(org.name, title, address)

    org = _run(args, job)
    print(f"{org.name}: {org.display_name}; {', '.join(org.address_lines) or 'no address'}")
    return 0


def cmd_orgs_key(args: argparse.Namespace) -> int:
    """Print a new API key for an organisation (revoke the old one with apikeys revoke)."""
    key = _run(args, lambda service: service.new_key(args.name))
    print(key)
    return 0


def cmd_orgs_list(args: argparse.Namespace) -> int:
    """Organisations with their role, public key and full name."""

    async def job(service: CodeService) -> list[tuple[dict[str, str], Organisation]]:
        orgs = {o.name: o for o in await service.organisations()}
        return [(entry, orgs[entry["org"]]) for entry in await service.authorities()]

    for entry, org in _run(args, job):
        print(f"{entry['org']}\t{entry['role']}\t{entry['publicKey']}\t{org.title}")
    return 0


# --- users ---------------------------------------------------------------------------------------
ROLES = ", ".join(r.value for r in Role)


async def check_person(accounts: Accounts, args: argparse.Namespace) -> None:
    """Refuse, before the kit creates anyone (or asks for a password), a person the pages
    would turn away: a scope that is not ``org:<name>``, an organisation that does not exist
    or does another job than the role says (the kit has refused a role not one of ours)."""
    if not args.scope.startswith(ORG_SCOPE_PREFIX):
        raise CommandError(
            f"--scope {args.scope or '(none)'}: a person acts for an organisation, "
            f"--scope {ORG_SCOPE_PREFIX}NAME (robert codes orgs list)"
        )
    name = args.scope.removeprefix(ORG_SCOPE_PREFIX)
    org = await CodeStore(accounts.db).get_org(name)
    if org is None:
        raise CommandError(
            f"--scope {args.scope}: no organisation {name} "
            "(robert codes orgs list; orgs add creates one)"
        )
    if org.role.value != args.role:
        raise CommandError(
            f"--role {args.role}: {org.name} is a {org.role.value} organisation; "
            f"its people have the role {org.role.value}"
        )


# --- assembly ----------------------------------------------------------------------------------
def add_subcommands(subparsers: Any) -> None:
    """Add the ``codes`` command group to the ``robert`` command."""
    from codes.app import open_accounts
    from codes.model import ROBERT_SERVER_ROLE
    from codes.store import MIGRATIONS
    from kit.auth.commands import PersonRules, Roles, add_account_commands

    kinds = [k.value for k in CodeKind]
    top = subparsers.add_parser(
        "codes",
        help="the submission-code service: serve, issue, verify, organisations, accounts",
        description="Submission codes for health authorities: labs print long codes as QR "
        "codes, doctors read out short ones; the ROBERT server consumes them. Every command "
        "works on the service's database (--data-dir or --database).",
    )
    sub = top.add_subparsers(dest="codes_command", required=True, metavar="COMMAND")

    serve = with_settings(sub.add_parser("serve", help="run the code service alone"))
    serve.set_defaults(func=cmd_serve)

    issue = sub.add_parser("issue", help="issue codes (print, sheet, PNGs)")
    issue.add_argument(
        "--kind",
        choices=kinds,
        default="long",
        help="long: a lab's code for a result, 7 days, printed as a QR code (default); "
        "short: a doctor's 6 characters read out, an hour",
    )
    issue.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    issue.add_argument("--org", help=f"issuing organisation (default: {DEFAULT_ORG}, admin)")
    issue.add_argument("--test-date", help="date of the test, YYYY-MM-DD (default: today)")
    issue.add_argument("--out", help="patients' handouts to print: FILE.pdf or FILE.html")
    issue.add_argument(
        "--layout",
        choices=[layout.value for layout in Layout],
        default=Layout.GRID.value,
        help="A4 layout of --out: one handout per page, or a grid of 8 cards (default)",
    )
    issue.add_argument(
        "--time-zone",
        default=DEFAULT_TIME_ZONE,
        help=f"time zone of the dates printed on --out (default {DEFAULT_TIME_ZONE})",
    )
    issue.add_argument("--qr", metavar="DIR", help="write one PNG per code, named after it")
    with_settings(issue).set_defaults(func=cmd_issue)

    verify = sub.add_parser("verify", help="state of a code, not consuming it")
    verify.add_argument("code")
    with_settings(verify).set_defaults(func=cmd_verify)

    revoke = sub.add_parser("revoke", help="revoke an unused code")
    revoke.add_argument("code")
    with_settings(revoke).set_defaults(func=cmd_revoke)

    listing = sub.add_parser("list", help="latest codes and their state")
    listing.add_argument("--org", help="only this organisation's codes")
    listing.add_argument("--limit", type=int, default=100)
    with_settings(listing).set_defaults(func=cmd_list)

    batch = sub.add_parser("batch", help="CSV of codes for a lab's system")
    batch.add_argument("--org", required=True)
    batch.add_argument(
        "--kind", choices=kinds, default="long", help="long (default, 7 days) or short (an hour)"
    )
    batch.add_argument("--count", type=int, required=True)
    batch.add_argument("--test-date", help="date of the tests, YYYY-MM-DD (default: today)")
    batch.add_argument("--out", required=True, metavar="DIR")
    batch.add_argument("--qr", action="store_true", help="also DIR/qr/<code>.png (slow)")
    with_settings(batch).set_defaults(func=cmd_batch)

    audit = sub.add_parser("audit", help="latest audit entries")
    audit.add_argument("--org", help="only what this organisation did")
    audit.add_argument("--limit", type=int, default=100)
    with_settings(audit).set_defaults(func=cmd_audit)

    orgs = sub.add_parser("orgs", help="organisations that issue codes")
    osub = orgs.add_subparsers(dest="orgs_command", required=True, metavar="COMMAND")
    add = osub.add_parser("add", help="create one; prints its API key once")
    add.add_argument("--name", required=True, help="short name: LABO-BIOMED-11 (A-Z 0-9 _ -)")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--title", default="", help="full name, as printed on handouts")
    add.add_argument("--address", default="", help="postal address; lines separated by \\n")
    add.add_argument("--no-key", action="store_true", help="no API key (people use the pages)")
    with_settings(add).set_defaults(func=cmd_orgs_add)
    change = osub.add_parser("set", help="change the full name or address of one")
    change.add_argument("--name", required=True)
    change.add_argument("--title", help="full name, as printed on handouts")
    change.add_argument("--address", help="postal address; lines separated by \\n")
    with_settings(change).set_defaults(func=cmd_orgs_set)
    key = osub.add_parser("key", help="print a new API key for an organisation")
    key.add_argument("--name", required=True)
    with_settings(key).set_defaults(func=cmd_orgs_key)
    with_settings(osub.add_parser("list", help="organisations and public keys")).set_defaults(
        func=cmd_orgs_list
    )

    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        # The ROBERT server's key: robert codes apikeys add robert --role robert-server
        roles=Roles(
            users={r.value for r in Role}, keys={*(r.value for r in Role), ROBERT_SERVER_ROLE}
        ),
        people=PersonRules(
            check=check_person,
            role_help=f"{ROLES}: the role of the organisation of --scope",
            scope_help=f"{ORG_SCOPE_PREFIX}NAME: the organisation the person acts for",
        ),
    )
