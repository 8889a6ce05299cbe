"""``ble scan``, ``ble run`` and ``ble report``: a laptop or Raspberry Pi as a ROBERT phone.

The top-level CLI calls ``add_subcommands(subparsers)``; each leaf sets ``func`` to a callable
taking the parsed arguments and returning an exit code. ``python -m ble`` runs them alone.
Radio trouble is printed as one line, never a traceback. A radio that cannot be opened when the
command starts (no adapter, no permission, no backend here) ends it at once with that line and
exit code 2, with or without ``--duration``; trouble once running is retried.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from ble.advertiser import ADVERTISERS, HelloAdvertiser, create_advertiser
from ble.calibration import MODEL_GAINS, gains_for
from ble.errors import describe, map_radio_error, retry
from ble.liveview import LinePrinter, LiveTable
from ble.node import DEFAULT_REFRESH, BleNode
from ble.scanner import SCANNERS, HelloScanner, create_scanner
from protocol.epochs import ntp_from_unix

log = logging.getLogger(__name__)

DEFAULT_STATE = Path("robert-phone.json")
START_ATTEMPTS = 1
"""Tries to open the radio when a command starts: a missing radio is not waited for."""
DEFAULT_SERVER = "http://127.0.0.1:8080"
"""The server the phone talks to: its base URL (the phone adds the API path, /api/v6/...)."""


def system_clock() -> int:
    """NTP seconds from this machine's clock (keep it NTP-synchronised: HELLOs carry time)."""
    return ntp_from_unix(time.time())


def say(message: str) -> None:
    """One line on stderr: radio status and errors, kept apart from printed HELLOs."""
    print(message, file=sys.stderr, flush=True)


class _PrintingSink:
    """The sink of ``ble scan``: no phone, records only go to the listeners."""

    def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
        """Nothing to store; the printer shows the record."""


def _add_radio_options(parser: argparse.ArgumentParser, advertise: bool) -> None:
    radio = parser.add_argument_group("radio")
    radio.add_argument(
        "--scanner",
        choices=SCANNERS,
        default="bleak",
        help="bleak: through the OS stack (BlueZ, CoreBluetooth, WinRT); bumble: drive a "
        "controller directly (needs --transport); both read iPhones over GATT",
    )
    if advertise:
        radio.add_argument(
            "--advertiser",
            choices=(*ADVERTISERS, "none"),
            default="bluez",
            help="bluez: BlueZ LE advertising manager over D-Bus (Linux); bumble: drive a "
            "controller directly (needs --transport); none: listen only",
        )
        radio.add_argument(
            "--kind",
            choices=("broadcast", "peripheral"),
            default="peripheral",
            help="peripheral: connectable, and serve the HELLO characteristic over GATT "
            "(both advertisers: bumble itself, BlueZ through bluetoothd); "
            "broadcast: non-connectable, no GATT",
        )
        radio.add_argument(
            "--refresh",
            type=float,
            default=DEFAULT_REFRESH,
            help="seconds between HELLO refreshes (the time field changes every second); "
            "also refreshed at each epoch change (default %(default)s)",
        )
    radio.add_argument("--adapter", default="hci0", help="BlueZ adapter (default %(default)s)")
    radio.add_argument(
        "--transport",
        default="hci-socket:0",
        help="bumble transport: hci-socket:0, usb:0, serial:/dev/ttyUSB0 (default %(default)s)",
    )
    radio.add_argument(
        "--active",
        action="store_true",
        help="scan actively (sends scan requests); default is passive where the OS allows",
    )
    radio.add_argument(
        "--model",
        default=None,
        help=f"this device's model in the gain table ({', '.join(sorted(MODEL_GAINS))})",
    )
    radio.add_argument("--rx-gain", type=int, default=None, help="override our RX gain in dB")
    if advertise:
        radio.add_argument("--tx-gain", type=int, default=None, help="override our TX gain in dB")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")


