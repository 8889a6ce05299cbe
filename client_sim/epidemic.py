"""An epidemic spreading along the ground-truth encounters, with testing and isolation.

Infection passes during encounters with a probability per minute of close contact, weighted by
distance (full weight within 1 m, fading to nothing at 3 m). An infected person is infectious
from ``latent_days`` after infection for ``infectious_days``; a share of them get tested and
receive a positive result a uniformly drawn delay after infection. People who test positive,
and people the app warns, isolate (stay home) with some adherence. Nothing here knows about
phones: the simulator decides who reports and who is warned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from client_sim.world import Encounters

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
DAY = 86_400
NEVER = np.inf


@dataclass(frozen=True, slots=True)
class EpidemicConfig:
    """Parameters of the disease and of people's behaviour."""

    beta: float = 0.003
    """Probability of infection per minute of close contact (within 1 m)."""
    initial_infected: float = 0.005
    """Share of people infected (at random times in the days before the start)."""
    latent_days: float = 2.0
    infectious_days: float = 7.0
    test_share: float = 0.6
    """Share of infected people who get tested (the others never know)."""
    test_delay_days: tuple[float, float] = (4.0, 8.0)
    """Uniform range of the time from infection to a positive result."""
    adherence: float = 0.7
    """Chance that a warned or positive person isolates."""
    isolation_days: float = 7.0


def distance_weight(distance: Floats) -> Floats:
    """Weight of a minute at this distance: 1 within 1 m, linearly down to 0 at 3 m."""
    return np.clip((3.0 - distance) / 2.0, 0.0, 1.0)


class Epidemic:
    """Who is infected since when, who tests positive when, and who isolates until when."""

    def __init__(self, n: int, seed: int, start: int, config: EpidemicConfig | None = None):
        self.n = n
        self.seed = seed
        self.start = start
        self.config = config or EpidemicConfig()
        rng = np.random.default_rng([seed, 10])
        c = self.config
        self.infected_at = np.full(n, NEVER)
        self.test_at = np.full(n, NEVER)
        self.isolated_until = np.zeros(n)
        self.will_test = rng.random(n) < c.test_share
        self.delay = rng.uniform(*c.test_delay_days, n) * DAY
        self.adheres = rng.random(n)
        """Per-person draw against ``adherence``: the same people comply in every run."""
        seeds = rng.choice(n, size=max(1, round(c.initial_infected * n)), replace=False)
        self._infect(seeds, start - rng.uniform(0, c.latent_days + 2, len(seeds)) * DAY)

    def _infect(self, people: Ints, when: Floats) -> None:
        self.infected_at[people] = when
        tested = people[self.will_test[people]]
        self.test_at[tested] = np.maximum(self.infected_at[tested] + self.delay[tested], self.start)

    def infectious(self, people: Ints, now: float) -> Bools:
        """Whether each person is infectious at ``now``."""
        c = self.config
        since = now - self.infected_at[people]
        return (since >= c.latent_days * DAY) & (since < (c.latent_days + c.infectious_days) * DAY)

    def transmit(self, met: Encounters, slot: int, day: int) -> int:
        """Infect susceptible people through this slot's encounters; how many were infected."""
        if len(met) == 0:
            return 0
        now = float(met.start.min())
        rng = np.random.default_rng([self.seed, 11, day, slot])
        weight = distance_weight(met.distance) * (met.duration / 60.0)
        p = 1.0 - (1.0 - self.config.beta) ** weight
        draw = rng.random(len(met))
        new: list[Ints] = []
        for src, dst in ((met.a, met.b), (met.b, met.a)):
            hit = self.infectious(src, now) & ~np.isfinite(self.infected_at[dst]) & (draw < p)
            new.append(dst[hit])
        infected = np.unique(np.concatenate(new))
        if len(infected):
            self._infect(infected, np.full(len(infected), now + 450.0))
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
