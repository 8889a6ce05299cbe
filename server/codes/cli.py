"""``robert codes ...`` and ``robert orgs ...``: the operator's and the labs' command line.

Every command opens the main store and the issuer store from the same settings (``--store``,
``--data-dir``), does one thing, and closes them; no server keys are needed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from protocol.codes import CodeKind
from server.codes.errors import CodesError
from server.codes.issuer import CodeIssuer, CodeState, file_sha256, iso_of_ntp
from server.codes.model import Role
from server.codes.store import open_issuer_store
from server.settings import Settings

T = TypeVar("T")

DEFAULT_ORG = "ROBERT"
"""The operator's own authority, used when ``--org`` is not given (created as admin)."""


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return Settings.from_sources(args)
    except ValueError as exc:
        raise SystemExit(f"robert: bad setting: {exc}") from None


def _run(args: argparse.Namespace, job: Callable[[CodeIssuer], Awaitable[T]]) -> T:
    """Open both stores for ``args``' settings, run ``job``, close them; errors exit 1."""
    from server.store import open_store

    settings = _settings(args)
    settings.data_path.mkdir(parents=True, exist_ok=True)

    async def main() -> T:
        store = open_store(settings.store_url)
        issuers = open_issuer_store(settings.store_url)
        await store.open()
        await issuers.open()
        try:
            return await job(CodeIssuer(store, issuers))
        finally:
            await issuers.close()
            await store.close()

    try:
        return asyncio.run(main())
    except CodesError as exc:
        raise SystemExit(f"robert: {exc}") from None


# --- codes ---------------------------------------------------------------------------------
async def _org_for(issuer: CodeIssuer, name: str | None) -> Any:
    if name is None:
        return await issuer.ensure_org(DEFAULT_ORG, Role.ADMIN)
    return await issuer.get_org(name)


def cmd_issue(args: argparse.Namespace) -> None:
    """Issue codes; print them, or write a printable sheet and/or one PNG per code."""
    if args.count < 1:
        raise SystemExit("robert: --count must be at least 1")

    async def job(issuer: CodeIssuer) -> None:
        org = await _org_for(issuer, args.org)
        codes = await issuer.issue(org, CodeKind(args.kind), args.count, args.test_date)
        if args.qr:
            from server.codes.qr import write_pngs

            write_pngs(codes, Path(args.qr))
        if args.out:
            from server.codes.qr import write_sheet

            write_sheet(codes, Path(args.out))
            print(f"{len(codes)} {args.kind} code(s) of {org.name} written to {args.out}")
        else:
            sys.stdout.write("".join(f"{c.record.code}\n" for c in codes))

    _run(args, job)


def cmd_verify(args: argparse.Namespace) -> None:
    """Print a code's state without consuming it; exit status 0 only if valid."""
    state = _run(args, lambda issuer: issuer.check(args.code))
    print(state.value)
    if state is not CodeState.VALID:
        raise SystemExit(1)


def cmd_revoke(args: argparse.Namespace) -> None:
    """Revoke an unused code."""
    record = _run(args, lambda issuer: issuer.revoke(args.code))
    print(f"revoked {record.code}")


def cmd_list(args: argparse.Namespace) -> None:
    """The latest codes with their state, one per line."""
    listed = _run(args, lambda issuer: issuer.list(args.org, args.limit))
    for record, state in listed:
        print(
            f"{record.code}\t{record.kind}\t{state.value}\t{record.org}\t{record.test_date}"
            f"\t{iso_of_ntp(record.expires_at)}"
        )


def cmd_audit(args: argparse.Namespace) -> None:
    """The latest audit entries (codes appear only as keyed hashes)."""
    entries = _run(args, lambda issuer: issuer.issuers.list_audit(args.org, args.limit))
    for e in entries:
        print(f"{e.at}\t{e.org}\t{e.action.value}\t{e.code_hash}\t{e.outcome}")


