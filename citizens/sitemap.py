"""The map of a search's results, drawn on the server as inline SVG: no tile server, no
script, nothing fetched from elsewhere.

The drawing shows the départements' outlines (``citizens.geo.FranceMap``) and one numbered
marker per site, each a link to the site's entry in the list below the map (keyboard users
reach it with Tab; screen readers read the list, the map is its visual companion). The view is
cropped to the results and the search's origin, with a margin, so that a search in Paris shows
Paris and not all of France.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from citizens.geo import FranceMap
from citizens.places import Origin
from citizens.sites import Found

MIN_SPAN = 12.0
"""Smallest width or height of the view, in map units (about 20 km at France's latitudes)."""
MARGIN = 0.15


def view_of(
    points: Sequence[tuple[float, float]], full: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    """The view box around ``points`` (map coordinates) with a margin, at least ``MIN_SPAN``
    wide and high, never larger than the whole map; the whole map without points."""
    if not points:
        return full
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    width = max(MIN_SPAN, (max(xs) - min(xs)) * (1 + 2 * MARGIN))
    height = max(MIN_SPAN, (max(ys) - min(ys)) * (1 + 2 * MARGIN))
    width = height = max(width, height * 0.9, MIN_SPAN)  # a roughly square window
    if width >= full[2] or height >= full[3]:
        return full
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    return (cx - width / 2, cy - height / 2, width, height)


def render_map(
    france: FranceMap,
    results: Sequence[Found],
    origin: Origin | None,
    *,
    title: str,
    origin_label: str,
    link_prefix: str = "#site-",
) -> Markup:
    """The SVG of ``results`` around ``origin``. ``title`` names the map for screen readers;
    markers link to ``link_prefix + site id``."""
    placed = [(n, f, france.project(f.site.lat, f.site.lon)) for n, f in enumerate(results, 1)]
    placed = [(n, f, xy) for n, f, xy in placed if france.on_map(f.site.lat, f.site.lon)]
    points = [xy for _, _, xy in placed]
    origin_xy = None
    if origin is not None and france.on_map(origin.lat, origin.lon):
        origin_xy = france.project(origin.lat, origin.lon)
        points.append(origin_xy)
    x0, y0, width, height = view_of(points, france.view_box)
    scale = width / 100  # marker sizes relative to the view, so they read at any zoom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sitemap" '
        f'viewBox="{x0:.2f} {y0:.2f} {width:.2f} {height:.2f}" role="group" '
        f'aria-labelledby="map-title"><title id="map-title">{escape(title)}</title>',
        f'<rect x="{x0:.2f}" y="{y0:.2f}" width="{width:.2f}" height="{height:.2f}" '
        f'fill="#dcebf5"/>',
        '<g fill="#f7f7f2" stroke="#6b6b6b" stroke-width="1" stroke-linejoin="round" '
        'vector-effect="non-scaling-stroke">',
    ]
    for code, path in france.outlines.items():
        name = escape(france.names.get(code, code))
        parts.append(
            f'<path d="{path}" vector-effect="non-scaling-stroke"><title>{name}</title></path>'
        )
    parts.append("</g>")
    if origin_xy is not None:
        ox, oy = origin_xy
        r = 1.6 * scale
        parts.append(
            f'<g class="origin"><title>{escape(origin_label)}</title>'
            f'<circle cx="{ox:.2f}" cy="{oy:.2f}" r="{r:.2f}" fill="#ffffff" stroke="#000091" '
            f'stroke-width="{0.6 * scale:.2f}"/>'
            f'<circle cx="{ox:.2f}" cy="{oy:.2f}" r="{r / 2.5:.2f}" fill="#000091"/></g>'
        )
    for n, found, (x, y) in reversed(placed):  # the nearest drawn last, on top
        site = found.site
        r = 2.6 * scale
        parts.append(
            f'<a href="{escape(link_prefix + site.id)}" class="marker">'
            f"<title>{n}. {escape(site.name)}</title>"
            f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{r:.2f}" fill="#b34000" stroke="#ffffff" '
            f'stroke-width="{0.5 * scale:.2f}"/>'
            f'<text x="{x:.2f}" y="{y + r * 0.38:.2f}" font-size="{r * 1.1:.2f}" '
            f'text-anchor="middle" fill="#ffffff" font-weight="bold">{n}</text></a>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
