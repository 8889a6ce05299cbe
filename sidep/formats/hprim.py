"""HPRIM Santé 2.x result files (docs/health.md §1.2): a small parser of our own, no maintained
Python one exists (python-hl7 refuses the ``H`` header).

- The ``H`` record declares the delimiters right after its id: ``H|~^\\&`` is field ``|``,
  **component ``~``, repetition ``^``**, escape ``\\``, sub-component ``&`` -- components and
  repetitions are swapped compared with HL7 v2.
- Records end with CR, LF or CRLF; a long record goes on in the next line, which starts with
  ``A`` and the field delimiter (``A|``): its text is appended to the previous record as is.
- Fields are numbered as libHprim (aiderpmsi/libHprim) does: the record id is field 1, so
  HPRIM ``OBX.n`` is HL7 ``OBX-(n-1)``.
- Records read: ``H`` header (``H.5`` sender ``code~name``), ``P`` patient (``P.5`` patient id
  no. 3 of ASTM E1394, where a NIR is read when it has a NIR's shape -- an assumption, the
  HPRIM Santé specification itself was not available; ``P.6`` ``NAME~FIRST``, ``P.8`` birth date,
  ``P.9`` sex, ``P.11`` address ``street~~city~~postcode``), ``OBR`` request (``OBR.3`` sample id,
  ``OBR.8`` collection date-time, ``OBR.17`` prescriber ``code~name``), ``OBX`` result (``OBX.3``
  value type, ``OBX.4`` analyte ``code~label~system``, ``OBX.6`` value, ``OBX.12`` status,
  ``OBX.15`` date-time), ``C`` comment, ``L`` end. Others are ignored.
- Character set: HPRIM files are ISO-8859-1 in practice. A file that is valid UTF-8 is read as
  UTF-8 (plain ASCII is both); any other is read as ISO-8859-1, which every byte sequence is:
  this is the format's customary charset, not a guess among many.

A message runs from an ``H`` to its ``L``; a file may hold several. Each is stored whole or
refused whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sidep import codes
from sidep.formats.common import (
    Refuse,
    clean,
    hl7_birth_date,
    hl7_datetime,
    make_result,
    nir_of,
    sex_of,
    too_big,
)
from sidep.model import LabResult, Parsed, Patient, Refusal, Result, SourceFormat, Status

_LINE_END = re.compile(r"\r\n|\r|\n")
_FINESS = re.compile(r"[0-9][0-9AB][0-9]{7}")
_NIR_SHAPE = re.compile(r"[12378][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}(?:[0-9]{2})?")
_STATUSES = {"F": Status.FINAL, "C": Status.CORRECTED, "P": Status.PRELIMINARY, "": Status.FINAL}


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str
    component: str
    repetition: str
    escape: str
    subcomponent: str

    def unescape(self, value: str) -> str:
        if self.escape not in value:
            return value
        e = self.escape
        for code, char in (
            ("F", self.field),
            ("S", self.component),
            ("R", self.repetition),
            ("T", self.subcomponent),
            ("E", self.escape),
        ):
            value = value.replace(f"{e}{code}{e}", char)
        return value


@dataclass(frozen=True, slots=True)
class Record:
    """One record, its fields split: ``fields[0]`` is the record id (HPRIM field 1)."""

    fields: tuple[str, ...]
    delimiters: Delimiters
    line: int

    @property
    def kind(self) -> str:
        return self.fields[0]

    def get(self, number: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
        """Field ``number`` (HPRIM numbering: the id is 1), repetition, component and
        sub-component, unescaped; ``""`` when absent."""
        if number < 1 or number > len(self.fields):
            return ""
        d = self.delimiters
        value = self.fields[number - 1]
        if self.kind == "H" and number == 2:
            return value
        for separator, index in ((d.repetition, rep), (d.component, comp), (d.subcomponent, sub)):
            parts = value.split(separator)
            if index > len(parts):
                return ""
            value = parts[index - 1]
        return d.unescape(value)

    def repetitions(self, number: int) -> int:
        if number < 1 or number > len(self.fields):
            return 0
        return len(self.fields[number - 1].split(self.delimiters.repetition))


@dataclass(slots=True)
class Message:
    """The records of one message, from its ``H`` to its ``L``."""

    records: list[Record] = field(default_factory=list)
    ended: bool = False


def decode(data: bytes) -> str:
    """UTF-8 when the bytes are, else ISO-8859-1 (module docstring)."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def messages(text: str) -> list[Message]:
    """Split a file into messages and records, joining ``A`` continuation lines. Refuses
    (``Refuse``) a file that does not start with an ``H`` record or declares bad delimiters."""
    lines = [line for line in _LINE_END.split(text)]
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise Refuse("empty file (no H record)")
    out: list[Message] = []
    delimiters: Delimiters | None = None
    pending: tuple[str, int] | None = None

    def flush() -> None:
        if pending is None:
            return
        raw, number = pending
        assert delimiters is not None
        record = Record(tuple(raw.split(delimiters.field)), delimiters, number)
        if record.kind == "H":
            out.append(Message())
        if not out:
            raise Refuse(f"line {number}: a {record.kind!r} record before any H record")
        if out[-1].ended:
            raise Refuse(f"line {number}: a record after the L record, before a new H")
        out[-1].records.append(record)
        if record.kind == "L":
            out[-1].ended = True

    for number, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        if line.startswith("H") and len(line) >= 6 and not line[1].isalnum():
            flush()
            delimiters = _delimiters(line, number)
            pending = (line, number)
            continue
        if delimiters is None:
            raise Refuse(f"line {number}: the file does not start with an H record")
        if line.startswith("A" + delimiters.field):
            if pending is None:
                raise Refuse(f"line {number}: a continuation line with nothing to continue")
            pending = (pending[0] + line[2:], pending[1])
            continue
        flush()
        pending = (line, number)
    flush()
    return out


