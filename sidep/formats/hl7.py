"""HL7 v2.5 ORU^R01 lab results (docs/health.md §1.4), read by a fast reader of our own (python-hl7
is the reference it is tested against).

A file holds one message, several messages one after the other, or a batch (``FHS``/``BHS`` ...
``BTS``/``FTS``); segments end with CR, LF or CRLF. Each message is stored whole or refused
whole: :func:`read_messages` gives, per message, its control id (MSH-10), its results and why
it was refused, so that the transport can answer each with an ACK (AA, or AE/AR with the
reason).

What is read, and where:

- the lab's FINESS: a 9-character FINESS-shaped identifier in OBX-23 (performing organisation,
  component 10), OBR/ORC ordering facility, or MSH-4 (sending facility); else the FINESS of
  the authenticated sender given by the transport (``lab_finess``);
- the patient: PID-3, the repetition whose assigning authority is an INS-NIR OID
  (``...^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS``) or whose identifier type is
  ``INS``/``INS-NIR``/``NIR`` (an INS-NIA is no NIR and is not kept as one); PID-5 name; PID-7
  birth date (de-identified or partial dates are kept as unknown); PID-8 sex; PID-11 postcode;
- the sample: OBR-3 (filler order number), else ORC-3, else OBR-2, else SPM-2; its time OBR-7,
  else SPM-17, else OBX-14; validation time OBR-22, else OBX-19; prescriber OBR-16;
- each OBX: the LOINC code in OBX-3 (primary or alternate coding, or a bare known code), else
  the one of OBR-4 for a lone result; ask-at-order-entry questions (OBX-29 ``QST`` or a
  question LOINC), Ct values and quantities are skipped, other analytes skipped too; the value
  in OBX-5, coded (CWE/CE: SNOMED CT, LOINC answer, else its text) or text (ST/TX/FT);
  OBX-11 ``F`` final, ``C`` corrected, ``P`` preliminary, anything else refused.

Character set: UTF-8, unless MSH-18 declares ``8859/1`` (ISO-8859-1, common in France) or
``8859/15`` (seen in French hospital messages), in which case the message is read in that
charset. Undeclared non-UTF-8 bytes refuse the message.

Reading: segments are split into fields; a field is split into repetitions, components and
subcomponents (separators from MSH-1/MSH-2) only when one of its values is read, and that value
is unescaped (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``; other escape sequences are kept as written).
python-hl7's parser is the reference this reader is tested against (``reference=True``), and
reads the odd headers the fast reader leaves to it (no field after MSH-2, repeated separators).

Names: French senders (IHE PAM France) repeat PID-5, the usual name (type ``D``) first and the
birth name with the first names (type ``L``) after; the ``L`` repetition is read when present.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import hl7

from kit.identity import INS_NIA_OID, INS_OIDS
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

_SEGMENT_END = re.compile(rb"\r\n|\r|\n")
_FINESS = re.compile(r"[0-9][0-9AB][0-9]{7}")
_NIR_OIDS = tuple(oid for oid in INS_OIDS if oid != INS_NIA_OID)
_STATUSES = {"F": Status.FINAL, "C": Status.CORRECTED, "P": Status.PRELIMINARY}
_BATCH_SEGMENTS = {b"FHS", b"BHS", b"BTS", b"FTS"}


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a file, as read: what an ACK needs, and its results or refusal."""

    index: int
    """1 for the first message of the file."""
    control_id: str | None
    """MSH-10, echoed in the ACK's MSA-2 (None when the MSH could not be read)."""
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    version: str
    processing_id: str
    results: tuple[LabResult, ...]
    skipped: tuple[str, ...]
    refusal: str | None
    """Why the whole message is refused (None when it is accepted)."""
    rejected: bool = False
    """The message itself could not be taken (unreadable, wrong charset, not ORU^R01), as
    opposed to a content error in a readable ORU^R01."""

    @property
    def ack_code(self) -> str:
        """The MSA-1 of the ACK: ``AA`` accepted, ``AR`` rejected (the message itself could not
        be taken), ``AE`` application error (its content was refused)."""
        if self.refusal is None:
            return "AA"
        return "AR" if self.rejected else "AE"

    @property
    def where(self) -> str:
        return f"message {self.control_id}" if self.control_id else f"message #{self.index}"


