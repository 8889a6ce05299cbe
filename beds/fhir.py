"""The ROR's FHIR view of a unit: a ``Location`` carrying the capacity extension of the ROR
implementation guide (``RORLocationSupportedCapacity``, ``health.md`` §4.2), built and parsed
with ``fhir.resources``.

The guide is FHIR 4.0.1 (R4); ``fhir.resources`` 8 ships R5 by default and R4B beside it, the
closest to R4 it has (R4B changed no element of ``Location``, ``Bundle`` or
``OperationOutcome`` that we use), so we use ``fhir.resources.R4B``.

One extension per count, as the guide repeats it per record: ``capacityStatus`` says which
count (installed, surge, occupied, available, COVID patients), ``nbCapacity`` how many,
``capacityUpdateDate`` when. The extension's structure and value-set names are the guide's;
the **codes** are placeholders of ours (``beds/data/ror_capacity_codes.csv``, flagged
unchecked) until the NOS tables J187-J195 are loaded.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from beds.model import BedKind, Counts, UnitState
from beds.territory import DATA

CAPACITY_URL = (
    "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location-supported-capacity"
)
PROFILE = "https://interop.esante.gouv.fr/ig/fhir/ror/StructureDefinition/ror-location"
UNIT_SYSTEM = "urn:robert:beds:unit"
"""Our identifiers of units: ``<FINESS>-<unit code>`` (the ROR's own ids are not ours to mint)."""
KIND_SYSTEM = "urn:robert:beds:kind"
FINESS_SYSTEM = "http://finess.sante.gouv.fr"
"""The FINESS identifier system of the French core profiles (assumption: not checked here)."""
COUNT_STATUSES = ("installed", "surge", "occupied", "available", "covid")
SEARCH_PAGE = 200
"""The guide's servers answer the first 200 matches with the total."""


class FhirInputError(ValueError):
    """A FHIR resource we cannot take; the message goes into an OperationOutcome."""


def value_set_system(name: str) -> str:
    """The canonical URL of a NOS value set (the guide's aliases follow this pattern)."""
    return f"https://mos.esante.gouv.fr/NOS/JDV_{name.removeprefix('JDV-')}/FHIR/{name}"


@dataclass(frozen=True, slots=True)
class Code:
    """One code of a value set."""

    system: str
    code: str
    display: str

    def concept(self) -> dict[str, Any]:
        """As a CodeableConcept."""
        return {"coding": [{"system": self.system, "code": self.code, "display": self.display}]}


@cache
def codes() -> dict[tuple[str, str], Code]:
    """(field, our value) → code, from the data file."""
    with (DATA / "ror_capacity_codes.csv").open(encoding="utf-8") as f:
        return {
            (r["field"], r["our_value"]): Code(
                value_set_system(r["value_set"]), r["code"], r["display"]
            )
            for r in csv.DictReader(f)
        }


def _status_of(system: str, code: str) -> str | None:
    for (field, value), known in codes().items():
        if field == "capacityStatus" and known.system == system and known.code == code:
            return value
    return None


def _fhir_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def capacity_extension(status: str, count: int, updated_at: datetime) -> dict[str, Any]:
    """One ``ror-location-supported-capacity`` record."""
    table = codes()
    parts: list[dict[str, Any]] = [
        {"url": "capacityType", "valueCodeableConcept": table["capacityType", "bed"].concept()},
        {
            "url": "capacityStatus",
            "valueCodeableConcept": table["capacityStatus", status].concept(),
        },
        {
            "url": "temporalityCapacity",
            "valueCodeableConcept": table["temporalityCapacity", "current"].concept(),
        },
        {"url": "nbCapacity", "valueInteger": count},
        {
            "url": "capacitySourceType",
            "valueCodeableConcept": table["capacitySourceType", "declared"].concept(),
        },
        {"url": "capacityUpdateDate", "valueDateTime": _fhir_time(updated_at)},
        {
            "url": "temporaryAssignement",
            "valueCodeableConcept": table["temporaryAssignement", "none"].concept(),
        },
    ]
    if status in ("surge", "covid"):
        parts.append(
            {"url": "crisisType", "valueCodeableConcept": table["crisisType", "covid"].concept()}
        )
    return {"url": CAPACITY_URL, "extension": parts}


def location_of(state: UnitState) -> Location:
    """A unit as a ROR ``Location`` with one capacity record per count."""
    unit, place = state.unit, state.establishment
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": str(unit.id),
        "meta": {"profile": [PROFILE]},
        "identifier": [{"system": UNIT_SYSTEM, "value": f"{unit.finess}-{unit.code}"}],
        "status": "active",
        "name": f"{place.name} – {unit.name}",
        "type": [{"coding": [{"system": KIND_SYSTEM, "code": unit.kind.value}]}],
        "address": {"city": place.commune, "postalCode": place.postcode, "country": "FR"},
        "position": {"latitude": place.lat, "longitude": place.lon},
        "managingOrganization": {
            "identifier": {"system": FINESS_SYSTEM, "value": unit.finess},
            "display": place.name,
        },
    }
    if state.counts is not None and state.updated_at is not None:
        resource["meta"]["lastUpdated"] = _fhir_time(state.updated_at)
        resource["extension"] = [
            capacity_extension(status, getattr(state.counts, status), state.updated_at)
            for status in COUNT_STATUSES
        ]
    return Location.model_validate(resource)


