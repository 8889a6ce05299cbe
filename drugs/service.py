"""The drug service's domain: stock reports and uploads, days of cover and alerts, the weekly
allocation, regional redeployment. Refusals are ``kit.http`` errors."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from drugs import allocation, redeploy
from drugs.catalogue import VirtualDrug, catalogue, resolve
from drugs.cover import Alert, CoverThresholds, days_of_cover
from drugs.critical_care import CriticalCareSource, NoCriticalCare
from drugs.store import DrugStore, Place, Report
from kit.audit import CONSOLE, Actor
from kit.http import BadRequest, Forbidden, HttpError, NotFound, Unprocessable


class Refusal(HttpError):
    """A refusal whose English message is also kept as its template and values, so that a page
    can word it in its reader's language (the API and the command line show ``message``)."""

    def __init__(self, template: str, code: str | None = None, **values: object) -> None:
        super().__init__(template.format(**values), code)
        self.template = template
        self.values = values


class RuleRefusal(Refusal, Unprocessable):
    """422, worded for the pages."""


class RequestRefusal(Refusal, BadRequest):
    """400, worded for the pages."""


PHARMACIST, ARS, NATIONAL = "pharmacist", "ars", "national"
MAX_UNITS = 10_000_000


@dataclass(frozen=True, slots=True)
class Access:
    """A role and a scope: pharmacists their establishment, ARS their region, national all."""

    role: str
    scope: str

    def may_read(self, place: Place) -> bool:
        """Whether an establishment's stocks are visible."""
        if self.role == NATIONAL:
            return True
        if self.role == ARS:
            return self.scope == f"reg:{place.region}"
        return self.role == PHARMACIST and self.scope == f"finess:{place.finess}"

    def may_edit(self, place: Place) -> bool:
        """Whether an establishment's stocks may be reported."""
        return self.role == NATIONAL or (
            self.role == PHARMACIST and self.scope == f"finess:{place.finess}"
        )

    def may_see_region(self, region: str) -> bool:
        """Whether a region's stocks and redeployment are visible."""
        return self.role == NATIONAL or (self.role == ARS and self.scope == f"reg:{region}")


@dataclass(frozen=True, slots=True)
class StockLine:
    """A drug's latest stock in one establishment, with its cover and alert."""

    place: Place
    drug: VirtualDrug
    on_hand: int | None
    daily_use: float | None
    days: float | None
    alert: Alert
    reported_at: datetime | None


