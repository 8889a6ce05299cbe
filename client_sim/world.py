"""A synthetic town, vectorised: people, places, daily schedules, and who is near whom.

Everyone has a home (households of 1 to 5); workers have a team at a workplace, pupils a class;
some commute by train at rush hour (strangers in a car); people go out to leisure places in the
evening and at weekends. Time moves in 15-minute slots (one epoch). In each slot, the people in
the same place are laid out in a random order and each is near its next few neighbours in that
order with a probability that depends on the kind of place; each near pair gets a distance, a
contiguous stretch of minutes within the slot and a body-shadowing draw per direction: one
``Encounters`` row. That table is the ground truth; what phones hear is derived from it by
``client_sim.radio``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from client_sim.radio import MODEL_SHARES, RadioConfig, splitmix64, uniform
from protocol.epochs import EPOCH_DURATION, EPOCHS_PER_DAY

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]
U32 = npt.NDArray[np.uint32]
U16 = npt.NDArray[np.uint16]
U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F16 = npt.NDArray[np.float16]

SLOT = EPOCH_DURATION
"""A slot of the simulated day is one protocol epoch (15 minutes)."""
SLOTS_PER_DAY = EPOCHS_PER_DAY
ALONE = -1
ON_TRAIN = -2
"""Schedule markers: not near anyone (driving, walking), and on a train (car drawn per slot)."""


class Kind(IntEnum):
    """Kinds of place; each has its own contact pattern."""

    HOME = 0
    WORK = 1
    SCHOOL = 2
    LEISURE = 3
    TRAIN = 4


class Role(IntEnum):
    """What a person does on a weekday."""

    WORKER = 0
    PUPIL = 1
    HOME = 2


@dataclass(frozen=True, slots=True)
class Contact:
    """Contact pattern of a kind of place."""

    neighbours: int
    """Each person can be near this many next people in the place's random layout."""
    p_near: float
    """Chance that two neighbours are near during a slot."""
    distance: tuple[float, float]
    """Uniform range of the distance of near neighbours (m), widened for further neighbours."""
    full_slot: float
    """Chance a near pair stays near the whole slot (else a random stretch of it)."""


@dataclass(frozen=True, slots=True)
class WorldConfig:
    """Parameters of the town; defaults give plausible, not calibrated, contact patterns."""

    household_shares: tuple[float, ...] = (0.35, 0.33, 0.14, 0.12, 0.06)
    """Share of households of 1, 2, 3, 4, 5 people."""
    role_shares: tuple[float, float, float] = (0.5, 0.2, 0.3)
    """Workers, pupils, people at home on weekdays."""
    team_size: tuple[int, int] = (4, 14)
    class_size: int = 25
    train_share: float = 0.3
    """Share of workers and pupils who commute by train."""
    train_car: int = 60
    """People per train car."""
    people_per_leisure_place: int = 40
    evening_out: float = 0.2
    """Chance a person goes out on a weekday evening."""
    weekend_out: float = 0.5
    daytime_out: float = 0.3
    """Chance a person at home goes to a shop or café during a weekday."""
    home_night_near: float = 0.15
    """Household near probability per slot at night (everyone else asleep in other rooms)."""
    contacts: dict[Kind, Contact] = field(
        default_factory=lambda: {
            Kind.HOME: Contact(4, 0.45, (0.3, 2.5), 0.6),
            Kind.WORK: Contact(3, 0.3, (1.0, 5.0), 0.4),
            Kind.SCHOOL: Contact(3, 0.5, (0.6, 3.0), 0.5),
            Kind.LEISURE: Contact(3, 0.6, (0.5, 3.0), 0.5),
            Kind.TRAIN: Contact(2, 0.9, (0.4, 1.5), 0.9),
        }
    )


