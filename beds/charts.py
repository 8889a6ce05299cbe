"""The dashboards' pictures as inline SVG (the pages' CSP allows nothing loaded from
elsewhere): a choropleth of départements by tension level, a 7-day curve, sparklines.

Colours are presentation attributes (``fill``), not style attributes, which the CSP would
refuse; each shape has a ``<title>`` for screen readers and hover."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache

from markupsafe import Markup, escape

from beds.service import Dashboard
from beds.tension import Level, Thresholds
from beds.territory import DATA, departements, region_of

COLOURS = {
    Level.NONE: "#e5e5e5",
    Level.LOW: "#b8e0c2",
    Level.ALERT: "#f7c66b",
    Level.CRISIS: "#e4794a",
    Level.OVER: "#a3153a",
}
"""Fills by level; the legend repeats them with text, so colour is never the only cue."""

Translate = Callable[[str], str]
"""The page's gettext for its reader's language (the charts' words are the English msgids)."""


def _same(message: str) -> str:
    return message


@cache
def _outlines() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        (DATA / "france_departements_map.json").read_text(encoding="utf-8")
    )
    return loaded


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f} %"


def tension_map(board: Dashboard, thresholds: Thresholds, _: Translate = _same) -> Markup:
    """The metropolitan départements coloured by tension level; those outside the board's
    territory faded. Overseas départements appear in the table only."""
    outlines = _outlines()
    shapes: dict[str, dict[str, str]] = outlines["departements"]  # type: ignore[assignment]
    territory = board.territory
    parts = []
    for code, shape in shapes.items():
        inside = (
            territory.level == "fr"
            or (territory.level == "reg" and region_of(code) == territory.key)
            or (territory.level == "dep" and code == territory.key)
        )
        figures = board.by_dep.get(code)
        rate = figures.tension_rate if figures else None
        fill = COLOURS[thresholds.level(rate)] if inside else "#f4f4f4"
        label = f"{shape['name']} ({code})" + (f": {_percent(rate)}" if figures else "")
        parts.append(
            Markup(
                '<path d="{d}" fill="{fill}" stroke="#555" stroke-width="{w}" data-dep="{code}">'
                "<title>{label}</title></path>"
            ).format(d=shape["d"], fill=fill, w="0.8" if inside else "0.3", code=code, label=label)
        )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="{vb}" role="img" '
        'aria-labelledby="map-title" class="map"><title id="map-title">{title}</title>{paths}</svg>'
    ).format(
        vb=outlines["viewBox"],
        title=_("Tension by département: {name}").format(name=territory.name),
        paths=Markup("").join(parts),
    )


def curve(
    days: list[str], series: list[float | None], thresholds: Thresholds, _: Translate = _same
) -> Markup:
    """The 7-day tension curve with the thresholds and the 100 % line."""
    width, height, pad = 560, 220, 40
    known = [v for v in series if v is not None]
    top = max([1.2, thresholds.crisis * 1.2, *(v * 1.1 for v in known)])

    def x(i: int) -> float:
        return pad + i * (width - 2 * pad) / max(1, len(days) - 1)

    def y(v: float) -> float:
        return height - pad - v / top * (height - 2 * pad)

    lines = []
    for value, label, colour in (
        (thresholds.alert, _("alert"), "#b26b00"),
        (thresholds.crisis, _("crisis"), "#b34000"),
        (1.0, "", "#a3153a"),  # "100 %" alone (it read "100 % 100 %")
    ):
        lines.append(
            Markup(
                '<line x1="{x1}" x2="{x2}" y1="{y}" y2="{y}" stroke="{c}" stroke-dasharray="4 3"/>'
                '<text x="{x2}" y="{ty}" font-size="11" fill="{c}" text-anchor="end">'
                "{text}</text>"
            ).format(
                x1=pad,
                x2=width - pad,
                y=f"{y(value):.1f}",
                ty=f"{y(value) - 3:.1f}",
                c=colour,
                text=f"{label} {_percent(value)}" if label else _percent(value),
            )
        )
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series) if v is not None)
    dots = Markup("").join(
        Markup(
            '<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="#000091">'
            "<title>{d}: {p}</title></circle>"
        ).format(cx=x(i), cy=y(v), d=days[i], p=_percent(v))
        for i, v in enumerate(series)
        if v is not None
    )
    ticks = Markup("").join(
        Markup('<text x="{x:.1f}" y="{y}" font-size="11" text-anchor="middle">{d}</text>').format(
            x=x(i), y=height - pad + 16, d=day[5:]
        )
        for i, day in enumerate(days)
    )
    axis = Markup(
        '<line x1="{p}" x2="{w}" y1="{b}" y2="{b}" stroke="#333"/>'
        '<text x="{p}" y="{t}" font-size="11" text-anchor="end">0 %</text>'
    ).format(p=pad, w=width - pad, b=height - pad, t=height - pad + 4)
    polyline = (
        Markup('<polyline points="{pts}" fill="none" stroke="#000091" stroke-width="2.5"/>').format(
            pts=points
        )
        if points
        else Markup("")
    )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        'aria-labelledby="curve-title" class="curve">'
        '<title id="curve-title">{title}</title>'
        "{axis}{lines}{polyline}{dots}{ticks}</svg>"
    ).format(
        w=width,
        h=height,
        title=_("Tension rate, last {n} days").format(n=len(days)),
        axis=axis,
        lines=Markup("").join(lines),
        polyline=polyline,
        dots=dots,
        ticks=ticks,
    )


def sparkline(series: list[float | None]) -> Markup:
    """A small 7-day curve for a table cell: a faint track for the whole period (days without
    figures stay empty), the known days scaled to their own range (a change of a few points
    stays visible), a dot on the latest; labelled with its first and last values. Its size
    comes from its ``viewBox`` and the page's CSS (it shrinks with its cell)."""
    known = [(i, v) for i, v in enumerate(series) if v is not None]
    label = f"{_percent(known[0][1])} → {_percent(known[-1][1])}" if len(known) >= 2 else "–"
    if len(known) < 2:
        return Markup('<span class="spark-none">{}</span>').format(label)
    width, height, pad = 84, 24, 3
    low, high = min(v for _, v in known), max(v for _, v in known)
    if high - low < 0.1:  # at least 10 points tall: small changes are not magnified
        middle = (high + low) / 2
        low, high = middle - 0.05, middle + 0.05
    step = (width - 2 * pad) / max(1, len(series) - 1)

    def x(i: int) -> float:
        return pad + i * step

    def y(v: float) -> float:
        return height - pad - (v - low) / (high - low) * (height - 2 * pad)

    pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in known)
    last_i, last_v = known[-1]
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" class="sparkline" '
        'role="img" aria-label="{label}"><title>{label}</title>'
        '<rect x="0.5" y="0.5" width="{rw}" height="{rh}" fill="#f4f6ff" stroke="#c8cde8" '
        'stroke-width="1"/>'
        '<polyline points="{pts}" fill="none" stroke="#000091" stroke-width="1.8" '
        'stroke-linejoin="round"/><circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.4" fill="#000091"/>'
        "</svg>"
    ).format(
        w=width,
        h=height,
        rw=width - 1,
        rh=height - 1,
        pts=pts,
        cx=x(last_i),
        cy=y(last_v),
        label=label,
    )


def name_of(code: str) -> str:
    """A département's name (for titles)."""
    return str(escape(departements().get(code, (code, ""))[0]))
