"""The server benchmark, one command: ``python -m loadtest.bench [options]``.

Starts what it needs on loopback (a Redis on a free port unless ``--redis``; ``robert serve``
on that store with status_min_interval 0, captcha off, embedded worker off; a ``robert worker``;
the bare aiohttp baseline, answering as many bytes as a status answer with its fresh bundle of
tuples), seeds phones, then measures with one generator:

* ``--generator wrk`` (default, the server's ceiling): status only, 2 x 25,000 pre-built valid
  status bodies cycled by a Lua script; the same bodies against the baseline. wrk is a C
  program (Debian: ``apt-get install wrk``); without it the bench says so and stops.
* ``--generator locust``: the app's mix (``AppUser``: status, register, report, malformed) per
  endpoint, then status only (``StatusUser``) against the server and against the baseline.

In both modes it also measures registration throughput (wrk, pre-built bodies each with its own
client key) and the latency of status at a fixed rate (``--rate``, open loop, see
``loadtest.openloop``). ``--scale 10000,100000,1000000`` repeats the status measurement after
re-seeding that many phones (own Redis only).

With ``--pin`` (the default, when the machine has a CPU to spare) the servers measured run on
CPUs of their own and the generator, Redis and the report worker on the others
(``loadtest.services.Placement``). ``--rounds N`` alternates the phases N times; the ratio is
taken within each round and the bench gives their median and range (for a ratio that holds,
many short rounds: ``--duration 4 --rounds 12``). The last line is ``status/baseline=R``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

from loadtest import services
from loadtest.seed import seed
from loadtest.seedfile import SEED_ENV
from loadtest.wrk import run_wrk, write_lua, write_register_bodies, write_status_bodies
from phone.client import API
from server.settings import Settings
from server.store.redis import GROUP, STREAM

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
STATUS_PATH = f"{API}/status"
REGISTER_PATH = f"{API}/register"
STATUS_BODIES = 50_000
MAX_WRK_SECONDS = 100
"""Status bodies carry a time within the server's 60 s clock tolerance for about 120 s."""


def row(name: str, rps: float, p50: float, p95: float, p99: float, errors: str) -> str:
    """One line of the results table (latencies in ms)."""
    return f"{name:<28} {rps:>9.0f} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}  {errors}"


HEADER = f"{'endpoint':<28} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  errors"


def wrk_row(name: str, r: dict[str, Any]) -> str:
    """A table row from a ``run_wrk`` result."""
    errors = f"non-2xx={r['bad_status']} socket={r['socket_errors']}"
    return row(name, r["rps"], r["p50"], r["p95"], r["p99"], errors)


