"""The soak and abuse suite: ``python -m loadtest.abuse [--before SRC] [--only NAME,...]``.

Reproduces, on loopback only and bounded in time (every scenario stops by itself within its
``--seconds``), what a launch evening and hostile clients do to the ROBERT server, and prints
the figures. It starts what it needs: a Redis on a free port (no persistence), then for each
source tree measured (this one, and with ``--before SRC`` an older checkout, e.g. ``git archive
915ced8 | tar -x -C SRC``) a data directory, seeded phones and codes, and ``robert serve`` from
that tree (captcha off, no embedded worker, ``ROBERT_TRUSTED_PROXIES=127.0.0.1`` as behind the
shipped nginx, which now passes the client's address; an older tree ignores it and, as behind
the old nginx, every client is the proxy).

Scenarios (``--only``):

* ``burst``: 2,000 registrations at once: answers by status, latency of accepted and refused
  ones, the server's resident memory before, at its peak and 3 s after, the CPU time the
  server and this generator (which share the machine) spent from the first send to the last
  answer, and that wall time.
* ``bursts``: three such bursts in a row on one server, ``--settle`` seconds (20) apart: the
  resident memory at rest, at each burst's peak and once each has settled (does it return?).
* ``slowloris``: 2,000 connections sending a request head one header line a second for
  ``--slow-seconds`` (14); a probe asks ``/api/v6/clock`` meanwhile; how many are still open
  at the end, the server's file descriptors, the probe's success and latency.
* ``junk``: 4 loops posting 8 MiB junk reports with wrong codes from one address; the probe's
  latency meanwhile.
* ``forged``: 30 victim phones; a flood of status requests with their EBIDs and made-up MACs,
  and each victim's real request in the middle of it: how many real requests were denied.
* ``guess``: 50 concurrent wrong codes from one address (how many reached the code service);
  then 200 addresses behind the proxy guessing 12 codes each, and a person with a good code
  behind the same proxy: is it accepted.
* ``redis``: 500 authenticated requests (delete-history) in flight at once on Redis, and
  ``/health`` meanwhile: answers by status.
* ``status``: not abuse, the price of the rest on the hot path: valid status requests in a
  closed loop on 32 connections; throughput, latency, the server's CPU per request.

Every figure counts 5xx apart, and says how many were 503 with ``Retry-After`` (load shedding,
which the server-errors alert leaves out) and how many were other 5xx (which it counts).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import io
import os
import secrets
import selectors
import socket
import struct
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis

from loadtest import services
from loadtest.messages import JSON_HEADERS, Messages, register_body
from loadtest.seed import seed
from loadtest.seedfile import SeedFile
from protocol.auth import RequestKind
from protocol.epochs import ntp_from_unix
from server.settings import Settings

HERE = Path(__file__).resolve().parent.parent
SCENARIOS = ("burst", "bursts", "slowloris", "junk", "forged", "guess", "redis", "status")
API = "/api/v6"
JUNK_BYTES = 8 * 1024 * 1024 - 4096


def say(text: str) -> None:
    """Print a line at once."""
    print(text, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0-1) of ``values`` in ms, 0 if none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def system_seconds(pid: int) -> float:
    """CPU time a process has spent in the kernel (its system time), from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> int:
    """File descriptors a process holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def statuses(counter: Counter[Any]) -> str:
    """'200=5 503=2 ...' sorted."""
    return " ".join(f"{k}={v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])))


def fives(counter: Counter[Any]) -> str:
    """Shed (503) and other 5xx."""
    shed = counter.get(503, 0)
    other = sum(v for k, v in counter.items() if isinstance(k, int) and k >= 500 and k != 503)
    return f"503(shed)={shed} other-5xx={other}"


class Target:
    """One server under test: its source tree, its data, its URL and pid."""

    def __init__(self, name: str, source: Path, work: Path, store: str) -> None:
        self.name, self.source, self.work, self.store = name, source, work, store
        self.url = ""
        self.pid = 0
        self.seed: SeedFile | None = None
        self.results: list[str] = []
        """One line per scenario run, in the order of ``--only`` (a scenario may repeat)."""

    def seed_phones(self, phones: int, codes: int) -> None:
        settings = Settings(
            data_dir=str(self.work), store=self.store, keys_dir=str(self.work / "keys")
        )
        seed(settings, phones, codes, self.work / "seed.bin")
        self.seed = SeedFile.read(self.work / "seed.bin")

    @contextlib.contextmanager
    def serving(self, extra: dict[str, str] | None = None) -> Iterator[None]:
        port = services.free_port()
        env = services.server_env(
            {
                "ROBERT_STORE": self.store,
                "ROBERT_DATA_DIR": str(self.work),
                "ROBERT_KEYS_DIR": str(self.work / "keys"),
                "ROBERT_CAPTCHA": "off",
                "ROBERT_EMBEDDED_WORKER": "false",
                "ROBERT_LOG_LEVEL": "WARNING",
                "ROBERT_TRUSTED_PROXIES": "127.0.0.1",
                "ROBERT_PORT": str(port),
                "ROBERT_HOST": "127.0.0.1",
            }
            | (extra or {})
        )
        # The tree's own packages first (before the working directory and the editable
        # install of this one).
        start = (
            f"import sys; sys.path.insert(0, {str(self.source)!r}); "
            "from cli.main import main; raise SystemExit(main())"
        )
        cmd = [sys.executable, "-c", start]
        self.url = f"http://127.0.0.1:{port}"
        with services.running([*cmd, "serve"], self.work / "server.log", env) as pid:
            services.wait_until(lambda: services.http_ok(self.url + "/health"), "robert serve")
            self.pid = pid
            say(
                f"[{self.name}] serving from {self.source} (liveness endpoint: "
                f"{services.http_ok(self.url + '/health/live')})"
            )
            yield


async def _timed(call: Callable[[], Awaitable[int]]) -> tuple[int | str, float]:
    started = time.perf_counter()
    try:
        status: int | str = await call()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        status = type(exc).__name__
    return status, time.perf_counter() - started


REFUSALS: Counter[str] = Counter()
"""Error codes of the refusals (JSON ``error``), by status, over a scenario."""


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None
) -> int:
    async with session.post(
        url, data=io.BytesIO(body), headers=JSON_HEADERS | (headers or {})
    ) as response:
        answer = await response.read()
        if response.status >= 400:
            try:
                REFUSALS[f"{response.status}:{orjson.loads(answer).get('error')}"] += 1
            except (orjson.JSONDecodeError, AttributeError):
                REFUSALS[f"{response.status}:?"] += 1
        return response.status


class Probe:
    """A well-behaved client asking GET /clock every 0.1 s while a scenario runs."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.latencies: list[float] = []
        self.failed = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                async with self.session.get(self.url + API + "/clock") as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError, OSError):
                ok = False
            if ok:
                self.latencies.append(time.perf_counter() - started)
            else:
                self.failed += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)

    def stop(self) -> str:
        self._stop.set()
        return (
            f"probe ok={len(self.latencies)} failed={self.failed} "
            f"p50={pct(self.latencies, 0.5):.0f}ms p99={pct(self.latencies, 0.99):.0f}ms"
        )


