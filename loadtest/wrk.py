"""wrk as a load generator: pre-built bodies, a Lua script cycling through them, parsed output.

wrk (C, epoll) costs far less CPU per request than Locust, so it is the generator that shows
the server's ceiling. Its Lua script reads a file of request bodies (one JSON per line), each
thread keeping the lines ``i % threads == thread id``, and cycles through them. Status bodies
hold two requests per phone (time t and t + 1) laid out so that one phone always falls to the
same thread and its two requests alternate: cycling never replays a phone's last request.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from loadtest.messages import Messages, register_body
from loadtest.seedfile import SeedFile
from loadtest.services import taskset

LUA = r"""
local bodies = {}
local counter = 1
local nthreads = 0

function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
end

function init(args)
  local step = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % step == id then table.insert(bodies, line) end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local body = bodies[counter]
  counter = counter + 1
  if counter > #bodies then counter = 1 end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bad_status":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def write_lua(directory: Path) -> Path:
    """Write the Lua script into ``directory``; its path."""
    path = directory / "bodies.lua"
    path.write_text(LUA)
    return path


def write_status_bodies(seed_path: Path, out: Path, count: int, ahead: int = 30) -> int:
    """Write ``count`` valid status bodies (rounded down to a multiple of 4): ``count / 2``
    phones drawn across the seed file, each at times now + ahead and now + ahead + 1, with the
    EBID of the current epoch. They stay within the server's clock tolerance (60 s) from
    ``ahead - 60`` to ``ahead + 60`` seconds after now."""
    seed = SeedFile.read(seed_path)
    messages = Messages(seed, time.time)
    phones = max(4, min(count // 2, seed.phones)) // 4 * 4
    chosen = random.sample(range(seed.phones), phones)
    now = messages.now_ntp() + ahead
    lines = [messages.status_body(p, now + t) for t in (0, 1) for p in chosen]
    out.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def write_register_bodies(out: Path, count: int) -> int:
    """``count`` registration bodies, each with its own fresh client key (gate off)."""
    out.write_bytes(b"\n".join(register_body() for _ in range(count)) + b"\n")
    return count


def run_wrk(
    url: str,
    script: Path,
    bodies: Path,
    duration: float,
    threads: int = 2,
    connections: int = 64,
    cpus: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """Run wrk with the bodies script (on ``cpus`` if given); requests/s, latency percentiles
    (ms) and error counts."""
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
        "--timeout", "10s", "-s", str(script), url, "--", str(bodies), str(threads),
    ]  # fmt: skip
    done = subprocess.run(
        taskset(cmd, cpus), capture_output=True, text=True, check=True, timeout=duration + 60
    )
    found = re.search(r"^WRKJSON (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(found.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50": raw["p50"] / 1000,
        "p95": raw["p95"] / 1000,
        "p99": raw["p99"] / 1000,
        "max": raw["max"] / 1000,
        "bad_status": raw["bad_status"],
        "socket_errors": errors,
        "output": done.stdout,
    }