def _delimiters(line: str, number: int) -> Delimiters:
    chars = line[1:6]
    if len(set(chars)) != 5 or any(c.isalnum() or c.isspace() for c in chars):
        raise Refuse(f"line {number}: the H record does not declare 5 distinct delimiters")
    return Delimiters(chars[0], chars[1], chars[2], chars[3], chars[4])


def parse(data: bytes, where: str, lab_finess: str | None = None) -> Parsed:
    """The results of every accepted message of an HPRIM file, a refusal per refused one."""
    big = too_big(data)
    if big is not None:
        return Parsed(refusals=(Refusal(where, big),))
    try:
        found = messages(decode(data))
    except Refuse as refused:
        return Parsed(refusals=(Refusal(where, refused.reason),))
    except Exception as error:  # hostile input must never escape as a crash
        return Parsed(refusals=(Refusal(where, f"unreadable file ({type(error).__name__})"),))
    results: list[LabResult] = []
    refusals: list[Refusal] = []
    skipped: list[str] = []
    for index, message in enumerate(found, start=1):
        at = f"{where} message {index}"
        try:
            got, why = _read(message, at, lab_finess)
        except Refuse as refused:
            refusals.append(Refusal(at, refused.reason))
            continue
        except Exception as error:  # hostile input must never escape as a crash
            refusals.append(Refusal(at, f"unreadable message ({type(error).__name__})"))
            continue
        results.extend(got)
        skipped.extend(f"{at}: {w}" for w in why)
    return Parsed(tuple(results), tuple(refusals), tuple(skipped))


def _read(message: Message, at: str, lab_finess: str | None) -> tuple[list[LabResult], list[str]]:
    if not message.ended:
        raise Refuse("the message has no L record (truncated?)")
    header = message.records[0]
    lab = _lab(header, lab_finess)
    results: list[LabResult] = []
    skipped: list[str] = []
    patient: Patient | None = None
    obr: Record | None = None
    for record in message.records[1:]:
        if record.kind == "P":
            patient = _patient(record)
            obr = None
        elif record.kind == "OBR":
            if patient is None:
                raise Refuse(f"line {record.line}: an OBR before any P record")
            obr = record
        elif record.kind == "OBX":
            if obr is None or patient is None:
                raise Refuse(f"line {record.line}: an OBX before any OBR")
            result = _result(record, obr, patient, lab, at, skipped)
            if result is not None:
                results.append(result)
    if not results:
        raise Refuse("the message holds no SARS-CoV-2 result")
    return results, skipped