def run_locust(
    host: str,
    user_class: str,
    seconds: float,
    users: int,
    processes: int,
    out: Path,
    cpus: frozenset[int] = frozenset(),
) -> list[dict[str, str]]:
    """Locust headless for ``seconds`` (on ``cpus`` if given); the rows of its stats CSV."""
    prefix = out / f"locust-{user_class}-{int(time.time())}"
    env = dict(os.environ, ROBERT_LOADTEST_PROCESSES=str(processes))
    cmd = [
        str(services.BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "-u", str(users),
        "-r", str(users), "-t", f"{max(1, round(seconds))}s", "--host", host, "--csv",
        str(prefix), "--only-summary", "--loglevel", "WARNING", "--processes", str(processes),
        user_class,
    ]  # fmt: skip
    with (out / "locust.log").open("ab") as log:
        subprocess.run(
            services.taskset(cmd, cpus),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=seconds + 120,
        )
    with open(f"{prefix}_stats.csv", newline="") as f:
        return list(csv.DictReader(f))


def locust_row(r: dict[str, str], seconds: float) -> tuple[str, float]:
    """A table row from a Locust CSV row, and its throughput (requests over the run)."""
    rps = int(r["Request Count"]) / seconds
    line = row(
        r["Name"],
        rps,
        float(r["50%"] or 0),
        float(r["95%"] or 0),
        float(r["99%"] or 0),
        f"failures={r['Failure Count']}",
    )
    return line, rps


def openloop(
    url: str, bodies: Path, rate: float, seconds: float, cpus: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """Run ``loadtest.openloop`` (on ``cpus`` if given); its JSON result."""
    cmd = [
        sys.executable, "-m", "loadtest.openloop", "--url", url, "--bodies", str(bodies),
        "--rate", str(rate), "--duration", str(seconds),
    ]  # fmt: skip
    done = subprocess.run(
        services.taskset(cmd, cpus), capture_output=True, text=True, check=True,
        timeout=seconds + 90,
    )  # fmt: skip
    found = re.search(r"^OPENLOOP (\{.*\})$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"openloop printed no result: {done.stdout} {done.stderr}")
    result: dict[str, Any] = json.loads(found.group(1))
    return result


class Bench:
    """One bench run: its options, its working directory and the running services."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.lua = write_lua(work)
        self.seed_path = work / "seed.bin"
        self.store = ""
        self.settings_env: dict[str, str] = {}
        self.pids: dict[str, int] = {}
        self.before_url: str | None = None
        self.placement = (
            services.Placement.split(args.workers) if args.pin else services.Placement()
        )

    def say(self, text: str) -> None:
        """Print a progress or result line at once."""
        print(text, flush=True)

    def seed(self, phones: int) -> None:
        """Seed ``phones`` registrations (and codes for the reports) into the store."""
        settings = Settings(
            data_dir=str(self.work), store=self.store, keys_dir=str(self.work / "keys")
        )
        result = seed(settings, phones, self.args.codes, self.seed_path)
        self.say(
            f"seed: {result.phones} phones, {result.codes} codes in {result.seconds:.1f} s "
            f"({result.phones / result.seconds:,.0f} phones/s)"
        )

    def status_bodies(self) -> Path:
        """Fresh status bodies (current epoch, time within tolerance for the next phase)."""
        path = self.work / "status-bodies.txt"
        ahead = min(MAX_WRK_SECONDS, self.args.duration) // 2
        write_status_bodies(self.seed_path, path, STATUS_BODIES, ahead=int(ahead))
        return path

    def status_answer_bytes(self, server: str) -> int:
        """The size of one real status answer (its bundle of tuples makes most of it)."""
        body = self.status_bodies().read_bytes().splitlines()[0]
        request = urllib.request.Request(
            server + STATUS_PATH, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return len(response.read())

    def wrk(self, url: str, path: str, bodies: Path, seconds: float) -> dict[str, Any]:
        """wrk with this run's threads and connections."""
        a = self.args
        return run_wrk(
            url + path, self.lua, bodies, seconds, a.wrk_threads, a.connections,
            self.placement.others,
        )  # fmt: skip

    def measured(self, url: str, pid: int | None, bodies: Path, seconds: float) -> dict[str, Any]:
        """A wrk phase, with the CPU time per request of the process at ``url`` (``cpu_us``;
        with ``--workers 1``: the one process serving)."""
        before = services.cpu_seconds(pid) if pid is not None else 0.0
        result = self.wrk(url, STATUS_PATH, bodies, seconds)
        if pid is not None and result["requests"]:
            spent = services.cpu_seconds(pid) - before
            result["cpu_us"] = spent / result["requests"] * 1e6
        return result

    def wrk_status(self, server: str, baseline: str | None) -> tuple[float, float | None]:
        """Status-only wrk against the server (and the baseline, and with ``--before`` the
        server of the older tree), ``--rounds`` times in alternating order: the median of the
        server's requests/s, and the median of its per-round ratios to the baseline's.

        A ratio is taken within each round, between phases seconds apart: what the machine
        does over minutes (its neighbours, its clock) then moves both sides of it alike,
        where a ratio of medians would mix phases minutes apart."""
        seconds = min(self.args.duration, MAX_WRK_SECONDS)
        one_process = self.args.workers == 1
        targets = [("status", server, self.pids.get("server"))]
        if self.before_url is not None:
            targets.append(("before", self.before_url, self.pids.get("before")))
        for _, url, _ in targets:
            self.wrk(url, STATUS_PATH, self.status_bodies(), 2)  # warm-up (connections, caches)
        if baseline is not None:
            targets.append(("baseline", baseline, self.pids.get("baseline")))
        rounds = max(1, self.args.rounds if baseline is not None else 1)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in targets}
        bodies: Path | None = None
        for n in range(rounds):
            for name, url, pid in targets if n % 2 == 0 else targets[::-1]:
                if bodies is None or name != "baseline":  # a server's phase never replays one
                    bodies = self.status_bodies()
                result = self.measured(url, pid if one_process else None, bodies, seconds)
                label = f"{name} (wrk)" + (f" #{n + 1}" if rounds > 1 else "")
                self.say(wrk_row(label, result))
                runs[name].append(result)
            self.say_cpu({name: r[-1] for name, r in runs.items()})
        if rounds > 1:
            self.say("medians over the rounds:")
            self.say_cpu({name: _median_run(r) for name, r in runs.items()})
        status = statistics.median(r["rps"] for r in runs["status"])
        if baseline is None:
            return status, None
        if "before" in runs:
            self.say(ratios_line("before", paired_ratios(runs["before"], runs["baseline"])))
        ratios = paired_ratios(runs["status"], runs["baseline"])
        self.say(ratios_line("status", ratios))
        return status, statistics.median(ratios)

    def say_cpu(self, last: dict[str, dict[str, Any]]) -> None:
        """The server CPU per request of each target measured, and baseline/target."""
        if "baseline" not in last or any("cpu_us" not in r for r in last.values()):
            return
        base = last["baseline"]["cpu_us"]
        parts = [f"{name} {r['cpu_us']:.1f} us" for name, r in last.items()]
        ratios = [f"baseline/{name}={base / r['cpu_us']:.2f}" for name, r in last.items()]
        self.say(f"server CPU per request: {', '.join(parts)}: {', '.join(ratios[:-1])}")

    def locust_phases(self, server: str, baseline: str) -> tuple[float, float]:
        """The app mix per endpoint, then status-only against the server and the baseline."""
        a = self.args
        seconds = a.duration
        rows = run_locust(
            server, "AppUser", seconds, a.users, a.locust_processes, self.work,
            self.placement.others,
        )  # fmt: skip
        self.say(f"-- app mix (Locust, {a.users} users, {a.locust_processes} process(es))")
        for r in rows:
            if r["Name"] != "Aggregated":
                self.say(locust_row(r, seconds)[0])
        aggregated = next(r for r in rows if r["Name"] == "Aggregated")
        self.say(locust_row(aggregated, seconds)[0])
        self.say("-- status only (Locust StatusUser)")
        results = []
        for name, host in (("status (locust)", server), ("baseline (locust)", baseline)):
            rows = run_locust(
                host, "StatusUser", seconds, a.users, a.locust_processes, self.work,
                self.placement.others,
            )  # fmt: skip
            total = next(r for r in rows if r["Name"] == "Aggregated")
            line, rps = locust_row(dict(total, Name=name), seconds)
            self.say(line)
            results.append(rps)
        return results[0], results[1]

    def register(self, server: str) -> None:
        """Registration throughput: wrk with pre-built bodies, one client key each."""
        seconds = min(self.args.duration, 10)
        bodies = self.work / "register-bodies.txt"
        write_register_bodies(bodies, self.args.register_bodies)
        self.say(wrk_row("register (wrk)", self.wrk(server, REGISTER_PATH, bodies, seconds)))

    def fixed_rate(self, server: str) -> None:
        """Status latency at ``--rate`` requests/s, open loop."""
        seconds = min(self.args.duration, MAX_WRK_SECONDS)
        bodies = self.status_bodies()
        r = openloop(server + STATUS_PATH, bodies, self.args.rate, seconds, self.placement.others)
        ok = r["statuses"].get("200", 0)
        errors = f"200={ok} other={r['sent'] - ok} sent/s={r['sent_rps']:.0f}"
        name = f"status @{r['target_rps']:.0f}/s (open loop)"
        self.say(row(name, r["sent_rps"], r["p50"], r["p95"], r["p99"], errors))

    def run(self) -> float:
        """Everything; the status/baseline ratio (with wrk, the median of the rounds')."""
        a = self.args
        with contextlib.ExitStack() as stack:
            self.store = a.redis or stack.enter_context(
                services.own_redis(self.work, self.placement.others)
            )
            self.say(f"store: {self.store.split('@')[-1]}  work dir: {self.work}")
            scale = [int(float(n)) for n in a.scale.split(",")] if a.scale else [a.phones]
            self.seed(scale[0])
            self.settings_env = {
                "ROBERT_STORE": self.store,
                "ROBERT_DATA_DIR": str(self.work),
                "ROBERT_KEYS_DIR": str(self.work / "keys"),
                "ROBERT_STATUS_MIN_INTERVAL": "0",
                "ROBERT_CAPTCHA": "off",
                "ROBERT_EMBEDDED_WORKER": "false",
                "ROBERT_WORKERS": str(a.workers),
                "ROBERT_LOG_LEVEL": "WARNING",
            }
            pids: list[int] = []
            server = stack.enter_context(
                services.robert_server(
                    self.settings_env,
                    services.free_port(),
                    self.work,
                    pids,
                    placement=self.placement,
                )
            )
            answer_bytes = self.status_answer_bytes(server)
            self.say(f"status answer: {answer_bytes} bytes (the baseline answers as many)")
            baseline = stack.enter_context(
                services.baseline_server(
                    services.free_port(),
                    a.workers,
                    self.work,
                    answer_bytes,
                    pids,
                    self.placement.servers,
                )
            )
            self.pids = {"server": pids[0], "baseline": pids[1]}
            if a.before is not None:
                self.before_url = stack.enter_context(
                    services.robert_server(
                        self.settings_env,
                        services.free_port(),
                        self.work,
                        pids,
                        source=a.before,
                        worker=False,
                        placement=self.placement,
                    )
                )
                self.pids["before"] = pids[2]
                self.say(f"before: the server of {a.before} beside this tree's, same store")
            os.environ[SEED_ENV] = str(self.seed_path)
            self.say(
                f"server: {a.workers} process(es); generator: {a.generator}; "
                f"{self.placement.describe()}"
            )
            self.say(HEADER)
            if a.generator == "locust":
                status, base = self.locust_phases(server, baseline)
                ratio: float | None = status / base if base else None
            else:
                _, ratio = self.wrk_status(server, baseline)
            if a.register_bodies > 0:
                self.register(server)
            if a.rate > 0:
                self.fixed_rate(server)
            for phones in scale[1:]:
                client = redis.Redis.from_url(self.store)
                client.flushdb()
                # The worker's consumer group went with the flush: give it back.
                client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
                client.close()
                self.seed(phones)
                rps, _ = self.wrk_status(server, None)
                self.say(f"scale: phones={phones} status={rps:.0f} req/s")
        return ratio or 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The bench's options."""
    p = argparse.ArgumentParser(
        prog="python -m loadtest.bench",
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=20, help="seconds per measured phase")
    p.add_argument("--redis", help="use this Redis (redis://host:port/db) instead of our own")
    p.add_argument("--generator", choices=("wrk", "locust"), default="wrk")
    p.add_argument("--phones", type=int, default=100_000, help="seeded registrations")
    p.add_argument("--workers", type=int, default=1, help="server (and baseline) processes")
    p.add_argument("--codes", type=int, default=5000, help="submission codes for reports")
    p.add_argument("--users", type=int, default=32, help="Locust users")
    p.add_argument("--locust-processes", type=int, default=1, help="Locust worker processes")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--rate", type=float, default=2000, help="open-loop status rate; 0 skips")
    p.add_argument(
        "--pin", action=argparse.BooleanOptionalAction, default=True,
        help="the servers measured on CPUs of their own (the first --workers), the generator, "
        "Redis and the worker on the rest (taskset; not when that leaves them none)",
    )  # fmt: skip
    p.add_argument(
        "--before", type=Path, help="an older source tree (e.g. git archive main | tar -x -C "
        "DIR, its compiled modules copied in) whose server is measured too, side by side"
    )  # fmt: skip
    p.add_argument(
        "--rounds", type=int, default=1, help="status phases per target, in alternating order "
        "(medians reported)"
    )  # fmt: skip
    p.add_argument(
        "--register-bodies", type=int, default=10_000, help="distinct register bodies; 0 skips"
    )
    p.add_argument(
        "--scale", default="", help="comma-separated phone counts: status throughput at each "
        "(re-seeds; needs our own Redis), e.g. 10000,100000,1000000"
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.scale and args.redis:
        p.error("--scale flushes the database between steps: not with --redis")
    return args


WRK_MISSING = (
    "loadtest.bench needs wrk, the HTTP load generator, for --generator wrk (the default) and "
    "for its registration phase: install it (Debian: apt-get install wrk), or run with "
    "--generator locust --register-bodies 0 (Locust measures less of the server: it saturates "
    "a core first)."
)


def missing_tools(args: argparse.Namespace) -> str | None:
    """What the bench cannot run without and is not installed, said plainly; or None."""
    needs_wrk = args.generator == "wrk" or args.register_bodies > 0
    if needs_wrk and shutil.which("wrk") is None:
        return WRK_MISSING
    if args.redis is None and shutil.which("redis-server") is None:
        return "loadtest.bench starts its own Redis: install redis-server, or pass --redis URL"
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the bench; the last line printed is ``status/baseline=R``."""
    args = parse_args(argv)
    missing = missing_tools(args)
    if missing is not None:
        print(missing, file=sys.stderr)
        raise SystemExit(2)
    with tempfile.TemporaryDirectory(prefix="robert-bench-") as tmp:
        ratio = Bench(args, Path(tmp)).run()
    print(f"status/baseline={ratio:.2f}", flush=True)


def paired_ratios(runs: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> list[float]:
    """Requests/s of each round's run over the baseline's in the same round."""
    return [r["rps"] / b["rps"] if b["rps"] else 0.0 for r, b in zip(runs, baseline, strict=True)]


def ratios_line(name: str, ratios: list[float]) -> str:
    """``name``/baseline by throughput: each round's, their median and their range."""
    each = " ".join(f"{r:.2f}" for r in ratios)
    median = statistics.median(ratios)
    return (
        f"{name}/baseline by round: {each}; median {median:.2f}, "
        f"range {min(ratios):.2f}-{max(ratios):.2f}"
    )


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median CPU per request of a target's runs (as a run, for ``say_cpu``)."""
    if any("cpu_us" not in r for r in runs):
        return {}
    return {"cpu_us": statistics.median(r["cpu_us"] for r in runs)}


if __name__ == "__main__":
    main()
