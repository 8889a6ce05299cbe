"""Report processing: turn queued uploads into exposure scores [robert.md: Report].

For each report: decrypt every ECC and every EBID (in one batch per K_S day), find each
contact's registration, keep the HELLOs that pass the protocol's checks, score the contact and
add the score to the registration's exposed epoch, then recompute that registration's risk.
A report is acknowledged (and its queue entry deleted) only after all of that is written, and
exposure writes are idempotent per (report, epoch) through a tag derived from the report's
random nonce and the registration (``server.service.report_tag``), so a report reclaimed from
a crashed worker is not counted twice, and no record says when a report came or which records
came together.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from typing import Any, TypeVar

from protocol.contacts import Contact, Drop, samples, valid_records, within_epoch_slack
from protocol.ebid import check_country, decrypt_ebids, decrypt_ecc
from protocol.epochs import EPOCHS_PER_DAY, day_of_epoch, neighbour_day
from protocol.errors import KeyUnavailable, UnknownCountry
from protocol.scoring import assess, score_contact
from protocol.types import Epoch, IdA
from server.service import RobertService, decode_report, report_tag
from server.store.base import QueuedReport, Registration, RiskState

log = logging.getLogger("robert.worker")
T = TypeVar("T")
CONCURRENT_STORE_CALLS = 64
"""Store calls a report's processing keeps in flight at once (one per registration touched)."""


