"""The one lab-result model every intake format is read into (HL7 v2 ORU^R01, FHIR R4 Bundle,
HPRIM Santé, the flat CSV file, the antigen form): small frozen records, no I/O.

Field names follow ``robert sidep results --json`` (issue 17) and the SI-DEP record of
/docs/health.md §3.2; the deduplication key is (lab, sample id, LOINC) as the issue asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum


class Method(StrEnum):
    """The test family of a LOINC code (the LOINC table in ``sidep.codes`` decides)."""

    PCR = "PCR"
    ANTIGEN = "ANTIGEN"
    SEROLOGY = "SEROLOGY"


class Result(StrEnum):
    """SI-DEP's result letters: positive, negative, indeterminate, non-conforming sample."""

    POSITIVE = "P"
    NEGATIVE = "N"
    INDETERMINATE = "I"
    NON_CONFORMING = "X"


class Status(StrEnum):
    """A result's report status (HL7 OBX-11 / FHIR Observation.status): final, corrected
    (supersedes the earlier result of the same lab, sample and LOINC), or preliminary."""

    FINAL = "final"
    CORRECTED = "corrected"
    PRELIMINARY = "preliminary"


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"
    UNKNOWN = "U"


class SourceFormat(StrEnum):
    HL7 = "hl7"
    FHIR = "fhir"
    HPRIM = "hprim"
    CSV = "csv"
    FORM = "form"


@dataclass(frozen=True, slots=True)
class Patient:
    """Who was tested, as the lab knows them. A value the message lacks is None.

    ``nir`` is kept as sent (15 characters, or 13 without key); ``nir_valid`` says whether its
    key checked (None when there is no NIR): a bad key is flagged, never silently accepted.
    """

    nir: str | None
    nir_valid: bool | None
    last_name: str | None
    first_name: str | None
    birth_date: date | None
    sex: Sex
    postcode: str | None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class LabResult:
    """One result of one analysis of one sample. Unique on ``key`` (lab, sample id, LOINC)."""

    lab: str
    """The lab's FINESS (9 characters)."""
    sample_id: str
    loinc: str
    method: Method
    result: Result
    sampled_at: datetime
    """When the sample was taken (timezone-aware; indicators count by sampling day)."""
    validated_at: datetime | None
    status: Status
    patient: Patient
    source: SourceFormat
    dep: str | None = None
    """The patient's département (from the postcode, else the lab's); None when unknown."""
    prescriber_rpps: str | None = None
    raw_ref: str | None = None
    """Where the result came from inside its message (e.g. ``OBX-3`` of message control id X)."""

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes a re-sent result the same result: (lab, sample id, LOINC)."""
        return (self.lab, self.sample_id, self.loinc)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message (or one line of a file) was refused whole: nothing of it is stored."""

    where: str
    """The file and line, or the message control id."""
    reason: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a parser read from one message or file: its results, or why it refused each part.

    A message is stored whole or refused whole: a parser that refuses any part of one message
    puts no result of that message in ``results``.
    """

    results: tuple[LabResult, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    skipped: tuple[str, ...] = field(default=())
    """Lines read and deliberately not results (ask-at-order-entry questions, Ct values...),
    each with why: not refusals."""
