"""HL7 v2.5 ORU^R01 lab results (docs/health.md §1.4), read with python-hl7.

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


def read_messages(data: bytes, where: str, lab_finess: str | None = None) -> list[Message]:
    """Every message of an HL7 v2 file, each with its results or its refusal. Never raises."""
    big = too_big(data)
    if big is not None:
        return [_refused(1, None, big)]
    out: list[Message] = []
    for index, segments in enumerate(split_messages(data), start=1):
        try:
            out.append(_read_message(index, segments, lab_finess))
        except Exception as error:  # hostile input must never escape as a crash
            out.append(_refused(index, None, f"unreadable message ({type(error).__name__})"))
    if not out:
        out.append(_refused(1, None, "no HL7 message (no MSH segment)"))
    return out


def parse(data: bytes, where: str, lab_finess: str | None = None) -> Parsed:
    """The results of every accepted message of a file, and a refusal per refused message."""
    results: list[LabResult] = []
    refusals: list[Refusal] = []
    skipped: list[str] = []
    for message in read_messages(data, where, lab_finess):
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
    index: int, control_id: str | None, reason: str, msh: Any = None, *, rejected: bool = True
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


def _read_message(index: int, segments: list[bytes], lab_finess: str | None) -> Message:
    first = segments[0]
    if first[:3] != b"MSH" or len(first) < 8:
        return _refused(index, None, "the message does not start with an MSH segment")
    control_id = message_control_id(first)
    try:
        text = _decode(segments)
        message = hl7.parse(text)
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
    message: Any, msh: Any, ref: str, lab_finess: str | None
) -> tuple[list[LabResult], list[str]]:
    kind = f"{_get(msh, 9, 1, 1)}^{_get(msh, 9, 1, 2)}"
    if kind != "ORU^R01":
        raise Refuse(f"MSH-9 is {kind!r}, not ORU^R01")
    results: list[LabResult] = []
    skipped: list[str] = []
    patient: Patient | None = None
    orc: Any = None
    obr: Any = None
    obxs: list[Any] = []
    groups: list[tuple[Patient | None, Any, Any, list[Any], list[Any]]] = []
    spms: list[Any] = []
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
    msh: Any,
    patient: Patient,
    orc: Any,
    obr: Any,
    obxs: list[Any],
    spms: list[Any],
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


def _patient(pid: Any) -> Patient:
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


def _loinc_of(segment: Any, field: int) -> str | None:
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


def _value(obx: Any, label: str) -> Result:
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


def _lab(msh: Any, orc: Any, obr: Any, obx: Any, lab_finess: str | None) -> str:
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


def _rpps(obr: Any) -> str | None:
    value = _get(obr, 16, 1, 1).strip()
    return value if len(value) == 11 and value.isdigit() else None


# --- python-hl7 containers ------------------------------------------------------------------------
def _repetitions(segment: Any, field: int) -> int:
    if segment is None or field >= len(segment):
        return 0
    value = segment[field]
    if value and not isinstance(value[0], str):
        return len(value)
    return 1


def _get(segment: Any, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """One value of a python-hl7 segment, ``""`` when absent (HL7 numbering, MSH-9 is 9)."""
    if segment is None or field >= len(segment):
        return ""
    value: Any = segment[field]
    for index in (rep, comp, sub):
        if isinstance(value, str):
            return value if index == 1 else ""
        if index - 1 >= len(value):
            return ""
        value = value[index - 1]
    while not isinstance(value, str):
        if not value:
            return ""
        value = value[0]
    return str(value)
