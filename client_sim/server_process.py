"""The simulator's server in a process of its own: ``python -m client_sim.server_process``.

The same application as the in-process server (``server.app.create_app``, the sim's settings,
a ``VirtualClock``), so that the server and the phones run on two cores. The simulator drives
what the in-process backend reached by function calls through four control routes under
``/_sim/``, which exist only in this process, never in ``robert serve``:

* ``POST /_sim/clock {"now": unix}``: move the virtual clock (never backwards);
* ``POST /_sim/new-day``: K_S for the days ahead (the hourly rotation runs on real time);
* ``POST /_sim/drain``: run the report worker to the end of the queue; ``{"reports": n}``;
* ``POST /_sim/code {"testDate": "YYYY-MM-DD"}``: a long code from the codes service.

It listens on 127.0.0.1 only (port chosen by the OS), prints ``LISTENING <port>`` once ready,
and stops on SIGTERM or when its standard input closes (the simulator died).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from client_sim.clock import VirtualClock
from codes.app import new_service
from codes.model import Role
from codes.service import CodeService
from codes.settings import Settings as CodesSettings
from protocol.codes import CodeKind
from protocol.epochs import day_of_ntp
from server.api.appkeys import SERVICE, WORKER
from server.app import create_app
from server.processes import run_event_loop
from server.settings import Settings

READY = "LISTENING"


def sim_settings(data_dir: str, store: str, risk_threshold: float) -> Settings:
    """The server settings of a simulation: captcha off, no status interval, worker on demand."""
    return Settings(
        data_dir=data_dir,
        store=store,
        captcha="off",
        status_min_interval=0,
        embedded_worker=False,
        risk_threshold=risk_threshold,
    )


async def new_day(app: web.Application) -> None:
    """K_S for the days ahead of the virtual today, loaded by the service."""
    service = app[SERVICE]
    keys, s = service.keys, service.settings
    keys.generate(day_of_ntp(service.now_ntp()), s.keys_ahead_days, s.key_retention_days)
    keys.reload()


SIM_CODES = web.AppKey("sim_codes", CodeService)
"""The simulation's code service, in the server's process and on its virtual clock."""

SIM_LAB = "sim-lab"


def sim_app(
    settings: Settings,
    clock: Callable[[], float],
    mount: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """The ROBERT application of a simulation, its code service beside it in the data
    directory and on the same virtual clock."""
    codes = new_service(CodesSettings(data_dir=settings.data_dir), clock)
    app = create_app(settings, codes, clock=clock, mount=mount)
    app[SIM_CODES] = codes
    return app


async def issue_code(app: web.Application, test_date: str) -> str:
    """A long code through the code service, as the lab integration would get one."""
    codes = app[SIM_CODES]
    lab = await codes.ensure_org(SIM_LAB, Role.LAB)
    [issued] = await codes.issue(lab, CodeKind.LONG, 1, test_date)
    return issued.record.code


async def drain(app: web.Application) -> int:
    """Run the report worker to the end of the queue; how many reports it scored."""
    reports: int = await app[WORKER].drain()
    return reports


def add_control_routes(app: web.Application, clock: VirtualClock) -> None:
    """The ``/_sim/`` routes (this process only)."""

    async def body(request: web.Request) -> Any:
        return orjson.loads(await request.read() or b"{}")

    async def set_clock(request: web.Request) -> web.Response:
        clock.move_to(float((await body(request))["now"]))
        return web.json_response({"now": clock.now})

    async def day(request: web.Request) -> web.Response:
        await new_day(request.app)
        return web.json_response({})

    async def reports(request: web.Request) -> web.Response:
        return web.json_response({"reports": await drain(request.app)})

    async def code(request: web.Request) -> web.Response:
        test_date = str((await body(request))["testDate"])
        return web.json_response({"code": await issue_code(request.app, test_date)})

    app.router.add_post("/_sim/clock", set_clock)
    app.router.add_post("/_sim/new-day", day)
    app.router.add_post("/_sim/drain", reports)
    app.router.add_post("/_sim/code", code)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM, SIGINT or the end of standard input."""
    clock = VirtualClock(args.start)
    settings = sim_settings(args.data_dir, args.store, args.risk_threshold)
    app = sim_app(settings, clock, mount=lambda app: add_control_routes(app, clock))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"{READY} {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def stdin_readable() -> None:  # the simulator holds our stdin: when it goes, so do we
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            stop.set()

    loop.add_reader(sys.stdin.fileno(), stdin_readable)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data-dir", required=True, help="server data directory (keys, SQLite)")
    p.add_argument("--store", default="", help="store URL (default: SQLite in --data-dir)")
    p.add_argument("--risk-threshold", type=float, default=0.1)
    p.add_argument("--start", type=float, required=True, help="virtual clock start (Unix s)")
    run_event_loop(serve(p.parse_args(argv)))


if __name__ == "__main__":
    main()
