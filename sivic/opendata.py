"""Santé publique France's hospital open data (``health.md`` §4.1), pure: the daily snapshot
computed from counts of patients' states and movements, the invariants checked before
publishing, the files written, and a reader of the files as they were published (both date
styles, with or without the split of ``hosp``).

Files, ``;``-separated, one row per département (region for the age classes) and day:

- ``donnees-hospitalieres-covid19``: ``dep;sexe;jour;hosp;rea;HospConv;SSR_USLD;autres;rad;dc``
  (``sexe`` 0 everyone, unknown sex included, 1 men, 2 women; ``hosp`` everyone hospitalised
  on the day, ``rea`` those of them in critical care, ``HospConv``, ``SSR_USLD``, ``autres``
  the rest by kind of unit, so ``hosp = rea + HospConv + SSR_USLD + autres``; ``rad`` and
  ``dc`` cumulative returns home and deaths);
- ``donnees-hospitalieres-nouveaux-covid19``: ``dep;jour;incid_hosp;incid_rea;incid_dc;incid_rad``
  (the day's new hospitalisations, entries into critical care, deaths, returns home);
- ``donnees-hospitalieres-classe-age-covid19``: ``reg;cl_age90;jour;hosp;...;rad;dc`` by region
  and age class (``0`` everyone, then ``09`` ... ``89``, ``90``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sivic.model import AGE_CLASSES, Covid, Sex, Status, UnitKind
from sivic.territory import departements, region_of, regions

HOSPITAL = "donnees-hospitalieres-covid19"
NEW = "donnees-hospitalieres-nouveaux-covid19"
AGE = "donnees-hospitalieres-classe-age-covid19"
DATASETS = (HOSPITAL, NEW, AGE)
HOSPITAL_HEADER = (
    "dep",
    "sexe",
    "jour",
    "hosp",
    "rea",
    "HospConv",
    "SSR_USLD",
    "autres",
    "rad",
    "dc",
)
NEW_HEADER = ("dep", "jour", "incid_hosp", "incid_rea", "incid_dc", "incid_rad")
AGE_HEADER = (
    "reg",
    "cl_age90",
    "jour",
    "hosp",
    "rea",
    "HospConv",
    "SSR_USLD",
    "autres",
    "rad",
    "dc",
)
HEADERS = {HOSPITAL: HOSPITAL_HEADER, NEW: NEW_HEADER, AGE: AGE_HEADER}
ALL_REASONS = frozenset(Covid)


# --- inputs ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StateCount:
    """``n`` patients whose state at the end of the day is this one."""

    dep: str
    sex: Sex
    age_class: str
    unit: UnitKind
    status: Status
    covid: Covid
    n: int = 1


@dataclass(frozen=True, slots=True)
class MovementCount:
    """Movements of patients of this kind up to the day (``on_day``: on the day itself)."""

    dep: str
    sex: Sex
    age_class: str
    covid: Covid
    on_day: bool
    admitted: int = 0
    to_critical: int = 0
    to_home: int = 0
    to_death: int = 0


# --- outputs -----------------------------------------------------------------------------------
@dataclass(slots=True)
class Figures:
    """Counts of one row of the main or age file."""

    hosp: int = 0
    rea: int = 0
    conv: int | None = 0
    ssr_usld: int | None = 0
    other: int | None = 0
    rad: int = 0
    dc: int = 0

    def values(self) -> tuple[int | None, ...]:
        return (self.hosp, self.rea, self.conv, self.ssr_usld, self.other, self.rad, self.dc)


@dataclass(frozen=True, slots=True)
class HospitalRow:
    """A row of ``donnees-hospitalieres-covid19``."""

    dep: str
    sexe: int
    jour: date
    figures: Figures

    def fields(self) -> tuple[object, ...]:
        return (self.dep, self.sexe, self.jour.isoformat(), *self.figures.values())


@dataclass(frozen=True, slots=True)
class NewRow:
    """A row of ``donnees-hospitalieres-nouveaux-covid19``."""

    dep: str
    jour: date
    incid_hosp: int
    incid_rea: int
    incid_dc: int
    incid_rad: int

    def fields(self) -> tuple[object, ...]:
        return (
            self.dep,
            self.jour.isoformat(),
            self.incid_hosp,
            self.incid_rea,
            self.incid_dc,
            self.incid_rad,
        )


@dataclass(frozen=True, slots=True)
class AgeRow:
    """A row of ``donnees-hospitalieres-classe-age-covid19``."""

    reg: str
    cl_age90: str
    jour: date
    figures: Figures

    def fields(self) -> tuple[object, ...]:
        return (self.reg, self.cl_age90, self.jour.isoformat(), *self.figures.values())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The three files' rows of one day."""

    day: date
    hospital: list[HospitalRow]
    new: list[NewRow]
    age: list[AgeRow]

    def rows(self, dataset: str) -> Sequence[HospitalRow | NewRow | AgeRow]:
        if dataset == HOSPITAL:
            return self.hospital
        return self.new if dataset == NEW else self.age

    def body(self, dataset: str) -> str:
        """The day's rows of ``dataset`` as CSV lines (no header)."""
        return "".join(_line(r.fields()) for r in self.rows(dataset))

    def totals(self, deps: Iterable[str] | None = None) -> Figures:
        """The ``sexe`` 0 figures summed over ``deps`` (every département with None)."""
        wanted = None if deps is None else set(deps)
        total = Figures()
        for row in self.hospital:
            if row.sexe == 0 and (wanted is None or row.dep in wanted):
                _add(total, row.figures)
        return total

    def new_totals(self, deps: Iterable[str] | None = None) -> NewRow:
        wanted = None if deps is None else set(deps)
        rows = [r for r in self.new if wanted is None or r.dep in wanted]
        return NewRow(
            "",
            self.day,
            sum(r.incid_hosp for r in rows),
            sum(r.incid_rea for r in rows),
            sum(r.incid_dc for r in rows),
            sum(r.incid_rad for r in rows),
        )