_DRAW = secrets.SystemRandom()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class ReportWorker:
    """Consumes the report queue of one store."""

    def __init__(self, service: RobertService, name: str | None = None) -> None:
        self.service = service
        self.store = service.store
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.reclaim_after_ms = service.settings.reclaim_after_ms
        """A report claimed longer ago by a worker that did not acknowledge it (crashed) is
        taken over after this long."""

    async def run(self, stop: asyncio.Event, block_ms: int = 1000) -> None:
        """Process reports until ``stop`` is set; errors are logged and retried, never fatal.

        With ``worker_pause`` (the default), everything queued is processed, then the worker
        waits a random time around that pause before looking again: a real report does not
        wake it, so its work (on the same machine's cores) does not slow that report's answer
        on the wire, as nothing would a dummy's [measured: docs/performance.md, dummy
        reports]. With 0, it waits on the queue (``block_ms``) and wakes on each report."""
        pause = self.service.settings.worker_pause
        while not stop.is_set():
            try:
                if pause > 0:
                    while await self.run_once() and not stop.is_set():
                        pass
                    await _wait(stop, pause * _DRAW.uniform(0.5, 1.5))
                else:
                    await self.run_once(block_ms=block_ms)
            except (OSError, ConnectionError) as exc:
                log.warning("store unavailable (%s); retrying in 1 s", type(exc).__name__)
                await asyncio.sleep(1)

    async def run_once(self, count: int = 16, block_ms: int = 0) -> int:
        """Claim and process up to ``count`` reports; how many were processed."""
        batch = await self.store.claim_reports(self.name, count, block_ms, self.reclaim_after_ms)
        for report in batch:
            await self.process(report)
            await self.store.ack_report(report.report_id)
        self.service.metrics.queue.set(await self.store.pending_reports())
        return len(batch)

    async def drain(self) -> int:
        """Process everything queued now (tests and the simulator call this)."""
        total = 0
        while processed := await self.run_once():
            total += processed
        return total

    async def process(self, report: QueuedReport) -> Counter[str]:
        """Score one report's contacts; counts of HELLOs kept and dropped by reason."""
        outcome: Counter[str] = Counter()
        nonce, contacts = decode_report(report.payload)
        owners = self._owners(contacts, outcome)
        registrations = await self._registrations({f[1] for f in owners if f is not None})
        scores: dict[IdA, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for contact, found in zip(contacts, owners, strict=True):
            if found is None:
                continue
            ebid_epoch, owner = found
            registration = registrations[owner]
            if registration is None:
                outcome[Drop.UNKNOWN_ID] += len(contact.records)
                continue
            kept, dropped = valid_records(
                contact,
                ebid_epoch,
                registration.k_a,
                self.service.time_start,
                self.service.settings.hello_tolerance,
            )
            outcome.update(dropped)
            outcome["valid"] += len(kept)
            if kept:
                scores[owner][ebid_epoch] += score_contact(samples(kept), self.service.scoring)
        await _in_chunks(
            [
                functools.partial(
                    self._add, owner, report_tag(nonce, report.report_id, owner), by_epoch
                )
                for owner, by_epoch in scores.items()
            ]
        )
        for name, value in outcome.items():
            self.service.metrics.hellos.labels(str(name)).inc(value)
        self.service.metrics.reports.inc()
        return outcome

    def _owners(
        self, contacts: list[Contact], outcome: Counter[str]
    ) -> list[tuple[Epoch, IdA] | None]:
        """(EBID epoch, ID_A) of each contact, or None with the reason counted.

        EBIDs are decrypted in one batch per K_S day; one whose epoch is not within one of its
        first reception, when that reception is within one epoch of midnight, is tried again
        with the neighbouring day's key [robert.md: EBID and ECC].
        """
        settings, keys, time_start = (
            self.service.settings,
            self.service.keys,
            self.service.time_start,
        )
        result: list[tuple[Epoch, IdA] | None] = [None] * len(contacts)
        by_day: dict[date, list[int]] = defaultdict(list)
        claimed: dict[int, int] = {}  # contact index -> epoch of its first reception
        for i, contact in enumerate(contacts):
            try:
                ours = check_country(
                    decrypt_ecc(keys.k_g, contact.ebid, contact.ecc), settings.country_code
                )
            except UnknownCountry:
                outcome[Drop.UNKNOWN_COUNTRY] += len(contact.records)
                continue
            if not ours:  # federation is out of scope: counted, not forwarded
                outcome[Drop.FOREIGN_COUNTRY] += len(contact.records)
                continue
            claimed[i] = contact.claimed_epoch(time_start)
            by_day[day_of_epoch(claimed[i], time_start)].append(i)
        pending: dict[date, list[int]] = by_day
        for first_pass in (True, False):
            retry: dict[date, list[int]] = defaultdict(list)
            for day, indexes in pending.items():
                decrypted_all = self._decrypt(day, contacts, indexes)
                for i, decrypted in zip(indexes, decrypted_all, strict=True):
                    if decrypted is not None and within_epoch_slack(claimed[i], decrypted[0]):
                        result[i] = decrypted
                    elif first_pass and (other := neighbour_day(claimed[i], time_start)):
                        retry[other].append(i)
                    else:
                        outcome[Drop.EPOCH_MISMATCH] += len(contacts[i].records)
            pending = retry
        return result

    async def _registrations(self, owners: set[IdA]) -> dict[IdA, Registration | None]:
        """The registrations of a report's contacts, read concurrently: a report names
        hundreds of them, and one round trip after another added up to most of its time."""
        found = await _in_chunks(
            [functools.partial(self.store.get_registration, owner) for owner in owners]
        )
        return dict(zip(owners, found, strict=True))

    def _decrypt(
        self, day: date, contacts: list[Contact], indexes: list[int]
    ) -> list[tuple[Epoch, IdA] | None]:
        try:
            key = self.service.keys.key_of_day(day)
        except KeyUnavailable:
            return [None] * len(indexes)
        return list(decrypt_ebids(key, [contacts[i].ebid for i in indexes]))

    async def _add(self, owner: IdA, report_id: str, by_epoch: dict[int, float]) -> None:
        """Write the scores, purge what is past retention, and store the new risk state."""
        if not await self.store.add_exposures(owner, report_id, sorted(by_epoch.items())):
            return  # unregistered meanwhile
        now_epoch = self.service.now_epoch()
        config = self.service.scoring
        await self.store.purge_exposures(owner, now_epoch - config.retention_days * EPOCHS_PER_DAY)
        assessment = assess(await self.store.get_exposures(owner), now_epoch, config)
        await self.store.set_risk(
            owner,
            RiskState(
                at_risk=assessment.at_risk,
                risk_level=assessment.risk_level,
                last_contact_epoch=assessment.last_contact_epoch,
                last_scoring_epoch=now_epoch,
            ),
        )
        self.service.metrics.exposed.inc(len(by_epoch))

    async def purge_expired(self) -> int:
        """Retention: drop exposures older than the contagious period from every
        registration."""
        before = self.service.now_epoch() - self.service.scoring.retention_days * EPOCHS_PER_DAY
        removed = 0
        async for owners in self.store.iter_exposed():
            for owner in owners:
                removed += await self.store.purge_exposures(owner, before)
        return removed


async def _in_chunks(
    calls: Sequence[Callable[[], Coroutine[Any, Any, T]]], size: int = CONCURRENT_STORE_CALLS
) -> list[T]:
    """Run store calls at most ``size`` at a time (each independent of the others); their
    results in order. If one fails, the others of its chunk are cancelled and its error is
    raised, as one store call's would be (the report is then retried, idempotently)."""
    results: list[T] = []
    for start in range(0, len(calls), size):
        try:
            async with asyncio.TaskGroup() as group:
                tasks: list[asyncio.Task[T]] = [
                    group.create_task(call()) for call in calls[start : start + size]
                ]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        results += [task.result() for task in tasks]
    return results
