"""RobertService.status asks for its bundle as soon as the MAC verifies and mints it while the
store takes the status slot: the answer carries a bundle under the registration's K_EA, and a
request the store refuses gives its bundle up without a trace."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kit.http import HttpError
from protocol.auth import RequestKind, build_request
from protocol.ebid import make_ebid
from protocol.epochs import day_of_ntp, epoch_of, ntp_from_unix
from protocol.errors import KeyUnavailable
from protocol.tuples import decrypt_bundle
from protocol.types import MacKey, TupleKey, id_a
from server.codegate import NoCodeGate
from server.keys import ServerKeys
from server.metrics import Metrics
from server.service import RobertService
from server.settings import Settings
from server.store.base import Registration, StatusOutcome, StatusRecorded

OWNER = id_a(bytes(range(5)))
K_A, K_EA = MacKey(os.urandom(32)), TupleKey(os.urandom(32))


class SlotStore:
    """The two store steps of a status request, answering ``outcome`` (or raising)."""

    def __init__(self, outcome: StatusOutcome | Exception) -> None:
        self.outcome = outcome

    async def get_keys(self, owner: Any) -> tuple[MacKey, TupleKey] | None:
        await asyncio.sleep(0)
        return (K_A, K_EA) if owner == OWNER else None

    async def record_status(self, *args: Any, **kwargs: Any) -> StatusRecorded:
        await asyncio.sleep(0)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return StatusRecorded(self.outcome, Registration(OWNER, K_A, K_EA))


def service_over(store: SlotStore, tmp_path: Path) -> RobertService:
    settings = Settings(data_dir=str(tmp_path), status_min_interval=0)
    today = day_of_ntp(ntp_from_unix(time.time()))
    keys = ServerKeys.open(
        settings.keys_path, today, settings.keys_ahead_days, settings.key_retention_days
    )
    return RobertService(settings, store, keys, Metrics(), time.time, NoCodeGate())  # type: ignore[arg-type]


def fields_for(service: RobertService) -> dict[str, Any]:
    now = ntp_from_unix(time.time())
    epoch = epoch_of(now, service.time_start)
    ebid = make_ebid(service.key_of_epoch(epoch), epoch, OWNER)
    return build_request(K_A, RequestKind.STATUS, ebid, epoch, now).to_fields()


def watch_bundles(service: RobertService) -> list[asyncio.Future[Any]]:
    """Every bundle future the service asks its minter for."""
    asked: list[asyncio.Future[Any]] = []
    bundle: Callable[..., asyncio.Future[Any]] = service.minter.bundle

    def watched(*args: Any) -> asyncio.Future[Any]:
        future = bundle(*args)
        asked.append(future)
        return future

    service.minter.bundle = watched  # type: ignore[method-assign]
    return asked


async def test_the_answer_carries_a_bundle_under_the_keys_read_first(tmp_path: Path) -> None:
    service = service_over(SlotStore(StatusOutcome.ACCEPTED), tmp_path)
    answer = await service.status(fields_for(service))
    tuples = decrypt_bundle(K_EA, base64.b64decode(b"".join(answer.tuples)))
    assert tuples[0].epoch_id == service.now_epoch()
    assert tuples[0].ebid == make_ebid(
        service.key_of_epoch(tuples[0].epoch_id), tuples[0].epoch_id, OWNER
    )


@pytest.mark.parametrize(
    ("outcome", "status"),
    [(StatusOutcome.TOO_SOON, 429), (StatusOutcome.REPLAYED, 409), (ConnectionError("down"), None)],
)
async def test_a_refused_slot_gives_its_bundle_up(
    outcome: StatusOutcome | Exception, status: int | None, tmp_path: Path
) -> None:
    service = service_over(SlotStore(outcome), tmp_path)
    asked = watch_bundles(service)
    with pytest.raises(Exception) as refused:
        await service.status(fields_for(service))
    if status is None:
        assert isinstance(refused.value, ConnectionError)
    else:
        assert isinstance(refused.value, HttpError) and refused.value.status == status
    await asyncio.sleep(0)
    assert len(asked) == 1 and asked[0].done()
    assert not service.minter._pending


async def test_a_mint_that_fails_for_a_refused_request_is_not_logged(tmp_path: Path) -> None:
    """The day key is gone and the slot refused: the request gets 409, and the minting error
    nobody awaits is not reported ("Future exception was never retrieved", when the future is
    collected): giving a bundle up cancels its future, which clears that."""
    service = service_over(SlotStore(StatusOutcome.REPLAYED), tmp_path)

    def no_key(day: Any) -> Any:
        raise KeyUnavailable("gone")

    service.minter._key_of_day = no_key
    asked = watch_bundles(service)
    with pytest.raises(HttpError):
        await service.status(fields_for(service))
    await asyncio.sleep(0)
    (future,) = asked
    assert future.done() and not future.cancelled()
    assert not future._log_traceback  # type: ignore[attr-defined]
    assert isinstance(future.exception(), KeyUnavailable)
