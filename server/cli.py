"""The ``robert`` command: serve, worker, keys, codes, and the sub-commands of other packages.

Each package that has commands (``ble``, ``client_sim``, ``loadtest``, ``server.codes`` for
``codes`` and ``orgs``) exposes ``add_subcommands(subparsers)``; this module only assembles
them.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable

from protocol.epochs import day_of_ntp, ntp_from_unix
from server.processes import run_event_loop, run_forked
from server.settings import Settings

log = logging.getLogger("robert")

SUBCOMMAND_MODULES = ("server.codes.cli", "client_sim.cli", "ble.cli", "loadtest.cli")


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return Settings.from_sources(args)
    except ValueError as exc:
        raise SystemExit(f"robert: bad setting: {exc}") from None


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# --- serve -------------------------------------------------------------------------------------
async def _serve(settings: Settings, reuse_port: bool) -> None:
    from aiohttp import web

    from server.app import create_app

    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("robert.access") if settings.access_log else None,
        access_log_format="%r %s %b %Tf",
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
    await site.start()
    log.info("listening on http://%s:%d (pid %d)", settings.host, settings.port, os.getpid())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> None:
    """Run the API (and, for the embedded store, the worker)."""
    settings = _settings(args)
    _setup_logging(settings)
    log.info("settings: %s", settings.describe())
    from server.keys import ServerKeys

    # Create the keys once, before forking, so every process loads the same ones.
    ServerKeys.open(
        settings.keys_path,
        day_of_ntp(ntp_from_unix(time.time())),
        settings.keys_ahead_days,
        settings.key_retention_days,
    )
    run_forked(settings.workers, lambda reuse: run_event_loop(_serve(settings, reuse)))


# --- worker ------------------------------------------------------------------------------------
async def _work(settings: Settings) -> None:
    from server.keys import ServerKeys
    from server.metrics import Metrics
    from server.service import RobertService
    from server.store import open_store
    from server.worker import ReportWorker

    store = open_store(settings.store_url)
    await store.open()
    keys = ServerKeys.open(
        settings.keys_path,
        day_of_ntp(ntp_from_unix(time.time())),
        settings.keys_ahead_days,
        settings.key_retention_days,
    )
    worker = ReportWorker(RobertService(settings, store, keys, Metrics(), time.time))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s consuming reports from %s", worker.name, settings.store_url.split("@")[-1])
    try:
        await worker.run(stop)
    finally:
        await store.close()


def cmd_worker(args: argparse.Namespace) -> None:
    """Process queued reports until stopped."""
    settings = _settings(args)
    _setup_logging(settings)
    run_event_loop(_work(settings))


# --- keys --------------------------------------------------------------------------------------
def cmd_keys_generate(args: argparse.Namespace) -> None:
    """Create missing server keys (never overwrites existing ones)."""
    from server.keys import ServerKeys

    settings = _settings(args)
    keys = ServerKeys(settings.keys_path)
    today = day_of_ntp(ntp_from_unix(time.time()))
    created = keys.generate(today, settings.keys_ahead_days, settings.key_retention_days)
    keys.reload()
    print(
        f"keys in {settings.keys_path} (mode 0700): K_G, P-256 key pair, "
        f"K_S for {len(keys.days)} day(s), {len(created)} new"
    )


def cmd_keys_public(args: argparse.Namespace) -> None:
    """Print the server's public key, base64 SubjectPublicKeyInfo."""
    from server.keys import ServerKeys

    settings = _settings(args)
    keys = ServerKeys(settings.keys_path)
    try:
        keys.reload()
    except FileNotFoundError:
        raise SystemExit(
            f"robert: no keys in {settings.keys_path}; run 'robert keys generate'"
        ) from None
    print(keys.public_key_b64())


# --- assembly ----------------------------------------------------------------------------------
def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    Settings.add_arguments(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(
        prog="robert",
        description="ROBERT proximity tracing: server, worker, keys, codes, simulator, BLE, load.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add: Callable[..., argparse.ArgumentParser] = sub.add_parser

    serve = with_settings(
        add(
            "serve",
            help="run the API server (embedded store by default)",
            description="Serve the ROBERT API. Every setting can also come "
            "from its ROBERT_* environment variable.",
        )
    )
    serve.set_defaults(func=cmd_serve)
    worker = with_settings(
        add(
            "worker",
            help="process queued reports",
            description="Consume the report queue of the store.",
        )
    )
    worker.set_defaults(func=cmd_worker)

    keys = add("keys", help="server keys").add_subparsers(dest="keys_command", required=True)
    gen = with_settings(keys.add_parser("generate", help="create missing keys in KEYS_DIR"))
    gen.set_defaults(func=cmd_keys_generate)
    pub = with_settings(keys.add_parser("public", help="print the public key (base64 SPKI)"))
    pub.set_defaults(func=cmd_keys_public)

    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that package has no commands in this installation
            raise
        module.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``robert`` console script."""
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