@contextlib.asynccontextmanager
async def open_radio(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[HelloAdvertiser | None, HelloScanner]]:
    """The advertiser and scanner the arguments ask for; one bumble Device if both use it."""
    advertiser_name = getattr(args, "advertiser", "none")
    uses_bumble = "bumble" in (advertiser_name, args.scanner)
    async with contextlib.AsyncExitStack() as stack:
        device = None
        if uses_bumble:
            from ble.bumble_radio import open_device

            device = await retry(
                lambda: stack.enter_async_context(open_device(args.transport)),
                what=f"bumble transport {args.transport}",
                report=say,
                max_attempts=START_ATTEMPTS,
            )
        scanner = (
            create_scanner("bumble", device=device, passive=not args.active)
            if args.scanner == "bumble"
            else create_scanner("bleak", adapter=args.adapter, passive=not args.active)
        )
        advertiser: HelloAdvertiser | None = None
        if advertiser_name == "bumble":
            advertiser = create_advertiser("bumble", device=device, kind=args.kind)
        elif advertiser_name == "bluez":
            advertiser = create_advertiser("bluez", adapter=args.adapter, kind=args.kind)
        yield advertiser, scanner


async def _until(duration: float | None, tick: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run ``tick`` every second until ``duration`` elapses (forever if None)."""
    loop = asyncio.get_running_loop()
    end = None if duration is None else loop.time() + duration
    while end is None or loop.time() < end:
        await asyncio.sleep(1.0 if end is None else min(1.0, max(0.0, end - loop.time())))
        if tick is not None:
            await tick()


def _run(main: Coroutine[Any, Any, int], what: str) -> int:
    """asyncio.run with the radio error mapping: one line, exit code 2, never a traceback."""
    try:
        return asyncio.run(main)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # radio errors get one line; anything else is a bug and re-raised
        if map_radio_error(exc) is None:
            raise
        say(f"{what}: {describe(exc)}")
        return 2


async def _scan(args: argparse.Namespace) -> int:
    gains = gains_for(args.model)
    rx_gain = gains.rx if args.rx_gain is None else args.rx_gain
    table = LiveTable() if args.table else None
    listeners = (table,) if table is not None else (LinePrinter(),)
    async with open_radio(args) as (_advertiser, scanner):
        node = BleNode(
            None,
            _PrintingSink(),
            system_clock,
            advertiser=None,
            scanner=scanner,
            rx_gain=rx_gain,
            listeners=listeners,
            report=say,
            start_attempts=START_ATTEMPTS,
        )

        async def tick() -> None:
            if table is not None:
                table.draw(system_clock(), _status_line(node))

        async with node:
            await _until(args.duration, tick)
        say(_status_line(node))
    return 0


def _status_line(node: BleNode) -> str:
    counters = node.collector.counters
    scanner = node.scanner
    scanner_counters = scanner.counters if scanner is not None else {}
    line = (
        f"records={counters['records']} sightings={counters['sightings']} "
        f"merged={counters['duplicates_merged']} "
        f"iphones-foreground={counters['uuid_only_sightings']} "
        f"iphones-background={counters['overflow_sightings']} "
        f"malformed={scanner_counters.get('malformed', 0)} "
        f"gatt-read={scanner_counters.get('gatt_read', 0)} "
        f"gatt-failed={scanner_counters.get('gatt_failed', 0)} "
        f"gatt-timeouts={scanner_counters.get('gatt_timeouts', 0)} "
        f"gatt-gave-up={scanner_counters.get('gatt_gave_up', 0)}"
    )
    if node.advertiser is not None:
        written = node.advertiser.counters
        line += (
            f" written={written['writes']} write-refused={written['write_refused']} "
            f"write-no-rssi={written['write_no_rssi']} read-by-peers={written['gatt_reads']}"
        )
    return line


def scan(args: argparse.Namespace) -> int:
    """``ble scan``: print every HELLO heard."""
    return _run(_scan(args), "ble scan")


async def _run_phone(args: argparse.Namespace) -> int:
    from phone.client import Phone  # the app side lives in phone/, not in ble/

    gains = gains_for(args.model)
    phone = await Phone.load_or_register(args.state, args.server, system_clock)
    try:
        table = LiveTable()
        async with open_radio(args) as (advertiser, scanner):
            node = BleNode(
                phone,
                phone,
                system_clock,
                advertiser=advertiser,
                scanner=scanner,
                tx_gain=gains.tx if args.tx_gain is None else args.tx_gain,
                rx_gain=gains.rx if args.rx_gain is None else args.rx_gain,
                refresh_interval=args.refresh,
                listeners=(table,),
                report=say,
                start_attempts=START_ATTEMPTS,
            )
            loop = asyncio.get_running_loop()
            next_status = loop.time() + args.status_every
            status_text = "status: not asked yet"

            async def tick() -> None:
                nonlocal next_status, status_text
                if loop.time() >= next_status:
                    next_status = loop.time() + args.status_every
                    try:
                        status = await phone.check_status()
                    except Exception as exc:  # server trouble must not stop the radio
                        status_text = f"status: failed ({type(exc).__name__}: {exc})"
                    else:
                        status_text = (
                            f"status: at_risk={status.at_risk} risk_level={status.risk_level}"
                        )
                table.draw(system_clock(), f"{_status_line(node)}\n{status_text}")

            async with node:
                await _until(args.duration, tick)
    finally:
        await phone.close()
    return 0


def run_phone(args: argparse.Namespace) -> int:
    """``ble run``: be a phone - register or load state, advertise, listen, check status."""
    return _run(_run_phone(args), "ble run")


async def _report(args: argparse.Namespace) -> int:
    from phone.client import Phone

    phone = await Phone.load_or_register(args.state, args.server, system_clock)
    try:
        await phone.report(args.code)
    finally:
        await phone.close()
    print("report sent: the contacts heard were uploaded and this phone unregistered")
    return 0


def report(args: argparse.Namespace) -> int:
    """``ble report``: declare this phone's user positive with a submission code."""
    return _run(_report(args), "ble report")


def _add_phone_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", default=DEFAULT_SERVER, help="ROBERT server base URL (default %(default)s)"
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help="file keeping this phone's registration, tuples and heard HELLOs "
        "(default %(default)s); registers on first use",
    )