def split_messages(data: bytes) -> list[list[bytes]]:
    """The segments of each message of a file (batch header and trailer segments dropped)."""
    messages: list[list[bytes]] = []
    for segment in _SEGMENT_END.split(data):
        segment = segment.strip(b"\x0b\x1c \t")
        if not segment:
            continue
        if segment[:3] in _BATCH_SEGMENTS:
            continue
        if segment[:3] == b"MSH" or not messages:
            messages.append([])
        messages[-1].append(segment)
    return messages


def read_messages(
    data: bytes, where: str, lab_finess: str | None = None, *, reference: bool = False
) -> list[Message]:
    """Every message of an HL7 v2 file, each with its results or its refusal. Never raises.

    Messages are split by this module's own reader; ``reference=True`` reads them with
    python-hl7's parser instead (the reference the tests compare the fast reader with)."""
    big = too_big(data)
    if big is not None:
        return [_refused(1, None, big)]
    out: list[Message] = []
    for index, segments in enumerate(split_messages(data), start=1):
        try:
            out.append(_read_message(index, segments, lab_finess, reference))
        except Exception as error:  # hostile input must never escape as a crash
            out.append(_refused(index, None, f"unreadable message ({type(error).__name__})"))
    if not out:
        out.append(_refused(1, None, "no HL7 message (no MSH segment)"))
    return out


def parse(
    data: bytes, where: str, lab_finess: str | None = None, *, reference: bool = False
) -> Parsed:
    """The results of every accepted message of a file, and a refusal per refused message."""
    results: list[LabResult] = []
    refusals: list[Refusal] = []
    skipped: list[str] = []
    for message in read_messages(data, where, lab_finess, reference=reference):
        if message.refusal is not None:
            refusals.append(Refusal(f"{where} {message.where}", message.refusal))
        else:
            results.extend(message.results)
            skipped.extend(f"{where} {message.where}: {why}" for why in message.skipped)
    return Parsed(tuple(results), tuple(refusals), tuple(skipped))


def message_control_id(data: bytes) -> str | None:
    """MSH-10 of the first message of ``data`` (for an ACK to a message that cannot be read)."""
    for segments in split_messages(data[:65536]):
        msh = segments[0]
        if msh[:3] == b"MSH" and len(msh) > 3:
            fields = msh.split(msh[3:4])
            if len(fields) > 9:
                value = fields[9].decode("latin-1").strip()
                return value[:64] or None
        return None
    return None


# --- one message ----------------------------------------------------------------------------------
def _refused(
    index: int,
    control_id: str | None,
    reason: str,
    msh: _Segment | None = None,
    *,
    rejected: bool = True,
) -> Message:
    return Message(
        index=index,
        control_id=control_id,
        sending_application=_get(msh, 3) if msh is not None else "",
        sending_facility=_get(msh, 4) if msh is not None else "",
        receiving_application=_get(msh, 5) if msh is not None else "",
        receiving_facility=_get(msh, 6) if msh is not None else "",
        version=_get(msh, 12) if msh is not None else "",
        processing_id=_get(msh, 11) if msh is not None else "",
        results=(),
        skipped=(),
        refusal=reason,
        rejected=rejected,
    )


def _decode(segments: list[bytes]) -> str:
    raw = b"\r".join(segments)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    msh = segments[0]
    fields = msh.split(msh[3:4]) if len(msh) > 3 else []
    charset = fields[17].decode("ascii", "replace").strip().upper() if len(fields) > 17 else ""
    if charset in {"8859/1", "ISO-8859-1", "ISO_IR 100"}:
        return raw.decode("latin-1")
    if charset in {"8859/15", "ISO-8859-15"}:
        return raw.decode("iso-8859-15")
    raise Refuse("the message is not UTF-8 and MSH-18 does not declare 8859/1 or 8859/15")


