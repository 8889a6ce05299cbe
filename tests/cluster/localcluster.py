"""Start and stop the loopback Redis Cluster of ``deploy/local-cluster`` for the tests.

One cluster per pytest session whichever directory asks first (tests/cluster, or the contract
suite): it is cached here and stopped by ``config.add_cleanup``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local-cluster"
NODES = 6
BUS_OFFSET = 10_000
START_TIMEOUT_S = 60


@dataclass
class LocalCluster:
    """A running 6-node cluster: its ports, directory and store URL."""

    base_port: int
    directory: Path

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(NODES)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def client(self) -> RedisCluster:
        """A synchronous cluster client (for flushing and inspecting)."""
        nodes = [ClusterNode("127.0.0.1", p) for p in self.ports]
        return RedisCluster(startup_nodes=nodes, socket_timeout=2)

    def flush(self) -> None:
        """FLUSHALL on every master."""
        client = self.client()
        try:
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
        finally:
            client.close()

    def pid(self, port: int) -> int:
        return int((self.directory / str(port) / "redis.pid").read_text())

    def role(self, port: int) -> str:
        """'master' or 'slave' as the node itself says."""
        node = redis.Redis(port=port, socket_timeout=1)
        try:
            return str(node.info("replication")["role"])
        finally:
            node.close()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(start: int = 21_000) -> int:
    """A base port with six free ports above it and their cluster-bus ports (+10000)."""
    for base in range(start, start + 5_000, 10):
        if all(_free(base + i) and _free(base + i + BUS_OFFSET) for i in range(NODES)):
            return base
    raise RuntimeError("no free port range for a local cluster")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_cluster: LocalCluster | None = None


def shared_cluster(config: pytest.Config) -> LocalCluster:
    """The session's cluster, started on first use; skip with a reason if it cannot start."""
    global _cluster
    if _cluster is not None:
        return _cluster
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} not on PATH: cannot start a local Redis Cluster")
    directory = Path(tempfile.mkdtemp(prefix="robert-cluster-test-"))
    base = free_base_port()
    try:
        subprocess.run(
            [str(SCRIPT), "start", str(base), str(directory)],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        subprocess.run([str(SCRIPT), "stop", str(directory)], capture_output=True, check=False)
        stderr = getattr(exc, "stderr", b"") or b""
        pytest.fail(f"local cluster did not start: {stderr.decode(errors='replace')}")
    cluster = LocalCluster(base, directory)

    def stop() -> None:
        global _cluster
        _cluster = None
        subprocess.run([str(SCRIPT), "stop", str(directory)], capture_output=True, check=False)

    config.add_cleanup(stop)
    _cluster = cluster
    return cluster
