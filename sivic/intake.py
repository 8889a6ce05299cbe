"""The hospitals' intake file (``robert sivic import FILE``, the upload page, ``POST
/sivic/api/v1/import``): a pure parser that never raises.

UTF-8, ``;``-separated, no quoting, this header then one line per patient's current state::

    finess;dep;patient_id;birth_date;sex;unit;status;status_date;covid
    750100125;75;IPP-0042;1951-04-03;F;crit;hospitalised;2020-03-27;for

``patient_id`` is the patient's INS (a NIR of 15 characters with a valid key) when the hospital
has it, else its own patient number (matched within the establishment). A bad line is refused
with its number and the reason; the good ones are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TypeVar

from kit.identity import is_valid_nir, normalise_name
from sivic.model import Covid, Episode, Identity, Registration, Sex, Status, UnitKind
from sivic.territory import departements

HEADER = (
    "finess",
    "dep",
    "patient_id",
    "birth_date",
    "sex",
    "unit",
    "status",
    "status_date",
    "covid",
)
FINESS = re.compile(r"(?:\d{2}|2[AB])\d{7}")
PATIENT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,63}")
EARLIEST = date(1890, 1, 1)
MAX_LINES = 200_000
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class LineError:
    """A refused line: its number in the file (the header is line 1) and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class Intake:
    """What a file holds: the registrations of its good lines (with their line numbers) and
    the refused lines."""

    registrations: list[tuple[int, Registration]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def parse_date(value: str) -> date:
    """An ISO date, or the date of an ISO date-time (``2020-03-27T14:05:00+01:00``)."""
    value = value.strip()
    if len(value) == 10:
        return date.fromisoformat(value)
    if len(value) > 10 and value[10] in "T ":
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    raise ValueError(value)


def patient_identity(patient_id: str, birth: date, sex: Sex) -> Identity:
    """The identity of a file line: an INS when ``patient_id`` is a valid NIR, else the
    hospital's own patient number. Raises ValueError for an unusable ``patient_id``."""
    compact = patient_id.replace(" ", "")
    if len(compact) == 15 and is_valid_nir(compact):
        return Identity(birth, sex, ins=compact.upper())
    if not PATIENT_REF.fullmatch(patient_id):
        raise ValueError(
            "patient_id must be an INS or the hospital's patient number "
            "(letters, digits, . _ / -, at most 64)"
        )
    return Identity(birth, sex, patient_ref=patient_id)


def _choice(enum: type[E], name: str, value: str) -> E:
    try:
        return enum(value.strip())
    except ValueError:
        choices = ", ".join(e.value for e in enum)
        raise ValueError(f"{name} must be one of {choices}, not {value[:20]!r}") from None


def _episode(
    finess: str,
    dep: str,
    birth_text: str,
    sex_text: str,
    unit: str,
    status: str,
    status_text: str,
    covid: str,
    today: date | None,
) -> tuple[date, Sex, Episode]:
    if not FINESS.fullmatch(finess):
        raise ValueError("finess must be 9 characters: digits, 2A or 2B first for Corsica")
    if dep not in departements():
        raise ValueError(f"no département {dep[:10]!r}")
    try:
        birth = parse_date(birth_text)
    except ValueError:
        raise ValueError("birth_date must be an ISO date (YYYY-MM-DD)") from None
    try:
        status_date = parse_date(status_text)
    except ValueError:
        raise ValueError("status_date must be an ISO date (YYYY-MM-DD)") from None
    if birth < EARLIEST:
        raise ValueError("birth_date is too early")
    if status_date < birth:
        raise ValueError("status_date is before birth_date")
    if today is not None and status_date > today:
        raise ValueError("status_date is in the future")
    sex = _choice(Sex, "sex", sex_text)
    episode = Episode(
        finess,
        dep,
        _choice(UnitKind, "unit", unit),
        _choice(Status, "status", status),
        status_date,
        _choice(Covid, "covid", covid),
    )
    return birth, sex, episode


def parse_line(fields: list[str], today: date | None = None) -> Registration:
    """The registration of one line's fields; ValueError saying what is wrong."""
    if len(fields) != len(HEADER):
        raise ValueError(f"{len(fields)} fields, {len(HEADER)} expected")
    finess, dep, patient_id, birth, sex, unit, status, status_date, covid = (
        f.strip() for f in fields
    )
    birth_date, sex_value, episode = _episode(
        finess, dep, birth, sex, unit, status, status_date, covid, today
    )
    return Registration(patient_identity(patient_id, birth_date, sex_value), episode)


FORM_FIELDS = (*HEADER[:2], *HEADER[3:])
IDENTITY_FIELDS = ("ins", "patient_ref", "last_name", "first_name")


def parse_form(values: Mapping[str, object], today: date | None = None) -> Registration:
    """A registration from a form or a JSON object: the file's fields but ``patient_id``, and
    an identity of at least one of ``ins`` (a NIR), ``patient_ref`` (the hospital's number),
    ``last_name`` with ``first_name``. ValueError saying what is wrong."""
    text = {}
    for name in (*FORM_FIELDS, *IDENTITY_FIELDS):
        value = values.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        text[name] = value.strip()
    missing = [name for name in FORM_FIELDS if not text[name]]
    if missing:
        raise ValueError("missing: " + ", ".join(missing))
    birth, sex, episode = _episode(
        text["finess"],
        text["dep"],
        text["birth_date"],
        text["sex"],
        text["unit"],
        text["status"],
        text["status_date"],
        text["covid"],
        today,
    )
    ins = text["ins"].replace(" ", "").upper() or None
    if ins is not None and not (len(ins) == 15 and is_valid_nir(ins)):
        raise ValueError("ins must be a NIR of 15 characters with a valid key")
    ref = text["patient_ref"] or None
    if ref is not None and not PATIENT_REF.fullmatch(ref):
        raise ValueError("patient_ref: letters, digits, . _ / -, at most 64")
    last, first = text["last_name"] or None, text["first_name"] or None
    if (last is None) != (first is None):
        raise ValueError("give both last_name and first_name, or neither")
    if last is not None and first is not None:
        if not normalise_name(last) or not normalise_name(first):
            raise ValueError("names must have letters")
        if len(last) > 100 or len(first) > 100:
            raise ValueError("names have at most 100 characters")
    if ins is None and ref is None and last is None:
        raise ValueError("give an ins, a patient_ref, or last_name and first_name")
    return Registration(Identity(birth, sex, ins, ref, last, first), episode)


def parse(text: str, today: date | None = None) -> Intake:
    """Every line of a file: the good ones' registrations, the bad ones' reasons. Never raises.

    A second line for the same patient of the same establishment is refused (one line per
    patient's current state). ``today``: status dates after it are refused."""
    result = Intake()
    lines = text.removeprefix("\ufeff").split("\n")
    if not lines or [h.strip().lower() for h in lines[0].rstrip("\r").split(";")] != list(HEADER):
        result.errors.append(LineError(1, "the header must be " + ";".join(HEADER)))
        return result
    if len(lines) > MAX_LINES + 1:
        result.errors.append(LineError(MAX_LINES + 2, f"more than {MAX_LINES} lines"))
        return result
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split(";")
        try:
            registration = parse_line(fields, today)
        except ValueError as exc:
            result.errors.append(LineError(number, str(exc)))
            continue
        key = (registration.episode.finess, fields[2].strip())
        if key in seen:
            result.errors.append(LineError(number, f"this patient is already on line {seen[key]}"))
            continue
        seen[key] = number
        result.registrations.append((number, registration))
    return result
