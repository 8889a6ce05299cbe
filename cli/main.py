"""``robert``: the command tree, assembled from each package's ``add_subcommands``.

Each service and tool exposes ``add_subcommands(subparsers)``. Only the package of the command
being run is imported (with eight services, importing them all would make every command, and
``robert --help``, wait seconds for libraries it does not use); the others appear in the help
with their one-line description. A package whose optional dependencies are not installed
(``ble`` without bleak...) has no commands. Every command runs under one handler
(``kit.cli.run``) that turns the errors a person causes into one line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kit.cli import run

PROG = "robert"


def _server(sub: Any) -> None:
    from cli import wiring
    from server import commands

    commands.add_subcommands(sub, code_gates=wiring.code_gate)


@functools.cache
def _module(name: str) -> Callable[[Any], None]:
    """The registration of a package's commands (one per package: several top-level
    commands of one package share it, and it runs once)."""

    def add(sub: Any) -> None:
        importlib.import_module(name).add_subcommands(sub)

    return add


COMMANDS: dict[str, tuple[Callable[[Any], None], str]] = {
    "dev": (_module("cli.dev"), "run every service in one process (what 'make run' starts)"),
    "serve": (_server, "run the ROBERT server alone (embedded store by default)"),
    "worker": (_server, "process queued reports"),
    "keys": (_server, "server keys"),
    "codes": (_module("codes.commands"), "the submission-code service"),
    "beds": (_module("beds.commands"), "critical-care beds (ROR)"),
    "contact": (_module("contact.commands"), "Contact Covid: case investigations"),
    "drugs": (_module("drugs.commands"), "hospital drug stocks (MaPUI)"),
    "samu": (_module("samu.commands"), "the SAMU board (SI-SAMU)"),
    "sidep": (_module("sidep.commands"), "SI-DEP: lab results, positives, indicators"),
    "sivic": (
        _module("sivic.commands"),
        "SI-VIC: hospitalised victims and COVID inpatients, daily open data",
    ),
    "citizens": (
        _module("citizens.commands"),
        "services for citizens: advice, test sites, directory",
    ),
    "advice": (_module("citizens.commands"), "Mes Conseils Covid's advice from the command line"),
    "sim": (_module("client_sim.cli"), "simulate a town of phones against a real server"),
    "ble": (_module("ble.cli"), "be a ROBERT phone over real Bluetooth"),
    "loadtest": (_module("loadtest.cli"), "load-test set-up (seed phones, wrk bodies)"),
}
"""Each top-level command: what registers it (one package may register several), and its
line in ``robert --help``."""

OPTIONAL = frozenset({"sim", "ble", "loadtest"})
"""Tools whose optional dependencies may not be installed (then they have no commands)."""

PROJECT = frozenset(
    {"protocol", "kit", "server", "codes", "beds", "drugs", "citizens", "phone", "cli"}
    | {"sidep", "sivic"}
    | {"contact"}
    | {"client_sim", "ble"}
    | {"loadtest"}
    | {"samu"}
)


def _wanted(argv: Sequence[str]) -> str | None:
    """The top-level command asked for: the first argument that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command tree for ``argv``: the asked command's package loaded, the others listed.
    With ``argv`` None, every package is loaded (the whole tree, for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="StopCovid's ROBERT server and the services around it. "
        "'robert dev' runs every service in one process; 'robert COMMAND --help' tells more.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = _wanted(argv) if argv is not None else None
    wanted_register = COMMANDS[wanted][0] if wanted in COMMANDS else None
    loaded: set[Callable[[Any], None]] = set()
    for name, (register, help_line) in COMMANDS.items():
        if name in sub.choices:
            continue  # registered with another command of its package
        if argv is None or register is wanted_register:
            if register not in loaded:
                loaded.add(register)
                try:
                    register(sub)
                except ModuleNotFoundError as exc:
                    if name not in OPTIONAL or (exc.name or "").split(".")[0] in PROJECT:
                        raise
                    # an optional dependency of that tool is not installed: no commands
            if name in sub.choices:
                continue
        sub.add_parser(name, help=help_line, description=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``robert`` with ``argv``; the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    if not hasattr(args, "func"):
        return _unavailable(args.command)
    return run(PROG, args.func, args)


def _unavailable(command: str) -> int:
    print(
        f"{PROG}: '{command}' needs optional packages that are not installed "
        "(make test installs every one: pip install -e '.[test,dev,ble,sim,loadtest]')",
        file=sys.stderr,
    )
    return 1


def entry() -> None:
    """Entry point of the ``robert`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
