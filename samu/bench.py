"""Benchmark of the live feed: N open board pages (server-sent-event streams) of one event,
a message posted, the time until the last page has it.

The board runs in its own process (``robert samu serve`` on SQLite in a temporary directory);
this process opens the streams with aiohttp, as many as asked, each with an API key of the
board, then posts messages one after another and prints, per message, the time from sending
the POST to the first and the last delivery, and the summary::

    python -m samu.bench --pages 500 --messages 5
    python -m samu.bench --pages 500 --processes 2 --redis redis://127.0.0.1:6379/0

With ``--processes N`` (and ``--redis``), N boards share the database, relay new entries
through Redis pub/sub, and the pages are spread over them; messages are posted to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp

from samu.app import new_service, open_accounts
from samu.commands import CONSOLE, OPERATOR
from samu.settings import Settings


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def prepare(data_dir: str) -> tuple[int, str]:
    """An event and a national API key in a new board database."""
    settings = Settings(data_dir=data_dir)
    service = new_service(settings)
    await service.open()
    event = await service.open_event(OPERATOR, CONSOLE, "Bench", "bench", "75", 48.85, 2.35)
    await service.close()
    accounts = open_accounts(settings)
    _, key = await accounts.api_keys.create("bench", "board", "national")
    await accounts.db.close()
    return event.id, key


async def wait_healthy(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as client:
        while True:
            try:
                async with client.get(f"{url}/samu/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the board did not start")
            await asyncio.sleep(0.1)


async def listen(
    response: aiohttp.ClientResponse, arrivals: list[asyncio.Queue[float]], index: int
) -> None:
    """Put the arrival time of every data frame of one stream in its queue."""
    while True:
        line = await response.content.readline()
        if not line:
            return
        if line.startswith(b"data: "):
            arrivals[index].put_nowait(time.perf_counter())


async def run(
    urls: list[str], event: int, key: str, pages: int, messages: int
) -> list[list[float]]:
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    arrivals: list[asyncio.Queue[float]] = [asyncio.Queue() for _ in range(pages)]
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        url = urls[0]
        streams = [f"{u}/samu/api/v1/events/{event}/stream" for u in urls]
        started = time.perf_counter()
        responses = []
        for start in range(0, pages, 50):  # open them 50 at a time, spread over the boards
            batch = range(start, min(pages, start + 50))
            responses += await asyncio.gather(
                *(client.get(streams[i % len(streams)], headers=headers) for i in batch)
            )
        assert all(r.status == 200 for r in responses)
        for r in responses:
            await r.content.readline()  # "retry: ..." sent once subscribed
        print(f"{pages} streams open in {time.perf_counter() - started:.2f} s")
        readers = [asyncio.create_task(listen(r, arrivals, i)) for i, r in enumerate(responses)]
        results = []
        try:
            for n in range(messages):
                sent = time.perf_counter()
                async with client.post(
                    f"{url}/samu/api/v1/events/{event}/log",
                    json={"text": f"message {n}", "to": "national"},
                    headers=headers,
                ) as r:
                    assert r.status == 201, await r.text()
                times = [await q.get() - sent for q in arrivals]
                results.append(times)
                print(
                    f"message {n}: first page {min(times) * 1000:.0f} ms, "
                    f"median {statistics.median(times) * 1000:.0f} ms, "
                    f"last page {max(times) * 1000:.0f} ms"
                )
                await asyncio.sleep(0.2)
        finally:
            for task in readers:
                task.cancel()
            for r in responses:
                r.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=500, help="open streams (default 500)")
    parser.add_argument("--messages", type=int, default=5, help="messages posted (default 5)")
    parser.add_argument("--processes", type=int, default=1, help="boards (default 1)")
    parser.add_argument("--redis", default="", help="redis:// relaying between the boards")
    args = parser.parse_args(argv)
    if args.processes > 1 and not args.redis:
        parser.error("--processes above 1 needs --redis")
    with tempfile.TemporaryDirectory() as data_dir:
        event, key = asyncio.run(prepare(data_dir))
        code = "import sys; from cli.main import main; sys.exit(main(sys.argv[1:]))"
        env = {**os.environ, "SAMU_DATA_DIR": data_dir, "SAMU_LOG_LEVEL": "WARNING"}
        if args.redis:
            env["SAMU_REDIS_URL"] = args.redis
        servers, urls = [], []
        for _ in range(args.processes):
            port = free_port()
            command = [sys.executable, "-c", code, "samu", "serve", "--port", str(port)]
            servers.append(subprocess.Popen([*command, "--data-dir", data_dir], env=env))
            urls.append(f"http://127.0.0.1:{port}")
        try:
            for url in urls:
                asyncio.run(wait_healthy(url))
            results = asyncio.run(run(urls, event, key, args.pages, args.messages))
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(10)
    last = [max(t) for t in results]
    print(
        f"{args.pages} pages on {args.processes} board(s), {args.messages} messages: "
        "post to last delivery "
        f"median {statistics.median(last) * 1000:.0f} ms, worst {max(last) * 1000:.0f} ms "
        f"(target under 1000 ms)"
    )
    return 0 if max(last) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
