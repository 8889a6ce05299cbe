"""Test sites: the open-data CSV layout, its parser, the search index, and its reload.

**Layout** (one header line, ``;``-separated, UTF-8, one site a line; docs/citizens.md):

=================  ==========================================================================
``id``             the publisher's identifier of the site (unique)
``name``           name shown to people
``address``        street address
``postcode``       5 characters (``75011``, ``2A004``)
``commune``        commune name
``insee``          INSEE code of the commune (may be empty)
``lat``, ``lon``   WGS 84 decimal degrees (``.`` or ``,`` as decimal mark)
``kinds``          tests offered, ``,``-separated: ``PCR``, ``ANTIGEN``
``walk_in``        ``oui``/``non`` (also ``1``/``0``, ``true``/``false``): tested without
                   an appointment
``appointment_url``  ``https://`` (or ``http://``) booking address, or empty
``phone``          booking or information number (may be empty)
``hours``          opening hours, as published (free text)
``public``         who is tested there (``tout public``, ``professionnels de santé``...)
``updated``        date of the site's last update, ``YYYY-MM-DD``
=================  ==========================================================================

Columns may come in any order; unknown ones are ignored. The separator is ``;`` or ``,``
(whichever the header line uses).

**Santé.fr's public layout** is read too: a header of ``SANTE_FR_COLUMNS`` (``,``-separated
in the header published with the issue; either separator is accepted), each row renamed
to the layout above by ``from_sante_fr`` (``rs`` → name, ``adresse`` split into street,
postcode and commune, ``do_prel``/``do_antigenic`` → kinds, ``check_rdv`` → *not* walk-in,
``web_rdv``, ``tel_rdv``, ``horaire`` and ``horaire_prio``, ``public``, ``date_modif``).

A row that breaks the layout is skipped and reported with its line number; a file with more
than ``MAX_BAD_SHARE`` of such rows, or without a required column, is refused whole, and the
sites already loaded stay.

**Reload without downtime**: a request searches the ``SiteIndex`` it read from the
``SiteBook`` when it started; a reload parses and indexes the new file beside it, then swaps
the book's one reference. Nobody ever sees half a file, and nobody waits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from citizens.geo import haversine_many_km, valid_coordinates
from citizens.places import POSTCODE, Origin

log = logging.getLogger("citizens.sites")

REQUIRED = ("id", "name", "address", "postcode", "commune", "lat", "lon", "kinds", "walk_in")
OPTIONAL = ("insee", "appointment_url", "phone", "hours", "public", "updated")
MAX_BAD_SHARE = 0.02
"""A file with more bad rows than this share is refused: it is more likely a broken export
than a few sloppy lines."""
MAX_FIELD = 500
MAX_SITES = 100_000
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
OVERSEAS_REACH_KM = 800.0
"""How far a search that starts off the metropolitan map (overseas) looks: a site across an
ocean is no answer (Guadeloupe-Martinique is about 150 km, Martinique-Guiana 1,300 km,
Réunion-Mayotte 1,400 km, any of them to Paris 6,700 km or more)."""

_TRUE = frozenset({"oui", "o", "1", "true", "vrai", "yes", "y"})
_FALSE = frozenset({"non", "n", "0", "false", "faux", "no", ""})

SANTE_FR_COLUMNS = (
    "ID", "id_ej", "finess", "rs", "adresse", "cpl_loc", "do_prel", "do_antigenic",
    "longitude", "latitude", "mod_prel", "public", "horaire", "horaire_prio", "check_rdv",
    "tel_rdv", "web_rdv", "date_modif",
)  # fmt: skip
"""The header of Santé.fr's public file of test sites (data.gouv.fr), as given in issue 20."""
SANTE_FR_REQUIRED = ("id", "rs", "adresse", "do_prel", "do_antigenic", "longitude", "latitude")
_ADDRESS_END = re.compile(
    r"^(?P<street>.*)\b(?P<postcode>\d{5}|2[AB]\d{3})\s+(?P<commune>[^\d\s,][^,]*?)\s*$"
)
"""The end of Santé.fr's ``adresse``: ``<street> <postcode> <commune>`` (the last postcode)."""
_FRENCH_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})")


class Kind(StrEnum):
    """A kind of test."""

    PCR = "PCR"
    ANTIGEN = "ANTIGEN"


class SitesFileError(ValueError):
    """A sites file that cannot be loaded; the message says why."""


