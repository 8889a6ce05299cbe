"""kit.memory: the idle trimmer releases once per quiet spell after activity, and releasing is
harmless to live objects."""

from __future__ import annotations

import asyncio
import gc
import platform
import sys

import pytest

from kit.memory import IdleTrimmer, can_trim, release


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[IdleTrimmer, list[int], Clock, list[int]]:
    count, clock, released = [0], Clock(), []
    trimmer = IdleTrimmer(lambda: count[0], 5.0, lambda: released.append(1), clock)
    return trimmer, count, clock, released


def test_nothing_released_without_activity() -> None:
    trimmer, _, clock, released = make()
    for _ in range(5):
        clock.now += 10
        assert not trimmer.check()
    assert released == [] and trimmer.trims == 0


def test_released_once_after_a_quiet_spell_that_follows_activity() -> None:
    trimmer, count, clock, released = make()
    # A burst: the count keeps moving, nothing is released however long it lasts.
    for _ in range(10):
        count[0] += 100
        clock.now += 1
        assert not trimmer.check()
    # Quiet, but not yet for 5 s.
    clock.now += 4
    assert not trimmer.check()
    clock.now += 1.5
    assert trimmer.check()
    assert released == [1] and trimmer.trims == 1
    # Still quiet: not again.
    clock.now += 60
    assert not trimmer.check()
    # A new burst, then quiet: once more.
    count[0] += 1
    assert not trimmer.check()
    clock.now += 6
    assert trimmer.check() and trimmer.trims == 2


async def test_run_checks_until_stopped() -> None:
    trimmer, count, _, released = make()
    trimmer.quiet = 0.0
    count[0] += 1
    stop = asyncio.Event()
    task = asyncio.create_task(trimmer.run(stop, every=0.01))
    for _ in range(500):
        if released:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert released == [1]


def test_release_keeps_live_objects_and_frees_garbage() -> None:
    kept = [bytes(1000) + bytes([i % 256]) for i in range(10_000)]

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    Cycle()
    assert any(isinstance(o, Cycle) for o in gc.get_objects())
    trimmed = release()
    assert not any(isinstance(o, Cycle) for o in gc.get_objects())
    assert [k[-1] for k in kept] == [i % 256 for i in range(10_000)]
    assert trimmed in (True, False)
    if not can_trim():
        assert trimmed is False


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_glibc_can_trim() -> None:
    assert can_trim()