def session(limit: int = 0, timeout: float = 30.0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, force_close=True),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


# --- scenarios ---------------------------------------------------------------------------------
SO_TIMESTAMPNS = 35
"""Linux (asm-generic/socket.h; ``socket`` does not name it): each received packet carries
the kernel's arrival time (CLOCK_REALTIME, as ``time.time()``), read with ``recvmsg``."""


def _receive(sock: socket.socket) -> tuple[bytes, float | None]:
    """Bytes waiting on ``sock`` and when the kernel received the first of them."""
    data, ancillary, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = struct.unpack("qq", value[:16])
            return data, seconds + nanoseconds / 1e9
    return data, None


def _accepted(pid: int, fds: int, timeout: float = 5.0) -> None:
    """Wait until the server holds ``fds`` file descriptors (it has accepted the connections
    opened so far): a full accept queue would drop the next connections' packets, and their
    retransmissions (1 s and more) would count in the burst's latency."""
    deadline = time.monotonic() + timeout
    while open_fds(pid) < fds and time.monotonic() < deadline:
        time.sleep(0.002)


async def burst(t: Target, args: argparse.Namespace) -> str:
    """``--burst`` connections opened first, then every one sends its registration at once
    (pre-built raw HTTP on plain sockets): latency from the send to the arrival of the
    answer's first byte, as the kernel timestamps it (``SO_TIMESTAMPNS``), so that the time
    this generator takes to get round to reading an answer (it shares the CPUs with the
    server) is not counted in the server's latency."""
    host, port = "127.0.0.1", int(t.url.rsplit(":", 1)[1])
    requests = []
    for _ in range(args.burst):
        body = register_body()
        requests.append(
            b"POST /api/v6/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
    sockets: list[socket.socket] = []
    held = open_fds(t.pid)
    for _ in range(args.burst):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sockets.append(sock)
        if len(sockets) % 64 == 0:  # keep the server's accept queue (128) from overflowing
            _accepted(t.pid, held + len(sockets))
    _accepted(t.pid, held + len(sockets))
    rest = rss_mib(t.pid)
    peak = rest
    sent = [0.0] * len(sockets)
    arrived: list[float | None] = [None] * len(sockets)
    answers = [b""] * len(sockets)
    status: list[int | str] = ["timeout"] * len(sockets)
    cpu, own, wall = services.cpu_seconds(t.pid), time.process_time(), time.perf_counter()
    kernel = system_seconds(t.pid)
    for i, (sock, request) in enumerate(zip(sockets, requests, strict=True)):
        sent[i] = time.time()
        sock.sendall(request)
    selector = selectors.DefaultSelector()
    for i, sock in enumerate(sockets):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
    deadline, sampled = time.monotonic() + args.seconds * 4, 0.0
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(0.05):
            i = key.data
            try:
                data, when = _receive(sockets[i])
            except OSError as exc:  # reset: no answer
                selector.unregister(sockets[i])
                status[i], arrived[i] = type(exc).__name__, arrived[i] or time.time()
                continue
            if arrived[i] is None:
                arrived[i] = when or time.time()
            answers[i] += data
            if not data:  # the server closed the connection: the answer is whole
                selector.unregister(sockets[i])
                head = answers[i].split(b"\r\n", 1)[0].split()
                status[i] = int(head[1]) if len(head) > 1 and head[1].isdigit() else "closed"
        if time.monotonic() - sampled > 0.05:
            peak, sampled = max(peak, rss_mib(t.pid)), time.monotonic()
    wall = time.perf_counter() - wall
    cpu, own = services.cpu_seconds(t.pid) - cpu, time.process_time() - own
    kernel = system_seconds(t.pid) - kernel
    selector.close()
    for sock in sockets:
        sock.close()
    for code, answer in zip(status, answers, strict=True):
        if isinstance(code, int) and code not in (200, 201):
            error = answer.rsplit(b'"error":"', 1)[-1].split(b'"', 1)[0]
            REFUSALS[f"{code}:{error.decode(errors='replace')}"] += 1
    await asyncio.sleep(3)
    after = rss_mib(t.pid)
    latency = [
        (code, (when or time.time()) - start)
        for code, when, start in zip(status, arrived, sent, strict=True)
    ]
    counts = Counter(code for code, _ in latency)
    ok = [seconds for code, seconds in latency if code == 201]
    refused = [seconds for code, seconds in latency if code in (429, 503)]
    return (
        f"{statuses(counts)} | {fives(counts)} | accepted p50={pct(ok, 0.5):.0f}ms "
        f"p99={pct(ok, 0.99):.0f}ms | refused p99={pct(refused, 0.99):.0f}ms | "
        f"RSS rest={rest:.0f} peak={peak:.0f} after3s={after:.0f} MiB | CPU server={1000 * cpu:.0f}"
        f"ms (kernel {1000 * kernel:.0f}ms) generator={1000 * own:.0f}ms in {1000 * wall:.0f}ms"
    )


async def bursts(t: Target, args: argparse.Namespace) -> str:
    """Three bursts on one server; after each, ``--settle`` seconds of quiet: RSS settled."""
    rest = rss_mib(t.pid)
    parts = [f"RSS rest={rest:.0f} MiB"]
    for n in range(1, 4):
        line = await burst(t, args)
        await asyncio.sleep(max(0.0, args.settle - 3))
        settled = rss_mib(t.pid)
        peak = line.rsplit("peak=", 1)[1].split()[0]
        accepted = line.split(" | ")[2]
        parts.append(f"#{n} peak={peak} settled={settled:.0f} MiB ({accepted})")
        say(f"[{t.name}] bursts #{n}: {line} | settled {args.settle:.0f}s={settled:.0f} MiB")
    return " | ".join(parts)


async def slowloris(t: Target, args: argparse.Namespace) -> str:
    host, port = "127.0.0.1", int(t.url.rsplit(":", 1)[1])
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []
    for _ in range(args.connections):
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            break
        writer.write(b"POST /api/v6/status HTTP/1.1\r\nHost: x\r\n")
        writers.append(writer)
        readers.append(reader)
    fds_start = open_fds(t.pid)
    async with session(timeout=5) as s:
        probe = Probe(s, t.url)
        running = asyncio.ensure_future(probe.run())
        end = time.monotonic() + args.slow_seconds
        line = 0
        while time.monotonic() < end:
            line += 1
            for writer in writers:
                if not writer.is_closing():
                    with contextlib.suppress(OSError, RuntimeError):
                        writer.write(b"X-%d: y\r\n" % line)
            await asyncio.sleep(1)
        fds_end = open_fds(t.pid)
        probed = probe.stop()
        await running
    still_open = sum(1 for r in readers if not r.at_eof())
    for writer in writers:
        writer.close()
    return (
        f"{len(writers)} opened, {still_open} still open after {args.slow_seconds:.0f}s | server "
        f"fds {fds_start} -> {fds_end} | {probed}"
    )


def junk_body() -> bytes:
    filler = {"ebid": "A" * 12, "ecc": "AA==", "ids": [{"x": 1}]}
    one = len(orjson.dumps(filler)) + 1
    contacts = [filler] * (JUNK_BYTES // one)
    return orjson.dumps({"token": str(uuid.uuid4()), "contacts": contacts})


async def junk(t: Target, args: argparse.Namespace) -> str:
    body = junk_body()
    counts: Counter[Any] = Counter()
    async with session(timeout=60) as s, session(timeout=10) as quiet:
        probe = Probe(quiet, t.url)
        running = asyncio.ensure_future(probe.run())
        end = time.monotonic() + args.seconds

        async def loop() -> None:
            while time.monotonic() < end:
                status, _ = await _timed(lambda: _post(s, t.url + API + "/report", body))
                counts[status] += 1

        await asyncio.gather(*(loop() for _ in range(4)))
        probed = probe.stop()
        await running
    return f"{len(body) / 2**20:.1f} MiB x {sum(counts.values())}: {statuses(counts)} | {probed}"


async def forged(t: Target, args: argparse.Namespace) -> str:
    """Victim after victim: ``--flood`` senders of forged requests on that victim (its EBID,
    epoch and time as overheard, a made-up MAC), and its real request in the middle."""
    assert t.seed is not None
    messages = Messages(t.seed, time.time)
    victims = list(range(30))
    real_answers: Counter[Any] = Counter()
    forged_answers: Counter[Any] = Counter()
    async with session(timeout=30) as s:
        url = t.url + API + "/status"

        async def flood(victim: int, stop: asyncio.Event) -> None:
            while not stop.is_set():
                fields = messages.status_fields(victim, ntp_from_unix(time.time()))
                fields["mac"] = base64.b64encode(secrets.token_bytes(32)).decode()
                body = orjson.dumps(fields)
                status, _ = await _timed(functools.partial(_post, s, url, body))
                forged_answers[status] += 1

        for victim in victims:
            stop = asyncio.Event()
            flooders = [asyncio.ensure_future(flood(victim, stop)) for _ in range(args.flood)]
            await asyncio.sleep(args.seconds / len(victims) / 2)
            body = messages.status_body(victim, ntp_from_unix(time.time()))
            status, _ = await _timed(functools.partial(_post, s, url, body))
            real_answers[status] += 1
            stop.set()
            await asyncio.gather(*flooders)
    denied = sum(v for k, v in real_answers.items() if k != 200)
    return (
        f"real: {statuses(real_answers)} -> {denied}/{len(victims)} denied "
        f"({100 * denied / len(victims):.0f} %) | forged: {statuses(forged_answers)}"
    )


async def guess(t: Target, args: argparse.Namespace) -> str:
    assert t.seed is not None
    url = t.url + API + "/report"

    def wrong() -> bytes:
        return orjson.dumps({"token": str(uuid.uuid4()), "contacts": []})

    async with session(timeout=30) as s:
        one = await asyncio.gather(*(_timed(lambda: _post(s, url, wrong())) for _ in range(50)))
        one_counts = Counter(status for status, _ in one)

        async def attacker(n: int) -> Counter[Any]:
            seen: Counter[Any] = Counter()
            header = {"X-Forwarded-For": f"198.51.{n // 250}.{n % 250 + 1}"}
            for _ in range(12):
                status, _ = await _timed(lambda: _post(s, url, wrong(), header))
                seen[status] += 1
            return seen

        many: Counter[Any] = Counter()
        for seen in await asyncio.gather(*(attacker(n) for n in range(200))):
            many.update(seen)
        good = orjson.dumps({"token": t.seed.codes[0], "contacts": []})
        person, _ = await _timed(lambda: _post(s, url, good, {"X-Forwarded-For": "203.0.113.77"}))
    return (
        f"one address, 50 at once: {statuses(one_counts)} ({one_counts.get(401, 0)} tried) | "
        f"200 addresses x 12: {statuses(many)} ({many.get(401, 0)} tried) | "
        f"a person's good code behind the proxy: {person}"
    )


async def redis_in_flight(t: Target, args: argparse.Namespace) -> str:
    assert t.seed is not None
    messages = Messages(t.seed, time.time)
    now = ntp_from_unix(time.time())
    count = min(args.in_flight, t.seed.phones - 100)
    bodies = [
        orjson.dumps(messages.status_fields(100 + i, now, RequestKind.DELETE_HISTORY))
        for i in range(count)
    ]
    async with session(timeout=30) as s:
        url = t.url + API + "/deleteExposureHistory"
        health = asyncio.gather(*(_timed(lambda: _get(s, t.url + "/health")) for _ in range(20)))
        answers = await asyncio.gather(
            *(_timed(functools.partial(_post, s, url, b)) for b in bodies)
        )
        healths = await health
    counts = Counter(status for status, _ in answers)
    health_counts = Counter(status for status, _ in healths)
    latencies = [seconds for _, seconds in answers]
    return (
        f"{count} in flight: {statuses(counts)} | {fives(counts)} | p99={pct(latencies, 0.99):.0f}"
        f"ms | /health during: {statuses(health_counts)}"
    )


async def status_path(t: Target, args: argparse.Namespace) -> str:
    """Not abuse: the status path's cost (closed loop, 32 keep-alive connections, valid
    requests of seeded phones, status interval 0): throughput, latency, and the server's CPU
    per request from /proc (the machine's other load does not count in it)."""
    assert t.seed is not None
    messages = Messages(t.seed, time.time)
    now = ntp_from_unix(time.time())
    phones = t.seed.phones
    bodies = [messages.status_body(i % phones, now + 1 + i // phones) for i in range(20 * phones)]
    latencies: list[float] = []
    counts: Counter[Any] = Counter()
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as s:
        url = t.url + API + "/status"
        feed = iter(bodies)
        end = time.monotonic() + args.seconds
        cpu_start = services.cpu_seconds(t.pid)
        started = time.monotonic()

        async def client() -> None:
            for body in feed:
                if time.monotonic() > end:
                    return
                status, seconds = await _timed(functools.partial(_post, s, url, body))
                counts[status] += 1
                if status == 200:
                    latencies.append(seconds)

        await asyncio.gather(*(client() for _ in range(32)))
        elapsed = time.monotonic() - started
        cpu = services.cpu_seconds(t.pid) - cpu_start
    total = sum(counts.values())
    return (
        f"{total / elapsed:,.0f} req/s {statuses(counts)} | p50={pct(latencies, 0.5):.1f}ms "
        f"p99={pct(latencies, 0.99):.1f}ms | server CPU {1e6 * cpu / max(1, total):.0f} us/request"
    )


async def _get(s: aiohttp.ClientSession, url: str) -> int:
    async with s.get(url) as response:
        await response.read()
        return response.status


RUN: dict[str, Callable[[Target, argparse.Namespace], Coroutine[Any, Any, str]]] = {
    "burst": burst,
    "bursts": bursts,
    "slowloris": slowloris,
    "junk": junk,
    "forged": forged,
    "guess": guess,
    "redis": redis_in_flight,
    "status": status_path,
}
EXTRA_ENV = {"status": {"ROBERT_STATUS_MIN_INTERVAL": "0"}}


def measure(t: Target, args: argparse.Namespace, only: list[str]) -> None:
    t.seed_phones(args.phones, args.codes)
    for name in only:
        # A fresh server per scenario, and the failed-code buckets emptied: one scenario's
        # limits do not colour the next.
        client = redis.Redis.from_url(t.store)
        for key in client.scan_iter(match="b{budgets}*"):
            client.delete(key)
        client.close()
        with t.serving(EXTRA_ENV.get(name, {}) | dict(args.server_env)):
            load = os.getloadavg()[0]
            started = time.monotonic()
            REFUSALS.clear()
            result = asyncio.run(RUN[name](t, args))
            took = time.monotonic() - started
            if REFUSALS:
                result += f" | refusals {statuses(REFUSALS)}"
        t.results.append(result)
        say(f"[{t.name}] {name} ({took:.0f}s, load {load:.1f}): {result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="an older source tree to measure too")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of timed scenarios")
    parser.add_argument(
        "--slow-seconds",
        type=float,
        default=14.0,
        help="slowloris length (longer than the server's 10 s header timeout)",
    )
    parser.add_argument("--burst", type=int, default=2000, help="registrations at once")
    parser.add_argument(
        "--settle", type=float, default=20.0, help="quiet seconds after each of the bursts"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="NAME=VALUE",
        help="a setting for the servers under test, e.g. ROBERT_IDLE_TRIM=0 (repeatable)",
    )
    parser.add_argument("--connections", type=int, default=2000, help="slowloris connections")
    parser.add_argument("--flood", type=int, default=64, help="forged-MAC senders in parallel")
    parser.add_argument("--in-flight", type=int, default=500, help="requests at once on Redis")
    parser.add_argument("--phones", type=int, default=1000, help="seeded phones")
    parser.add_argument("--codes", type=int, default=20, help="seeded codes")
    args = parser.parse_args(argv)
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="robert-abuse-") as tmp:
        work = Path(tmp)
        with services.own_redis(work) as redis_url:
            base = redis_url.rsplit("/", 1)[0]
            targets = [Target("after", HERE, work / "after", f"{base}/2")]
            if args.before:
                before = Target("before", args.before.resolve(), work / "before", f"{base}/1")
                targets.insert(0, before)
            for target in targets:
                target.work.mkdir()
                measure(target, args, only)
    say("")
    for line in closing_table(only, {target.name: target.results for target in targets}):
        say(line)
    return 0


def closing_table(only: list[str], results: dict[str, list[str]]) -> list[str]:
    """The rows of the closing table: each run of a scenario (``--only`` may name one twice)
    beside each target's result of that same run, '-' for a run that did not happen."""
    return [
        f"| {name} | {target} | {lines[run] if run < len(lines) else '-'} |"
        for run, name in enumerate(only)
        for target, lines in results.items()
    ]


if __name__ == "__main__":
    raise SystemExit(main())
