"""The service on both databases: updates and their history, staleness, tension figures of
a territory, the nearest free bed, the daily figures, and scope refusals."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from beds.access import Access
from beds.model import BedKind, Counts, Source
from beds.service import BedService
from beds.store import NewUpdate
from beds.territory import parse_territory
from kit.audit import Actor, AuditFilter
from kit.http import BadRequest, Forbidden, NotFound, Unprocessable
from tests.beds.conftest import BICETRE, NANTES, PITIE, Clock

STAFF = Access("staff", f"finess:{PITIE}")
NATIONAL = Access("national", "national")
ALICE = Actor("alice", "staff")


async def rea_of(service: BedService, finess: str) -> int:
    unit = await service.store.unit_by_code(finess, "REA")
    assert unit is not None
    return unit.id


async def test_update_history_current_and_audit(service: BedService, clock: Clock) -> None:
    unit = await rea_of(service, PITIE)
    first = await service.update(STAFF, ALICE, unit, Counts(110, 0, 100, 10, 40), Source.FORM)
    clock.advance(60)
    await service.update(STAFF, ALICE, unit, Counts(110, 0, 101, 9, 41), Source.API)
    # A late update (older than the current counts) joins the history, changes nothing now.
    late = datetime.fromtimestamp(clock() - 30, UTC)
    await service.update(STAFF, ALICE, unit, Counts(110, 0, 99, 11, 39), Source.FILE, late)
    state = await service.unit_state(STAFF, unit)
    assert state.counts == Counts(110, 0, 101, 9, 41) and state.source == "api"
    history = await service.history(STAFF, unit)
    assert [h.counts.occupied for h in history] == [101, 99, 100]
    assert history[-1].id == first.id and history[-1].actor == "alice"
    audit = await service.store.audit.query(
        service.store.db, AuditFilter(object_type="unit", object_id=str(unit))
    )
    assert len([e for e in audit if e.action == "update"]) == 3


async def test_refusals(service: BedService) -> None:
    unit = await rea_of(service, PITIE)
    with pytest.raises(Unprocessable, match="COVID patients cannot exceed occupied beds"):
        await service.update(STAFF, ALICE, unit, Counts(10, 0, 2, 2, 3), Source.FORM)
    other = await rea_of(service, BICETRE)
    with pytest.raises(NotFound):  # another establishment's unit: as if it did not exist
        await service.update(STAFF, ALICE, other, Counts(10, 0, 2, 2, 1), Source.FORM)
    with pytest.raises(Forbidden):
        await service.tension(STAFF, "dep:75")
    with pytest.raises(Forbidden):
        await service.tension(Access("ars", "reg:52"), "reg:11")
    with pytest.raises(BadRequest):
        await service.tension(NATIONAL, "reg:99")


async def test_staleness_after_the_configured_age(service: BedService, clock: Clock) -> None:
    unit = await rea_of(service, PITIE)
    await service.update(STAFF, ALICE, unit, Counts(110, 0, 100, 10, 40), Source.FORM)
    assert not service.is_stale(await service.unit_state(STAFF, unit))
    clock.advance(3601)  # the fixture's settings: stale after 60 minutes
    assert service.is_stale(await service.unit_state(STAFF, unit))
    figures = await service.tension(NATIONAL, "dep:75")
    units_75 = len([s for s in await service.store.states(departements=["75"])])
    assert figures["stale_units"] == units_75


async def test_tension_of_a_territory_matches_the_contract(
    service: BedService, clock: Clock
) -> None:
    pitie, bicetre = await rea_of(service, PITIE), await rea_of(service, BICETRE)
    await service.update(NATIONAL, ALICE, pitie, Counts(110, 30, 130, 10, 120), Source.API)
    await service.update(NATIONAL, ALICE, bicetre, Counts(56, 0, 50, 6, 20), Source.API)
    figures = await service.tension(NATIONAL, "dep:75")
    initial_75 = sum(
        s.unit.initial
        for s in await service.store.states(departements=["75"])
        if s.unit.kind is BedKind.REA
    )
    assert figures == {
        "territory": "dep:75",
        "covid_critical": 120,
        "initial_capacity": initial_75,
        "tension_rate": round(120 / initial_75, 4),
        "occupied": 130,
        "available": 10,
        "stale_units": figures["stale_units"],
        "as_of": "2026-12-10T04:08:00Z",
    }
    region = await service.tension(Access("ars", "reg:11"), "reg:11")
    assert region["covid_critical"] == 140 and region["occupied"] == 180


async def test_nearest_free_bed_of_a_kind(service: BedService) -> None:
    pitie, bicetre, nantes = [await rea_of(service, f) for f in (PITIE, BICETRE, NANTES)]
    await service.update(NATIONAL, ALICE, pitie, Counts(110, 0, 110, 0, 50), Source.API)
    await service.update(NATIONAL, ALICE, bicetre, Counts(56, 0, 50, 2, 20), Source.API)
    await service.update(NATIONAL, ALICE, nantes, Counts(54, 0, 40, 14, 2), Source.API)
    samu = Access("samu", "dep:75")
    lat, lon = await service.origin_of_postcode("75013")  # the Pitié's own postcode
    found = await service.nearest(samu, BedKind.REA, lat, lon, 5)
    # The Pitié is full: Bicêtre (3.4 km) first, then Nantes (about 343 km).
    assert [f.state.unit.finess for f in found] == [BICETRE, NANTES]
    assert found[0].km == pytest.approx(3.4, abs=0.2)
    assert found[1].km == pytest.approx(343, abs=5)
    with pytest.raises(Forbidden):
        await service.nearest(STAFF, BedKind.REA, lat, lon)
    with pytest.raises(BadRequest):
        await service.origin_of_postcode("7501")


async def test_daily_figures_give_the_trend(service: BedService, clock: Clock) -> None:
    pitie = await rea_of(service, PITIE)
    for day, covid in enumerate((20, 40, 60)):
        await service.update(NATIONAL, ALICE, pitie, Counts(110, 0, 100, 10, covid), Source.API)
        await service.snapshot()
        if day < 2:
            clock.advance(86400)
    board = await service.dashboard(NATIONAL, "dep:75")
    initial = board.total.initial_capacity
    assert board.series[-3:] == [pytest.approx(c / initial) for c in (20, 40, 60)]
    assert board.series[:4] == [None] * 4


async def test_file_is_all_or_nothing(service: BedService) -> None:
    good = f"finess;unit;installed;surge;occupied;available;covid\n{PITIE};REA;110;0;100;10;5\n"
    assert len(await service.import_file(STAFF, ALICE, good)) == 1
    bad = good + f"{BICETRE};REA;56;0;50;6;5\n"
    with pytest.raises(Unprocessable, match=f"line 3: no unit REA of {BICETRE}"):
        await service.import_file(STAFF, ALICE, bad)
    assert len(await service.history(STAFF, await rea_of(service, PITIE))) == 1


async def test_sums_in_sql_equal_the_python_reference(service: BedService, clock: Clock) -> None:
    """The database's GROUP BY gives, département by département, what ``tension`` computes
    over every unit's state: updated units, never-updated ones, stale ones, surge beds."""
    rng = random.Random(19)
    states = await service.store.states()
    for i, s in enumerate(states):
        if i % 4 == 3:
            continue  # never updated
        installed = rng.randint(1, 60)
        surge = rng.randint(0, 10)
        occupied = rng.randint(0, installed + surge)
        counts = Counts(installed, surge, occupied, installed + surge - occupied, occupied // 2)
        await service.update(NATIONAL, ALICE, s.unit.id, counts, Source.API)
        if i % 4 == 0:
            clock.advance(1000)  # the earliest ones end up stale (60 minutes)
    france = parse_territory("fr")
    service.in_sql = False
    reference = await service.by_departement(france)
    service.in_sql = True
    summed = await service.by_departement(france)
    assert summed == reference
    assert sum(t.stale_units for t in summed.values()) > len(states) // 4  # some stale
    region = await service.dashboard(NATIONAL, "reg:11")
    service.in_sql = False
    assert (await service.dashboard(NATIONAL, "reg:11")).rows == region.rows


async def test_figures_reused_until_an_update_or_their_age(
    service: BedService, clock: Clock
) -> None:
    pitie = await rea_of(service, PITIE)
    before = await service.tension(NATIONAL, "dep:75")
    assert await service.tension(NATIONAL, "dep:75") == before  # reused, same figures
    # An update recorded here shows at once (read your writes).
    await service.update(NATIONAL, ALICE, pitie, Counts(110, 0, 100, 10, 77), Source.API)
    after = await service.tension(NATIONAL, "dep:75")
    assert after["covid_critical"] == 77
    # Staleness moves with time even when nothing is recorded: the reuse is bounded in age.
    clock.advance(3601)
    assert (await service.tension(NATIONAL, "dep:75"))["stale_units"] > after["stale_units"]


async def test_concurrent_updates_commit_together_each_with_its_actor(
    service: BedService,
) -> None:
    pitie, bicetre = await rea_of(service, PITIE), await rea_of(service, BICETRE)
    bob = Actor("bob", "staff")
    version = service.store.version
    now = service.now()
    done = await asyncio.gather(
        service.store.submit([NewUpdate(pitie, Counts(110, 0, 100, 10, 1), now, "api")], ALICE),
        service.store.submit([NewUpdate(bicetre, Counts(56, 0, 50, 6, 2), now, "form")], bob),
        service.store.submit([NewUpdate(pitie, Counts(110, 0, 101, 9, 3), now, "api")], ALICE),
    )
    # Submitted before the writer ran: one transaction (one write of the store) for all.
    assert service.store.version == version + 1
    assert [[u.actor for u in d] for d in done] == [["alice"], ["bob"], ["alice"]]
    assert (await service.unit_state(NATIONAL, pitie)).counts == Counts(110, 0, 101, 9, 3)
    assert [h.actor for h in await service.history(NATIONAL, bicetre)] == ["bob"]
    audit = await service.store.audit.query(service.store.db, AuditFilter(object_type="unit"))
    updates = [(e.actor, e.object_id) for e in audit if e.action == "update"]
    assert sorted(updates) == sorted(
        [("alice", str(pitie)), ("bob", str(bicetre)), ("alice", str(pitie))]
    )


async def test_a_failing_group_fails_only_its_faulty_caller(service: BedService) -> None:
    pitie = await rea_of(service, PITIE)
    now = service.now()
    good = [NewUpdate(pitie, Counts(110, 0, 100, 10, 5), now, "api")]
    missing = [NewUpdate(999_999, Counts(1, 0, 1, 0, 0), now, "api")]  # no such unit
    first, second, third = await asyncio.gather(
        service.store.submit(good, ALICE),
        service.store.submit(missing, ALICE),
        service.store.submit(good, ALICE),
        return_exceptions=True,
    )
    assert isinstance(first, list) and isinstance(third, list)
    assert isinstance(second, Exception)
    assert len(await service.history(NATIONAL, pitie)) == 2


async def test_past_days_reused_for_a_minute_unless_snapshot_here(
    service: BedService, clock: Clock
) -> None:
    pitie = await rea_of(service, PITIE)
    await service.update(NATIONAL, ALICE, pitie, Counts(110, 0, 100, 10, 40), Source.API)
    yesterday = service.now().date() - timedelta(days=1)
    await service.snapshot(yesterday)
    first = (await service.dashboard(NATIONAL, "dep:75")).series[-2]
    assert first is not None
    # Another process keeps different figures for yesterday: seen within a minute.
    figures = await service.by_departement(parse_territory("dep:75"))
    doubled = {d: replace(t, covid_critical=2 * t.covid_critical) for d, t in figures.items()}
    await service.store.put_daily(yesterday, doubled, service.now())
    assert (await service.dashboard(NATIONAL, "dep:75")).series[-2] == first
    clock.advance(61)
    assert (await service.dashboard(NATIONAL, "dep:75")).series[-2] == pytest.approx(2 * first)
    # A snapshot taken here is seen at once.
    await service.snapshot(yesterday)
    assert (await service.dashboard(NATIONAL, "dep:75")).series[-2] == pytest.approx(first)


async def test_nearest_from_positions_equals_the_reference(service: BedService) -> None:
    rng = random.Random(7)
    for s in await service.store.states(kind=BedKind.REA):
        free = rng.randint(0, 3)
        counts = Counts(20, 0, 20 - free, free, 0)
        await service.update(NATIONAL, ALICE, s.unit.id, counts, Source.API)
    samu = Access("samu", "dep:75")
    for lat, lon in ((48.84, 2.36), (43.3, 5.4), (47.2, -1.55)):
        found = await service.nearest(samu, BedKind.REA, lat, lon, 8)
        service.in_sql = False
        reference = await service.nearest(samu, BedKind.REA, lat, lon, 8)
        service.in_sql = True
        assert [(f.state.unit.id, f.km) for f in found] == [
            (f.state.unit.id, f.km) for f in reference
        ]
        assert len(found) == 8 and all(f.state.counts and f.state.counts.available for f in found)
