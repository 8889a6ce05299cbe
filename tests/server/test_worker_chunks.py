"""The worker's concurrent store calls: results in order, and a failure cancels the rest."""

import asyncio

import pytest

from server.worker import _in_chunks


async def test_results_in_call_order_across_chunks() -> None:
    async def value(i: int) -> int:
        await asyncio.sleep((7 - i % 7) / 1000)  # finish out of order
        return i

    calls = [lambda i=i: value(i) for i in range(20)]
    assert await _in_chunks(calls, size=6) == list(range(20))


async def test_a_failure_cancels_the_others_and_is_raised_as_itself() -> None:
    finished: list[int] = []

    async def slow(i: int) -> int:
        await asyncio.sleep(1)
        finished.append(i)
        return i

    async def failing() -> int:
        raise ConnectionError("store went away")

    calls = [lambda: slow(0), failing, lambda: slow(2)]
    with pytest.raises(ConnectionError, match="store went away"):
        await _in_chunks(calls)
    await asyncio.sleep(1.2)
    assert finished == []  # cancelled, not left running detached
