"""Two SI-VIC processes (two services on one database) registering the same person at once:
no key collision escapes (it was an IntegrityError on ``sivic_keys_pkey``, a 500 over HTTP,
in 2 runs of 3 on PostgreSQL), one patient in the end; and two updates of a known patient at
once are computed one after the other (the patient is locked), so a death sent twice at the
same moment counts once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kit.audit import Actor
from sivic.access import ADMIN, Access
from sivic.app import new_service
from sivic.intake import HEADER
from sivic.service import ImportReport, SivicService
from sivic.settings import Settings
from tests.sivic.conftest import NANTES, PITIE, SECRET, Clock

HEAD = ";".join(HEADER)
ADMIN_ACCESS = Access(ADMIN, "")
ROUNDS = 6


def nir(serial: int) -> str:
    """A NIR with its valid key (97 minus the number modulo 97)."""
    body = f"255081416{serial:04d}"
    return f"{body}{97 - int(body) % 97:02d}"


@pytest.fixture
async def two(database_url: str, clock: Clock) -> AsyncIterator[tuple[SivicService, ...]]:
    """Two services (as two processes) on one fresh database."""
    services = tuple(
        new_service(Settings(database=database_url, secret=SECRET), clock) for _ in range(2)
    )
    for s in services:
        await s.open()
    await services[0].covid_event()
    try:
        yield services
    finally:
        for s in services:
            await s.close()


async def at_once(
    services: tuple[SivicService, ...], files: list[str]
) -> list[ImportReport | BaseException]:
    return await asyncio.gather(
        *(
            s.import_text(ADMIN_ACCESS, Actor(f"process-{i}", ADMIN), text)
            for i, (s, text) in enumerate(zip(services, files, strict=True))
        ),
        return_exceptions=True,
    )


async def test_concurrent_first_registrations_make_one_patient(
    two: tuple[SivicService, ...],
) -> None:
    event = (await two[0].covid_event()).id
    for serial in range(ROUNDS):
        ins = nir(serial)
        paris = f"{HEAD}\n{PITIE};75;{ins};1955-08-14;M;crit;hospitalised;2020-04-01;for\n"
        nantes = f"{HEAD}\n{NANTES};44;{ins};1955-08-14;M;crit;hospitalised;2020-04-02;for\n"
        reports = await at_once(two, [paris, nantes])
        assert all(isinstance(r, ImportReport) for r in reports), reports
        assert await two[0].store.count_patients(event) == serial + 1
        done = [r for r in reports if isinstance(r, ImportReport)]
        assert sum(r.created for r in done) == 1
        # Nantes' later state wins whatever the order: Paris' is refused as older, or
        # replaced.
        assert sum(r.updated + len(r.refused) for r in done) == 1
        counts = await two[0].counts(ADMIN_ACCESS, dep="44")
        assert (counts["hosp"], counts["incid_hosp"]) == (serial + 1, 0)  # admitted 2020-04-01


async def test_concurrent_updates_see_each_other(two: tuple[SivicService, ...]) -> None:
    for serial in range(ROUNDS):
        ins = nir(100 + serial)
        line = f"{PITIE};75;{ins};1955-08-14;M;conv;{{}};{{}};for"
        admitted = await two[0].import_text(
            ADMIN_ACCESS, Actor("x", ADMIN), f"{HEAD}\n{line.format('hospitalised', '2020-04-01')}"
        )
        assert admitted.created == 1
        death = f"{HEAD}\n{line.format('deceased', '2020-04-02')}\n"
        reports = await at_once(two, [death, death])
        done = [r for r in reports if isinstance(r, ImportReport)]
        assert len(done) == 2, reports
        assert sorted((r.updated, r.unchanged) for r in done) == [(0, 1), (1, 0)]
        counts = await two[0].counts(ADMIN_ACCESS, dep="75", day=None)
        assert counts["dc"] == serial + 1
