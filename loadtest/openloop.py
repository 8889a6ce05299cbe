"""An open-loop generator: requests at a fixed rate, whatever the server's latency.

``python -m loadtest.openloop --url URL --bodies FILE --rate 2000 --duration 20`` sends the
bodies of FILE (one per line, cycled) as POSTs at ``rate`` per second and prints one JSON line:
achieved rate, latency percentiles in ms and counts by status. Latency runs from the moment a
request was *due*, not from when it left: a stalled server cannot slow the generator down and
hide its own queueing (the "coordinated omission" of closed-loop tools such as wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

TICK = 0.002
"""How often due requests are launched (seconds)."""


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of sorted values; 0 if none."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


async def run(
    url: str, bodies: list[bytes], rate: float, duration: float, connections: int
) -> dict[str, Any]:
    """Send ``rate * duration`` requests on schedule; the statistics."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(body: bytes, due: float) -> None:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(loop.time() - due)

        total = int(rate * duration)
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time() + 0.1
        sent = 0
        while sent < total:
            now = loop.time()
            due_count = min(total, int((now - start) * rate) + 1)
            while sent < due_count:
                due = start + sent / rate
                task = asyncio.create_task(one(bodies[sent % len(bodies)], due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(TICK)
        send_seconds = loop.time() - start
        if tasks:
            await asyncio.wait(tasks)
    latencies.sort()
    return {
        "target_rps": rate,
        "sent": total,
        "sent_rps": total / send_seconds if send_seconds > 0 else 0.0,
        "p50": percentile(latencies, 50) * 1000,
        "p95": percentile(latencies, 95) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "max": (latencies[-1] if latencies else 0.0) * 1000,
        "statuses": dict(statuses),
    }


def main() -> None:
    """Entry point: print the statistics as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="one request body per line")
    parser.add_argument("--rate", type=float, default=2000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of sending")
    parser.add_argument("--connections", type=int, default=256, help="connection pool size")
    args = parser.parse_args()
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line]
    result = uvloop.run(run(args.url, bodies, args.rate, args.duration, args.connections))
    print("OPENLOOP " + json.dumps(result))


if __name__ == "__main__":
    main()
