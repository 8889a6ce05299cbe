"""The town: reproducible from its seed, with the contact patterns it promises."""

from __future__ import annotations

import numpy as np

from client_sim.epidemic import Epidemic, distance_weight
from client_sim.world import SLOTS_PER_DAY, Encounters, Kind, World, encounters

START = 3_981_772_800


def _day(seed: int, day: int = 0) -> tuple[np.ndarray, Encounters]:
    world = World(800, seed)
    plan = world.schedule(day, np.zeros(800, bool))
    met = Encounters.concat(
        [world.encounters(day, s, plan[s], START + s * 900) for s in range(SLOTS_PER_DAY)]
    )
    return plan, met


def test_same_seed_same_world() -> None:
    (plan_a, met_a), (plan_b, met_b) = _day(3), _day(3)
    assert np.array_equal(plan_a, plan_b)
    for name in ("a", "b", "start", "duration", "distance", "shadow_ab", "kind"):
        assert np.array_equal(getattr(met_a, name), getattr(met_b, name))
    _, other = _day(4)
    assert len(other) != len(met_a) or not np.array_equal(other.distance, met_a.distance)


def test_encounters_are_well_formed() -> None:
    world = World(800, 5)
    _, met = _day(5)
    assert len(met) > 0
    assert np.all(met.a < met.b)
    assert np.all((met.duration >= 60) & (met.duration <= 900))
    homes = met.kind == Kind.HOME
    assert np.all(world.home[met.a[homes]] == world.home[met.b[homes]])
    assert met.distance[homes].max() <= 2.5 * 2.5  # widened for further neighbours
    assert set(np.unique(met.kind)) >= {Kind.HOME, Kind.WORK}


def test_isolated_people_stay_home() -> None:
    world = World(500, 2)
    isolated = np.ones(500, bool)
    plan = world.schedule(1, isolated)
    assert np.array_equal(plan, np.broadcast_to(world.home, plan.shape))


def test_infection_needs_an_infectious_contact() -> None:
    epidemic = Epidemic(4, 1, START)
    epidemic.infected_at[:] = np.inf
    epidemic.infected_at[0] = START - 3 * 86_400  # infectious now
    met = encounters(
        a=[0, 2],
        b=[1, 3],
        start=[START] * 2,
        duration=[900] * 2,
        distance=[0.5, 0.5],
        shadow_ab=[0.0, 0.0],
        shadow_ba=[0.0, 0.0],
        kind=[0, 0],
        eid=[0, 1],
    )
    for slot in range(200):
        epidemic.transmit(met, slot, 0)
    assert np.isfinite(epidemic.infected_at[1])
    assert not np.isfinite(epidemic.infected_at[[2, 3]]).any()
    assert distance_weight(np.array([0.5, 2.0, 3.5])).tolist() == [1.0, 0.5, 0.0]


def test_the_log_is_narrow_and_finds_everyones_encounters() -> None:
    from client_sim.world import DTYPES, EncounterLog

    world = World(600, 7)
    log = EncounterLog()
    for day in range(2):
        plan = world.schedule(day, np.zeros(600, bool))
        for s in range(SLOTS_PER_DAY):
            log.add_slot(world.encounters(day, s, plan[s], START + (day * 96 + s) * 900))
        log.end_day(600)
    every = Encounters.concat(log.days)
    for name, dtype in DTYPES.items():
        assert getattr(every, name).dtype == dtype
    assert log.nbytes / len(every) < 40  # 27 bytes of columns, 8 of index, the offsets
    assert np.array_equal(every.eid, np.arange(len(every)))
    for person in (0, 17, 599):
        mine = log.of_person(person, START + 3600, START + 2 * 86_400 - 3600)
        expected = every.take(
            ((every.a == person) | (every.b == person))
            & (every.start >= START + 3600)
            & (every.start < START + 2 * 86_400 - 3600)
        )
        assert sorted(mine.eid.tolist()) == sorted(expected.eid.tolist())


def test_someone_staying_home_changes_only_their_neighbours_encounters() -> None:
    """Draws are hashed per person and pair: the run with the app and the run without it
    differ where the app changed something, not everywhere."""
    world = World(800, 9)
    plan = world.schedule(0, np.zeros(800, bool))
    slot = 40  # mid-morning: people at work and school
    away = plan[slot].copy()
    gone = int(np.flatnonzero(world.role == 0)[0])  # a worker
    away[gone] = world.home[gone]
    met = world.encounters(0, slot, plan[slot], START)
    pairs = {tuple(p) for p in np.column_stack([met.a, met.b]).tolist()}
    other = world.encounters(0, slot, away, START)
    changed = pairs ^ {tuple(p) for p in np.column_stack([other.a, other.b]).tolist()}
    assert len(pairs) > 100
    assert 0 < len(changed) <= 12  # the worker's own pairs, and their layout neighbours'
