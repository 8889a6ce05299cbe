"""The bed service's domain: who updates which unit, the tension of a territory, the nearest
free bed, the daily figures. Independent of HTTP; every refusal is a ``kit.http`` error, so
the web layer needs no mapping and the commands print it in one line."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from beds import geo
from beds.access import Access
from beds.model import BedKind, Counts, Establishment, Source, Unit, UnitState, Update
from beds.store import BedStore, NewUpdate
from beds.tension import Tension, Thresholds, UnitFigures, by_departement, total
from beds.territory import (
    DATA,
    FRANCE,
    Territory,
    TerritoryError,
    departement_of_postcode,
    departements,
    departements_of,
    parse_territory,
    region_of,
)
from kit.audit import CONSOLE, Actor
from kit.http import BadRequest, Forbidden, NotFound, Unprocessable

MAX_FILE_ROWS = 20_000
MAX_NEAREST = 50
_NO_BEDS = Counts(0, 0, 0, 0, 0)
TREND_DAYS = 7
DAILY_REUSE_SECONDS = 60.0
"""How long the past days' figures are reused (when figures are reused at all)."""
FILE_COLUMNS = ("finess", "unit", "installed", "surge", "occupied", "available", "covid")
"""The columns of an update file (``updated_at`` optional, ISO 8601)."""


@dataclass(frozen=True, slots=True)
class DashboardRow:
    """One département (or region) of a dashboard, with its 7-day series of tension rates."""

    code: str
    name: str
    tension: Tension
    series: list[float | None]


@dataclass(frozen=True, slots=True)
class Dashboard:
    """A territory's figures now, by part, with the 7-day national series."""

    territory: Territory
    total: Tension
    rows: list[DashboardRow]
    series: list[float | None]
    days: list[str]
    as_of: datetime
    by_dep: dict[str, Tension]
    """Every département of the territory having units, now (the map's colours)."""


@dataclass(frozen=True, slots=True)
class CriticalCare:
    """Patients in critical care in one establishment now."""

    finess: str
    name: str
    departement: str
    region: str
    covid: int
    other: int
    """Non-COVID patients in critical care (occupied beds less COVID patients)."""
    stale_units: int

    def as_json(self) -> dict[str, object]:
        """As the ``critical-care`` API gives it."""
        return {
            "finess": self.finess,
            "name": self.name,
            "departement": self.departement,
            "region": self.region,
            "covid": self.covid,
            "other": self.other,
            "stale_units": self.stale_units,
        }


@dataclass(frozen=True, slots=True)
class NearestBed:
    """A unit with a free bed and its distance."""

    state: UnitState
    km: float


