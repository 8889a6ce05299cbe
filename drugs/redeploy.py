"""Regional redeployment: which establishments should send how much of a drug to which, as an
optimisation (a transportation problem solved exactly as an integer programme with
``scipy.optimize.milp``, HiGHS), not a greedy guess.

For establishments with stock ``s`` and daily use ``c`` (days of cover ``d = s / c``):

- a **donor** keeps at least ``keep`` days: it may give ``floor(s − keep·c)`` units;
- a **receiver** is below ``target`` days: it lacks ``ceil(target·c − s)`` units;
- variables: ``x[i, j]`` units from donor *i* to receiver *j* (whole), ``u[j]`` units still
  lacking at *j*;
- minimise ``Σ w_j · u_j + ε · Σ (dist_ij + t_i) · x_ij`` with the urgency ``w_j = 1 +
  (target − d_j) / target`` (a receiver closer to running out weighs more) and the cost of
  taking a unit from donor *i*, ``t_i = COVER_KM · keep / d_i`` (in km: falls as the donor's
  days of cover rise, below ``COVER_KM`` since ``d_i > keep``), subject to ``Σ_j x_ij ≤
  give_i`` and ``Σ_i x_ij + u_j = lack_j``. ``ε`` is small enough that no saving of distance
  or cover ever buys a unit of shortage.

Why ``t_i``: by distance alone a donor with 23 days of cover 1 km away was emptied down to its
21 days before one with 1,000 days 20 km away gave anything; a donor just above ``keep`` is the
next receiver. ``COVER_KM`` (50 km, an assumption) is how much more road a donor at ``keep``
days costs than one with unlimited cover: within a region the donor with more cover is chosen
unless it is about 50 km farther (more for a donor far above ``keep``).

The constraint matrix is that of a transportation problem (totally unimodular), so the linear
relaxation already has whole optimal vertices; ``milp`` with integrality makes it explicit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from drugs.cover import days_of_cover

COVER_KM = 50.0
"""Per unit taken, a donor with ``keep`` days of cover costs as this many km more than one with
unlimited cover (``keep / days`` of it in general)."""


@dataclass(frozen=True, slots=True)
class Holding:
    """One establishment's stock of the drug."""

    finess: str
    stock: int
    daily_use: float
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Move:
    """Units to send, and why."""

    source: str
    destination: str
    units: int
    why: str
    source_days: float = 0.0
    """The source's days of cover before the move."""
    destination_days: float = 0.0
    """The destination's days of cover before the move."""
    keep: float = 0.0
    """Days of cover a source keeps at least."""
    target: float = 0.0
    """Days of cover a destination is brought towards."""
    lacks: int = 0
    """Units the destination lacks to reach the target."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The moves, the shortage left and the objective's value."""

    moves: list[Move]
    unmet: dict[str, int]
    objective: float


def _distance(a: Holding, b: Holding) -> float:
    if None in (a.lat, a.lon, b.lat, b.lon):
        return 1.0
    from math import asin, cos, radians, sin, sqrt

    p1, p2 = radians(a.lat or 0), radians(b.lat or 0)
    dp, dl = p2 - p1, radians((b.lon or 0) - (a.lon or 0))
    h = sin(dp / 2) ** 2 + cos(p1) * cos(p2) * sin(dl / 2) ** 2
    return 2 * 6371.0088 * asin(min(1.0, sqrt(h)))


@dataclass(frozen=True, slots=True)
class Problem:
    """The donors' surpluses, the receivers' lacks, weights and distances."""

    donors: list[Holding]
    give: list[int]
    receivers: list[Holding]
    lack: list[int]
    urgency: list[float]
    distance: list[list[float]]
    epsilon: float
    taking: list[float]
    """The cost (km) of each unit taken from each donor: ``COVER_KM · keep / days``."""

    def unit_cost(self, i: int, j: int) -> float:
        """The cost (km) of one unit from donor ``i`` to receiver ``j``."""
        return self.distance[i][j] + self.taking[i]

    def objective(self, moves: Sequence[Sequence[int]]) -> float:
        """The objective of a whole plan ``moves[i][j]`` (for checking)."""
        unmet = [self.lack[j] - sum(row[j] for row in moves) for j in range(len(self.receivers))]
        shortage = sum(w * u for w, u in zip(self.urgency, unmet, strict=True))
        transport = sum(
            self.unit_cost(i, j) * moves[i][j]
            for i in range(len(self.donors))
            for j in range(len(self.receivers))
        )
        return shortage + self.epsilon * transport


