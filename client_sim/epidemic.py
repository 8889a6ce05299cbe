"""An epidemic spreading along the ground-truth encounters, with testing and isolation.

Infection passes during encounters with a probability per minute of close contact, weighted by
distance (full weight within 1 m, fading to nothing at 3 m) and by how infectious the source is
that day. Infectiousness follows the generation-time distribution of Ferretti et al. (Science
2020): a Weibull of mean 5.0 days and standard deviation 1.9 days (shape 2.826, scale 5.665),
scaled to 1 at its peak (4.9 days after infection). A share of infected people get tested and
receive a positive result a uniformly drawn delay after infection. People who test positive,
and people the app warns, isolate (stay home) with some adherence. Who infected whom, and where,
is kept: the reproduction number and the generation interval are measured on that tree
(``client_sim.measures``). Nothing here knows about phones: the simulator decides who reports and
who is warned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from client_sim.radio import uniform
from client_sim.world import Encounters, pair_keys, slot_key

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
DAY = 86_400
NEVER = np.inf
NOBODY = -1
"""Infector of the people infected before the run (and of those never infected)."""

WEIBULL_SHAPE = 2.826
WEIBULL_SCALE = 5.665
"""Generation time of Ferretti et al. 2020 (Weibull, days): mean 5.05, sd 1.93, median 4.98."""
INFECTIOUS_DAYS = 14.0
"""Infectiousness is cut off after this (the Weibull keeps 0.05 % of its weight beyond)."""


@dataclass(frozen=True, slots=True)
class EpidemicConfig:
    """Parameters of the disease and of people's behaviour (defaults: ``autumn-2020``)."""

    beta: float = 0.001
    """Probability of infection per minute of close contact (within 1 m) with someone at the
    peak of their infectiousness."""
    initial_infected: float = 0.005
    """Share of people infected (at random times in the five days before the start)."""
    generation_shape: float = WEIBULL_SHAPE
    generation_scale: float = WEIBULL_SCALE
    """Weibull infectiousness profile (days since infection)."""
    test_share: float = 0.5
    """Share of infected people who get tested (the others never know)."""
    test_delay_days: tuple[float, float] = (5.0, 9.0)
    """Uniform range of the time from infection to a positive result: an incubation of about
    5 days, then 1-3 days to be sampled and to get the result."""
    adherence: float = 0.7
    """Chance that a warned or positive person isolates."""
    isolation_days: float = 7.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named epidemic: its transmissibility and what it stands for."""

    name: str
    beta: float
    description: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "unmitigated",
            0.0018,
            "contacts as before the epidemic, nobody masked: R about 2 without tests "
            "(Ferretti et al. 2020: R0 = 2.0)",
        ),
        Scenario(
            "autumn-2020",
            0.001,
            "France, September-October 2020: masks, distancing, positives isolating; R about "
            "1.3 with the tests and isolation of the time (the default)",
        ),
    )
}
DEFAULT_SCENARIO = "autumn-2020"


def scenario_config(name: str, base: EpidemicConfig | None = None) -> EpidemicConfig:
    """``base`` (default: the defaults) with the scenario's transmissibility."""
    return replace(base or EpidemicConfig(), beta=SCENARIOS[name].beta)


def distance_weight(distance: Floats) -> Floats:
    """Weight of a minute at this distance: 1 within 1 m, linearly down to 0 at 3 m."""
    return np.clip((3.0 - distance) / 2.0, 0.0, 1.0)


def generation_density(days: Floats, shape: float, scale: float) -> Floats:
    """Weibull density of the generation time (per day)."""
    t = np.maximum(days, 0.0) / scale
    return np.where(days > 0, shape / scale * t ** (shape - 1) * np.exp(-(t**shape)), 0.0)


def infectiousness(days: Floats, shape: float, scale: float) -> Floats:
    """Relative infectiousness ``days`` after infection: the generation-time density scaled to
    1 at its peak, 0 before infection and after ``INFECTIOUS_DAYS``."""
    mode = scale * ((shape - 1) / shape) ** (1 / shape)
    peak = float(generation_density(np.array([mode]), shape, scale)[0])
    live = (days > 0) & (days < INFECTIOUS_DAYS)
    return np.where(live, generation_density(days, shape, scale) / peak, 0.0)


