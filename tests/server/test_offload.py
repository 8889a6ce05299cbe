"""Large bodies are parsed on a bounded set of threads: uploads arriving together wait for a
slot (each goes through), and only one that waits longer than ``parse_wait`` gets 503."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest

from server.errors import Unavailable
from server.service import OFFLOAD_BYTES, RobertService
from server.settings import Settings
from tests.server.conftest import Running


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, parse_slots=1, parse_wait=5.0)


async def test_large_uploads_arriving_together_wait_for_a_slot(running: Running) -> None:
    service: RobertService = running.service
    release = threading.Event()

    def slow(x: int) -> int:
        release.wait(5)
        return x

    first = asyncio.create_task(service.offload(OFFLOAD_BYTES, slow, 1))
    second = asyncio.create_task(service.offload(OFFLOAD_BYTES, slow, 2))
    await asyncio.sleep(0.2)
    assert not first.done() and not second.done()  # one parsing, one waiting for the slot
    release.set()
    assert await asyncio.gather(first, second) == [1, 2]


async def test_an_upload_waiting_too_long_is_refused(running: Running) -> None:
    service: RobertService = running.service
    service.settings = replace(service.settings, parse_wait=0.1)
    release = threading.Event()
    holder = asyncio.create_task(service.offload(OFFLOAD_BYTES, release.wait, 5))
    await asyncio.sleep(0.05)
    with pytest.raises(Unavailable):
        await service.offload(OFFLOAD_BYTES, len, b"x")
    release.set()
    assert await holder is True
    assert await service.offload(OFFLOAD_BYTES - 1, len, b"xy") == 2  # small: inline