@dataclass(frozen=True, slots=True)
class Site:
    """One test site."""

    id: str
    name: str
    address: str
    postcode: str
    commune: str
    insee: str
    lat: float
    lon: float
    kinds: frozenset[Kind]
    walk_in: bool
    appointment_url: str | None
    phone: str
    hours: str
    public: str
    updated: date | None

    @property
    def departement(self) -> str:
        """The site's département, from its postcode."""
        from citizens.geo import departement_of_postcode

        return departement_of_postcode(self.postcode)


@dataclass(frozen=True, slots=True)
class BadRow:
    """A skipped row: its line in the file and what was wrong."""

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedSites:
    """What a file gave: its sites and the rows that were skipped."""

    sites: tuple[Site, ...]
    bad_rows: tuple[BadRow, ...]


def _coordinate(text: str) -> float:
    return float(text.strip().replace(",", "."))


def _url(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    lowered = text.lower()
    if not (lowered.startswith("https://") or lowered.startswith("http://")) or any(
        c.isspace() or c in "<>\"'" for c in text
    ):
        raise ValueError("appointment_url must be an http(s) address")
    return text


def parse_row(row: dict[str, str]) -> Site:
    """One CSV row as a site; ``ValueError`` saying what is wrong."""
    values = {k: (row.get(k) or "").strip() for k in (*REQUIRED, *OPTIONAL)}
    for name, value in values.items():
        if len(value) > MAX_FIELD:
            raise ValueError(f"{name} is longer than {MAX_FIELD} characters")
    for name in ("id", "name", "commune"):
        if not values[name]:
            raise ValueError(f"{name} is empty")
    postcode = values["postcode"].upper()
    if not POSTCODE.match(postcode):
        raise ValueError(f"postcode {postcode!r} is not 5 characters like 75011 or 2A004")
    try:
        lat, lon = _coordinate(values["lat"]), _coordinate(values["lon"])
    except ValueError:
        raise ValueError("lat and lon must be decimal degrees") from None
    if not valid_coordinates(lat, lon):
        raise ValueError("lat and lon are off the globe")
    try:
        kinds = frozenset(Kind(k.strip().upper()) for k in values["kinds"].split(",") if k.strip())
    except ValueError:
        raise ValueError(f"kinds {values['kinds']!r}: only PCR and ANTIGEN are known") from None
    if not kinds:
        raise ValueError("kinds is empty")
    walk_in = _yes(values["walk_in"], "walk_in")
    updated = None
    if values["updated"]:
        try:
            updated = date.fromisoformat(values["updated"][:10])
        except ValueError:
            raise ValueError("updated must be YYYY-MM-DD") from None
    return Site(
        id=values["id"],
        name=values["name"],
        address=values["address"],
        postcode=postcode,
        commune=values["commune"],
        insee=values["insee"],
        lat=lat,
        lon=lon,
        kinds=kinds,
        walk_in=walk_in,
        appointment_url=_url(values["appointment_url"]),
        phone=values["phone"],
        hours=values["hours"],
        public=values["public"],
        updated=updated,
    )


def _yes(text: str, column: str) -> bool:
    value = text.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"{column} {text!r} is not oui or non")
    return value in _TRUE


