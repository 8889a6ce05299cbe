"""The baseline: a bare aiohttp handler on uvloop that reads the body and returns fixed JSON.

``python -m loadtest.baseline --port P [--workers N] [--answer-bytes B]``. It does what every
server handler must (parse HTTP, read the request body, write a JSON answer of a status
answer's size) and nothing else, so status throughput divided by its throughput is the share
of the machine's HTTP ceiling that the ROBERT status path reaches. A status answer carries a
fresh bundle of tuples (about 30 KB): the bench measures one and gives its size here.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

import orjson
import uvloop
from aiohttp import web

from protocol.auth import CLOCK_TOLERANCE
from protocol.hello import DEFAULT_TOLERANCE
from protocol.scoring import ScoringConfig
from server.processes import run_forked

SHAPE = {
    "riskLevel": 0,
    "tuples": "",
    "config": [
        {"name": "statusMinIntervalSeconds", "value": 0},
        {"name": "helloToleranceSeconds", "value": DEFAULT_TOLERANCE},
        {"name": "clockToleranceSeconds", "value": CLOCK_TOLERANCE},
        {"name": "riskThreshold", "value": ScoringConfig().risk_threshold},
    ],
    "message": "no risk detected",
    "analyticsToken": "",
}
"""A status answer's shape; the bundle and the token are padding here."""


def answer_of_size(size: int) -> bytes:
    """A status-shaped JSON of exactly ``size`` bytes (or its smallest size, if larger)."""
    empty = len(orjson.dumps(SHAPE))
    return orjson.dumps(SHAPE | {"tuples": "A" * max(0, size - empty)})


def make_handler(answer: bytes) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler that reads the body and answers ``answer``."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, headers={"Content-Type": "application/json"})

    return handle


async def serve(host: str, port: int, reuse_port: bool, answer: bytes) -> None:
    """Serve until SIGTERM or SIGINT."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", make_handler(answer))
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
    parser.add_argument(
        "--answer-bytes", type=int, default=31_500, help="size of the answer (a status answer's)"
    )
    args = parser.parse_args()
    answer = answer_of_size(args.answer_bytes)
    run_forked(args.workers, lambda reuse: uvloop.run(serve(args.host, args.port, reuse, answer)))


if __name__ == "__main__":
    main()
