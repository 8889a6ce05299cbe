"""The store contract suite of tests/server, run against the 6-node Redis Cluster."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import pytest

from server.store import open_store
from server.store.base import Store
from server.store.redis import RedisStore, parse_url
from tests.cluster.localcluster import LocalCluster
from tests.server import test_store_contract as contract

pytestmark = pytest.mark.cluster

# Every contract test that takes the ``store`` fixture, collected here as well.
for _name, _test in vars(contract).items():
    if _name.startswith("test_") and "store" in inspect.signature(_test).parameters:
        globals()[_name] = _test


@pytest.fixture
async def store(redis_cluster: LocalCluster) -> AsyncIterator[Store]:
    """An opened cluster store, empty (FLUSHALL on every master before and after)."""
    redis_cluster.flush()
    backend = open_store(redis_cluster.url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        redis_cluster.flush()


def test_cluster_url_is_parsed() -> None:
    target = parse_url("redis+cluster://:s%40cret@10.0.0.1:7000,10.0.0.2:7001?shards=4&wait=1")
    assert target.cluster and target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (target.password, target.shards, target.wait_replicas) == ("s@cret", 4, 1)
    assert parse_url("redis+cluster://h:1").shards == 8
    plain = parse_url("redis://127.0.0.1:6379/3?shards=2&socket_timeout=1")
    assert not plain.cluster and plain.shards == 2
    assert plain.url == "redis://127.0.0.1:6379/3?socket_timeout=1"
    assert isinstance(open_store("redis+cluster://127.0.0.1:7000"), RedisStore)
    with pytest.raises(ValueError, match="host:port"):
        parse_url("redis+cluster://nohost")


async def test_queue_spreads_over_every_master(store: Store, redis_cluster: LocalCluster) -> None:
    assert isinstance(store, RedisStore)
    for n in range(16):
        await store.enqueue_report(bytes([n]))
    client = redis_cluster.client()
    try:
        masters = {
            client.get_node_from_key(store._stream(shard)).name
            for shard in range(store.target.shards)
        }
    finally:
        client.close()
    assert len(masters) == 3
    assert await store.pending_reports() == 16
    claimed = await store.claim_reports("w", 100, 0, 60_000)
    assert sorted(r.payload for r in claimed) == [bytes([n]) for n in range(16)]