def _add(total: Figures, part: Figures) -> None:
    total.hosp += part.hosp
    total.rea += part.rea
    total.conv = (total.conv or 0) + (part.conv or 0)
    total.ssr_usld = (total.ssr_usld or 0) + (part.ssr_usld or 0)
    total.other = (total.other or 0) + (part.other or 0)
    total.rad += part.rad
    total.dc += part.dc


def _line(fields: Iterable[object]) -> str:
    return ";".join("" if f is None else str(f) for f in fields) + "\n"


def compute(
    day: date,
    states: Iterable[StateCount],
    movements: Iterable[MovementCount],
    reasons: frozenset[Covid] = ALL_REASONS,
) -> Snapshot:
    """The day's rows of the three files, for every département and region of the reference
    tables (zeros included, as SpF published them). ``reasons``: which patients count (COVID
    as the reason, incidental, or both: the files of 2020 counted every COVID inpatient)."""
    by_dep_sex: dict[tuple[str, int], Figures] = defaultdict(Figures)
    by_reg_age: dict[tuple[str, str], Figures] = defaultdict(Figures)
    incid: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    known = departements()
    for s in states:
        if s.covid not in reasons or s.status != Status.HOSPITALISED or s.dep not in known:
            continue
        targets = _targets(by_dep_sex, by_reg_age, s.dep, s.sex, s.age_class)
        for f in targets:
            f.hosp += s.n
            if s.unit == UnitKind.CRIT:
                f.rea += s.n
            elif s.unit == UnitKind.CONV:
                f.conv = (f.conv or 0) + s.n
            elif s.unit == UnitKind.SSR_USLD:
                f.ssr_usld = (f.ssr_usld or 0) + s.n
            else:
                f.other = (f.other or 0) + s.n
    for m in movements:
        if m.covid not in reasons or m.dep not in known:
            continue
        for f in _targets(by_dep_sex, by_reg_age, m.dep, m.sex, m.age_class):
            f.rad += m.to_home
            f.dc += m.to_death
        if m.on_day:
            counts = incid[m.dep]
            counts[0] += m.admitted
            counts[1] += m.to_critical
            counts[2] += m.to_death
            counts[3] += m.to_home
    hospital = [
        HospitalRow(dep, sexe, day, by_dep_sex.get((dep, sexe), Figures()))
        for dep in known
        for sexe in (0, 1, 2)
    ]
    new = [NewRow(dep, day, *incid.get(dep, (0, 0, 0, 0))) for dep in known]
    age = [
        AgeRow(reg, cl, day, by_reg_age.get((reg, cl), Figures()))
        for reg in regions()
        for cl in ("0", *AGE_CLASSES)
    ]
    return Snapshot(day, hospital, new, age)


