"""The weekly allocation of a national quota of one drug: national → regions → establishments,
pure and traced (every step's numbers are kept, to be shown and checked).

The official weights of 2020 were never published (``health.md`` §4.3: the key used each
establishment's stock, COVID patients and non-COVID critical-care activity). The **default
formula** (``CoverShortfall``), from those inputs, for each establishment *e*:

1. patient load ``L_e = covid_e + α · other_e`` (α = 0.5: a COVID patient with ARDS is sedated
   and paralysed for days, an average other critical-care patient much less; an assumption);
2. the observed national use per patient and day ``r = Σ use_e / Σ L_e``;
3. the expected daily use ``c_e = max(use_e, r · L_e)``: the higher of what it reports and what
   its patients imply (a hospital at the start of a wave reports too little);
4. its need ``n_e = max(0, D · c_e − stock_e)``: what it lacks to cover ``D`` days (14: a
   week to the next allocation and a week of margin).

The quota goes to regions in proportion to their summed needs; if it exceeds every need, the
rest goes in proportion to the patient load; when every load is 0 (no patients known, as
without a bed-service URL), by need, else by reported daily use, else in equal parts: the
whole quota is always allocated as long as there is one establishment. Each region's amount
is then split among its establishments by the same rule. Units are whole: each split rounds
by largest remainder (Hamilton), so the parts always add up exactly to the whole.

Why this is defensible: it sends the drug where it will be used before the next delivery and
is missing, it cannot be gamed by hoarding (a big stock lowers the need), and a region gets the
sum of its establishments' needs, so splitting nationally or in two tiers agrees.

``PatientShare`` is the simpler alternative (shares of patient load only, stocks ignored).
Any object with ``name`` and ``weigh`` is a formula.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the allocation knows of one establishment, for one drug."""

    finess: str
    region: str
    stock: float
    daily_use: float
    covid: int
    other: int


@dataclass(frozen=True, slots=True)
class Weight:
    """An establishment's need (served first) and load (shares what is left over)."""

    need: float
    load: float
    why: str


@dataclass
class Trace:
    """The steps of an allocation, as lines of text with their numbers."""

    steps: list[tuple[str, list[str]]] = field(default_factory=list)

    def step(self, title: str, lines: list[str]) -> None:
        """Add a step."""
        self.steps.append((title, lines))


class Formula(Protocol):
    """How each establishment is weighed."""

    @property
    def name(self) -> str:
        """How the allocation record names the formula."""
        ...

    def weigh(self, inputs: Sequence[Inputs], trace: Trace) -> dict[str, Weight]:
        """Each establishment's weight, by FINESS; adds its own steps to ``trace``."""
        ...


@dataclass(frozen=True, slots=True)
class CoverShortfall:
    """The default formula: need = what is missing to cover ``days`` at the expected use."""

    days: float = 14.0
    other_weight: float = 0.5
    name: str = "cover-shortfall"

    def weigh(self, inputs: Sequence[Inputs], trace: Trace) -> dict[str, Weight]:
        loads = {i.finess: i.covid + self.other_weight * i.other for i in inputs}
        total_load = sum(loads.values())
        total_use = sum(i.daily_use for i in inputs)
        rate = total_use / total_load if total_load else 0.0
        ratio = (
            f"r = Σ daily use / Σ L = {total_use:g} / {total_load:g} = {rate:.4f}"
            if total_load
            else "r = 0: no patient load known (Σ L = 0), expected use = reported use"
        )
        trace.step(
            "Use per patient and day",
            [f"patient load L = COVID + {self.other_weight:g} × other patients", ratio],
        )
        weights, lines = {}, []
        for i in inputs:
            load = loads[i.finess]
            expected = max(i.daily_use, rate * load)
            need = max(0.0, self.days * expected - i.stock)
            why = (
                f"{i.finess}: L = {i.covid} + {self.other_weight:g}×{i.other} = {load:g}; "
                f"c = max({i.daily_use:g}, {rate:.4f}×{load:g}) = {expected:.2f}/day; "
                f"need = max(0, {self.days:g}×{expected:.2f} − {i.stock:g}) = {need:.2f}"
            )
            weights[i.finess] = Weight(need, load, why)
            lines.append(why)
        trace.step("Need of each establishment", lines)
        return weights


@dataclass(frozen=True, slots=True)
class PatientShare:
    """The alternative: shares of patient load alone (stocks and reported use ignored)."""

    other_weight: float = 0.5
    name: str = "patient-share"

    def weigh(self, inputs: Sequence[Inputs], trace: Trace) -> dict[str, Weight]:
        weights = {}
        lines = []
        for i in inputs:
            load = i.covid + self.other_weight * i.other
            why = f"{i.finess}: load = {i.covid} + {self.other_weight:g}×{i.other} = {load:g}"
            weights[i.finess] = Weight(load, load, why)
            lines.append(why)
        trace.step("Load of each establishment", lines)
        return weights


def largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """``total`` whole units split in proportion to ``weights`` (Hamilton's method: floors,
    then one more to the largest remainders, ties by key); all to nobody if every weight is 0."""
    positive = {k: w for k, w in weights.items() if w > 0}
    if total <= 0 or not positive:
        return {k: 0 for k in weights}
    scale = sum(positive.values())
    exact = {k: total * w / scale for k, w in positive.items()}
    shares = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(shares.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - shares[k]), k))[:left]:
        shares[k] += 1
    return {k: shares.get(k, 0) for k in weights}


def rest_key(
    needs: dict[str, float], loads: dict[str, float], uses: dict[str, float]
) -> tuple[str, dict[str, float]]:
    """What shares the units beyond every need: the load; if every load is 0, the need; then
    the reported daily use; then equal parts."""
    for name, weights in (("load", loads), ("need", needs), ("reported use", uses)):
        if any(weights.get(k, 0.0) > 0 for k in needs):
            return name, {k: weights.get(k, 0.0) for k in needs}
    return "equal parts", {k: 1.0 for k in needs}


def split(
    total: int,
    needs: dict[str, float],
    loads: dict[str, float],
    uses: dict[str, float] | None = None,
) -> dict[str, int]:
    """``total`` split by need; beyond every need, the rest by load (if every load is 0, by
    need, then by reported use ``uses``, then equally): the parts add up to ``total`` whenever
    there is a part."""
    whole_needs = {k: math.ceil(v - 1e-9) for k, v in needs.items()}
    if total <= sum(whole_needs.values()):
        return largest_remainder(total, needs)
    _, key = rest_key(needs, loads, uses or {})
    rest = largest_remainder(total - sum(whole_needs.values()), key)
    return {k: whole_needs[k] + rest[k] for k in needs}


def _rest_line(
    total: int, needs: dict[str, float], loads: dict[str, float], uses: dict[str, float]
) -> list[str]:
    """The trace's line saying what shared the units beyond every need, if any were left."""
    rest = total - sum(math.ceil(v - 1e-9) for v in needs.values())
    if rest <= 0 or not needs:
        return []
    name, _ = rest_key(needs, loads, uses)
    if name == "load":
        return [f"beyond every need, {rest} units shared by load"]
    return [f"beyond every need, {rest} units shared by {name} (every load is 0)"]


@dataclass(frozen=True, slots=True)
class Allocation:
    """The result: units per region and per establishment, and how they were found."""

    quota: int
    regions: dict[str, int]
    establishments: dict[str, int]
    trace: Trace


def allocate(quota: int, inputs: Sequence[Inputs], formula: Formula | None = None) -> Allocation:
    """Split ``quota`` units: national → regions → establishments."""
    if quota < 0:
        raise ValueError("a quota is not negative")
    chosen: Formula = formula if formula is not None else CoverShortfall()
    trace = Trace()
    trace.step("Quota", [f"{quota} units to allocate with the formula {chosen.name}"])
    weights = chosen.weigh(inputs, trace)
    regions: dict[str, list[Inputs]] = {}
    for i in inputs:
        regions.setdefault(i.region, []).append(i)
    region_need = {r: sum(weights[i.finess].need for i in group) for r, group in regions.items()}
    region_load = {r: sum(weights[i.finess].load for i in group) for r, group in regions.items()}
    use = {i.finess: i.daily_use for i in inputs}
    region_use = {r: sum(use[i.finess] for i in group) for r, group in regions.items()}
    per_region = split(quota, region_need, region_load, region_use)
    trace.step(
        "National → regions",
        [
            f"region {r}: need {region_need[r]:.2f}, load {region_load[r]:g} → {per_region[r]}"
            for r in sorted(regions)
        ]
        + _rest_line(quota, region_need, region_load, region_use),
    )
    per_establishment: dict[str, int] = {}
    for r in sorted(regions):
        group = regions[r]
        needs = {i.finess: weights[i.finess].need for i in group}
        loads = {i.finess: weights[i.finess].load for i in group}
        uses = {i.finess: use[i.finess] for i in group}
        shares = split(per_region[r], needs, loads, uses)
        per_establishment.update(shares)
        trace.step(
            f"Region {r} → establishments",
            [f"{k}: {v}" for k, v in sorted(shares.items())]
            + _rest_line(per_region[r], needs, loads, uses),
        )
    return Allocation(quota, per_region, per_establishment, trace)
