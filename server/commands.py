"""``robert serve``, ``robert worker`` and ``robert keys``: the ROBERT server's commands.

Each command builds the server's ``Settings`` from its flags and ``ROBERT_*`` variables; the
errors a person causes (a port in use, a store that cannot be reached, a directory that cannot
be written) end the command with one line (``kit.cli``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory
from kit.connections import ConnectionLimits
from protocol.epochs import day_of_ntp, ntp_from_unix
from server.codegate import CodeGate
from server.processes import run_event_loop, run_forked
from server.settings import Settings
from server.store import StoreUnavailable

log = logging.getLogger("robert")

LINKS = (
    ("/", "index"),
    ("/api/v6/clock", "ROBERT API (v6)"),
    ("/openapi.json", "API document"),
    ("/health", "health check"),
    ("/metrics", "metrics"),
)


def settings_of(args: argparse.Namespace) -> Settings:
    """The server's settings from flags and ``ROBERT_*`` variables (SettingsError if bad)."""
    return Settings.from_sources(args)


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the server's settings to ``parser``, in a group after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def prepare(settings: Settings) -> None:
    """Check the data directory and make the keys before anything else runs: a missing or
    read-only directory is one line, not a traceback from deep inside the store."""
    writable_directory(settings.data_path, "data directory")
    from server.keys import ServerKeys

    writable_directory(settings.keys_path, "keys directory")
    # Created once, before forking, so every process loads the same keys.
    ServerKeys.open(
        settings.keys_path,
        day_of_ntp(ntp_from_unix(time.time())),
        settings.keys_ahead_days,
        settings.key_retention_days,
    )
    try:
        from server.store import open_store

        open_store(settings.store_url)
    except ValueError as exc:
        raise CommandError(f"bad store URL: {exc}") from None


async def check_store(settings: Settings) -> None:
    """Open and close the store once, so an unreachable one is reported before serving."""
    from server.store import open_store

    store = open_store(settings.store_url)
    try:
        await store.open()
    except StoreUnavailable as exc:
        raise CommandError(str(exc)) from None
    await store.close()


# --- serve -------------------------------------------------------------------------------------
CodeGates = Callable[[Settings], CodeGate]
"""Makes the code gate of a server process from its settings (``cli.wiring.code_gate``)."""


def serve_command(code_gates: CodeGates) -> Callable[[argparse.Namespace], int]:
    """``robert serve``, its code gate made by ``code_gates`` (the composition root's)."""

    def cmd_serve(args: argparse.Namespace) -> int:
        """Run the ROBERT API (and, for the embedded store, the report worker)."""
        settings = settings_of(args)
        setup_logging(settings.log_level)
        log.info("settings: %s", settings.describe())
        prepare(settings)
        run_event_loop(check_store(settings))

        def serve(reuse_port: bool) -> None:
            from server.app import create_app

            app = create_app(settings, code_gates(settings))
            tune_gc()
            run_event_loop(serve_robert(app, settings, reuse_port))

        run_forked(settings.workers, serve)
        return 0

    return cmd_serve


GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Let the youngest generation grow to 50,000 objects before a collection (CPython's
    default is 700): a request allocates a few hundred objects that reference counting frees at
    once, and the collector's passes over them were 4-5 % of a status request's CPU time
    (``perf`` under wrk; docs/performance.md). The objects made at start-up are frozen out of
    every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def serve_robert(app: web.Application, settings: Settings, reuse_port: bool) -> None:
    """Serve a built application on the settings' address until stopped (registrations
    bounded from their first bytes: ``routes.ADMISSIONS``)."""
    from server.api import routes

    await serve_app(
        app,
        Listener(settings.host, settings.port, LINKS),
        "ROBERT server",
        reuse_port=reuse_port,
        access_log=logging.getLogger("robert.access") if settings.access_log else None,
        limits=ConnectionLimits(
            settings.max_connections, settings.header_timeout, app[routes.ADMISSIONS]
        ),
    )


