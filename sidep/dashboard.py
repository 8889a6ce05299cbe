"""The indicators dashboard: a map of the metropolitan départements coloured by 7-day
incidence (Santé publique France's classes), and the curves of incidence, positivity and
testing of any territory (France, a région, a département), as inline SVG (the pages' CSP
loads nothing from elsewhere).

The figures come from ``sidep.indicators`` (DuckDB) over the stored tests, pseudonymised
(``SidepService.write_indicator_input``), computed at most every ``MAX_AGE`` seconds and kept
in memory: aggregates only, no person in them.
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from markupsafe import Markup

from kit.audit import Actor
from sidep.territory import DATA

MAX_AGE = 600.0
TI_BOUNDS = (0.0, 10.0, 20.0, 50.0, 150.0, 250.0, 500.0, 1000.0)
"""SpF's incidence classes (per 100,000 over 7 days), lower bounds."""
COLOURS = (
    "#f4f1de", "#fde0a8", "#f9c17b", "#f29e5c", "#e4794a", "#c94a3a", "#a3153a", "#5c0a20",
)  # fmt: skip
NO_DATA = "#e5e5e5"
SERIES = (("tx_incid", "Incidence per 100,000"), ("tx_pos", "Positivity (percent)"),
          ("tx_dep", "Testing per 100,000"))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Figures:
    """The rates of every territory by day: ``rates[zone] = [(day, incid, pos, dep), ...]``
    (zones: ``FR``, région codes ``reg:NN``, département codes)."""

    rates: dict[str, list[tuple[str, float | None, float | None, float | None]]] = field(
        default_factory=dict
    )
    computed_at: float = 0.0

    @property
    def last_day(self) -> str | None:
        days = [series[-1][0] for series in self.rates.values() if series]
        return max(days) if days else None


def compute_figures(source: Path) -> Figures:
    """Every territory's 7-day rates from a tests file (``sidep.indicators``' input)."""
    from sidep import indicators

    con = indicators.connect(threads=1)
    try:
        indicators.load(con, source)
        indicators.load_population(con, indicators.SHIPPED_POPULATION)
        indicators.load_regions(con)
        indicators.count_persons(con)
        if con.execute("SELECT count(*) FROM counts").fetchone() == (0,):
            return Figures(computed_at=time.time())
        indicators.daily_counts(con)
        rates: dict[str, list[tuple[str, float | None, float | None, float | None]]] = {}
        for daily, out, prefix in (
            ("daily_dep", "rates_dep", ""),
            ("daily_reg", "rates_reg", "reg:"),
            ("daily_fra", "rates_fra", ""),
        ):
            indicators.rates(con, daily, out)
            rows = con.execute(
                f"SELECT zone, strftime(jour, '%Y-%m-%d'), tx_incid, tx_pos, tx_dep FROM {out} "
                "ORDER BY zone, jour"
            ).fetchall()
            for zone, day, incid, pos, dep in rows:
                rates.setdefault(f"{prefix}{zone}", []).append((day, incid, pos, dep))
        return Figures(rates, time.time())
    finally:
        con.close()


class Dashboard:
    """The figures of a service, recomputed when older than ``max_age`` seconds."""

    def __init__(self, service: Any, max_age: float = MAX_AGE) -> None:
        self.service = service
        self.max_age = max_age
        self._figures: Figures | None = None
        self._lock = asyncio.Lock()

    async def figures(self, actor: Actor) -> Figures:
        async with self._lock:
            if self._figures is None or time.time() - self._figures.computed_at > self.max_age:
                with tempfile.TemporaryDirectory(prefix="sidep-dashboard-") as scratch:
                    source = Path(scratch) / "tests.csv"
                    await self.service.write_indicator_input(source, actor)
                    self._figures = await asyncio.to_thread(compute_figures, source)
            return self._figures


@cache
def departement_names() -> dict[str, str]:
    """The départements: code -> name."""
    with (DATA / "departements.csv").open(encoding="utf-8", newline="") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


@cache
def _outlines() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (DATA / "france_departements_map.json").read_text(encoding="utf-8")
    )
    return loaded


def incidence_class(rate: float | None) -> int | None:
    """The index of ``rate``'s class in ``TI_BOUNDS`` (None without a rate)."""
    if rate is None:
        return None
    return max(i for i, bound in enumerate(TI_BOUNDS) if rate >= bound)


def legend() -> list[tuple[str, str]]:
    """(colour, label) of each incidence class."""
    labels = []
    for i, low in enumerate(TI_BOUNDS):
        high = TI_BOUNDS[i + 1] if i + 1 < len(TI_BOUNDS) else None
        text = f"{low:g}–{high:g}" if high is not None else f"{low:g} +"
        labels.append((COLOURS[i], text))
    return [(NO_DATA, "–"), *labels]


def incidence_map(figures: Figures, day: str | None, link: str) -> Markup:
    """The metropolitan départements coloured by incidence on ``day``; each links to its
    curves (``link`` with ``{dep}``)."""
    outlines = _outlines()
    parts = []
    for code, shape in outlines["departements"].items():
        rate = next((r[1] for r in figures.rates.get(code, []) if r[0] == day), None)
        cls = incidence_class(rate)
        fill = NO_DATA if cls is None else COLOURS[cls]
        label = f"{shape['name']} ({code})" + ("" if rate is None else f": {rate:.1f}")
        parts.append(
            Markup(
                '<a href="{href}"><path d="{d}" fill="{fill}" stroke="#555" stroke-width="0.6" '
                'data-dep="{code}"><title>{label}</title></path></a>'
            ).format(href=link.format(dep=code), d=shape["d"], fill=fill, code=code, label=label)
        )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="{vb}" role="group" '
        'aria-labelledby="map-title" class="map"><title id="map-title">{title}</title>{paths}'
        "</svg>"
    ).format(
        vb=outlines["viewBox"],
        title=f"7-day incidence per 100,000 by département, {day or 'no data'}",
        paths=Markup("").join(parts),
    )


def curve(points: list[tuple[str, float | None]], title: str) -> Markup:
    """A daily curve of one rate, with its first and last days."""
    width, height, pad = 560, 200, 44
    known = [(i, v) for i, (_, v) in enumerate(points) if v is not None]
    top = max([1.0, *(v * 1.1 for _, v in known)])

    def x(i: int) -> float:
        return pad + i * (width - 2 * pad) / max(1, len(points) - 1)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in known)
    ticks = Markup("")
    if points:
        ticks = Markup(
            '<text x="{a}" y="{b}" font-size="11">{d0}</text>'
            '<text x="{c}" y="{b}" font-size="11" text-anchor="end">{d1}</text>'
            '<text x="{p}" y="{t}" font-size="11" text-anchor="end">{top:.0f}</text>'
        ).format(
            a=pad, b=height - pad + 16, c=width - pad, d0=points[0][0], d1=points[-1][0],
            p=pad - 4, t=pad + 4, top=top,
        )  # fmt: skip
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="{title}" class="curve"><line x1="{p}" x2="{r}" y1="{base}" y2="{base}" '
        'stroke="#333"/>{poly}{ticks}</svg>'
    ).format(
        w=width, h=height, title=title, p=pad, r=width - pad, base=height - pad,
        poly=Markup(
            '<polyline points="{pts}" fill="none" stroke="#000091" stroke-width="2"/>'
        ).format(pts=line) if line else Markup(""),
        ticks=ticks,
    )  # fmt: skip
