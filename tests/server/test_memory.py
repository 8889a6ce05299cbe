"""Refused requests leave nothing behind: no frame kept alive, no memory that grows.

A refusal raised as one module-level exception instance again and again keeps a traceback
that grows with each raise and holds every caller's frame (and the registration keys in those
frames) alive; every refusal must be a fresh exception.
"""

from __future__ import annotations

import gc
import tracemalloc
import types
from pathlib import Path

import aiohttp

from kit.http import HttpError
from protocol.auth import RequestKind, build_request
from protocol.ebid import make_ebid
from protocol.types import MacKey, id_a
from tests.server.conftest import Running

PROJECT = str(Path(__file__).resolve().parents[2])
REFUSED = 10_000


def _frames() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, types.FrameType))


def _unknown_registration_request(running: Running) -> dict[str, object]:
    service = running.service
    epoch = service.now_epoch()
    ebid = make_ebid(service.key_of_epoch(epoch), epoch, id_a(b"\x01\x02\x03\x04\x05"))
    return build_request(
        MacKey(bytes(32)), RequestKind.STATUS, ebid, epoch, service.now_ntp()
    ).to_fields()


async def test_ten_thousand_refusals_keep_no_frame_and_no_memory(running: Running) -> None:
    """10,000 status requests for an unknown registration, as the route handler sees them."""
    body = _unknown_registration_request(running)
    codes: set[str] = set()

    async def refuse(n: int) -> None:
        for _ in range(n):
            try:
                await running.service.status(body)
            except HttpError as exc:
                codes.add(exc.code)

    await refuse(200)  # warm caches (memoised keys, plans)
    gc.collect()
    frames_before = _frames()
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        await refuse(REFUSED)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    ours = [tracemalloc.Filter(True, f"{PROJECT}/*")]
    grown = sum(
        s.size_diff
        for s in after.filter_traces(ours).compare_to(before.filter_traces(ours), "filename")
    )
    assert codes == {"unknown_registration"}
    assert _frames() - frames_before < 50, "refusals keep frames alive"
    assert grown < 64 * 1024, f"project code holds {grown} more bytes after {REFUSED} refusals"


async def test_refusals_over_http_keep_no_frame(running: Running) -> None:
    """The same through the HTTP guard: 1,000 refused requests, answered 430, nothing kept."""
    body = _unknown_registration_request(running)
    async with aiohttp.ClientSession() as session:

        async def refuse(n: int) -> None:
            for _ in range(n):
                async with session.post(f"{running.url}/api/v6/status", json=body) as r:
                    assert r.status == 430
                    await r.read()

        await refuse(50)
        gc.collect()
        frames_before = _frames()
        await refuse(1_000)
        gc.collect()
        assert _frames() - frames_before < 50
