"""What every intake format shares: the size limit, the refusal of one unit (a message or a CSV
line), dates and times as labs write them, sexes, NIRs and the building of a ``LabResult``.

A parser reads a unit inside ``try: ... except Refuse``: whatever is wrong in any part of the
unit refuses all of it, so a unit is stored whole or not at all.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from kit.identity import InvalidNir, validate_nir
from sidep import codes
from sidep.model import LabResult, Method, Patient, Result, Sex, SourceFormat, Status
from sidep.territory import dep_of

MAX_BYTES = 64 * 1024 * 1024
"""The largest file or message any parser reads (64 MiB, about 150,000 HL7 results): beyond
it the input is refused whole, before anything is decoded."""

MAX_FIELD = 512
"""The longest identifier or name a result may carry; longer is refused (no lab sends it)."""

PARIS = ZoneInfo("Europe/Paris")
"""The time zone of a date-time written without one (French labs write local time)."""


class Refuse(Exception):  # a control-flow signal
    """Refuse the unit being read, with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_big(data: bytes) -> str | None:
    """The reason to refuse an input over :data:`MAX_BYTES`, else None."""
    if len(data) > MAX_BYTES:
        return f"input of {len(data)} bytes is over the limit of {MAX_BYTES} bytes"
    return None


def clean(value: str | None, what: str, *, required: bool = False) -> str | None:
    """A text value stripped, None when empty; refused when required and missing, or too long,
    or carrying control characters."""
    v = (value or "").strip()
    if not v:
        if required:
            raise Refuse(f"{what} is missing")
        return None
    if len(v) > MAX_FIELD:
        raise Refuse(f"{what} is longer than {MAX_FIELD} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise Refuse(f"{what} holds control characters")
    return v


# --- dates ----------------------------------------------------------------------------------------
_HL7_TS = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:\.\d{1,4})?(?P<tz>[+-]\d{4})?"
)


def hl7_datetime(value: str, what: str) -> datetime:
    """An HL7 v2 / HPRIM timestamp ``YYYYMMDD[HHMM[SS[.S]]][+ZZZZ]`` as an aware datetime
    (Europe/Paris when no offset is given). A date alone is midnight; less than a day is refused
    (a sampling time needs its day)."""
    m = _HL7_TS.fullmatch(value.strip())
    if m is None or m["d"] is None:
        raise Refuse(f"{what} is not a date-time YYYYMMDD[HHMM[SS]]: {value.strip()[:40]!r}")
    try:
        naive = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
        )
    except ValueError:
        raise Refuse(f"{what} is not a real date-time: {value.strip()[:40]!r}") from None
    if m["tz"]:
        sign = 1 if m["tz"][0] == "+" else -1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][3:5])
        if hours > 14 or minutes > 59:
            raise Refuse(f"{what} has a wrong time-zone offset: {m['tz']}")
        return naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return naive.replace(tzinfo=PARIS)


def hl7_birth_date(value: str | None) -> date | None:
    """A birth date ``YYYYMMDD`` (a longer timestamp is cut to its day). De-identified or partial
    dates (``1980``, ``198005``, ``19800000``) and absent ones give None: the result is kept
    without a birth date rather than refused. A malformed full date is refused."""
    v = (value or "").strip()
    if not v:
        return None
    m = re.match(r"(\d{4})(\d{2})?(\d{2})?", v)
    if m is None:
        raise Refuse(f"birth date is not YYYYMMDD: {v[:20]!r}")
    if m[3] is None or m[2] == "00" or m[3] == "00":
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise Refuse(f"birth date is not a real date: {v[:20]!r}") from None


def iso_datetime(value: str, what: str) -> datetime:
    """An ISO 8601 date-time (``2020-10-01T08:30``, with or without offset; a date alone is
    midnight) as an aware datetime, Europe/Paris when no offset is given."""
    v = value.strip()
    try:
        parsed = datetime.fromisoformat(v)
    except ValueError:
        raise Refuse(f"{what} is not an ISO date-time: {v[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PARIS)
    return parsed


def iso_date(value: str, what: str) -> date:
    v = value.strip()
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise Refuse(f"{what} is not an ISO date YYYY-MM-DD: {v[:40]!r}") from None


def check_times(sampled_at: datetime, validated_at: datetime | None) -> None:
    """Refuse a validation before the sampling, and dates before SARS-CoV-2 tests existed."""
    if sampled_at.astimezone(UTC).year < 2020:
        raise Refuse(f"sampling date {sampled_at.date()} is before 2020")
    if validated_at is not None and validated_at < sampled_at:
        raise Refuse("the result is validated before its sample was taken")


# --- people ---------------------------------------------------------------------------------------
_SEXES = {"M": Sex.MALE, "F": Sex.FEMALE, "U": Sex.UNKNOWN, "O": Sex.UNKNOWN, "A": Sex.UNKNOWN}


def sex_of(value: str | None) -> Sex:
    """M, F, or U for unknown (also HL7's O other and A ambiguous, and absent)."""
    v = (value or "").strip().upper()
    if not v:
        return Sex.UNKNOWN
    sex = _SEXES.get(v)
    if sex is None:
        raise Refuse(f"sex is not M, F or U: {v[:10]!r}")
    return sex


def nir_of(value: str | None) -> tuple[str | None, bool | None]:
    """The NIR as sent (separators removed) and whether its key checks (None without a NIR).

    A NIR with a wrong key, or 13 characters without key, is kept and flagged invalid; a value
    that is not a NIR at all (letters, wrong length) is refused."""
    v = (value or "").replace(" ", "").replace(".", "").replace("-", "").upper()
    if not v:
        return None, None
    if len(v) == 13 and re.fullmatch(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6}", v):
        return v, False
    if len(v) != 15 or not re.fullmatch(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}", v):
        raise Refuse("the NIR is not 13 or 15 digits (2A/2B allowed for Corsica)")
    try:
        validate_nir(v)
    except InvalidNir:
        return v, False
    return v, True


def finess_of(value: str | None) -> str:
    """A lab's FINESS: 9 characters, digits (2A/2B, 9A-9F allowed in its first two)."""
    v = (value or "").strip().upper()
    if not re.fullmatch(r"[0-9][0-9A-F][0-9]{7}", v):
        raise Refuse(f"the lab's FINESS is not 9 characters: {v[:20]!r}")
    return v


# --- the record -----------------------------------------------------------------------------------
def result_method(loinc: str) -> Method:
    """The family of a result LOINC code; refused when it is not a SARS-CoV-2 result code."""
    method = codes.method_of(loinc)
    if method is None:
        raise Refuse(f"LOINC {loinc[:20]!r} is not a SARS-CoV-2 result code we know")
    return method


def make_result(
    *,
    lab: str,
    sample_id: str,
    loinc: str,
    result: Result,
    sampled_at: datetime,
    validated_at: datetime | None,
    status: Status,
    patient: Patient,
    source: SourceFormat,
    prescriber_rpps: str | None = None,
    raw_ref: str | None = None,
) -> LabResult:
    """A checked ``LabResult``, its département from the patient's postcode else the lab's."""
    check_times(sampled_at, validated_at)
    return LabResult(
        lab=lab,
        sample_id=sample_id,
        loinc=loinc,
        method=result_method(loinc),
        result=result,
        sampled_at=sampled_at,
        validated_at=validated_at,
        status=status,
        patient=patient,
        source=source,
        dep=dep_of(patient.postcode, lab),
        prescriber_rpps=prescriber_rpps,
        raw_ref=raw_ref,
    )
