"""Processes a bench starts on loopback (Redis, the ROBERT server and worker, the baseline),
each stopped by its own pid when the bench ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def taskset(cmd: list[str], cpus: frozenset[int]) -> list[str]:
    """``cmd`` confined to ``cpus`` (util-linux ``taskset``), or as it is if ``cpus`` is empty."""
    if not cpus:
        return cmd
    return ["taskset", "-c", _cpu_list(cpus), *cmd]


@dataclass(frozen=True, slots=True)
class Placement:
    """Which CPUs the servers measured run on (``servers``) and which everything else runs on
    (``others``: the load generator, Redis, the report worker). Kept apart, a server's
    throughput is its own: the generator's and Redis's work no longer lands on its core some
    phases and not others, as the scheduler pleases (on 2 shared cores that moved the bare
    baseline by half from one phase to the next). As deployed, Redis has CPUs of its own too.
    Empty sets: no pinning."""

    servers: frozenset[int] = frozenset()
    others: frozenset[int] = frozenset()

    @classmethod
    def split(cls, workers: int) -> Placement:
        """The first ``workers`` CPUs this process may use for the servers, the rest for the
        others; no pinning if that leaves the others none, or without ``taskset``."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) <= workers or shutil.which("taskset") is None:
            return cls()
        return cls(frozenset(cpus[:workers]), frozenset(cpus[workers:]))

    def describe(self) -> str:
        """One line for the bench's header."""
        if not self.servers:
            return f"{os.cpu_count()} CPUs shared by generator, server and Redis"
        return (
            f"server(s) on CPU {_cpu_list(self.servers)}; generator, Redis and worker on CPU "
            f"{_cpu_list(self.others)}"
        )


def _cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(map(str, sorted(cpus)))


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s, for one process we started."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``cmd`` (output to ``log``) for the duration of the block; yields its pid."""
    with log.open("ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield process.pid
    finally:
        stop(process)


def wait_until(check: object, what: str, timeout: float = 30.0) -> None:
    """Poll ``check()`` until it is true; RuntimeError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def http_ok(url: str) -> bool:
    """True if GET ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def own_redis(directory: Path, cpus: frozenset[int] = frozenset()) -> Iterator[str]:
    """A throw-away Redis on a free loopback port, no persistence, on ``cpus`` if given;
    yields its URL."""
    port = free_port()
    cmd = [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(directory),
    ]  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"

    def ping() -> bool:
        try:
            return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    with running(taskset(cmd, cpus), directory / "redis.log"):
        wait_until(ping, "redis-server")
        yield url


def server_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The environment of ``robert serve``/``robert worker``: ours plus ROBERT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBERT_")}
    env.update(settings_env)
    return env


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its reaped children have used, from
    ``/proc/PID/stat``: what a request costs the server, whatever else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def robert_command(source: Path | None = None) -> list[str]:
    """The ``robert`` command of this install, or of another source tree (an older checkout,
    e.g. ``git archive main | tar -x -C DIR``, with its compiled modules copied in), whose
    packages then come first on the path."""
    if source is None:
        return [str(BIN / "robert")]
    start = (
        f"import sys; sys.path.insert(0, {str(source.resolve())!r}); "
        "from cli.main import main; raise SystemExit(main())"
    )
    return [sys.executable, "-c", start]


@contextlib.contextmanager
def robert_server(
    settings_env: dict[str, str],
    port: int,
    directory: Path,
    pids: list[int] | None = None,
    source: Path | None = None,
    worker: bool = True,
    placement: Placement = Placement(),
) -> Iterator[str]:
    """``robert serve`` (from ``source`` if given, see ``robert_command``) and, with
    ``worker``, ``robert worker`` with these settings, each on its CPUs of ``placement``;
    yields the base URL (and appends the server's pid to ``pids``)."""
    env = server_env(settings_env | {"ROBERT_PORT": str(port), "ROBERT_HOST": "127.0.0.1"})
    url = f"http://127.0.0.1:{port}"
    robert = robert_command(source)
    name = "server" if source is None else f"server-{port}"
    with contextlib.ExitStack() as stack:
        serve = taskset([*robert, "serve"], placement.servers)
        pid = stack.enter_context(running(serve, directory / f"{name}.log", env))
        if worker:
            work = taskset([*robert, "worker"], placement.others)
            stack.enter_context(running(work, directory / "worker.log", env))
        wait_until(lambda: http_ok(url + "/health"), "robert serve")
        if pids is not None:
            pids.append(pid)
        yield url


@contextlib.contextmanager
def baseline_server(
    port: int,
    workers: int,
    directory: Path,
    answer_bytes: int = 31_500,
    pids: list[int] | None = None,
    cpus: frozenset[int] = frozenset(),
) -> Iterator[str]:
    """The bare aiohttp baseline, answering ``answer_bytes`` of JSON, on ``cpus`` if given;
    yields its base URL (and appends its pid to ``pids``)."""
    cmd = [
        sys.executable, "-m", "loadtest.baseline", "--port", str(port),
        "--answer-bytes", str(answer_bytes),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    cmd = taskset([*cmd, "--workers", str(workers)], cpus)
    with running(cmd, directory / "baseline.log") as pid:
        wait_until(lambda: http_ok(url + "/"), "baseline server")
        if pids is not None:
            pids.append(pid)
        yield url