def _read_message(
    index: int, segments: list[bytes], lab_finess: str | None, reference: bool = False
) -> Message:
    first = segments[0]
    if first[:3] != b"MSH" or len(first) < 8:
        return _refused(index, None, "the message does not start with an MSH segment")
    control_id = message_control_id(first)
    try:
        text = _decode(segments)
        message = (None if reference else _fast_split(text)) or _reference_split(text)
    except Refuse as refused:
        return _refused(index, control_id, refused.reason)
    except Exception as error:  # python-hl7 raises many kinds on junk
        return _refused(index, control_id, f"not an HL7 v2 message ({type(error).__name__})")
    msh = message[0]
    try:
        results, skipped = _read_results(message, msh, control_id or f"#{index}", lab_finess)
    except Refuse as refused:
        wrong_type = refused.reason.startswith("MSH-9")
        return _refused(index, control_id, refused.reason, msh, rejected=wrong_type)
    return Message(
        index=index,
        control_id=control_id,
        sending_application=_get(msh, 3),
        sending_facility=_get(msh, 4),
        receiving_application=_get(msh, 5),
        receiving_facility=_get(msh, 6),
        version=_get(msh, 12),
        processing_id=_get(msh, 11),
        results=tuple(results),
        skipped=tuple(skipped),
        refusal=None,
    )


def _read_results(
    message: list[_Segment], msh: _Segment, ref: str, lab_finess: str | None
) -> tuple[list[LabResult], list[str]]:
    kind = f"{_get(msh, 9, 1, 1)}^{_get(msh, 9, 1, 2)}"
    if kind != "ORU^R01":
        raise Refuse(f"MSH-9 is {kind!r}, not ORU^R01")
    results: list[LabResult] = []
    skipped: list[str] = []
    patient: Patient | None = None
    orc: _Segment | None = None
    obr: _Segment | None = None
    obxs: list[_Segment] = []
    groups: list[
        tuple[Patient | None, _Segment | None, _Segment, list[_Segment], list[_Segment]]
    ] = []
    spms: list[_Segment] = []
    for segment in message[1:]:
        sid = _get(segment, 0)
        if sid == "PID":
            if obr is not None:
                groups.append((patient, orc, obr, obxs, spms))
                orc, obr, obxs, spms = None, None, [], []
            patient = _patient(segment)
        elif sid == "ORC":
            if obr is not None:
                groups.append((patient, orc, obr, obxs, spms))
                obr, obxs, spms = None, [], []
            orc = segment
        elif sid == "OBR":
            if obr is not None:
                groups.append((patient, orc, obr, obxs, spms))
                obxs, spms = [], []
            obr = segment
        elif sid == "OBX":
            if obr is None:
                raise Refuse("an OBX comes before any OBR")
            obxs.append(segment)
        elif sid == "SPM":
            spms.append(segment)
    if obr is not None:
        groups.append((patient, orc, obr, obxs, spms))
    if not groups:
        raise Refuse("the message has no OBR (no order, no result)")
    for group_patient, group_orc, group_obr, group_obxs, group_spms in groups:
        if group_patient is None:
            raise Refuse("a result comes before any PID (no patient)")
        found, why = _order_results(
            msh, group_patient, group_orc, group_obr, group_obxs, group_spms, ref, lab_finess
        )
        results.extend(found)
        skipped.extend(why)
    if not results:
        raise Refuse("the message holds no SARS-CoV-2 result")
    return results, skipped