@dataclass(frozen=True, slots=True)
class Encounters:
    """Pairs near each other: one row per pair and slot (the ground truth).

    Narrow types (27 bytes a row instead of 72 in int64/float64): a town of 250,000 people
    meets about 9 million times a day, and the log keeps 14 days of it. Readers widen the
    columns they compute with (``np.int64``/``np.float64``) where sums or differences could
    overflow an unsigned type.
    """

    a: I32
    b: I32
    start: U32
    """NTP seconds the pair comes near (NTP seconds fit 32 bits until 2036)."""
    duration: U16
    """Seconds they stay near (within one slot)."""
    distance: F32
    shadow_ab: F16
    """Body attenuation (dB) on a's HELLOs as b hears them (3-15 dB: float16 keeps 0.01 dB)."""
    shadow_ba: F16
    kind: U8
    eid: U32
    """Encounter ids, unique in a run: they key the radio's random draws."""

    def __len__(self) -> int:
        return len(self.a)

    def take(self, rows: npt.NDArray[np.integer[Any]] | Bools) -> Encounters:
        """The subset of rows."""
        return Encounters(*(getattr(self, f)[rows] for f in _FIELDS))

    @staticmethod
    def concat(parts: list[Encounters]) -> Encounters:
        """All rows of several tables."""
        if not parts:
            return empty_encounters()
        return Encounters(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    @property
    def nbytes(self) -> int:
        """Bytes of the table's columns."""
        return sum(getattr(self, f).nbytes for f in _FIELDS)


_FIELDS = ("a", "b", "start", "duration", "distance", "shadow_ab", "shadow_ba", "kind", "eid")
DTYPES = {
    "a": np.int32,
    "b": np.int32,
    "start": np.uint32,
    "duration": np.uint16,
    "distance": np.float32,
    "shadow_ab": np.float16,
    "shadow_ba": np.float16,
    "kind": np.uint8,
    "eid": np.uint32,
}
"""Column types of ``Encounters``."""
MAX_EIDS = 2**32
"""Encounters a run can number (250,000 people x 14 days make about 125 million)."""


def encounters(**columns: Any) -> Encounters:
    """An ``Encounters`` table from columns of any numeric type, cast to the table's types."""
    return Encounters(*(np.asarray(columns[f]).astype(DTYPES[f]) for f in _FIELDS))


def empty_encounters() -> Encounters:
    """A table with no rows."""
    return Encounters(*(np.zeros(0, DTYPES[f]) for f in _FIELDS))


class World:
    """The population and its places; builds schedules and encounters, day by day."""

    def __init__(
        self,
        n: int,
        seed: int,
        config: WorldConfig | None = None,
        radio: RadioConfig | None = None,
    ) -> None:
        self.n = n
        self.seed = seed
        self.config = config or WorldConfig()
        self.radio = radio or RadioConfig()
        rng = np.random.default_rng([seed, 1])
        c = self.config
        sizes = rng.choice(np.arange(1, 6), size=n, p=np.array(c.household_shares))
        sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
        self.home = np.repeat(np.arange(len(sizes)), sizes)[:n].astype(np.int64)
        self.role = rng.choice(3, size=n, p=np.array(c.role_shares)).astype(np.int64)
        self.model = rng.choice(len(MODEL_SHARES), size=n, p=np.array(MODEL_SHARES))
        self.model = self.model.astype(np.int64)
        n_homes = int(self.home.max()) + 1 if n else 0
        workers = np.flatnonzero(self.role == Role.WORKER)
        pupils = np.flatnonzero(self.role == Role.PUPIL)
        team_of = _groups(rng, len(workers), c.team_size)
        class_of = _groups(rng, len(pupils), (c.class_size, c.class_size + 1))
        n_teams = int(team_of.max()) + 1 if len(workers) else 0
        n_classes = int(class_of.max()) + 1 if len(pupils) else 0
        n_leisure = max(1, n // c.people_per_leisure_place)
        self.bases = np.cumsum([0, n_homes, n_teams, n_classes, n_leisure])
        """First place id of each kind (HOME, WORK, SCHOOL, LEISURE, then TRAIN cars)."""
        self.daytime = np.full(n, ALONE, dtype=np.int64)
        self.daytime[workers] = self.bases[Kind.WORK] + team_of
        self.daytime[pupils] = self.bases[Kind.SCHOOL] + class_of
        self.by_train = (self.role != Role.HOME) & (rng.random(n) < c.train_share)
        # Habits: each person's usual start of day and length of day, in slots.
        self.day_start = np.where(
            self.role == Role.WORKER, rng.integers(28, 40, n), rng.integers(33, 35, n)
        )
        self.day_length = np.where(
            self.role == Role.WORKER, rng.integers(30, 38, n), rng.integers(28, 32, n)
        )
        popularity = rng.pareto(1.5, n_leisure) + 1.0
        self.leisure_cdf = np.cumsum(popularity) / popularity.sum()
        self.status_slot = rng.integers(0, SLOTS_PER_DAY, n)
        """Slot of the day at which each phone asks for its status."""
        self._next_eid = 0

    @property
    def n_households(self) -> int:
        """How many homes."""
        return int(self.bases[Kind.HOME + 1])

    def kind_of(self, places: Ints) -> Ints:
        """Kind of each place id (train cars are everything above the static places)."""
        kinds = np.searchsorted(self.bases, places, side="right") - 1
        return np.minimum(kinds, Kind.TRAIN)

    # --- schedules ---------------------------------------------------------------------------
    def schedule(self, day: int, isolated: Bools) -> Ints:
        """Place of every person in every slot of ``day``: shape (96, n).

        Isolated people stay home all day (their household is still around them).
        """
        c, n = self.config, self.n
        rng = np.random.default_rng([self.seed, 2, day])
        slots = np.arange(SLOTS_PER_DAY)[:, None]
        plan = np.broadcast_to(self.home, (SLOTS_PER_DAY, n)).copy()
        free = ~isolated
        weekday = day % 7 < 5
        if weekday:
            start = self.day_start + rng.integers(-1, 2, n)
            end = start + self.day_length
            away = free & (self.role != Role.HOME)
            at_day = away & (slots >= start) & (slots < end)
            plan = np.where(at_day, self.daytime, plan)
            commute = away & (
                ((slots >= start - 2) & (slots < start)) | ((slots >= end) & (slots < end + 2))
            )
            on_train = commute & self.by_train
            plan = np.where(commute & ~self.by_train, ALONE, plan)
            plan = np.where(on_train, ON_TRAIN, plan)
            shop = free & (self.role == Role.HOME) & (rng.random(n) < c.daytime_out)
            self._go_out(plan, rng, shop, rng.integers(36, 64, n), 4, slots)
            evening = free & (rng.random(n) < c.evening_out)
            self._go_out(plan, rng, evening, rng.integers(76, 82, n), 8, slots)
        else:
            out = free & (rng.random(n) < c.weekend_out)
            self._go_out(plan, rng, out, rng.integers(52, 80, n), 10, slots)
        return plan

    def _go_out(
        self,
        plan: Ints,
        rng: np.random.Generator,
        who: Bools,
        start: Ints,
        length: int,
        slots: Ints,
    ) -> None:
        place = self.bases[Kind.LEISURE] + np.searchsorted(self.leisure_cdf, rng.random(self.n))
        span = who & (slots >= start) & (slots < start + rng.integers(length // 2, length + 1))
        np.copyto(plan, np.broadcast_to(place, plan.shape), where=span)

    # --- encounters --------------------------------------------------------------------------
    def encounters(self, day: int, slot: int, places: Ints, slot_start: int) -> Encounters:
        """Pairs near each other in one slot, given everyone's place (a row of a schedule)."""
        # Draws are hashed from (seed, day, slot, person or pair), not taken from a stream:
        # someone staying home changes the encounters of the people next to them only, so a
        # run with the app and the run without it differ by what the app did, not by noise.
        key = slot_key(self.seed, day, slot)
        everyone = np.arange(self.n, dtype=np.uint64)
        places = places.copy()
        riders = np.flatnonzero(places == ON_TRAIN)
        if len(riders):
            cars = -(-len(riders) // self.config.train_car)
            car = (uniform(_mix(key, everyone[riders]), 1) * cars).astype(np.int64)
            places[riders] = self.bases[Kind.LEISURE + 1] + car
        present = np.flatnonzero(places >= 0)
        if len(present) < 2:
            return empty_encounters()
        order = uniform(_mix(key, everyone[present]), 2)
        layout = present[np.lexsort((order, places[present]))]
        where = places[layout]
        kind_sorted = self.kind_of(where)
        contacts = self.config.contacts
        reach = np.array([contacts[Kind(k)].neighbours for k in range(len(Kind))])
        p_near = np.array([contacts[Kind(k)].p_near for k in range(len(Kind))])
        night = slot < 28 or slot >= 92
        if night:
            p_near[Kind.HOME] = self.config.home_night_near
        lo = np.array([contacts[Kind(k)].distance[0] for k in range(len(Kind))])
        hi = np.array([contacts[Kind(k)].distance[1] for k in range(len(Kind))])
        full = np.array([contacts[Kind(k)].full_slot for k in range(len(Kind))])
        a_parts, b_parts, gap_parts = [], [], []
        for gap in range(1, int(reach.max()) + 1):
            same = where[:-gap] == where[gap:]
            ok = same & (reach[kind_sorted[:-gap]] >= gap)
            a_parts.append(layout[:-gap][ok])
            b_parts.append(layout[gap:][ok])
            gap_parts.append(np.full(int(ok.sum()), gap, dtype=np.int64))
        a, b, gap_arr = (np.concatenate(p) for p in (a_parts, b_parts, gap_parts))
        kind = self.kind_of(places[a])
        a, b = np.minimum(a, b), np.maximum(a, b)
        pair = pair_keys(key, a, b)
        near = uniform(pair, 3) < p_near[kind]
        a, b, gap_arr, kind, pair = a[near], b[near], gap_arr[near], kind[near], pair[near]
        m = len(a)
        spread = lo[kind] + (hi[kind] - lo[kind]) * uniform(pair, 4)
        distance = spread * (1.0 + 0.5 * (gap_arr - 1))
        partial = 1 + (uniform(pair, 6) * 14).astype(np.int64)
        minutes = np.where(uniform(pair, 5) < full[kind], 15, partial).astype(np.int64)
        offset = (uniform(pair, 7) * (16 - minutes)).astype(np.int64)
        start = slot_start + offset * 60
        shadow_ab = hashed_shadow(pair, 8, self.radio)
        shadow_ba = hashed_shadow(pair, 10, self.radio)
        if self._next_eid + m > MAX_EIDS:
            raise OverflowError("more encounters than 32-bit ids can number: a shorter run")
        eid = np.arange(self._next_eid, self._next_eid + m, dtype=np.int64)
        self._next_eid += m
        return encounters(
            a=a,
            b=b,
            start=start,
            duration=minutes * 60,
            distance=distance,
            shadow_ab=shadow_ab,
            shadow_ba=shadow_ba,
            kind=kind,
            eid=eid,
        )


def slot_key(seed: int, day: int, slot: int) -> np.uint64:
    """The hash key of one slot of a run."""
    base = splitmix64(np.array([seed], dtype=np.uint64))
    return np.uint64(splitmix64(base ^ np.uint64(day * SLOTS_PER_DAY + slot + (1 << 40)))[0])


def _mix(key: np.uint64, values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    return splitmix64(values ^ key)


def pair_keys(key: np.uint64, a: Ints, b: Ints) -> npt.NDArray[np.uint64]:
    """The hash key of each pair (a < b) in the slot ``key``."""
    packed = (a.astype(np.uint64) << np.uint64(32)) | b.astype(np.uint64)
    return splitmix64(splitmix64(packed) ^ key)


def hashed_shadow(keys: npt.NDArray[np.uint64], stream: int, config: RadioConfig) -> Floats:
    """``radio.draw_shadow`` with hashed draws (streams ``stream`` and ``stream + 1``)."""
    low, high = config.shadow_db
    body = uniform(keys, stream) < config.shadow_probability
    return np.where(body, low + (high - low) * uniform(keys, stream + 1), 0.0)


def _groups(rng: np.random.Generator, count: int, size: tuple[int, int]) -> Ints:
    """Split ``count`` people, in random order, into groups of random sizes in ``size``."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = rng.integers(size[0], size[1], count // size[0] + 1)
    labels = np.repeat(np.arange(len(sizes)), sizes)[:count]
    return labels[rng.permutation(count)].astype(np.int64)


class EncounterLog:
    """Encounters of the run, by day, with a per-person index to find anyone's quickly.

    The index of a day is a CSR over both ends of each row: ``rows[offsets[p]:offsets[p + 1]]``
    are the rows person ``p`` is in (int32: 8 bytes per encounter for its two ends).
    """

    def __init__(self) -> None:
        self.days: list[Encounters] = []
        self._index: list[tuple[I32, Ints]] = []
        self._today: list[Encounters] = []

    def add_slot(self, table: Encounters) -> None:
        """Keep one slot's encounters (searchable at once, indexed at the end of the day)."""
        self._today.append(table)

    def end_day(self, n: int) -> Encounters:
        """Close the day: one table for it, its rows indexed by person (a CSR over both ends)."""
        table = Encounters.concat(self._today)
        self._today = []
        self.days.append(table)
        people = np.concatenate([table.a, table.b])
        order = np.argsort(people, kind="stable")
        rows = (order % max(1, len(table))).astype(np.int32)
        offsets = np.searchsorted(people[order], np.arange(n + 1)).astype(np.int64)
        self._index.append((rows, offsets))
        return table

    @property
    def nbytes(self) -> int:
        """Bytes of the tables and their indexes (the days closed so far)."""
        tables = sum(t.nbytes for t in self.days)
        return tables + sum(r.nbytes + o.nbytes for r, o in self._index)

    def of_person(self, person: int, since: int, until: int) -> Encounters:
        """Every encounter of ``person`` that started in [since, until)."""
        parts = []
        for table, (rows, offsets) in zip(self.days, self._index, strict=True):
            if len(table) == 0 or table.start.min() >= until or table.start.max() < since:
                continue
            parts.append(table.take(rows[offsets[person] : offsets[person + 1]]))
        for table in self._today:
            parts.append(table.take((table.a == person) | (table.b == person)))
        met = Encounters.concat(parts)
        return met.take((met.start >= since) & (met.start < until))
