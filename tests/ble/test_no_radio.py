"""``robert ble scan`` on a machine without a radio: one line, exit 2, no retrying for ever.

Real ``robert`` processes, two at a time. The system bus is pointed at a socket that does not
exist (``DBUS_SYSTEM_BUS_ADDRESS``), so bleak finds no BlueZ whatever the machine has; bumble is
given its default transport (hci-socket:0) and a serial port that does not exist.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROBERT = Path(sys.executable).with_name("robert")
AT_ONCE = asyncio.Semaphore(2)
"""Two at a time: each start costs a second or two of CPU, and the machine has two cores."""


async def robert(*argv: str, timeout: float = 120) -> tuple[int, str]:
    """Run ``robert argv`` to its end with no reachable BlueZ: (exit status, standard error)."""
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent/robert-test-bus")
    async with AT_ONCE:
        process = await asyncio.create_subprocess_exec(
            str(ROBERT),
            *argv,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), timeout)
        finally:
            if process.returncode is None:  # it kept retrying: stop it, the test fails below
                process.kill()
                await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode()


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


async def test_no_radio_ends_the_scan_with_one_line() -> None:
    cases = {
        "bleak": (("ble", "scan"), "ble scan: no Bluetooth adapter found"),
        # the duration is far longer than the test's patience: it must not be waited out
        "bleak --duration": (
            ("ble", "scan", "--duration", "3600"),
            "ble scan: no Bluetooth adapter found",
        ),
        "bumble, serial": (
            ("ble", "scan", "--scanner", "bumble", "--transport", "serial:/nonexistent/tty"),
            "ble scan: no Bluetooth adapter found",
        ),
        "bumble, default transport": (("ble", "scan", "--scanner", "bumble"), "ble scan: "),
    }
    results = await asyncio.gather(*(robert(*argv, timeout=60) for argv, _ in cases.values()))
    for (name, (_, expected)), (status, err) in zip(cases.items(), results, strict=True):
        line = one_line(err)
        print(f"\n{name}: exit {status}: {line}")
        assert status == 2, (name, err)
        assert line.startswith(expected), (name, line)
        assert "retrying" not in line
    bleak_line = one_line(results[0][1])
    assert "bluetoothd" in bleak_line  # says what to do
    bumble_line = one_line(results[3][1])
    # whatever this machine lacks for hci-socket:0, no package is missing: no "install extras"
    assert "extras" not in bumble_line and "pip install" not in bumble_line