def _order_results(
    msh: _Segment,
    patient: Patient,
    orc: _Segment | None,
    obr: _Segment,
    obxs: list[_Segment],
    spms: list[_Segment],
    ref: str,
    lab_finess: str | None,
) -> tuple[list[LabResult], list[str]]:
    spm = spms[0] if spms else None
    sample_id = (
        _get(obr, 3)
        or (_get(orc, 3) if orc is not None else "")
        or _get(obr, 2)
        or (_get(spm, 2, 1, 1) if spm is not None else "")
        or (_get(spm, 2, 1, 2) if spm is not None else "")
    )
    sample = clean(sample_id, "the sample id (OBR-3, ORC-3, OBR-2 or SPM-2)", required=True)
    order_loinc = _loinc_of(obr, 4)
    results: list[LabResult] = []
    skipped: list[str] = []
    for obx in obxs:
        seq = _get(obx, 1) or "?"
        loinc = _loinc_of(obx, 3)
        if loinc is None and order_loinc is not None and len(obxs) == 1:
            loinc = order_loinc
        label = f"OBX {seq}"
        if _get(obx, 29).upper() == "QST":
            skipped.append(f"{label}: an ask-at-order-entry question, not a result")
            continue
        if loinc is None or codes.lookup_loinc(loinc) is None:
            code = loinc or _get(obx, 3)
            skipped.append(f"{label}: {code[:30]!r} is not a SARS-CoV-2 code")
            continue
        not_result = codes.not_a_result_reason(loinc)
        if not_result is not None:
            skipped.append(f"{label}: {not_result}")
            continue
        status_code = _get(obx, 11).upper()
        status = _STATUSES.get(status_code)
        if status is None:
            raise Refuse(f"{label}: OBX-11 status {status_code[:5]!r} is not F, C or P")
        when = _get(obr, 7) or (_get(spm, 17) if spm is not None else "") or _get(obx, 14)
        if not when:
            raise Refuse(f"{label}: no sampling time (OBR-7, SPM-17 or OBX-14)")
        validated = _get(obr, 22) or _get(obx, 19)
        results.append(
            make_result(
                lab=_lab(msh, orc, obr, obx, lab_finess),
                sample_id=sample or "",
                loinc=loinc,
                result=_value(obx, label),
                sampled_at=hl7_datetime(when, f"{label}: the sampling time"),
                validated_at=hl7_datetime(validated, f"{label}: the validation time")
                if validated
                else None,
                status=status,
                patient=patient,
                source=SourceFormat.HL7,
                prescriber_rpps=_rpps(obr),
                raw_ref=f"{ref} {label}",
            )
        )
    return results, skipped


def _patient(pid: _Segment) -> Patient:
    nir_value: str | None = None
    for rep in range(1, _repetitions(pid, 3) + 1):
        value = _get(pid, 3, rep, 1)
        authority = " ".join(_get(pid, 3, rep, 4, sub) for sub in (1, 2, 3)).upper()
        id_type = _get(pid, 3, rep, 5).upper()
        if any(oid in authority for oid in _NIR_OIDS) or id_type in {"INS", "INS-NIR", "NIR"}:
            if INS_NIA_OID in authority:
                continue
            nir_value = value
            break
    nir, nir_valid = nir_of(nir_value)
    postcode = clean(_get(pid, 11, 1, 5), "PID-11 postcode")
    # French senders (IHE PAM France) repeat PID-5: the usual name (type D) first, often without
    # first name, then the birth name with the first names (type L): the identity traits are L's.
    names = [rep for rep in range(1, _repetitions(pid, 5) + 1) if _get(pid, 5, rep, 1)]
    legal = [rep for rep in names if _get(pid, 5, rep, 7).upper() == "L"]
    name = (legal or names or [1])[0]
    return Patient(
        nir=nir,
        nir_valid=nir_valid,
        last_name=clean(_get(pid, 5, name, 1), "PID-5 last name"),
        first_name=clean(_get(pid, 5, name, 2), "PID-5 first name"),
        birth_date=hl7_birth_date(_get(pid, 7)),
        sex=sex_of(_get(pid, 8)),
        postcode=postcode,
        phone=clean(_get(pid, 13, 1, 1), "PID-13 phone"),
    )


def _loinc_of(segment: _Segment, field: int) -> str | None:
    """The LOINC code of a CE/CWE field: the coding whose system is LOINC, else a bare code we
    know (labs that leave the system out)."""
    for first in (1, 4):
        code = _get(segment, field, 1, first).strip()
        system = _get(segment, field, 1, first + 2)
        if code and codes.coding_system(system) == codes.LOINC:
            return code
    for first in (1, 4):
        code = _get(segment, field, 1, first).strip()
        if code and codes.lookup_loinc(code) is not None:
            return code
    return None