def _targets(
    by_dep_sex: dict[tuple[str, int], Figures],
    by_reg_age: dict[tuple[str, str], Figures],
    dep: str,
    sex: Sex,
    age: str,
) -> list[Figures]:
    targets = [by_dep_sex[(dep, 0)]]
    if sex != Sex.UNKNOWN:
        targets.append(by_dep_sex[(dep, sex.sexe)])
    reg = region_of(dep)
    targets.append(by_reg_age[(reg, "0")])
    if age in AGE_CLASSES:
        targets.append(by_reg_age[(reg, age)])
    return targets


# --- invariants --------------------------------------------------------------------------------
def check_rows(rows: Iterable[HospitalRow]) -> list[str]:
    """The invariants of a series of main-file rows (any layout, ours or SpF's): critical care
    within hospitalised; men and women together within everyone; cumulative returns home and
    deaths never decreasing from one day to the next of a département and sex."""
    problems: list[str] = []
    by_day: dict[tuple[str, date], dict[int, Figures]] = defaultdict(dict)
    series: dict[tuple[str, int], list[tuple[date, Figures]]] = defaultdict(list)
    for r in rows:
        f = r.figures
        if f.rea > f.hosp:
            problems.append(f"{r.dep} sexe {r.sexe} {r.jour}: rea {f.rea} > hosp {f.hosp}")
        by_day[(r.dep, r.jour)][r.sexe] = f
        series[(r.dep, r.sexe)].append((r.jour, f))
    for (dep, day), sexes in by_day.items():
        if {0, 1, 2} <= set(sexes):
            for name in ("hosp", "rea", "rad", "dc"):
                whole = getattr(sexes[0], name)
                parts = getattr(sexes[1], name) + getattr(sexes[2], name)
                if parts > whole:
                    problems.append(f"{dep} {day}: {name} of men and women {parts} > {whole}")
    for (dep, sexe), points in series.items():
        points.sort(key=lambda p: p[0])
        for (d0, f0), (d1, f1) in itertools.pairwise(points):
            for name in ("rad", "dc"):
                if getattr(f1, name) < getattr(f0, name):
                    problems.append(
                        f"{dep} sexe {sexe}: {name} fell from {getattr(f0, name)} on {d0} "
                        f"to {getattr(f1, name)} on {d1}"
                    )
    return problems


