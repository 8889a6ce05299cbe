"""The command treats people kindly: the errors a person causes end the ``robert`` command
with one line on standard error and a non-zero exit, never a traceback (real processes)."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import weakref
from pathlib import Path

import pytest

from tests.cluster.localcluster import free_port

ROBERT = Path(sys.executable).with_name("robert")


_AT_ONCE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def at_once() -> asyncio.Semaphore:
    """Two at a time: each start costs a second or two of CPU, and the machine has two cores.
    One semaphore per event loop (each test has its own loop; a semaphore is bound to one)."""
    return _AT_ONCE.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(2))


async def robert(
    *argv: str, timeout: float = 120, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run ``robert argv`` to its end (``env`` added to the environment): (exit status,
    standard error)."""
    async with at_once():
        process = await asyncio.create_subprocess_exec(
            str(ROBERT),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # no terminal, as from a script or a service unit
        )
        _, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, err.decode()


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) \S+: ")
"""A log line below ERROR as ``kit.cli.setup_logging`` writes it: time, level, logger."""


BEDS_PERSON = ("beds", "users", "add", "jeanne", "--name", "J", "--role", "ars")
BEDS_PERSON += ("--scope", "reg:11")
"""A valid person of the bed service (one whose only fault can be a missing password)."""


def one_line(err: str) -> str:
    """Besides log lines (start-up INFO, a WARNING about a missing tool), exactly one line,
    no traceback."""
    lines = [line for line in err.splitlines() if not LOG_LINE.match(line)]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_one_line_passes_over_log_lines_only() -> None:
    """Machines differ in what a start warns about (espeak-ng missing): a WARNING log line is
    not the error, but two error lines or a traceback still fail."""
    start = "2020-06-01 10:00:00,123 INFO codes: settings: port=8081\n"
    warning = "2020-06-01 10:00:00,456 WARNING kit.captcha: espeak-ng not found\n"
    assert one_line(start + warning + "robert: bad\n") == "robert: bad"
    for bad in (
        "robert: bad\nrobert: worse\n",
        warning + "Traceback (most recent call last):\nrobert: bad\n",
        "robert: WARNING here\nrobert: bad\n",
        "",
    ):
        with pytest.raises(AssertionError):
            one_line(bad)


async def test_each_mistake_is_one_line(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = str(busy.getsockname()[1])
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    data = str(tmp_path / "data")
    cases = {
        "port in use": (
            ("serve", "--port", port, "--data-dir", data),
            f"cannot listen on 127.0.0.1:{port}: address already in use",
        ),
        "unreachable store": (
            ("serve", "--store", "redis://127.0.0.1:1/0", "--data-dir", data),
            "cannot reach the Redis store at redis://127.0.0.1:1/0",
        ),
        "unknown store": (
            ("serve", "--store", "mysql://db/robert", "--data-dir", data),
            "bad store URL: unsupported store URL scheme 'mysql'",
        ),
        "data dir is a file": (
            ("serve", "--data-dir", str(a_file / "data")),
            "cannot create the data directory",
        ),
        "missing parent": (
            ("serve", "--data-dir", "/proc/robert-test/data"),
            "no such file or directory",
        ),
        "bad log level": (("serve", "--log-level", "loud"), "log_level must be a logging level"),
        "port too large": (("serve", "--port", "70000"), "port must be between 1 and 65535"),
        "port zero": (("dev", "--port", "0"), "port must be between 1 and 65535"),
        "no phones": (("sim", "--phones", "0"), "--phones must be at least 2"),
        "negative days": (("sim", "--days", "-1"), "--days must be at least 1"),
        "no password": (
            (*BEDS_PERSON, "--data-dir", data),
            "no password given: type it at a terminal or use --password-file FILE",
        ),
        "bad sheet": (
            ("codes", "issue", "--out", str(tmp_path / "x.docx"), "--data-dir", data),
            "a sheet is .pdf or .html, not .docx",
        ),
    }
    try:
        results = await asyncio.gather(*(robert(*argv) for argv, _ in cases.values()))
    finally:
        busy.close()
    for (name, (_, expected)), (status, err) in zip(cases.items(), results, strict=True):
        line = one_line(err)
        assert status == 1, (name, err)
        assert line.startswith("robert: ") and expected in line, (name, line)


HEALTH_SERVICES = ("codes", "beds", "drugs", "sidep", "sivic", "samu", "contact", "citizens")


async def test_a_bad_database_is_one_line_in_every_service(tmp_path: Path) -> None:
    """A URL the kit cannot use, a database that is not there: one line naming it (password
    masked), from each service's commands and from ``robert dev``."""
    data = str(tmp_path / "data")
    unreachable = "postgresql://robert:hunter2@127.0.0.1:1/codes"
    cases: dict[str, tuple[tuple[str, ...], dict[str, str], str]] = {
        f"{service} serve": (
            (service, "serve", "--database", "mysql://x/y", "--data-dir", data),
            {},
            "robert: bad database: unsupported database URL 'mysql://x/y'",
        )
        for service in HEALTH_SERVICES
    }
    cases["codes issue"] = (
        ("codes", "issue", "--database", "mysql://x/y", "--data-dir", data),
        {},
        "robert: bad database: unsupported database URL 'mysql://x/y'",
    )
    cases["dev"] = (
        ("dev", "--port", str(free_port()), "--data-dir", data),
        {"CODES_DATABASE": "mysql://x/y"},
        "robert: bad database: unsupported database URL 'mysql://x/y'",
    )
    cases["unreachable"] = (
        ("codes", "issue", "--database", unreachable, "--data-dir", data),
        {},
        "robert: cannot reach the database at postgresql://robert:***@127.0.0.1:1/codes: "
        "connection refused",
    )
    results = await asyncio.gather(*(robert(*argv, env=env) for argv, env, _ in cases.values()))
    for (name, (_, _, expected)), (status, err) in zip(cases.items(), results, strict=True):
        assert status == 1, (name, err)
        assert one_line(err) == expected or one_line(err).startswith(expected), (name, err)
        assert "hunter2" not in err, name


@pytest.mark.parametrize("command", ["serve", "codes issue", "sim"])
async def test_help_shows_the_command_s_own_options_first(command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        str(ROBERT), *command.split(), "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    text = out.decode()
    assert process.returncode == 0
    if command == "sim":
        assert "--phones" in text
        return
    own = text.index("options:")
    shared = text.index("environment variable; flags win")
    assert own < shared
    if command == "codes issue":
        assert own < text.index("--count", own) < shared < text.index("--database", shared)


@pytest.mark.parametrize("command", sorted(__import__("cli.main").main.COMMANDS))
def test_every_command_has_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each top-level command loads alone (only its package) and explains itself."""
    from cli.main import main

    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    assert "usage: robert" in capsys.readouterr().out