class DrugService:
    """Drug stocks over the service's store."""

    def __init__(
        self,
        store: DrugStore,
        *,
        thresholds: CoverThresholds | None = None,
        critical_care: CriticalCareSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.thresholds = thresholds or CoverThresholds()
        self.critical_care: CriticalCareSource = critical_care or NoCriticalCare()
        self.clock = clock

    async def open(self) -> None:
        """Migrate the database."""
        await self.store.open()

    async def close(self) -> None:
        """Release the database."""
        await self.store.close()

    def now(self) -> datetime:
        """Now, aware UTC."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- establishments --------------------------------------------------------------------
    async def load_places(self, text: str) -> int:
        """Register establishments from a CSV with ``finess, name, departement, region`` and
        optional ``lat, lon`` (the bed service's reference file has them)."""
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        try:
            places = [
                Place(
                    r["finess"],
                    r["name"],
                    r["departement"],
                    r["region"],
                    float(r["lat"]) if r.get("lat") else None,
                    float(r["lon"]) if r.get("lon") else None,
                )
                for r in rows
            ]
        except (KeyError, ValueError) as exc:
            raise BadRequest(f"not an establishment file ({exc})") from None
        await self.store.put_places(places, CONSOLE)
        return len(places)

    async def sync_places(self) -> int:
        """Register the establishments the critical-care source knows (the bed service)."""
        found = await self.critical_care.patients("fr")
        await self.store.put_places(
            [Place(p.finess, p.name, p.departement, p.region, None, None) for p in found],
            CONSOLE,
        )
        return len(found)

    async def _place(self, access: Access, finess: str, *, edit: bool = False) -> Place:
        place = await self.store.place(finess)
        allowed = place is not None and (access.may_edit(place) if edit else access.may_read(place))
        if place is None or not allowed:
            raise NotFound(f"no establishment {finess} you may {'update' if edit else 'see'}")
        return place

    # --- reports ---------------------------------------------------------------------------
    @staticmethod
    def check(on_hand: object, daily_use: object) -> tuple[int, float]:
        """A stock (whole units) and an average daily use (≥ 0), or Unprocessable."""
        if (
            not isinstance(on_hand, int)
            or isinstance(on_hand, bool)
            or not 0 <= on_hand <= MAX_UNITS
        ):
            raise RuleRefusal("stock must be a whole number of units, 0 or more")
        if isinstance(daily_use, bool) or not isinstance(daily_use, int | float):
            raise RuleRefusal("daily use must be a number")
        if not 0 <= daily_use <= MAX_UNITS:
            raise RuleRefusal("daily use must be 0 or more")
        return on_hand, float(daily_use)

    async def report(
        self,
        access: Access,
        actor: Actor,
        finess: str,
        drug: str,
        on_hand: object,
        daily_use: object,
        source: str = "api",
    ) -> int:
        """Record one drug's stock and average daily use for an establishment."""
        place = await self._place(access, finess, edit=True)
        found = catalogue().get(drug)
        if found is None:
            raise RuleRefusal("unknown virtual drug {drug}", drug=drug)
        units, use = self.check(on_hand, daily_use)
        [report_id] = await self.store.record(
            [Report(place.finess, found.code, units, use, self.now())], source, actor
        )
        return report_id

    async def report_many(
        self,
        access: Access,
        actor: Actor,
        finess: str,
        lines: Sequence[tuple[str, int, float]],
        source: str,
    ) -> int:
        """Record several drugs' stocks at once (the form)."""
        place = await self._place(access, finess, edit=True)
        now = self.now()
        reports = []
        for code, on_hand, use in lines:
            if code not in catalogue():
                raise RuleRefusal("unknown virtual drug {drug}", drug=code)
            units, checked = self.check(on_hand, use)
            reports.append(Report(place.finess, code, units, checked, now))
        await self.store.record(reports, source, actor)
        return len(reports)

    async def import_export(self, access: Access, actor: Actor, finess: str, text: str) -> int:
        """Record a pharmacy software's CSV export: ``code`` (a virtual drug's code or a
        product of the table), ``stock``, ``daily_use``; products of one virtual drug are
        added up. All lines or none."""
        lines = parse_export(text)
        totals: dict[str, tuple[int, float]] = {}
        for number, name, units, use in lines:
            drug = resolve(name)
            if drug is None:
                raise RuleRefusal(
                    "line {number}: {name!r} is no virtual drug or product",
                    number=number,
                    name=name[:60],
                )
            kept = totals.get(drug.code, (0, 0.0))
            totals[drug.code] = (kept[0] + units, kept[1] + use)
        return await self.report_many(
            access, actor, finess, [(c, u, d) for c, (u, d) in totals.items()], "file"
        )

    def line(self, place: Place, drug: VirtualDrug, report: Report | None) -> StockLine:
        """A stock line with its cover and alert."""
        if report is None:
            return StockLine(place, drug, None, None, None, Alert.OK, None)
        days = days_of_cover(report.on_hand, report.daily_use)
        return StockLine(
            place,
            drug,
            report.on_hand,
            report.daily_use,
            days,
            self.thresholds.alert(days),
            report.reported_at,
        )

    async def stocks(self, access: Access, finess: str) -> list[StockLine]:
        """Every virtual drug of an establishment with its latest stock, cover and alert."""
        place = await self._place(access, finess)
        latest = {r.drug: r for r in await self.store.latest([finess])}
        return [self.line(place, d, latest.get(d.code)) for d in catalogue().values()]

    async def region_stocks(self, access: Access, region: str) -> list[StockLine]:
        """The reported stocks of a region's establishments, alerts first."""
        known_region(region)
        if not access.may_see_region(region):
            raise Forbidden(f"your scope does not cover region {region}")
        places = {p.finess: p for p in await self.store.places(region)}
        lines = [
            self.line(places[r.finess], catalogue()[r.drug], r)
            for r in await self.store.latest(places)
            if r.drug in catalogue()
        ]
        order = {Alert.CRITICAL: 0, Alert.LOW: 1, Alert.OK: 2}
        return sorted(lines, key=lambda s: (order[s.alert], s.days or 1e9, s.place.finess))

    # --- redeployment and allocation -------------------------------------------------------
    async def redeployment(
        self, access: Access, region: str, drug: str, target: float = 14.0, keep: float = 21.0
    ) -> redeploy.Plan:
        """The optimal moves of a drug between a region's establishments."""
        known_region(region)
        if not access.may_see_region(region):
            raise Forbidden(f"your scope does not cover region {region}")
        if drug not in catalogue():
            raise BadRequest(f"unknown virtual drug {drug}")
        if not 0 < target <= keep:
            raise BadRequest("target and keep must satisfy 0 < target <= keep")
        places = {p.finess: p for p in await self.store.places(region)}
        holdings = [
            redeploy.Holding(
                r.finess, r.on_hand, r.daily_use, places[r.finess].lat, places[r.finess].lon
            )
            for r in await self.store.latest(places, drug)
        ]
        return redeploy.plan(holdings, target, keep)

    async def allocate(
        self,
        access: Access,
        actor: Actor,
        drug: str,
        quota: int,
        formula: allocation.Formula | None = None,
    ) -> allocation.Allocation:
        """Split a week's national quota of a drug between regions and establishments, from
        the reported stocks and the patients in critical care; kept and audited."""
        if access.role != NATIONAL:
            raise Forbidden("only national staff allocate the quota")
        if drug not in catalogue():
            raise BadRequest(f"unknown virtual drug {drug}")
        if isinstance(quota, bool) or not isinstance(quota, int) or not 0 <= quota <= MAX_UNITS:
            raise BadRequest("the quota is a whole number of units")
        places = {p.finess: p for p in await self.store.places()}
        stocks = {r.finess: r for r in await self.store.latest(places, drug)}
        patients = {p.finess: p for p in await self.critical_care.patients("fr")}
        inputs = [
            allocation.Inputs(
                finess,
                place.region,
                stocks[finess].on_hand if finess in stocks else 0,
                stocks[finess].daily_use if finess in stocks else 0.0,
                patients[finess].covid if finess in patients else 0,
                patients[finess].other if finess in patients else 0,
            )
            for finess, place in places.items()
            if finess in stocks or finess in patients
        ]
        if not inputs:
            raise Unprocessable("no establishment has reported this drug yet")
        result = allocation.allocate(quota, inputs, formula)
        await self.store.save_allocation(
            drug,
            quota,
            (formula or allocation.CoverShortfall()).name,
            self.now(),
            actor,
            {
                "regions": result.regions,
                "establishments": result.establishments,
                "steps": result.trace.steps,
            },
        )
        return result


# The INSEE codes of the 18 regions, each with its ARS (as in beds/data/regions.csv; no
# service imports another).
REGIONS = ("01", "02", "03", "04", "06", "11", "24", "27", "28", "32", "44", "52", "53", "75",
           "76", "84", "93", "94")  # fmt: skip


def known_region(region: str) -> None:
    """Refuse (404) what is not a region's INSEE code."""
    if region not in REGIONS:
        raise NotFound(f"unknown region {region[:20]!r} (INSEE codes: {', '.join(REGIONS)})")


def parse_export(text: str) -> list[tuple[int, str, int, float]]:
    """(line, code or product, stock, daily use) of a pharmacy export (``;`` or ``,``;
    decimal comma accepted for the daily use)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise RequestRefusal("the file is empty", "bad_file")
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if not {"code", "stock", "daily_use"} <= set(header):
            raise RequestRefusal("the columns are code, stock, daily_use", "bad_file")
        reader.fieldnames = header
        found = []
        for number, row in enumerate(reader, start=2):
            try:
                units = int((row["stock"] or "").strip())
                use = float((row["daily_use"] or "").strip().replace(",", "."))
            except (ValueError, AttributeError):
                raise RequestRefusal(
                    "line {number}: stock and daily_use are numbers", "bad_file", number=number
                ) from None
            if units < 0 or not 0 <= use < 1e9:
                raise RequestRefusal(
                    "line {number}: stock and daily_use are 0 or more",
                    "bad_file",
                    number=number,
                )
            found.append((number, (row["code"] or "").strip(), units, use))
    except csv.Error:
        raise RequestRefusal("the file is not CSV", "bad_file") from None
    return found