def _value(obx: _Segment, label: str) -> Result:
    value_type = _get(obx, 2).upper()
    code = _get(obx, 5, 1, 1)
    if value_type in {"CWE", "CE", "CNE", "CF", ""}:
        for first in (1, 4):
            c = _get(obx, 5, 1, first)
            if c:
                found = codes.result_from_code(_get(obx, 5, 1, first + 2), c)
                if found is not None:
                    return found
        for text in (_get(obx, 5, 1, 2), _get(obx, 5, 1, 5), code):
            found = codes.result_from_text(text) if text else None
            if found is not None:
                return found
    elif value_type in {"ST", "TX", "FT"}:
        found = codes.result_from_text(code)
        if found is not None:
            return found
    else:
        raise Refuse(f"{label}: value type {value_type[:5]!r} is not a coded or text result")
    raise Refuse(f"{label}: the value {code[:40]!r} is not a result we know (P, N, I or X)")


def _lab(
    msh: _Segment, orc: _Segment | None, obr: _Segment, obx: _Segment, lab_finess: str | None
) -> str:
    candidates = [_get(obx, 23, 1, 10), _get(obx, 23, 1, 1)]
    if orc is not None:
        candidates += [_get(orc, 21, 1, 10), _get(orc, 21, 1, 1)]
    candidates += [_get(msh, 4, 1, sub) for sub in (1, 2)]
    for candidate in candidates:
        value = candidate.strip().upper()
        if _FINESS.fullmatch(value):
            return value
    if lab_finess is not None and _FINESS.fullmatch(lab_finess.strip().upper()):
        return lab_finess.strip().upper()
    raise Refuse("no FINESS for the lab (OBX-23, ORC-21 or MSH-4)")


def _rpps(obr: _Segment) -> str | None:
    value = _get(obr, 16, 1, 1).strip()
    return value if len(value) == 11 and value.isdigit() else None


# --- segments -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Seps:
    """The separators of a message (MSH-1 and MSH-2), and the escape sequences they define."""

    field: str
    rep: str
    comp: str
    sub: str
    esc: str

    @property
    def escapes(self) -> dict[str, str]:
        return {"F": self.field, "S": self.comp, "T": self.sub, "R": self.rep, "E": self.esc}


def unescape(value: str, seps: _Seps) -> str:
    """``value`` with the HL7 escape sequences of the separators replaced: ``\\F\\`` field,
    ``\\S\\`` component, ``\\T\\`` subcomponent, ``\\R\\`` repetition, ``\\E\\`` escape
    (HL7 v2.5 chapter 2, 2.7.4). Other sequences (highlighting, hexadecimal, formatting) and an
    escape character without its closing one are kept as written."""
    esc = seps.esc
    parts = value.split(esc)
    if len(parts) < 3:
        return value
    table = seps.escapes
    out = [parts[0]]
    i, last = 1, len(parts) - 1
    while i <= last:
        if i == last:  # no closing escape character
            out.append(esc + parts[i])
            break
        sequence = parts[i]
        found = table.get(sequence)
        out.append(found if found is not None else esc + sequence + esc)
        out.append(parts[i + 1])
        i += 2
    return "".join(out)


