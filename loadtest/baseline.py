"""The baseline: a bare aiohttp handler on uvloop that reads the body and returns fixed JSON.

``python -m loadtest.baseline --port P [--workers N]``. It does what every server handler must
(parse HTTP, read the request body, write a JSON answer of a status answer's size) and nothing
else, so status throughput divided by its throughput is the share of the machine's HTTP ceiling
that the ROBERT status path reaches.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import orjson
import uvloop
from aiohttp import web

from server.processes import run_forked

ANSWER = orjson.dumps(
    {
        "atRisk": False,
        "riskLevel": 0,
        "lastContactDate": None,
        "lastRiskScoringDate": None,
        "config": [
            {"name": "statusMinIntervalSeconds", "value": 0},
            {"name": "helloToleranceSeconds", "value": 180},
            {"name": "clockToleranceSeconds", "value": 60},
            {"name": "riskThreshold", "value": 0.1},
        ],
        "message": "no risk detected",
    }
)
"""A status answer's shape and size."""


async def handle(request: web.Request) -> web.Response:
    """Read the body, answer the fixed JSON."""
    await request.read()
    return web.Response(body=ANSWER, headers={"Content-Type": "application/json"})


async def serve(host: str, port: int, reuse_port: bool) -> None:
    """Serve until SIGTERM or SIGINT."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Entry point: one process, or N sharing the port with SO_REUSEPORT (as robert serve)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    run_forked(args.workers, lambda reuse: uvloop.run(serve(args.host, args.port, reuse)))


if __name__ == "__main__":
    main()
