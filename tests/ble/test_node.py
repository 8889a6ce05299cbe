"""The node keeps the advertised HELLO fresh: time field every few seconds, EBID each epoch."""

from __future__ import annotations

import asyncio

import pytest

from ble.advertiser.base import HelloAdvertiser
from ble.errors import AdapterMissing
from ble.interfaces import HelloSink, HelloSource
from ble.node import BleNode, seconds_to_next_refresh
from ble.payload import RobertPayload
from protocol.epochs import EPOCH_DURATION, REFERENCE_TIME_START, epoch_start
from protocol.hello import Hello
from tests.ble.conftest import NOW, FakePhone, RecordingSink


class FakeAdvertiser(HelloAdvertiser):
    name = "fake"

    def __init__(self, failures: list[BaseException] | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[str, RobertPayload | None]] = []
        self.failures = failures or []

    async def start(self, payload: RobertPayload) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.calls.append(("start", payload))
        self.current = payload

    async def update(self, payload: RobertPayload) -> None:
        self.calls.append(("update", payload))
        self.current = payload

    async def stop(self) -> None:
        self.calls.append(("stop", None))
        self.current = None


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_fakes_satisfy_the_protocols(make_phone: object) -> None:
    assert isinstance(make_phone(), HelloSource)  # type: ignore[operator]
    assert isinstance(RecordingSink(), HelloSink)


def test_next_refresh_is_interval_or_epoch_boundary() -> None:
    start = REFERENCE_TIME_START
    assert seconds_to_next_refresh(start + 10, 2.0, start) == 2.0
    assert seconds_to_next_refresh(start + EPOCH_DURATION - 1, 2.0, start) == 1.0
    assert seconds_to_next_refresh(start + EPOCH_DURATION, 2.0, start) == 2.0


async def test_time_field_and_ebid_are_refreshed(make_phone: object) -> None:
    phone: FakePhone = make_phone()  # type: ignore[operator]
    clock = Clock(NOW)
    advertiser = FakeAdvertiser()
    node = BleNode(phone, RecordingSink(), clock, advertiser=advertiser, scanner=None, tx_gain=-20)
    await node.refresh()
    clock.now += 2
    await node.refresh()
    await node.refresh()  # same second: nothing new to send
    first, second = (Hello.parse(p.hello) for _, p in advertiser.calls if p is not None)
    assert [kind for kind, _ in advertiser.calls] == ["start", "update"]
    assert second.time == (first.time + 2) & 0xFFFF
    assert first.ebid == second.ebid
    assert advertiser.calls[0][1] == RobertPayload(advertiser.calls[0][1].hello, 1, -20)  # type: ignore[union-attr]

    boundary = epoch_start(
        (clock.now - REFERENCE_TIME_START) // EPOCH_DURATION + 1, REFERENCE_TIME_START
    )
    clock.now = boundary
    await node.refresh()
    third = Hello.parse(advertiser.calls[-1][1].hello)  # type: ignore[union-attr]
    assert third.ebid == phone.ebid_at(boundary) != first.ebid


async def test_no_hello_means_no_advertising() -> None:
    class Empty:
        def current_hello(self, now_ntp: int) -> bytes | None:
            return None

    advertiser = FakeAdvertiser()
    advertiser.current = RobertPayload(bytes(16))
    node = BleNode(Empty(), RecordingSink(), Clock(NOW), advertiser=advertiser, scanner=None)
    await node.refresh()
    assert advertiser.calls == [("stop", None)]


async def test_running_node_refreshes_on_its_own(make_phone: object) -> None:
    ticks = iter(range(NOW, NOW + 10_000))
    advertiser = FakeAdvertiser()
    node = BleNode(
        make_phone(),  # type: ignore[operator]
        RecordingSink(),
        lambda: next(ticks),
        advertiser=advertiser,
        scanner=None,
        refresh_interval=0.02,
    )
    async with node:
        await asyncio.sleep(0.2)
    kinds = [kind for kind, _ in advertiser.calls]
    assert kinds[0] == "start" and kinds.count("update") >= 3 and kinds[-1] == "stop"


async def test_refused_advertiser_is_reported_and_retried(make_phone: object) -> None:
    messages: list[str] = []
    advertiser = FakeAdvertiser([PermissionError(1, "Operation not permitted")])
    node = BleNode(
        make_phone(),  # type: ignore[operator]
        RecordingSink(),
        Clock(NOW),
        advertiser=advertiser,
        scanner=None,
        report=messages.append,
        retry_initial=0.01,
    )
    async with node:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if advertiser.current is not None:
                break
    assert advertiser.calls[0][0] == "start"
    assert len(messages) == 1 and "permission denied" in messages[0] and "\n" not in messages[0]


def test_bad_refresh_interval() -> None:
    with pytest.raises(ValueError):
        BleNode(
            None, RecordingSink(), Clock(NOW), advertiser=None, scanner=None, refresh_interval=0
        )


async def test_with_start_attempts_a_missing_radio_raises_at_start(make_phone: object) -> None:
    """What the CLI relies on: no retrying in the background, the error comes out of start."""
    messages: list[str] = []
    advertiser = FakeAdvertiser([FileNotFoundError(2, "No such file or directory")])
    node = BleNode(
        make_phone(),  # type: ignore[operator]
        RecordingSink(),
        Clock(NOW),
        advertiser=advertiser,
        scanner=None,
        report=messages.append,
        start_attempts=1,
    )
    with pytest.raises(AdapterMissing):
        async with node:
            raise AssertionError("the node must not start")
    assert messages == [] and advertiser.calls == [("stop", None)]  # cleaned up, silently


async def test_with_start_attempts_retries_are_bounded(make_phone: object) -> None:
    messages: list[str] = []
    advertiser = FakeAdvertiser([PermissionError(1, "no"), PermissionError(1, "no")])
    node = BleNode(
        make_phone(),  # type: ignore[operator]
        RecordingSink(),
        Clock(NOW),
        advertiser=advertiser,
        scanner=None,
        report=messages.append,
        retry_initial=0.01,
        start_attempts=3,
    )
    async with node:  # the third attempt works
        assert advertiser.current is not None
    assert len(messages) == 2 and all("retrying" in m for m in messages)