class _Segment:
    """One segment of a message, split into fields only: a field is split into repetitions,
    components and subcomponents when one of its values is asked for, and that value is then
    unescaped. Numbering is HL7's (MSH-1 is the field separator, MSH-9 is 9; 0 is the segment
    id); MSH-1 and MSH-2 are taken as written."""

    __slots__ = ("fields", "literal", "seps")

    def __init__(self, fields: list[str], seps: _Seps, literal: int = 0) -> None:
        self.fields = fields
        self.seps = seps
        self.literal = literal

    def get(self, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
        fields = self.fields
        if field >= len(fields):
            return ""
        value = fields[field]
        if field < self.literal:
            return value if rep == comp == sub == 1 else ""
        seps = self.seps
        if rep != 1 or seps.rep in value:
            parts = value.split(seps.rep)
            if rep > len(parts):
                return ""
            value = parts[rep - 1]
        if comp != 1 or seps.comp in value:
            parts = value.split(seps.comp)
            if comp > len(parts):
                return ""
            value = parts[comp - 1]
        if sub != 1 or seps.sub in value:
            parts = value.split(seps.sub)
            if sub > len(parts):
                return ""
            value = parts[sub - 1]
        return unescape(value, seps) if seps.esc in value else value

    def repetitions(self, field: int) -> int:
        if field >= len(self.fields):
            return 0
        if field < self.literal:
            return 1
        return self.fields[field].count(self.seps.rep) + 1


class _ReferenceSegment(_Segment):
    """A segment as python-hl7 parses it (the reference the fast reader is tested against)."""

    __slots__ = ("segment",)

    def __init__(self, segment: Any, seps: _Seps, literal: int = 0) -> None:
        super().__init__([], seps, literal)
        self.segment = segment

    def get(self, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
        segment = self.segment
        if field >= len(segment):
            return ""
        value: Any = segment[field]
        for index in (rep, comp, sub):
            if isinstance(value, str):
                value = value if index == 1 else ""
                break
            if index - 1 >= len(value):
                return ""
            value = value[index - 1]
        while not isinstance(value, str):
            if not value:
                return ""
            value = value[0]
        text = str(value)
        if field < self.literal or self.seps.esc not in text:
            return text
        return unescape(text, self.seps)

    def repetitions(self, field: int) -> int:
        segment = self.segment
        if field >= len(segment):
            return 0
        value = segment[field]
        if value and not isinstance(value[0], str):
            return len(value)
        return 1


def _fast_split(text: str) -> list[_Segment] | None:
    """The segments of one message, read as python-hl7 would read them; None for the odd
    headers (no field after MSH-2, separators repeated) that are left to python-hl7."""
    text = text.strip()
    if text[:3] != "MSH" or len(text) < 5:
        return None
    field = text[3]
    end = text.find(field, 4)
    if end < 0:
        return None
    encoding = text[4:end]
    if "\r" in encoding:
        return None  # MSH-2 runs past the segment's end: python-hl7 reads it its own way
    n = len(encoding)
    seps = _Seps(
        field=field,
        comp=encoding[0] if n > 0 else "^",
        rep=encoding[1] if n > 1 else "~",
        esc=encoding[2] if n > 2 else "\\",
        sub=encoding[3] if n > 3 else "&",
    )
    if len({"\r", field, seps.rep, seps.comp, seps.sub}) != 5:
        return None
    lines = text.split("\r")
    head = lines[0]
    msh = ["MSH", field, encoding]
    if end + 1 < len(head):
        msh += head[end + 1 :].split(field)
    segments = [_Segment(msh, seps, 3)]
    for line in lines[1:]:
        if line[:3] in ("MSH", "BHS", "FHS"):
            return None  # a header inside a message: python-hl7 reads it its own way
        segments.append(_Segment(line.split(field), seps))
    return segments


def _reference_split(text: str) -> list[_Segment]:
    """The segments of one message as python-hl7 parses them."""
    message = hl7.parse(text)
    separators = message.separators  # segment, field, repetition, component, subcomponent
    seps = _Seps(
        field=separators[1],
        rep=separators[2],
        comp=separators[3],
        sub=separators[4],
        esc=message.esc,
    )
    return [
        _ReferenceSegment(segment, seps, 3 if i == 0 else 0) for i, segment in enumerate(message)
    ]


def _repetitions(segment: _Segment, field: int) -> int:
    return segment.repetitions(field)


def _get(segment: _Segment | None, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One value of a segment, unescaped, ``""`` when absent (HL7 numbering, MSH-9 is 9)."""
    if segment is None:
        return ""
    return segment.get(field, rep, comp, sub)
