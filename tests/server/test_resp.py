"""The auto-pipelining Redis connection of the hot path: replies in order, errors, reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from redis.exceptions import ResponseError

from server.store.resp import PipelinedRedis
from tests.server.conftest import redis_available, redis_url_with_db

DB = 10


@pytest.fixture
async def fast() -> AsyncIterator[PipelinedRedis]:
    if not redis_available():
        pytest.skip("no Redis")
    plain = redis.Redis.from_url(redis_url_with_db(DB))
    plain.flushdb()
    # One connection: commands keep their order, which the tests below rely on.
    client = PipelinedRedis(redis_url_with_db(DB))
    yield client
    await client.close()
    plain.flushdb()
    plain.close()


async def test_concurrent_commands_get_their_own_replies(fast: PipelinedRedis) -> None:
    await asyncio.gather(*(fast.execute("SET", f"k{i}", i) for i in range(2000)))
    values = await asyncio.gather(*(fast.execute("GET", f"k{i}") for i in range(2000)))
    assert values == [str(i).encode() for i in range(2000)]
    assert await fast.execute("GET", "missing") is None
    assert await fast.execute("SET", "k1", "x", "NX") is None


async def test_error_replies_raise_without_breaking_the_stream(fast: PipelinedRedis) -> None:
    results = await asyncio.gather(
        fast.execute("SET", "a", "1"),
        fast.execute("INCR", "a"),
        fast.execute("HGET", "a", "f"),  # WRONGTYPE
        fast.execute("GET", "a"),
        return_exceptions=True,
    )
    assert results[0] == b"OK" and results[1] == 2 and results[3] == b"2"
    assert isinstance(results[2], ResponseError)


async def test_reconnects_after_the_server_drops_it(fast: PipelinedRedis) -> None:
    await fast.execute("SET", "a", "1")
    plain = redis.Redis.from_url(redis_url_with_db(DB))
    plain.client_kill_filter(_type="normal", skipme=True)
    plain.close()
    await asyncio.sleep(0.05)
    for _ in range(3):  # the first calls may see the dead connections, then it reconnects
        try:
            assert await fast.execute("GET", "a") == b"1"
            break
        except redis.exceptions.ConnectionError:
            continue
    assert await fast.execute("GET", "a") == b"1"


def test_only_plain_redis_urls() -> None:
    with pytest.raises(ValueError):
        PipelinedRedis("rediss://example:6380/0")
