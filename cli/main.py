"""``robert``: the command tree, assembled from each package's ``add_subcommands``.

Each service and tool exposes ``add_subcommands(subparsers)``; a package whose optional
dependencies are not installed (``ble`` without bleak, ``loadtest`` without locust...) simply
has no commands. Every command runs under one handler (``kit.cli.run``) that turns the errors a
person causes into one line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from citizens import commands as citizens_commands
from cli import dev, wiring
from codes import commands as codes_commands
from kit.cli import run
from server import commands as server_commands

PROG = "robert"

OPTIONAL_COMMANDS = ("client_sim.cli", "ble.cli", "loadtest.cli")
"""Tools whose optional dependencies may not be installed (then they have no commands)."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="StopCovid's ROBERT server and the services around it. "
        "'robert dev' runs every service in one process; 'robert COMMAND --help' tells more.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev.add_subcommands(sub)
    server_commands.add_subcommands(sub, code_gates=wiring.code_gate)
    codes_commands.add_subcommands(sub)
    citizens_commands.add_subcommands(sub)
    for module_name in OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith(module_name.split(".")[0]):
                continue  # an optional dependency of that package is not installed
            raise
        module.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``robert`` with ``argv``; the exit status."""
    args = build_parser().parse_args(argv)
    return run(PROG, args.func, args)


def entry() -> None:
    """Entry point of the ``robert`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