def cmd_batch(args: argparse.Namespace) -> None:
    """Pre-generate codes for a lab's system: DIR/codes.csv and DIR/codes.csv.sha256."""
    if args.count < 1:
        raise SystemExit("robert: --count must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    async def job(issuer: CodeIssuer) -> int:
        org = await issuer.get_org(args.org)
        codes = await issuer.issue(org, CodeKind(args.kind), args.count, args.test_date)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["code", "type", "test_date", "org", "expires_at", "link"])
        for c in codes:
            r = c.record
            writer.writerow([r.code, r.kind, r.test_date, r.org, c.expires_iso, c.link])
        data = buffer.getvalue().encode()
        (out / "codes.csv").write_bytes(data)
        (out / "codes.csv.sha256").write_text(f"{file_sha256(data)}  codes.csv\n")
        if args.qr:
            from server.codes.qr import write_pngs

            write_pngs(codes, out / "qr")
        return len(codes)

    count = _run(args, job)
    elapsed = time.perf_counter() - started
    print(f"{count} codes of {args.org} in {out / 'codes.csv'} ({elapsed:.1f} s)")


# --- orgs ----------------------------------------------------------------------------------
def cmd_orgs_add(args: argparse.Namespace) -> None:
    """Create an organisation and print its API key (shown this once only)."""
    org, key = _run(args, lambda issuer: issuer.add_org(args.name, Role(args.role)))
    print(key)
    print(f"organisation {org.name} ({org.role}) created; store this API key now", file=sys.stderr)


def cmd_orgs_list(args: argparse.Namespace) -> None:
    """Organisations with their role and public key."""
    for entry in _run(args, lambda issuer: issuer.authorities()):
        print(f"{entry['org']}\t{entry['role']}\t{entry['publicKey']}")


# --- assembly ------------------------------------------------------------------------------
def add_subcommands(subparsers: Any) -> None:
    """Add the ``codes`` and ``orgs`` command groups to the ``robert`` command."""
    from server.cli import with_settings

    kinds = [k.value for k in CodeKind]
    codes = subparsers.add_parser("codes", help="submission codes and QR codes")
    csub = codes.add_subparsers(dest="codes_command", required=True, metavar="COMMAND")

    issue = with_settings(csub.add_parser("issue", help="issue codes (print, sheet, PNGs)"))
    issue.add_argument("--kind", choices=kinds, default="long")
    issue.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    issue.add_argument("--org", help=f"issuing organisation (default: {DEFAULT_ORG}, admin)")
    issue.add_argument("--test-date", help="date of the test, YYYY-MM-DD (default: today)")
    issue.add_argument("--out", help="printable sheet: .pdf, else HTML")
    issue.add_argument("--qr", metavar="DIR", help="write one PNG per code, named after it")
    issue.set_defaults(func=cmd_issue)

    verify = with_settings(csub.add_parser("verify", help="state of a code, not consuming it"))
    verify.add_argument("code")
    verify.set_defaults(func=cmd_verify)

    revoke = with_settings(csub.add_parser("revoke", help="revoke an unused code"))
    revoke.add_argument("code")
    revoke.set_defaults(func=cmd_revoke)

    listing = with_settings(csub.add_parser("list", help="latest codes and their state"))
    listing.add_argument("--org", help="only this organisation's codes")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_list)

    batch = with_settings(csub.add_parser("batch", help="CSV of codes for a lab's system"))
    batch.add_argument("--org", required=True)
    batch.add_argument("--kind", choices=kinds, default="long")
    batch.add_argument("--count", type=int, required=True)
    batch.add_argument("--test-date", help="date of the tests, YYYY-MM-DD (default: today)")
    batch.add_argument("--out", required=True, metavar="DIR")
    batch.add_argument("--qr", action="store_true", help="also DIR/qr/<code>.png (slow)")
    batch.set_defaults(func=cmd_batch)

    audit = with_settings(csub.add_parser("audit", help="latest audit entries"))
    audit.add_argument("--org")
    audit.add_argument("--limit", type=int, default=100)
    audit.set_defaults(func=cmd_audit)

    orgs = subparsers.add_parser("orgs", help="organisations that issue codes")
    osub = orgs.add_subparsers(dest="orgs_command", required=True, metavar="COMMAND")
    add = with_settings(osub.add_parser("add", help="create one; prints its API key once"))
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.set_defaults(func=cmd_orgs_add)
    lst = with_settings(osub.add_parser("list", help="organisations and public keys"))
    lst.set_defaults(func=cmd_orgs_list)