def check_snapshot(snapshot: Snapshot, previous: Iterable[HospitalRow] = ()) -> list[str]:
    """What forbids publishing ``snapshot`` after the rows already published (``previous``,
    earlier days): the series' invariants, and within the day, ``hosp`` equal to the sum of its
    split, the age classes summing to the ``0`` class, and no negative count."""
    earlier = [r for r in previous if r.jour < snapshot.day]
    latest: dict[tuple[str, int], HospitalRow] = {}
    for r in earlier:
        kept = latest.get((r.dep, r.sexe))
        if kept is None or r.jour > kept.jour:
            latest[(r.dep, r.sexe)] = r
    problems = check_rows([*latest.values(), *snapshot.hospital])
    for h in snapshot.hospital:
        f = h.figures
        if f.rea + (f.conv or 0) + (f.ssr_usld or 0) + (f.other or 0) != f.hosp:
            problems.append(f"{h.dep} sexe {h.sexe}: hosp {f.hosp} is not the sum of its split")
    classes: dict[str, list[Figures]] = defaultdict(list)
    whole: dict[str, Figures] = {}
    for a in snapshot.age:
        if a.cl_age90 == "0":
            whole[a.reg] = a.figures
        else:
            classes[a.reg].append(a.figures)
    for reg, f in whole.items():
        summed = Figures()
        for part in classes[reg]:
            _add(summed, part)
        if summed.values() != f.values():
            problems.append(f"region {reg}: the age classes do not sum to class 0")
    for n in snapshot.new:
        if min(n.incid_hosp, n.incid_rea, n.incid_dc, n.incid_rad) < 0:
            problems.append(f"{n.dep}: a negative daily count")
    return problems


# --- files -------------------------------------------------------------------------------------
def file_name(dataset: str, day: date) -> str:
    """SpF's name of a day's file: ``donnees-hospitalieres-covid19-2020-04-23-19h00.csv``."""
    return f"{dataset}-{day.isoformat()}-19h00.csv"


def csv_text(dataset: str, bodies: Iterable[str]) -> str:
    """A whole file: the header, then the days' bodies in order."""
    return _line(HEADERS[dataset]) + "".join(bodies)


class FileError(ValueError):
    """A file that is not one of these open-data files; the message says where."""


def read_day(value: str) -> date:
    """A ``jour`` of a published file: ISO (``2020-03-18``) or, as some files of 2020 had it,
    French (``18/03/2020``); quotes around it are dropped."""
    text = value.strip().strip('"')
    if len(text) == 10 and text[2] == "/" and text[5] == "/":
        return date(int(text[6:]), int(text[3:5]), int(text[:2]))
    return date.fromisoformat(text)


def _cells(line: str) -> list[str]:
    return [c.strip().strip('"') for c in line.rstrip("\r").split(";")]


def _int(value: str) -> int | None:
    return None if value in ("", "NA") else int(value)


def _read_figures(
    text: str, keys: tuple[str, str], dataset: str
) -> list[tuple[str, str, date, Figures]]:
    """The rows of a main or age-class file: its two key cells, the day, the figures."""
    lines = [line for line in text.removeprefix("\ufeff").split("\n") if line.strip()]
    if not lines:
        raise FileError("empty file")
    header = _cells(lines[0])
    needed = {*keys, "jour", "hosp", "rea", "rad", "dc"}
    if not needed <= set(header):
        raise FileError(f"line 1: not a {dataset} header")
    at = {name: header.index(name) for name in header}
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = _cells(line)
        if len(cells) != len(header):
            raise FileError(f"line {number}: {len(cells)} cells, {len(header)} expected")
        try:
            split = [
                _int(cells[at[name]]) if name in at else None
                for name in ("HospConv", "SSR_USLD", "autres")
            ]
            counts = [_int(cells[at[name]]) for name in ("hosp", "rea", "rad", "dc")]
            if any(c is None for c in counts):
                raise ValueError("an empty count")
            hosp, rea, rad, dc = (c or 0 for c in counts)
            figures = Figures(hosp, rea, split[0], split[1], split[2], rad, dc)
            day = read_day(cells[at["jour"]])
        except ValueError as exc:
            raise FileError(f"line {number}: {exc}") from None
        rows.append((cells[at[keys[0]]], cells[at[keys[1]]], day, figures))
    return rows