def _hours(text: str) -> str:
    """Opening hours as published; a JSON object (day → hours) shown as ``day hours; ...``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            days = json.loads(text)
        except ValueError:
            return text
        if isinstance(days, dict):
            return "; ".join(f"{day} {hours}".strip() for day, hours in days.items() if hours)
    return text


def from_sante_fr(row: dict[str, str]) -> dict[str, str]:
    """A row of Santé.fr's layout in this module's layout (``ValueError`` if its address
    has no postcode and commune at its end, or a yes/no column is neither)."""
    values = {k: (v or "").strip() for k, v in row.items() if k is not None}
    match = _ADDRESS_END.match(values.get("adresse", ""))
    if match is None:
        raise ValueError("adresse does not end with a postcode and a commune (75011 Paris)")
    kinds = []
    if _yes(values.get("do_prel", ""), "do_prel"):
        kinds.append("PCR")
    if _yes(values.get("do_antigenic", ""), "do_antigenic"):
        kinds.append("ANTIGEN")
    appointment_only = _yes(values.get("check_rdv", ""), "check_rdv")
    hours = _hours(values.get("horaire", ""))
    priority = _hours(values.get("horaire_prio", ""))
    if priority:
        hours = f"{hours} (publics prioritaires : {priority})" if hours else priority
    updated = values.get("date_modif", "")
    french = _FRENCH_DATE.match(updated)
    if french:
        updated = f"{french[3]}-{french[2]}-{french[1]}"
    street = match["street"].strip(" ,;")
    if values.get("cpl_loc"):
        street = f"{street}, {values['cpl_loc']}" if street else values["cpl_loc"]
    return {
        "id": values.get("id", ""),
        "name": values.get("rs", ""),
        "address": street,
        "postcode": match["postcode"],
        "commune": match["commune"],
        "insee": "",
        "lat": values.get("latitude", ""),
        "lon": values.get("longitude", ""),
        "kinds": ",".join(kinds),
        "walk_in": "non" if appointment_only else "oui",
        "appointment_url": values.get("web_rdv", ""),
        "phone": values.get("tel_rdv", ""),
        "hours": hours,
        "public": values.get("public", ""),
        "updated": updated,
    }


def _separator(text: str) -> str:
    first = text.split("\n", 1)[0]
    return ";" if first.count(";") >= first.count(",") else ","


def parse_sites(data: bytes) -> ParsedSites:
    """A sites file's sites, in this module's layout or Santé.fr's (by its header);
    ``SitesFileError`` when it cannot be used at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SitesFileError("the file is not UTF-8 text") from None
    separator = _separator(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=separator)
    header = [h.strip() for h in reader.fieldnames or ()]
    sante_fr = "rs" in header and "adresse" in header
    if sante_fr:
        header = [h.lower() for h in header]  # "ID"
        required: Sequence[str] = SANTE_FR_REQUIRED
    else:
        required = REQUIRED
    missing = [c for c in required if c not in header]
    if missing:
        layout = "Santé.fr's layout" if sante_fr else "layout of citizens/sites.py"
        raise SitesFileError(
            f"missing column(s): {', '.join(missing)} ({layout}, separator {separator!r})"
        )
    reader.fieldnames = header
    sites: list[Site] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        try:
            site = parse_row(from_sante_fr(row) if sante_fr else row)
        except ValueError as exc:
            bad.append(BadRow(line, str(exc)))
            continue
        if site.id in seen:
            bad.append(BadRow(line, f"id {site.id!r} appears twice"))
            continue
        seen.add(site.id)
        sites.append(site)
        if len(sites) > MAX_SITES:
            raise SitesFileError(f"more than {MAX_SITES} sites")
    total = len(sites) + len(bad)
    if not sites:
        raise SitesFileError("no usable site in the file" + _first_bad(bad))
    if len(bad) > MAX_BAD_SHARE * total:
        raise SitesFileError(
            f"{len(bad)} of {total} rows are unusable (more than {MAX_BAD_SHARE:.0%})"
            + _first_bad(bad)
        )
    return ParsedSites(tuple(sites), tuple(bad))


def _first_bad(bad: Sequence[BadRow]) -> str:
    return f"; line {bad[0].line}: {bad[0].reason}" if bad else ""


@dataclass(frozen=True, slots=True)
class SiteQuery:
    """What a person looks for: the nearest sites to ``origin`` offering ``kind`` (any if
    None), only walk-in ones if ``walk_in``, none beyond ``max_km``."""

    origin: Origin
    kind: Kind | None = None
    walk_in: bool = False
    limit: int = DEFAULT_LIMIT
    max_km: float | None = None
    """Sites farther than this are left out (None: no bound)."""


@dataclass(frozen=True, slots=True)
class Found:
    """A site and its distance from the search's origin."""

    site: Site
    distance_km: float


