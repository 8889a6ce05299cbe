"""Distances on the Earth and the map's projection, both pure.

Distances are great-circle distances by the haversine formula on a sphere of radius 6371.0088
km (the IUGG mean radius R1). Over France the sphere errs by at most about 0.5 % against the
ellipsoid, a few metres at the distances people walk or drive to a test site: far below what
the sites' own coordinates are worth.

The map draws the svg-maps outlines of the départements, whose projection was fitted once
(``citizens/data/slices.py``): Mercator on the unit sphere then an affine map into the SVG's
coordinates, both stored in ``departements.json``. A site's latitude and longitude go through
the same two steps, so it lands where its département is drawn.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088
DEPARTEMENTS = Path(__file__).resolve().parent / "data" / "departements.json"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in km between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def haversine_many_km(
    lat: float, lon: float, lats_rad: npt.NDArray[np.float64], lons_rad: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``haversine_km`` from one point (degrees) to many (radians), in one vectorised pass."""
    p1, l1 = math.radians(lat), math.radians(lon)
    h = (
        np.sin((lats_rad - p1) / 2) ** 2
        + math.cos(p1) * np.cos(lats_rad) * np.sin((lons_rad - l1) / 2) ** 2
    )
    result: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def valid_coordinates(lat: float, lon: float) -> bool:
    """Whether (lat, lon) are finite degrees on the globe."""
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180


@dataclass(frozen=True, slots=True)
class FranceMap:
    """The département outlines and the projection that places points on them."""

    view_box: tuple[float, float, float, float]
    affine: tuple[tuple[float, float, float], tuple[float, float, float]]
    outlines: dict[str, str]
    """SVG path data of each metropolitan département (absolute ``M ... Z`` rings)."""
    names: dict[str, str]
    """Name of every département, overseas ones included."""
    source: str

    def project(self, lat: float, lon: float) -> tuple[float, float]:
        """The map coordinates of a point (degrees)."""
        mx = math.radians(lon)
        my = math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))
        (a, b, c), (d, e, f) = self.affine
        return a * mx + b * my + c, d * mx + e * my + f

    def on_map(self, lat: float, lon: float) -> bool:
        """Whether the point falls within the drawing (metropolitan France and its margin)."""
        x, y = self.project(lat, lon)
        x0, y0, width, height = self.view_box
        return x0 <= x <= x0 + width and y0 <= y <= y0 + height


@cache
def france_map(path: Path = DEPARTEMENTS) -> FranceMap:
    """The map shipped with the package (read once)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    (a, b, c), (d, e, f) = document["projection"]["affine"]
    x0, y0, width, height = document["viewBox"]
    return FranceMap(
        view_box=(float(x0), float(y0), float(width), float(height)),
        affine=((a, b, c), (d, e, f)),
        outlines=dict(document["outlines"]),
        names=dict(document["names"]),
        source=document["source"],
    )


def departement_of_postcode(postcode: str) -> str:
    """The département a postcode belongs to by its leading digits (``75011`` → ``75``,
    ``97411`` → ``974``; Corsica's ``200``–``201`` → ``2A``, ``202``–``206`` → ``2B``). A
    rule of thumb: a few communes are served by a neighbouring département's post office."""
    if postcode.startswith("97") or postcode.startswith("98"):
        return postcode[:3]
    if postcode.startswith("20"):
        return "2A" if postcode[:3] in ("200", "201") else "2B"
    return postcode[:2]
