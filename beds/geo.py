"""The nearest units with a free bed: great-circle ("straight-line") distance, vectorised.

Travel distance by road would need a routing engine and a road graph (OSRM over OpenStreetMap);
the issue allows straight-line distance, documented: the haversine distance on a sphere of the
Earth's mean radius (6,371.0088 km, IUGG), which is within 0.5 % of the ellipsoidal distance.
By road, French distances are typically 1.2 to 1.4 times longer; the order of candidates can
differ where rivers, mountains or motorways intervene, so the regulator sees the distance as
straight-line and several candidates, not one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two WGS84 points."""
    return float(
        haversine_many(lat1, lon1, np.array([lat2], dtype=float), np.array([lon2], dtype=float))[0]
    )


def haversine_many(
    lat: float, lon: float, lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Distances in kilometres from one point to many."""
    phi1, phi2 = np.radians(lat), np.radians(lats)
    dphi = phi2 - phi1
    dlambda = np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlambda / 2) ** 2
    result: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return result


@dataclass(frozen=True, slots=True)
class Candidate:
    """A unit and its distance from the origin."""

    index: int
    km: float


def nearest(
    lat: float, lon: float, lats: Sequence[float], lons: Sequence[float], limit: int
) -> list[Candidate]:
    """The ``limit`` nearest points (indices into the sequences), nearest first; ties by
    index, so the answer is deterministic."""
    if not lats:
        return []
    distances = haversine_many(
        lat, lon, np.asarray(lats, dtype=float), np.asarray(lons, dtype=float)
    )
    count = min(limit, len(distances))
    if count < len(distances):
        chosen = np.argpartition(distances, count - 1)[:count]
    else:
        chosen = np.arange(len(distances))
    ordered = sorted(chosen.tolist(), key=lambda i: (distances[i], i))
    return [Candidate(i, float(distances[i])) for i in ordered]