@dataclass(frozen=True, slots=True, eq=False)
class SiteIndex:
    """An immutable, searchable set of sites: coordinates and filters as arrays, so a search
    over the 3,210 sites of 2020 is one vectorised pass (docs/citizens.md gives timings)."""

    sites: tuple[Site, ...]
    version: str
    """SHA-256 of the file the sites came from."""
    loaded_at: float
    bad_rows: tuple[BadRow, ...] = ()
    _lats: npt.NDArray[np.float64] = field(init=False, repr=False)
    _lons: npt.NDArray[np.float64] = field(init=False, repr=False)
    _pcr: npt.NDArray[np.bool_] = field(init=False, repr=False)
    _antigen: npt.NDArray[np.bool_] = field(init=False, repr=False)
    _walk_in: npt.NDArray[np.bool_] = field(init=False, repr=False)
    _by_id: dict[str, Site] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the arrays are computed once, here
        set_(self, "_lats", np.radians(np.array([s.lat for s in self.sites], dtype=np.float64)))
        set_(self, "_lons", np.radians(np.array([s.lon for s in self.sites], dtype=np.float64)))
        set_(self, "_pcr", np.array([Kind.PCR in s.kinds for s in self.sites], dtype=np.bool_))
        set_(
            self,
            "_antigen",
            np.array([Kind.ANTIGEN in s.kinds for s in self.sites], dtype=np.bool_),
        )
        set_(self, "_walk_in", np.array([s.walk_in for s in self.sites], dtype=np.bool_))
        set_(self, "_by_id", {s.id: s for s in self.sites})

    @classmethod
    def from_file_bytes(cls, data: bytes, clock: Callable[[], float] = time.time) -> SiteIndex:
        """Parse and index a file's content (``SitesFileError`` if unusable)."""
        parsed = parse_sites(data)
        return cls(parsed.sites, hashlib.sha256(data).hexdigest(), clock(), parsed.bad_rows)

    def get(self, site_id: str) -> Site | None:
        """One site by its id."""
        return self._by_id.get(site_id)

    def search(self, query: SiteQuery) -> list[Found]:
        """The nearest matching sites, nearest first (ties by id, so results are stable)."""
        if not self.sites:
            return []
        distances = haversine_many_km(query.origin.lat, query.origin.lon, self._lats, self._lons)
        mask = np.ones(len(self.sites), dtype=np.bool_)
        if query.kind is Kind.PCR:
            mask &= self._pcr
        elif query.kind is Kind.ANTIGEN:
            mask &= self._antigen
        if query.walk_in:
            mask &= self._walk_in
        if query.max_km is not None:
            mask &= distances <= query.max_km
        candidates = np.flatnonzero(mask)
        limit = max(1, min(MAX_LIMIT, query.limit))
        if len(candidates) > limit:
            nearest = np.argpartition(distances[candidates], limit - 1)[:limit]
            candidates = candidates[nearest]
        ordered = sorted(candidates.tolist(), key=lambda i: (distances[i], self.sites[i].id))
        return [Found(self.sites[i], float(distances[i])) for i in ordered]


EMPTY = SiteIndex((), hashlib.sha256(b"").hexdigest(), 0.0)


class SiteBook:
    """The sites being served, replaced whole when their file changes.

    ``current`` is the one reference a search reads; ``reload`` builds the new index aside
    and swaps it in only when it is complete and valid."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self.current: SiteIndex = EMPTY
        self.last_error: str | None = None
        self.reloads = 0
        self.failures = 0
        """Checks that found a file that could not be served (each one, logged or not)."""
        self._refused_sha: str | None = None
        """SHA-256 of the last file refused: it is neither parsed nor logged again (a broken
        file would otherwise log the same ERROR at every check)."""

    def reload(self) -> bool:
        """Read the file; swap in its sites if it changed and is usable. True if swapped.
        A failure keeps the sites already served, and is kept in ``last_error``."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self._refused_sha = None
            return self._failed(f"{self.path}: {exc.strerror or type(exc).__name__}", once=True)
        sha = hashlib.sha256(data).hexdigest()
        if sha == self.current.version and self.current.sites:
            self.last_error = self._refused_sha = None  # the served file is back in place
            return False
        if sha == self._refused_sha:  # the same broken file: already said, once
            self.failures += 1
            return False
        try:
            index = SiteIndex.from_file_bytes(data, self.clock)
        except SitesFileError as exc:
            self._refused_sha = sha
            return self._failed(f"{self.path}: {exc}")
        self._refused_sha = None
        self.current = index  # the swap: one reference assignment
        self.last_error = None
        self.reloads += 1
        for bad in index.bad_rows[:20]:
            log.warning("sites file %s line %d skipped: %s", self.path, bad.line, bad.reason)
        log.info(
            "serving %d test sites from %s (version %s, %d rows skipped)",
            len(index.sites), self.path, index.version[:12], len(index.bad_rows),
        )  # fmt: skip
        return True

    def _failed(self, message: str, *, once: bool = False) -> bool:
        """Count and keep a failure, and log it (with ``once``, only if it is not the one
        last kept: an unreadable path is logged once until something changes)."""
        self.failures += 1
        if not (once and message == self.last_error):
            log.error("test sites not reloaded, still serving the previous ones: %s", message)
        self.last_error = message
        return False


def round_km(distance: float) -> float:
    """A distance as shown and sent: to 10 m."""
    return math.floor(distance * 100 + 0.5) / 100