def mean_generation_days(shape: float, scale: float) -> float:
    """Mean of the Weibull generation time."""
    return scale * math.gamma(1 + 1 / shape)


class Epidemic:
    """Who is infected since when and by whom, who tests positive when, who isolates until."""

    def __init__(self, n: int, seed: int, start: int, config: EpidemicConfig | None = None):
        self.n = n
        self.seed = seed
        self.start = start
        self.config = config or EpidemicConfig()
        rng = np.random.default_rng([seed, 10])
        c = self.config
        self.infected_at = np.full(n, NEVER)
        self.infector = np.full(n, NOBODY, dtype=np.int32)
        """Who infected each person (``NOBODY`` for the initial infections)."""
        self.infected_where = np.full(n, NOBODY, dtype=np.int8)
        """Kind of place (``client_sim.world.Kind``) of each infection."""
        self.test_at = np.full(n, NEVER)
        self.isolated_until = np.zeros(n)
        self.will_test = rng.random(n) < c.test_share
        self.delay = rng.uniform(*c.test_delay_days, n) * DAY
        self.adheres = rng.random(n)
        """Per-person draw against ``adherence``: the same people comply in every run."""
        seeds = rng.choice(n, size=max(1, round(c.initial_infected * n)), replace=False)
        self._infect(seeds, start - rng.uniform(0, 5, len(seeds)) * DAY)

    def _infect(self, people: Ints, when: Floats) -> None:
        self.infected_at[people] = when
        tested = people[self.will_test[people]]
        self.test_at[tested] = np.maximum(self.infected_at[tested] + self.delay[tested], self.start)

    def infectiousness(self, people: Ints, now: float) -> Floats:
        """Relative infectiousness of each person at ``now`` (0 if not infected)."""
        c = self.config
        since = (now - self.infected_at[people]) / DAY
        since = np.where(np.isfinite(since), since, -1.0)
        return infectiousness(since, c.generation_shape, c.generation_scale)

    def transmit(self, met: Encounters, slot: int, day: int) -> int:
        """Infect susceptible people through this slot's encounters; how many were infected."""
        if len(met) == 0:
            return 0
        now = float(met.start.min())
        exposure = distance_weight(met.distance.astype(np.float64)) * (met.duration / 60.0)
        a, b = met.a.astype(np.int64), met.b.astype(np.int64)
        # One draw per pair, hashed (as the encounters are): the same pair meeting in the
        # same slot of two runs gets the same draw.
        draw = uniform(pair_keys(slot_key(self.seed ^ 0x5EED, day, slot), a, b), 12)
        targets, sources, rows = [], [], []
        for src, dst in ((a, b), (b, a)):
            live = np.isfinite(self.infected_at[src]) & ~np.isfinite(self.infected_at[dst])
            idx = np.flatnonzero(live)
            p = 1.0 - (1.0 - self.config.beta) ** (
                exposure[idx] * self.infectiousness(src[idx], now)
            )
            hit = idx[draw[idx] < p]
            targets.append(dst[hit])
            sources.append(src[hit])
            rows.append(hit)
        target, source, row = (np.concatenate(x) for x in (targets, sources, rows))
        infected, first = np.unique(target, return_index=True)
        if len(infected):
            self._infect(infected, np.full(len(infected), now + 450.0))
            self.infector[infected] = source[first]
            self.infected_where[infected] = np.asarray(met.kind)[row[first]]
        return len(infected)

    def positives_between(self, since: float, until: float) -> Ints:
        """People whose positive result arrives in [since, until)."""
        return np.flatnonzero((self.test_at >= since) & (self.test_at < until))

    def isolate(self, people: Ints, now: float) -> Ints:
        """Ask people to isolate; the adherent ones stay home. Returns those who do."""
        staying = people[self.adheres[people] < self.config.adherence]
        self.isolated_until[staying] = np.maximum(
            self.isolated_until[staying], now + self.config.isolation_days * DAY
        )
        return staying

    def isolated(self, now: float) -> Bools:
        """Who stays home at ``now``."""
        return self.isolated_until > now

    def ever_infected(self) -> int:
        """People infected so far (the initial ones included)."""
        return int(np.isfinite(self.infected_at).sum())