def iso_utc(moment: datetime) -> str:
    """ISO 8601 UTC to the second (``...Z``)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def tension_json(territory: Territory, t: Tension, as_of: datetime) -> dict[str, object]:
    """The tension figures as the SAMU board reads them (the agreed contract)."""
    rate = t.tension_rate
    return {
        "territory": territory.code,
        "covid_critical": t.covid_critical,
        "initial_capacity": t.initial_capacity,
        "tension_rate": None if rate is None else round(rate, 4),
        "occupied": t.occupied,
        "available": t.available,
        "stale_units": t.stale_units,
        "as_of": iso_utc(as_of),
    }


class BedService:
    """Bed capacity over the service's store."""

    def __init__(
        self,
        store: BedStore,
        *,
        stale_after: float = 3600.0,
        thresholds: Thresholds | None = None,
        clock: Callable[[], float] = time.time,
        figures_cache_seconds: float = 1.0,
        in_sql: bool = True,
        group_commit: bool = True,
    ) -> None:
        self.store = store
        self.stale_after = stale_after
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self.figures_cache_seconds = figures_cache_seconds
        """How long the national figures by département are reused while no update is
        recorded by this service (updates recorded elsewhere show within this delay)."""
        self.in_sql = in_sql
        """Sum the figures in the database and rank free beds from their positions alone
        (False: over every unit's whole state in Python, the reference the tests compare
        with, and the benchmark's "before")."""
        self.group_commit = group_commit
        """Updates arriving together share one transaction (False: one each)."""
        self._cached: tuple[int, float, dict[str, Tension]] | None = None
        self._computing: tuple[int, asyncio.Task[dict[str, Tension]]] | None = None
        self._daily_cache: tuple[date, float, dict[str, dict[str, Tension]]] | None = None

    async def open(self) -> None:
        """Migrate the database."""
        await self.store.open()

    async def close(self) -> None:
        """Release the database."""
        await self.store.close()

    def now(self) -> datetime:
        """Now, aware UTC, from the service's clock."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- reference data --------------------------------------------------------------------
    async def load_establishments(
        self, path: Path = DATA / "establishments.csv", *, with_units: bool = True
    ) -> tuple[int, int]:
        """Load establishments from a reference file (``beds/data/establishments.csv``'s
        columns) and, if asked, one réanimation and one intensive-care unit each with the
        file's beds as initial capacity. (establishments, units created)."""
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        items = [
            Establishment(
                r["finess"],
                r["name"],
                r["commune"],
                r["postcode"],
                r["departement"],
                r["region"],
                float(r["lat"]),
                float(r["lon"]),
            )
            for r in rows
        ]
        await self.store.put_establishments(items, CONSOLE)
        created = 0
        if with_units:
            for r in rows:
                for kind, column, name in (
                    (BedKind.REA, "rea_beds", "Réanimation"),
                    (BedKind.SI, "si_beds", "Soins intensifs"),
                ):
                    beds = int(r[column] or 0)
                    if beds and await self.store.add_unit(
                        r["finess"], kind.value.upper(), name, kind, beds, CONSOLE
                    ):
                        created += 1
        return len(items), created

    async def add_unit(
        self,
        access: Access,
        actor: Actor,
        finess: str,
        code: str,
        name: str,
        kind: BedKind,
        initial: int,
    ) -> Unit:
        """A new unit of an establishment (national staff only)."""
        if access.role != "national":
            raise Forbidden("only national staff add units")
        if await self.store.establishment(finess) is None:
            raise NotFound(f"no establishment {finess}")
        if not 0 <= initial <= 10_000:
            raise BadRequest("initial capacity must be 0 to 10000")
        unit = await self.store.add_unit(finess, code, name, kind, initial, actor)
        if unit is None:
            raise Unprocessable(f"{finess} has a unit {code} already")
        return unit

    # --- reading units ---------------------------------------------------------------------
    async def establishment(self, access: Access, finess: str) -> Establishment:
        """An establishment the access may read; NotFound otherwise (not telling which)."""
        found = await self.store.establishment(finess)
        if found is None or not access.may_read(finess, found.departement):
            raise NotFound(f"no establishment {finess} you may see")
        return found

    async def units_of(self, access: Access, finess: str) -> list[UnitState]:
        """An establishment's units with their latest counts."""
        await self.establishment(access, finess)
        return await self.store.states(finess=finess)

    async def unit_state(self, access: Access, unit_id: int) -> UnitState:
        """One unit with its counts, if the access may read it."""
        found = await self.store.states(unit_ids=[unit_id])
        if not found or not access.may_read(
            found[0].unit.finess, found[0].establishment.departement
        ):
            raise NotFound(f"no unit {unit_id} you may see")
        return found[0]

    async def history(self, access: Access, unit_id: int, limit: int = 100) -> list[Update]:
        """A unit's updates, newest first."""
        await self.unit_state(access, unit_id)
        return await self.store.history(unit_id, max(1, min(limit, 1000)))

    def is_stale(self, state: UnitState) -> bool:
        """Never updated, or not within the allowed age."""
        return state.is_stale(self.now(), self.stale_after)

    # --- updates ---------------------------------------------------------------------------
    def _check_time(self, at: datetime | None) -> datetime:
        now = self.now()
        if at is None:
            return now
        if at.tzinfo is None:
            raise BadRequest("an update time must carry its offset (Z or +01:00)")
        if at > now + timedelta(minutes=5):
            raise BadRequest("an update time cannot be in the future")
        if at < now - timedelta(days=30):
            raise BadRequest("an update older than 30 days is refused")
        return at.astimezone(UTC)

    async def update(
        self,
        access: Access,
        actor: Actor,
        unit_id: int,
        counts: Counts,
        source: Source,
        at: datetime | None = None,
    ) -> Update:
        """Record a unit's new counts."""
        unit = await self.store.unit(unit_id)
        if unit is None or not access.may_edit(unit.finess):
            raise NotFound(f"no unit {unit_id} you may update")
        problems = counts.problems()
        if problems:
            raise Unprocessable("; ".join(problems), "bad_counts")
        [recorded] = await self._record(
            [NewUpdate(unit_id, counts, self._check_time(at), source.value)], actor
        )
        return recorded

    async def _record(self, items: Sequence[NewUpdate], actor: Actor) -> list[Update]:
        if self.group_commit:
            return await self.store.submit(items, actor)
        return await self.store.record(items, actor)

    async def update_by_code(
        self,
        access: Access,
        actor: Actor,
        finess: str,
        code: str,
        counts: Counts,
        source: Source,
        at: datetime | None = None,
    ) -> Update:
        """Record new counts of the unit ``code`` of ``finess``."""
        unit = await self.store.unit_by_code(finess, code)
        if unit is None or not access.may_edit(finess):
            raise NotFound(f"no unit {code} of {finess} you may update")
        return await self.update(access, actor, unit.id, counts, source, at)

    async def import_file(self, access: Access, actor: Actor, text: str) -> list[Update]:
        """Record every line of an update file (CSV, ``,`` or ``;``), or none: a bad line
        refuses the file, naming the line."""
        parsed = parse_update_file(text)
        items: list[NewUpdate] = []
        for line, finess, code, counts, at in parsed:
            unit = await self.store.unit_by_code(finess, code)
            if unit is None or not access.may_edit(finess):
                raise Unprocessable(f"line {line}: no unit {code} of {finess} you may update")
            problems = counts.problems()
            if problems:
                raise Unprocessable(f"line {line}: {'; '.join(problems)}", "bad_counts")
            try:
                when = self._check_time(at)
            except BadRequest as exc:
                raise Unprocessable(f"line {line}: {exc.message}") from None
            items.append(NewUpdate(unit.id, counts, when, Source.FILE.value))
        return await self._record(items, actor)

    # --- tension ---------------------------------------------------------------------------
    async def _figures(self, territory: Territory) -> list[UnitFigures]:
        deps = None if territory.level == "fr" else departements_of(territory)
        now = self.now()
        return [
            UnitFigures(
                s.establishment.departement,
                s.unit.kind,
                s.unit.initial,
                s.counts,
                s.is_stale(now, self.stale_after),
            )
            for s in await self.store.states(departements=deps)
        ]

    async def by_departement(self, territory: Territory) -> dict[str, Tension]:
        """The figures now of each département of a territory having units."""
        if not self.in_sql:
            return by_departement(await self._figures(territory))
        national = await self._national()
        if territory.level == "fr":
            return dict(national)
        return {d: national[d] for d in departements_of(territory) if d in national}

    async def _national(self) -> dict[str, Tension]:
        """Every département's figures, summed by the database; reused while the store has
        recorded nothing since and for at most ``figures_cache_seconds``; concurrent callers
        share one query."""
        version = self.store.version
        cached = self._cached
        if (
            cached is not None
            and cached[0] == version
            and 0 <= self.clock() - cached[1] < self.figures_cache_seconds
        ):
            return cached[2]
        computing = self._computing
        if computing is None or computing[0] != version:
            task = asyncio.create_task(self._sum_in_sql(version))
            self._computing = computing = (version, task)
        return await asyncio.shield(computing[1])

    async def _sum_in_sql(self, version: int) -> dict[str, Tension]:
        try:
            taken = self.clock()
            stale_before = datetime.fromtimestamp(taken - self.stale_after, UTC)
            figures = await self.store.tension_by_departement(None, stale_before)
            self._cached = (version, taken, figures)
            return figures
        finally:
            if self._computing is not None and self._computing[0] == version:
                self._computing = None

    async def tension(self, access: Access, territory_code: str) -> dict[str, object]:
        """The agreed tension figures of a territory."""
        territory = self._territory(access, territory_code)
        figures = total((await self.by_departement(territory)).values())
        return tension_json(territory, figures, self.now())

    def _territory(self, access: Access, code: str) -> Territory:
        try:
            territory = parse_territory(code)
        except TerritoryError as exc:
            raise BadRequest(str(exc), "bad_territory") from None
        if not access.may_see_territory(territory):
            raise Forbidden(f"your scope does not cover {territory.code}")
        return territory

    async def dashboard(
        self, access: Access, territory_code: str, *, departement_parts: bool = False
    ) -> Dashboard:
        """A territory's figures by part (départements of a region or département, regions
        of France, or départements of France with ``departement_parts``) with 7 days of tension
        rates from the daily figures, today's live."""
        territory = self._territory(access, territory_code)
        now = self.now()
        per_dep = await self.by_departement(territory)
        days = [(now.date() - timedelta(days=d)) for d in range(TREND_DAYS - 1, -1, -1)]
        deps = None if territory.level == "fr" else departements_of(territory)
        kept = await self._daily(deps, days[0])
        history = [kept.get(d.isoformat(), {}) for d in days[:-1]] + [per_dep]
        names = departements()
        if territory.level == "fr" and not departement_parts:
            from beds.territory import regions

            groups: dict[str, list[str]] = {}
            for dep in names:
                groups.setdefault(region_of(dep), []).append(dep)
            parts = [(code, regions()[code], groups.get(code, [])) for code in sorted(regions())]
        else:
            parts = [(d, names[d][0], [d]) for d in departements_of(territory)]
        rows = []
        for code, name, members in parts:
            now_total = total(per_dep[d] for d in members if d in per_dep)
            if now_total.units == 0:
                continue
            series = [total(day[d] for d in members if d in day).tension_rate for day in history]
            rows.append(DashboardRow(code, name, now_total, series))
        overall = total(per_dep.values())
        series = [total(day.values()).tension_rate for day in history]
        return Dashboard(
            territory, overall, rows, series, [d.isoformat() for d in days], now, per_dep
        )

    async def _daily(self, deps: list[str] | None, since: date) -> dict[str, dict[str, Tension]]:
        """The kept daily figures from ``since`` on (day → département → figures). With reuse
        on, every département's are read once and kept ``DAILY_REUSE_SECONDS`` (past days
        change only when a day's last snapshot runs; a snapshot here drops them at once)."""
        if not self.in_sql or self.figures_cache_seconds <= 0:
            return await self.store.daily_figures(deps, since)
        now = self.clock()
        cached = self._daily_cache
        if cached is None or cached[0] != since or not 0 <= now - cached[1] < DAILY_REUSE_SECONDS:
            cached = (since, now, await self.store.daily_figures(None, since))
            self._daily_cache = cached
        if deps is None:
            return cached[2]
        wanted = set(deps)
        return {
            day: {d: t for d, t in per_dep.items() if d in wanted}
            for day, per_dep in cached[2].items()
        }

    async def snapshot(self, day: date | None = None) -> int:
        """Keep today's figures of every département (run periodically: the last run of a
        day stands for it); how many départements."""
        per_dep = await self.by_departement(parse_territory(FRANCE))
        now = self.now()
        await self.store.put_daily(day or now.date(), per_dep, now)
        self._daily_cache = None
        return len(per_dep)

    async def critical_care(self, access: Access, territory_code: str) -> list[CriticalCare]:
        """COVID and other patients in critical care now, per establishment of a territory
        (what the drug service's allocation key reads)."""
        territory = self._territory(access, territory_code)
        deps = None if territory.level == "fr" else departements_of(territory)
        found: dict[str, CriticalCare] = {}
        for s in await self.store.states(departements=deps):
            place = s.establishment
            kept = found.get(place.finess) or CriticalCare(
                place.finess, place.name, place.departement, place.region, 0, 0, 0
            )
            c = s.counts
            found[place.finess] = CriticalCare(
                kept.finess,
                kept.name,
                kept.departement,
                kept.region,
                kept.covid + (c.covid if c else 0),
                kept.other + (c.occupied - c.covid if c else 0),
                kept.stale_units + self.is_stale(s),
            )
        return [found[k] for k in sorted(found)]

    # --- finding a bed ---------------------------------------------------------------------
    async def origin_of_postcode(self, postcode: str) -> tuple[float, float]:
        """Where a search from a postcode starts: the mean position of the registered
        establishments of that postcode, else of the postcode's département (the registry
        has no postcode centroids; documented in docs/beds.md)."""
        try:
            dep = departement_of_postcode(postcode)
        except TerritoryError as exc:
            raise BadRequest(str(exc), "bad_postcode") from None
        places = await self.store.establishments_in([dep])
        same = [e for e in places if e.postcode == postcode] or places
        if not same:
            raise Unprocessable(f"no establishment is registered in département {dep}")
        return (sum(e.lat for e in same) / len(same), sum(e.lon for e in same) / len(same))

    async def nearest(
        self, access: Access, kind: BedKind, lat: float, lon: float, limit: int = 5
    ) -> list[NearestBed]:
        """The units with a free bed of ``kind`` nearest to a point, nearest first."""
        if not access.may_find:
            raise Forbidden("finding a bed is for regulators, ARS and national staff")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise BadRequest("lat must be -90..90 and lon -180..180")
        if not self.in_sql:  # the first version, kept as the benchmark's "before"
            everyone = await self.store.states(kind=kind, with_free_bed=True)
            ranked = geo.nearest(
                lat,
                lon,
                [s.establishment.lat for s in everyone],
                [s.establishment.lon for s in everyone],
                max(1, min(limit, MAX_NEAREST)),
            )
            return [NearestBed(everyone[c.index], round(c.km, 1)) for c in ranked]
        candidates = await self.store.free_positions(kind)
        found = geo.nearest(
            lat,
            lon,
            [c[1] for c in candidates],
            [c[2] for c in candidates],
            max(1, min(limit, MAX_NEAREST)),
        )
        ids = [candidates[c.index][0] for c in found]
        states = {s.unit.id: s for s in await self.store.states(unit_ids=ids)}
        # A unit filled between the two reads is left out (the regulator sees free beds only).
        return [
            NearestBed(states[unit_id], round(c.km, 1))
            for unit_id, c in zip(ids, found, strict=True)
            if unit_id in states and (states[unit_id].counts or _NO_BEDS).available > 0
        ]

    # --- FHIR search -----------------------------------------------------------------------
    async def search(
        self,
        access: Access,
        *,
        postcodes: Sequence[str] | None = None,
        identifiers: Iterable[str] | None = None,
        since: datetime | None = None,
    ) -> list[UnitState]:
        """Units the access may read, by postcode prefixes, unit identifiers
        (``<finess>-<code>`` or the FINESS alone) and last update."""
        states = await self.store.states(postcodes=postcodes, changed_since=since)
        if identifiers is not None:
            wanted = set(identifiers)
            states = [
                s
                for s in states
                if s.unit.finess in wanted or f"{s.unit.finess}-{s.unit.code}" in wanted
            ]
        return [s for s in states if access.may_read(s.unit.finess, s.establishment.departement)]