def location_json(state: UnitState) -> str:
    """The ``Location`` as FHIR JSON."""
    return location_of(state).model_dump_json(exclude_none=True)


def parse_capacity(body: bytes) -> tuple[Counts, datetime | None]:
    """The counts (and the latest update time) of a ``Location`` sent to update a unit: every
    one of the five statuses must be there once."""
    try:
        location = Location.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FhirInputError(f"not a valid FHIR Location: {where}: {first['msg']}") from None
    found: dict[str, int] = {}
    latest: datetime | None = None
    for extension in location.extension or []:
        if extension.url != CAPACITY_URL:
            continue
        parts = {p.url: p for p in extension.extension or []}
        status_part, count_part = parts.get("capacityStatus"), parts.get("nbCapacity")
        if status_part is None or count_part is None or count_part.valueInteger is None:
            raise FhirInputError("each capacity record needs capacityStatus and nbCapacity")
        concept = status_part.valueCodeableConcept
        codings = concept.coding if concept is not None and concept.coding else []
        statuses = {_status_of(str(c.system), str(c.code)) for c in codings}
        statuses.discard(None)
        if len(statuses) != 1:
            raise FhirInputError("unknown capacityStatus code")
        status = str(statuses.pop())
        if status in found:
            raise FhirInputError(f"capacity status {status} given twice")
        found[status] = int(count_part.valueInteger)
        date_part = parts.get("capacityUpdateDate")
        if date_part is not None and date_part.valueDateTime is not None:
            when = date_part.valueDateTime
            if not isinstance(when, datetime) or when.tzinfo is None:
                raise FhirInputError("capacityUpdateDate needs a time with its offset")
            latest = when if latest is None or when > latest else latest
    missing = [s for s in COUNT_STATUSES if s not in found]
    if missing:
        raise FhirInputError(f"missing capacity records: {', '.join(missing)}")
    return Counts(*(found[s] for s in COUNT_STATUSES)), latest


def searchset(states: list[UnitState], base: str) -> str:
    """A ``Bundle`` of type searchset: the first 200 matches, with the total."""
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(states),
            "entry": [
                {
                    "fullUrl": f"{base}/Location/{s.unit.id}",
                    "resource": location_of(s).model_dump(exclude_none=True),
                    "search": {"mode": "match"},
                }
                for s in states[:SEARCH_PAGE]
            ],
        }
    )
    return bundle.model_dump_json(exclude_none=True)


def operation_outcome(message: str, code: str = "invalid", severity: str = "error") -> str:
    """An ``OperationOutcome`` with one issue."""
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": message}],
        }
    )
    return outcome.model_dump_json(exclude_none=True)


def parse_last_updated(value: str) -> datetime:
    """``_lastUpdated=geYYYY-MM-DD[Thh:mm[:ss[.f]]+zz:zz]``: the lowest ``lastUpdated`` that
    matches (only ``ge``/``gt`` prefixes, or none meaning ``ge``, are taken; a date alone is
    its day from midnight UTC). As FHIR reads a value as the range its precision implies,
    ``ge`` starts at that range's start and ``gt`` after its end: ``gt2026-12-10`` is from
    2026-12-11T00:00Z on, ``gt…T04:00:00Z`` from 04:00:01 on."""
    text, strict = value, False
    for prefix in ("ge", "gt"):
        if text.startswith(prefix):
            text, strict = text[2:], prefix == "gt"
            break
    else:
        if text[:2].isalpha():
            raise FhirInputError("_lastUpdated takes the prefixes ge or gt only")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirInputError("_lastUpdated is not a FHIR date or dateTime") from None
    if moment.tzinfo is None:
        if len(text) > 10:
            raise FhirInputError("a _lastUpdated time needs its offset")
        moment = moment.replace(tzinfo=UTC)
    if not strict:
        return moment
    try:
        return moment + _precision(text)
    except OverflowError:
        raise FhirInputError("_lastUpdated is out of range") from None


def _precision(text: str) -> timedelta:
    """The width of the range a FHIR date or dateTime stands for: a day, an hour, a minute, a
    second, or the last digit of its fraction of a second."""
    if len(text) <= 10:
        return timedelta(days=1)
    clock = re.split(r"[Zz+-]", text[11:], maxsplit=1)[0]
    if "." in clock:
        digits = min(6, len(clock.split(".", 1)[1]))
        return timedelta(microseconds=10 ** (6 - digits))
    widths = (timedelta(hours=1), timedelta(minutes=1), timedelta(seconds=1))
    return widths[min(2, clock.count(":"))]


def kind_of(location: Location) -> BedKind | None:
    """The bed kind a ``Location`` carries (our coding), if any."""
    for concept in location.type or []:
        for coding in concept.coding or []:
            if coding.system == KIND_SYSTEM and coding.code in {k.value for k in BedKind}:
                return BedKind(str(coding.code))
    return None