def read_hospital(text: str) -> list[HospitalRow]:
    """The rows of a ``donnees-hospitalieres-covid19`` file as published: quoted or not,
    ISO or French dates, the first layout (``dep;sexe;jour;hosp;rea;rad;dc``) or the later
    one with the split of ``hosp`` (empty cells, as in the early days of that layout, are
    None). ``FileError`` naming the line for anything else."""
    rows = []
    for number, (dep, sexe, day, figures) in enumerate(
        _read_figures(text, ("dep", "sexe"), HOSPITAL), start=2
    ):
        if sexe not in ("0", "1", "2"):
            raise FileError(f"line {number}: sexe must be 0, 1 or 2")
        rows.append(HospitalRow(dep, int(sexe), day, figures))
    return rows


def read_age(text: str) -> list[AgeRow]:
    """The rows of a ``donnees-hospitalieres-classe-age-covid19`` file as published (both
    date styles, both layouts)."""
    rows = []
    for number, (reg, age, day, figures) in enumerate(
        _read_figures(text, ("reg", "cl_age90"), AGE), start=2
    ):
        if age not in ("0", *AGE_CLASSES):
            raise FileError(f"line {number}: no age class {age[:5]!r}")
        rows.append(AgeRow(reg, age, day, figures))
    return rows


def check_age_rows(rows: Iterable[AgeRow]) -> list[str]:
    """The invariants of a series of age-class rows: critical care within hospitalised; the
    classes together within class ``0`` (SpF's files count people of unknown age in ``0``
    only); cumulative returns home and deaths never decreasing."""
    problems: list[str] = []
    whole: dict[tuple[str, date], Figures] = {}
    parts: dict[tuple[str, date], Figures] = defaultdict(Figures)
    series: dict[tuple[str, str], list[tuple[date, Figures]]] = defaultdict(list)
    for r in rows:
        if r.figures.rea > r.figures.hosp:
            problems.append(f"region {r.reg} class {r.cl_age90} {r.jour}: rea > hosp")
        if r.cl_age90 == "0":
            whole[(r.reg, r.jour)] = r.figures
        else:
            _add(parts[(r.reg, r.jour)], r.figures)
        series[(r.reg, r.cl_age90)].append((r.jour, r.figures))
    for key, f in whole.items():
        for name in ("hosp", "rea", "rad", "dc"):
            if getattr(parts[key], name) > getattr(f, name):
                problems.append(f"region {key[0]} {key[1]}: the classes' {name} exceed class 0")
    for (reg, age), points in series.items():
        points.sort(key=lambda p: p[0])
        for (d0, f0), (d1, f1) in itertools.pairwise(points):
            for name in ("rad", "dc"):
                if getattr(f1, name) < getattr(f0, name):
                    problems.append(f"region {reg} class {age}: {name} fell on {d1} after {d0}")
    return problems


def read_new(text: str) -> list[NewRow]:
    """The rows of a ``donnees-hospitalieres-nouveaux-covid19`` file (both date styles)."""
    lines = [line for line in text.removeprefix("\ufeff").split("\n") if line.strip()]
    if not lines or _cells(lines[0]) != list(NEW_HEADER):
        raise FileError("line 1: not a donnees-hospitalieres-nouveaux-covid19 header")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = _cells(line)
        try:
            if len(cells) != len(NEW_HEADER):
                raise ValueError(f"{len(cells)} cells, {len(NEW_HEADER)} expected")
            rows.append(NewRow(cells[0], read_day(cells[1]), *(int(c) for c in cells[2:])))
        except ValueError as exc:
            raise FileError(f"line {number}: {exc}") from None
    return rows


def published_rows(bodies: Mapping[date, str]) -> list[HospitalRow]:
    """The main file's rows from the bodies kept per day."""
    return read_hospital(csv_text(HOSPITAL, (bodies[d] for d in sorted(bodies))))


def iso_utc(moment: datetime) -> str:
    """An aware time as ISO 8601 in UTC with a ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(slots=True)
class Published:
    """What one publication wrote: the day, the files, the problems that stopped it."""

    day: date
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
