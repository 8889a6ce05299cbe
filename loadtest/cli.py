"""``robert loadtest``: seed phones into a store, write status bodies for wrk."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kit.cli import CommandError


def cmd_seed(args: argparse.Namespace) -> int:
    """Create registrations in bulk and write the seed file."""
    from loadtest.seed import seed
    from server.settings import Settings

    if args.phones < 1:
        raise CommandError("--phones must be at least 1")
    settings = Settings.from_sources(args)
    result = seed(settings, args.phones, args.codes, args.out)
    rate = result.phones / result.seconds if result.seconds else 0.0
    print(
        f"seeded {result.phones} phones and {result.codes} codes in {result.seconds:.1f} s "
        f"({rate:,.0f} phones/s) -> {result.out}"
    )
    return 0


def cmd_bodies(args: argparse.Namespace) -> int:
    """Write status bodies (one JSON per line) for wrk's Lua script."""
    from loadtest.wrk import write_status_bodies

    count = write_status_bodies(args.seed, args.out, args.count, args.ahead)
    print(f"wrote {count} status bodies -> {args.out}")
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Register ``loadtest seed`` and ``loadtest bodies`` with the ``robert`` dispatcher."""
    from server.commands import with_settings

    top = subparsers.add_parser("loadtest", help="load-test set-up (seed phones, wrk bodies)")
    sub = top.add_subparsers(dest="loadtest_command", required=True)
    seed = with_settings(
        sub.add_parser(
            "seed",
            help="create registrations directly in the store and write a seed file",
            description="Create N registrations in the store (pipelined SET NX on Redis, "
            "executemany on SQLite), issue submission codes, and "
            "write OUT: the phones' ID_A and K_A (37 bytes each), the keys directory, the "
            "codes. The store and keys come from the usual settings (--store, --keys-dir...).",
        )
    )
    seed.add_argument("--phones", type=int, default=1000, help="registrations to create")
    seed.add_argument("--codes", type=int, default=1000, help="submission codes for reports")
    seed.add_argument("--out", type=Path, default=Path("seed.bin"), help="seed file to write")
    seed.set_defaults(func=cmd_seed)
    bodies = sub.add_parser(
        "bodies", help="write valid status bodies (current epoch) for wrk, one per line"
    )
    bodies.add_argument("--seed", type=Path, required=True, help="seed file")
    bodies.add_argument("--out", type=Path, default=Path("status-bodies.txt"))
    bodies.add_argument("--count", type=int, default=50_000, help="bodies (2 per phone)")
    bodies.add_argument(
        "--ahead", type=int, default=30, help="seconds ahead of now their time field is"
    )
    bodies.set_defaults(func=cmd_bodies)