# --- worker ------------------------------------------------------------------------------------
async def _work(settings: Settings) -> None:
    from server.codegate import NoCodeGate
    from server.keys import ServerKeys
    from server.metrics import Metrics
    from server.service import RobertService
    from server.store import open_store
    from server.worker import ReportWorker

    store = open_store(settings.store_url)
    try:
        await store.open()
    except StoreUnavailable as exc:
        raise CommandError(str(exc)) from None
    keys = ServerKeys.open(
        settings.keys_path,
        day_of_ntp(ntp_from_unix(time.time())),
        settings.keys_ahead_days,
        settings.key_retention_days,
    )
    worker = ReportWorker(RobertService(settings, store, keys, Metrics(), time.time, NoCodeGate()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s consuming reports from %s", worker.name, settings.store_url.split("@")[-1])
    try:
        await worker.run(stop)
    finally:
        await store.close()
        log.info("worker %s stopped", worker.name)


def cmd_worker(args: argparse.Namespace) -> int:
    """Process queued reports until stopped."""
    settings = settings_of(args)
    setup_logging(settings.log_level)
    prepare(settings)
    run_event_loop(_work(settings))
    return 0


# --- keys --------------------------------------------------------------------------------------
def cmd_keys_generate(args: argparse.Namespace) -> int:
    """Create missing server keys (never overwrites existing ones)."""
    from server.keys import ServerKeys

    settings = settings_of(args)
    writable_directory(settings.keys_path, "keys directory")
    keys = ServerKeys(settings.keys_path)
    today = day_of_ntp(ntp_from_unix(time.time()))
    created = keys.generate(today, settings.keys_ahead_days, settings.key_retention_days)
    keys.reload()
    print(
        f"keys in {settings.keys_path} (mode 0700): K_G, P-256 key pair, token key, "
        f"K_S for {len(keys.days)} day(s), {len(created)} new"
    )
    return 0


def cmd_keys_public(args: argparse.Namespace) -> int:
    """Print the server's public key, base64 SubjectPublicKeyInfo."""
    from server.keys import ServerKeys

    settings = settings_of(args)
    keys = ServerKeys(settings.keys_path)
    try:
        keys.reload()
    except FileNotFoundError:
        raise CommandError(f"no keys in {settings.keys_path}; run 'robert keys generate'") from None
    print(keys.public_key_b64())
    return 0


def cmd_keys_jwks(args: argparse.Namespace) -> int:
    """Print the token key's public half as a JSON Web Key Set (what /.well-known/jwks.json
    serves): verifiers of reportValidationToken, declarationToken and analyticsToken use it."""
    import json

    from server.keys import ServerKeys

    settings = settings_of(args)
    keys = ServerKeys(settings.keys_path)
    try:
        keys.reload()
    except FileNotFoundError:
        raise CommandError(f"no keys in {settings.keys_path}; run 'robert keys generate'") from None
    print(json.dumps(keys.jwks(), indent=2))
    return 0


# --- assembly ----------------------------------------------------------------------------------
def http_code_gates(settings: Settings) -> CodeGate:
    """The code gate of a server that has only its settings: the code service over HTTP."""
    from server.codegate import HttpCodeGate

    if not settings.codes_url:
        raise CommandError(
            "no code service: set --codes-url and --codes-api-key (ROBERT_CODES_URL, "
            "ROBERT_CODES_API_KEY), or run through 'robert' which can start one in-process"
        )
    return HttpCodeGate(settings.codes_url, settings.codes_api_key)


def add_subcommands(subparsers: Any, code_gates: CodeGates = http_code_gates) -> None:
    """Add ``serve``, ``worker`` and ``keys`` to the ``robert`` command; ``code_gates`` makes
    each server process's way to the code service."""
    add: Callable[..., argparse.ArgumentParser] = subparsers.add_parser

    serve = with_settings(
        add(
            "serve",
            help="run the ROBERT server alone (embedded store by default)",
            description="Serve the ROBERT API. Every setting can also come from its "
            "ROBERT_* environment variable. 'robert dev' runs every service in one process.",
        )
    )
    serve.set_defaults(func=serve_command(code_gates))
    worker = with_settings(
        add(
            "worker",
            help="process queued reports",
            description="Consume the report queue of the store.",
        )
    )
    worker.set_defaults(func=cmd_worker)

    keys = add("keys", help="server keys").add_subparsers(
        dest="keys_command", required=True, metavar="COMMAND"
    )
    gen = with_settings(keys.add_parser("generate", help="create missing keys in KEYS_DIR"))
    gen.set_defaults(func=cmd_keys_generate)
    pub = with_settings(keys.add_parser("public", help="print the public key (base64 SPKI)"))
    pub.set_defaults(func=cmd_keys_public)
    jwks = with_settings(
        keys.add_parser(
            "jwks",
            help="print the token signing key's public half (JWKS)",
            description="Print the JSON Web Key Set of the ES256 key that signs the report "
            "validation, declaration and analytics tokens (also served at "
            "/.well-known/jwks.json).",
        )
    )
    jwks.set_defaults(func=cmd_keys_jwks)