def _lab(header: Record, lab_finess: str | None) -> str | None:
    for candidate in (header.get(5, comp=1), header.get(5, comp=2)):
        value = candidate.strip().upper()
        if _FINESS.fullmatch(value):
            return value
    if lab_finess is not None and _FINESS.fullmatch(lab_finess.strip().upper()):
        return lab_finess.strip().upper()
    return None


def _patient(p: Record) -> Patient:
    nir_value = next(
        (
            v
            for v in (p.get(5).replace(" ", ""), p.get(4).replace(" ", ""))
            if _NIR_SHAPE.fullmatch(v)
        ),
        None,
    )
    nir, nir_valid = nir_of(nir_value)
    return Patient(
        nir=nir,
        nir_valid=nir_valid,
        last_name=clean(p.get(6, comp=1), "P.6 name"),
        first_name=clean(p.get(6, comp=2), "P.6 first name"),
        birth_date=hl7_birth_date(p.get(8)),
        sex=sex_of(p.get(9)),
        postcode=clean(p.get(11, comp=5), "P.11 postcode"),
    )


def _result(
    obx: Record, obr: Record, patient: Patient, lab: str | None, at: str, skipped: list[str]
) -> LabResult | None:
    label = f"line {obx.line} OBX {obx.get(2) or '?'}"
    code, system = obx.get(4, comp=1).strip(), obx.get(4, comp=3)
    loinc = code if codes.lookup_loinc(code) is not None else None
    if loinc is None and codes.coding_system(system) == codes.LOINC:
        skipped.append(f"{label}: LOINC {code[:20]!r} is not a SARS-CoV-2 code")
        return None
    if loinc is None:
        skipped.append(f"{label}: {code[:20]!r} is not a SARS-CoV-2 code")
        return None
    why = codes.not_a_result_reason(loinc)
    if why is not None:
        skipped.append(f"{label}: {why}")
        return None
    if lab is None:
        raise Refuse("no FINESS for the lab (H.5 sender)")
    status = _STATUSES.get(obx.get(12).strip().upper())
    if status is None:
        raise Refuse(f"{label}: status {obx.get(12)[:5]!r} is not F, C or P")
    when = obr.get(8) or obx.get(15)
    if not when:
        raise Refuse(f"{label}: no sampling time (OBR.8)")
    validated = obx.get(15)
    sample = clean(obr.get(3, comp=1), "OBR.3 sample id", required=True) or ""
    return make_result(
        lab=lab,
        sample_id=sample,
        loinc=loinc,
        result=_value(obx, label),
        sampled_at=hl7_datetime(when, f"{label}: OBR.8 sampling time"),
        validated_at=hl7_datetime(validated, f"{label}: OBX.15") if validated else None,
        status=status,
        patient=patient,
        source=SourceFormat.HPRIM,
        prescriber_rpps=_rpps(obr.get(17, comp=1)),
        raw_ref=f"{at} {label}",
    )


def _value(obx: Record, label: str) -> Result:
    kind = obx.get(3).strip().upper()
    if kind in {"CE", "CWE"}:
        found = codes.result_from_code(obx.get(6, comp=3), obx.get(6, comp=1))
        for text in (obx.get(6, comp=2), obx.get(6, comp=1)):
            found = found or (codes.result_from_text(text) if text else None)
    elif kind in {"ST", "TX", "FT", ""}:
        found = codes.result_from_text(obx.get(6))
    else:
        raise Refuse(f"{label}: value type {kind[:5]!r} is not a coded or text result")
    if found is None:
        raise Refuse(f"{label}: the value {obx.get(6)[:40]!r} is not a result we know")
    return found


def _rpps(value: str) -> str | None:
    v = value.strip()
    return v if len(v) == 11 and v.isdigit() else None