def problem(holdings: Sequence[Holding], target: float = 14.0, keep: float = 21.0) -> Problem:
    """Donors (above ``keep`` days) and receivers (below ``target`` days) of ``holdings``."""
    if keep < target:
        raise ValueError("donors must keep at least the receivers' target")
    donors, give, receivers, lack, urgency, taking = [], [], [], [], [], []
    for h in holdings:
        if h.daily_use <= 0:
            continue
        surplus = math.floor(h.stock - keep * h.daily_use + 1e-9)
        missing = math.ceil(target * h.daily_use - h.stock - 1e-9)
        days = days_of_cover(h.stock, h.daily_use) or 0.0
        if surplus > 0:  # then the stock, and its days of cover, are above 0
            donors.append(h)
            give.append(surplus)
            taking.append(COVER_KM * keep / days)
        elif missing > 0:
            receivers.append(h)
            lack.append(missing)
            urgency.append(1 + (target - days) / target)
    distance = [[_distance(d, r) for r in receivers] for d in donors]
    largest = max((max(row) for row in distance if row), default=1.0)
    epsilon = 0.5 / ((1 + largest + COVER_KM) * (1 + sum(give)))
    return Problem(donors, give, receivers, lack, urgency, distance, epsilon, taking)


def solve(p: Problem) -> list[list[int]]:
    """The optimal whole plan ``x[i][j]``."""
    nd, nr = len(p.donors), len(p.receivers)
    if nd == 0 or nr == 0:
        return [[0] * nr for _ in range(nd)]
    nx = nd * nr
    cost = np.array(
        [p.epsilon * p.unit_cost(i, j) for i in range(nd) for j in range(nr)] + list(p.urgency)
    )
    rows, lower, upper = [], [], []
    for i in range(nd):  # a donor gives at most its surplus
        row = np.zeros(nx + nr)
        row[i * nr : (i + 1) * nr] = 1
        rows.append(row)
        lower.append(0)
        upper.append(p.give[i])
    for j in range(nr):  # what a receiver gets plus what it still lacks is its lack
        row = np.zeros(nx + nr)
        row[[i * nr + j for i in range(nd)]] = 1
        row[nx + j] = 1
        rows.append(row)
        lower.append(p.lack[j])
        upper.append(p.lack[j])
    result = milp(
        cost,
        constraints=LinearConstraint(np.array(rows), lower, upper),
        integrality=np.ones(nx + nr),
        bounds=Bounds(0, np.inf),
    )
    if not result.success:  # feasible by construction (u absorbs everything): a solver fault
        raise RuntimeError(f"redeployment solver failed: {result.message}")
    x = np.rint(result.x[:nx]).astype(int)
    return [[int(x[i * nr + j]) for j in range(nr)] for i in range(nd)]


def plan(holdings: Sequence[Holding], target: float = 14.0, keep: float = 21.0) -> Plan:
    """The redeployment plan of a region for one drug, each move with its reason."""
    p = problem(holdings, target, keep)
    x = solve(p)
    moves = []
    for i, donor in enumerate(p.donors):
        for j, receiver in enumerate(p.receivers):
            if x[i][j] <= 0:
                continue
            d_from = donor.stock / donor.daily_use
            d_to = receiver.stock / receiver.daily_use
            moves.append(
                Move(
                    donor.finess,
                    receiver.finess,
                    x[i][j],
                    f"{donor.finess} has {d_from:.1f} days of cover and keeps at least "
                    f"{keep:g}; {receiver.finess} has {d_to:.1f} days, below the {target:g}-day "
                    f"target (lacks {p.lack[j]} units)",
                    d_from,
                    d_to,
                    keep,
                    target,
                    p.lack[j],
                )
            )
    unmet = {
        r.finess: p.lack[j] - sum(x[i][j] for i in range(len(p.donors)))
        for j, r in enumerate(p.receivers)
    }
    return Plan(moves, unmet, p.objective(x))
