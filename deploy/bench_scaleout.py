"""Scale-out in one run: status throughput with 1 API process on one Redis, then with 2 API
processes on a 6-node Redis Cluster, on this machine.

    .venv/bin/python deploy/bench_scaleout.py [--duration 20] [--phones 100000]

Each half is ``python -m loadtest.bench --generator wrk`` (status only: real status messages
from seeded phones, wrk as the load generator); the cluster comes from ``deploy/local-cluster``
on free loopback ports and is stopped afterwards. The last line reads
``cluster+2 workers / single+1 worker = R``. On a 2-core machine shared by wrk, the servers
and six redis-servers, expect little gain: the figure says what the layout costs, the gain
comes with cores.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATUS_LINE = re.compile(r"^status \(wrk\)\s+(\d+)")


def free_base_port() -> int:
    """A port P with P..P+5 and their cluster bus ports (P+10000...) free on loopback."""
    for base in range(17000, 30000, 16):
        ports = [base + i for i in range(6)] + [base + 10000 + i for i in range(6)]
        if all(_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range for the cluster")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def bench(args: argparse.Namespace, workers: int, redis_url: str | None) -> float:
    """Run one loadtest.bench half; its status throughput (requests/s)."""
    cmd = [
        sys.executable, "-m", "loadtest.bench", "--generator", "wrk", "--workers", str(workers),
        "--duration", str(args.duration), "--phones", str(args.phones), "--rate", "0",
        "--register-bodies", "0",
    ]  # fmt: skip
    if redis_url:
        cmd += ["--redis", redis_url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=HERE.parent)
    for line in out.stdout.splitlines():
        print(f"  {line}")
        if match := STATUS_LINE.match(line.strip()):
            rps = float(match.group(1))
    return rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=20, help="seconds per phase")
    parser.add_argument("--phones", type=int, default=100_000, help="seeded registrations")
    args = parser.parse_args()

    print("single Redis, 1 API process:")
    single = bench(args, 1, None)
    base = free_base_port()
    with tempfile.TemporaryDirectory(prefix="robert-scaleout-") as tmp:
        directory = Path(tmp) / "cluster"
        script = str(HERE / "local-cluster")
        subprocess.run([script, "start", str(base), str(directory)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        try:
            nodes = ",".join(f"127.0.0.1:{base + i}" for i in range(6))
            print("Redis Cluster (3 masters, 3 replicas), 2 API processes:")
            clustered = bench(args, 2, f"redis+cluster://{nodes}")
        finally:
            subprocess.run([script, "stop", str(directory)], check=False,
                           stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"single+1 worker: {single:.0f} req/s; cluster+2 workers: {clustered:.0f} req/s")
    print(f"cluster+2 workers / single+1 worker = {clustered / single:.2f}")


if __name__ == "__main__":
    main()