def parse_update_file(text: str) -> list[tuple[int, str, str, Counts, datetime | None]]:
    """The lines of an update file: (line number, FINESS, unit code, counts, time or None).

    The first line names the columns (any order; ``finess``, ``unit``, the five counts, and
    ``updated_at`` optionally); the separator is ``;`` (French spreadsheets) or ``,``."""
    if not text.strip():
        raise BadRequest("the file is empty", "bad_file")
    try:
        return _parse_rows(text)
    except csv.Error:
        raise BadRequest("the file is not CSV", "bad_file") from None


def _parse_rows(text: str) -> list[tuple[int, str, str, Counts, datetime | None]]:
    first = text.lstrip("\ufeff").splitlines()[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in FILE_COLUMNS if c not in header]
    if missing:
        raise BadRequest(f"missing columns: {', '.join(missing)}", "bad_file")
    reader.fieldnames = header
    parsed = []
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_FILE_ROWS:
            raise BadRequest(f"at most {MAX_FILE_ROWS} lines per file", "bad_file")
        try:
            values = [int((row[c] or "").strip()) for c in FILE_COLUMNS[2:]]
        except (ValueError, AttributeError):
            raise BadRequest(f"line {number}: counts must be whole numbers", "bad_file") from None
        at = None
        raw = (row.get("updated_at") or "").strip()
        if raw:
            try:
                at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise BadRequest(f"line {number}: updated_at is not ISO 8601", "bad_file") from None
        finess = (row["finess"] or "").strip()
        code = (row["unit"] or "").strip()
        if not finess or not code:
            raise BadRequest(f"line {number}: finess and unit are required", "bad_file")
        parsed.append((number, finess, code, Counts(*values), at))
    return parsed
