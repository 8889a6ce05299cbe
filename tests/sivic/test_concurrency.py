"""Two SI-VIC processes (two services on one database) registering the same person at once:
no key collision escapes (it was an IntegrityError on ``sivic_keys_pkey``, a 500 over HTTP,
in 2 runs of 3 on PostgreSQL), one patient in the end; and two updates of a known patient at
once are computed one after the other (the patient is locked), so a death sent twice at the
same moment counts once. A collision still there after the retry is a 409, any other
database error a fault (500)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from kit.audit import Actor
from kit.http import Conflict
from sivic import store
from sivic.access import ADMIN, Access
from sivic.app import new_service
from sivic.intake import HEADER, parse_form
from sivic.model import Outcome, Source
from sivic.service import ImportReport, SivicService
from sivic.settings import Settings
from sivic.store import concurrent
from tests.sivic.conftest import NANTES, PITIE, SECRET, Clock

HEAD = ";".join(HEADER)
ADMIN_ACCESS = Access(ADMIN, "")
CONSOLE = Actor("console", ADMIN)
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


class PgError(Exception):
    """A driver's error carrying a SQLSTATE, as asyncpg's do."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def unique() -> sa.exc.DBAPIError:
    return sa.exc.IntegrityError("INSERT", None, PgError("23505"))


def deadlock() -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("UPDATE", None, PgError("40P01"))


def foreign_key() -> sa.exc.DBAPIError:
    return sa.exc.IntegrityError("INSERT", None, PgError("23503"))


async def test_collisions_are_retried_once_then_409_other_errors_are_faults(
    service: SivicService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A unique key taken meanwhile, a deadlock or a serialisation failure: run again once,
    then a 409 to send it again (a second deadlock was a 500). Any other IntegrityError (a
    foreign key...) is a fault of ours raised as it is, not a 409 "registered concurrently"."""
    registration = parse_form(
        {"finess": PITIE, "dep": "75", "birth_date": "1955-08-14", "sex": "M", "unit": "crit",
         "status": "hospitalised", "status_date": "2020-04-02", "covid": "for", "ins": nir(7)}
    )  # fmt: skip
    register = service.store._register
    for errors, expected, calls in (
        ([unique(), unique()], Conflict, 2),
        ([deadlock(), deadlock()], Conflict, 2),
        ([sa.exc.OperationalError("UPDATE", None, PgError("40001"))] * 2, Conflict, 2),
        ([deadlock(), unique()], Conflict, 2),
        ([foreign_key()], sa.exc.IntegrityError, 1),
        ([deadlock(), foreign_key()], sa.exc.IntegrityError, 2),
        ([deadlock()], None, 2),  # the second run goes through
    ):
        made: list[int] = []

        async def failing(*args: Any, errors: list[Any] = errors, made: list[int] = made) -> Any:
            made.append(1)
            if len(made) <= len(errors):
                raise errors[len(made) - 1]
            return await register(*args)

        monkeypatch.setattr(service.store, "_register", failing)
        if expected is None:
            result = await service.register(ADMIN_ACCESS, CONSOLE, registration, Source.FORM)
            assert result.outcome in (Outcome.CREATED, Outcome.UNCHANGED)
        else:
            with pytest.raises(expected):
                await service.register(ADMIN_ACCESS, CONSOLE, registration, Source.FORM)
        assert len(made) == calls, errors


async def test_a_real_unique_violation_is_concurrent_a_not_null_one_is_not(
    service: SivicService,
) -> None:
    """What the drivers raise (SQLSTATE 23505 on PostgreSQL, "UNIQUE constraint failed" on
    SQLite) is recognised; a NOT NULL violation is not."""
    event = await service.covid_event()
    at = datetime(2020, 4, 3, tzinfo=UTC)
    row = {"id": event.id, "kind": "epidemic", "name": "x", "opened_at": at, "opened_by": "t"}
    with pytest.raises(sa.exc.IntegrityError) as taken:
        async with service.store.db.begin() as conn:
            await conn.execute(sa.insert(store.events).values(**row))
    assert concurrent(taken.value)
    with pytest.raises(sa.exc.IntegrityError) as missing:
        async with service.store.db.begin() as conn:
            await conn.execute(sa.insert(store.events).values(**{**row, "id": None, "kind": None}))
    assert not concurrent(missing.value)