def add_subcommands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``ble scan|run|report`` to a top-level CLI's subparsers; returns the ``ble`` parser."""
    ble: argparse.ArgumentParser = subparsers.add_parser(
        "ble",
        help="be a ROBERT phone over real Bluetooth (see docs/ble.md)",
        description="Advertise and hear StopCovid HELLOs (service 0xFD64) on this machine's radio.",
    )
    commands = ble.add_subparsers(dest="ble_command", required=True, metavar="COMMAND")

    p_scan = commands.add_parser(
        "scan",
        help="listen and print decoded HELLOs",
        description="Listen for StopCovid advertisements and print each HELLO once per second "
        "per sender: time, EBID, ECC, time field, raw and calibrated RSSI, sender's TX gain "
        "and version. Calibrated = raw - sender TX gain - our RX gain.",
    )
    _add_radio_options(p_scan, advertise=False)
    p_scan.add_argument("--table", action="store_true", help="a live table per EBID instead")
    p_scan.set_defaults(func=scan)

    p_run = commands.add_parser(
        "run",
        help="run a phone: register, advertise our HELLO, record others, check status",
        description="Load (or register) a phone with the server, advertise its HELLO refreshed "
        "every --refresh seconds and at each epoch change, hand every HELLO heard to it, "
        "check the exposure status periodically, and show a live table of EBIDs heard.",
    )
    _add_phone_options(p_run)
    _add_radio_options(p_run, advertise=True)
    p_run.add_argument(
        "--status-every",
        type=float,
        default=3600.0,
        help="seconds between status requests (default %(default)s)",
    )
    p_run.set_defaults(func=run_phone)

    p_report = commands.add_parser(
        "report",
        help="declare a positive test with a submission code",
        description="Upload the HELLOs this phone heard with a short or long submission code "
        "given by a doctor or a lab; the phone then unregisters.",
    )
    _add_phone_options(p_report)
    p_report.add_argument("--code", required=True, help="the submission code")
    p_report.set_defaults(func=report)
    return ble


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m ble scan ...``."""
    parser = argparse.ArgumentParser(prog="python -m")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_subcommands(subparsers)
    args = parser.parse_args(["ble", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result: int = args.func(args)
    return result
